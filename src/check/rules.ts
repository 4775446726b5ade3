// The build checks: BuildKit's rules (frontend/dockerfile/linter/ruleset.go), with their names,
// descriptions and documentation links, and tsbuild's hygiene rules, each with its one-line fix.

export interface Rule {
  name: string;
  description: string;
  /** BuildKit's documentation page for its rules. */
  url?: string;
  /** The one-line fix (tsbuild's hygiene rules). */
  fix?: string;
  /** Runs only when asked for (`# check=experimental=...`). */
  experimental?: boolean;
}

const docs = (slug: string) => `https://docs.docker.com/go/dockerfile/rule/${slug}/`;

function rule(name: string, slug: string, description: string, extra: Partial<Rule> = {}): Rule {
  return { name, description, url: docs(slug), ...extra };
}

export const RULES = {
  StageNameCasing: rule('StageNameCasing', 'stage-name-casing', 'Stage names should be lowercase'),
  FromAsCasing: rule('FromAsCasing', 'from-as-casing', "The 'as' keyword should match the case of the 'from' keyword"),
  NoEmptyContinuation: rule('NoEmptyContinuation', 'no-empty-continuation', 'Empty continuation lines will become errors in a future release'),
  ConsistentInstructionCasing: rule('ConsistentInstructionCasing', 'consistent-instruction-casing', 'All commands within the Dockerfile should use the same casing (either upper or lower)'),
  DuplicateStageName: rule('DuplicateStageName', 'duplicate-stage-name', 'Stage names should be unique'),
  ReservedStageName: rule('ReservedStageName', 'reserved-stage-name', 'Reserved words should not be used as stage names'),
  JSONArgsRecommended: rule('JSONArgsRecommended', 'json-args-recommended', 'JSON arguments recommended for ENTRYPOINT/CMD to prevent unintended behavior related to OS signals'),
  MaintainerDeprecated: rule('MaintainerDeprecated', 'maintainer-deprecated', 'The MAINTAINER instruction is deprecated, use a label instead to define an image author'),
  UndefinedArgInFrom: rule('UndefinedArgInFrom', 'undefined-arg-in-from', 'FROM command must use declared ARGs'),
  WorkdirRelativePath: rule('WorkdirRelativePath', 'workdir-relative-path', 'Relative workdir without an absolute workdir declared within the build can have unexpected results if the base image changes'),
  UndefinedVar: rule('UndefinedVar', 'undefined-var', 'Variables should be defined before their use'),
  MultipleInstructionsDisallowed: rule('MultipleInstructionsDisallowed', 'multiple-instructions-disallowed', 'Multiple instructions of the same type should not be used in the same stage'),
  LegacyKeyValueFormat: rule('LegacyKeyValueFormat', 'legacy-key-value-format', 'Legacy key/value format with whitespace separator should not be used'),
  InvalidBaseImagePlatform: { name: 'InvalidBaseImagePlatform', description: 'Base image platform does not match expected target platform' } as Rule,
  RedundantTargetPlatform: rule('RedundantTargetPlatform', 'redundant-target-platform', 'Setting platform to predefined $TARGETPLATFORM in FROM is redundant as this is the default behavior'),
  SecretsUsedInArgOrEnv: rule('SecretsUsedInArgOrEnv', 'secrets-used-in-arg-or-env', 'Sensitive data should not be used in the ARG or ENV commands'),
  InvalidDefaultArgInFrom: rule('InvalidDefaultArgInFrom', 'invalid-default-arg-in-from', 'Default value for global ARG results in an empty or invalid base image name'),
  FromPlatformFlagConstDisallowed: rule('FromPlatformFlagConstDisallowed', 'from-platform-flag-const-disallowed', 'FROM --platform flag should not use a constant value'),
  CopyIgnoredFile: rule('CopyIgnoredFile', 'copy-ignored-file', 'Attempting to Copy file that is excluded by .dockerignore'),
  InvalidDefinitionDescription: rule(
    'InvalidDefinitionDescription',
    'invalid-definition-description',
    'Comment for build stage or argument should follow the format: `# <arg/stage name> <description>`. If this is not intended to be a description comment, add an empty line or comment between the instruction and the comment.',
    { experimental: true },
  ),
  ExposeProtoCasing: rule('ExposeProtoCasing', 'expose-proto-casing', 'Protocol in EXPOSE instruction should be lowercase'),
  ExposeInvalidFormat: rule('ExposeInvalidFormat', 'expose-invalid-format', 'IP address and host-port mapping should not be used in EXPOSE instruction. This will become an error in a future release'),

  // tsbuild's hygiene rules: what makes images big, slow to rebuild or leaky
  AptListsKept: {
    name: 'AptListsKept',
    description: 'apt-get install without removing /var/lib/apt/lists in the same RUN keeps the package lists in the layer',
    fix: 'end the RUN with `&& rm -rf /var/lib/apt/lists/*` (or mount a cache at /var/lib/apt/lists)',
  },
  WastedBytes: {
    name: 'WastedBytes',
    description: 'Files added in one layer and deleted in a later one still take their space in the image',
    fix: 'delete the files in the RUN that creates them, or build them in another stage and COPY --from only what is needed',
  },
  ChownInOwnLayer: {
    name: 'ChownInOwnLayer',
    description: 'A recursive chmod or chown in a RUN of its own copies every file it changes into a new layer',
    fix: 'set owner and mode where the files are added: COPY --chown/--chmod, or in the RUN that creates them',
  },
  SecretFileCopied: {
    name: 'SecretFileCopied',
    description: 'Key-like files (private keys, .env, an .npmrc with a token) are copied into the image',
    fix: 'list them in .dockerignore, and hand secrets to RUN with --mount=type=secret',
  },
  CopyAllBeforeInstall: {
    name: 'CopyAllBeforeInstall',
    description: 'Copying the whole context before the dependency install makes every source edit re-run the install',
    fix: 'COPY the dependency manifests first, run the install, then COPY the rest',
  },
  AddNotArchive: {
    name: 'AddNotArchive',
    description: 'ADD of a local file that is not an archive does only what COPY does',
    fix: 'use COPY (ADD is for archives to unpack and URLs)',
  },
  FromUnpinned: {
    name: 'FromUnpinned',
    description: 'A base image without a tag, or tagged latest, changes under the build whenever it is pulled',
    fix: 'pin a version tag (FROM debian:12-slim), or a digest',
  },
} satisfies Record<string, Rule>;

export type RuleName = keyof typeof RULES;
