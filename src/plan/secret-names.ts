// Names that suggest a secret, as BuildKit's SecretsUsedInArgOrEnv check tells them.

/** A word (the whole name, or its first or last part between underscores) that names a secret. */
const SECRET = /(?:_|^)(?:apikey|auth|credential|credentials|key|password|pword|passwd|secret|token)(?:_|$)/i;
/** Words that make such a name harmless: PUBLIC_KEY, KEY_FILE, TOKEN_VERSION. */
const HARMLESS = /(?:_|^)(?:public|file|version)(?:_|$)/i;

/** Whether an ARG or ENV name suggests its value is a secret (GITHUB_TOKEN, api_key, AUTH). */
export function looksSecret(name: string): boolean {
  return SECRET.test(name) && !HARMLESS.test(name);
}
