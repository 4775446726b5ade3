import { chainIdOf } from '../image/chain-id.js';
import { DEFAULT_PATH, envGet, envSet, type ImageConfig } from '../image/config.js';
import type { LayerMeta } from '../store/layers.js';
import type { Digest } from '../util/digest.js';

export const HISTORY_COMMENT = 'buildkit.dockerfile.v0';

/** A declared ARG in scope: its name and value (undefined when declared without one). */
export interface ArgValue {
  key: string;
  value: string | undefined;
}

/**
 * The image a stage is building, changed step by step: config, layers (bottom first) and the ARGs
 * in scope. Each step replaces `config` rather than editing the base image's object.
 */
export class StageState {
  args: ArgValue[] = [];
  /** Whether this stage set CMD (ENTRYPOINT clears an inherited CMD only). */
  cmdSet = false;

  constructor(
    public config: ImageConfig,
    public layers: LayerMeta[],
    /** ARGs declared before the first FROM; `ARG NAME` in a stage takes its value from here. */
    readonly globalArgs: readonly ArgValue[] = [],
  ) {
    if (envGet(config.config.Env, 'PATH') === undefined) {
      this.config = { ...config, config: { ...config.config, Env: [`PATH=${DEFAULT_PATH}`, ...(config.config.Env ?? [])] } };
    }
  }

  get topChainId(): Digest | undefined {
    return this.layers.at(-1)?.chainId;
  }

  nextChainId(diffId: Digest): Digest {
    return chainIdOf(this.topChainId, diffId);
  }

  /** Variables for expanding instruction arguments: ENV wins over ARG. */
  expansionEnv(): (name: string) => string | undefined {
    return (name) => envGet(this.config.config.Env, name) ?? this.args.find((a) => a.key === name)?.value;
  }

  /** The environment RUN sees: the image's, plus ARGs that ENV does not shadow. */
  runEnv(): string[] {
    let env = [...(this.config.config.Env ?? [])];
    for (const a of this.args) {
      if (a.value !== undefined && envGet(env, a.key) === undefined) env = envSet(env, a.key, a.value);
    }
    return env;
  }

  setRuntime(patch: Partial<ImageConfig['config']>): void {
    this.config = { ...this.config, config: { ...this.config.config, ...patch } };
  }

  /** A metadata-only step: history with empty_layer. */
  addHistory(createdBy: string): void {
    this.config = {
      ...this.config,
      history: [...this.config.history, { created: new Date().toISOString(), created_by: createdBy, comment: HISTORY_COMMENT, empty_layer: true }],
    };
  }

  addLayer(layer: LayerMeta, createdBy: string): void {
    this.layers = [...this.layers, layer];
    this.config = {
      ...this.config,
      rootfs: { type: 'layers', diff_ids: [...this.config.rootfs.diff_ids, layer.diffId] },
      history: [...this.config.history, { created: new Date().toISOString(), created_by: createdBy, comment: HISTORY_COMMENT }],
    };
  }
}
