// A stage's image as it is built: config, layers, history, the ARGs and ENV in scope.
import { chainIdOf } from '../image/chain-id.js';
import { DEFAULT_PATH, envGet, envSet, type ImageConfig } from '../image/config.js';
import type { LayerMeta } from '../store/layers.js';
import type { Digest } from '../util/digest.js';
import type { ArgValue } from '../plan/args.js';
import type { SourceLocation } from '../errors.js';

export const HISTORY_COMMENT = 'buildkit.dockerfile.v0';

/**
 * The image a stage is building, changed step by step: config, layers (bottom first) and the ARGs
 * in scope. Each step replaces `config` rather than editing the base image's object.
 */
export class StageState {
  /** ARGs declared in this stage, in order (RUN's history shows them). */
  args: ArgValue[] = [];
  /**
   * The environment steps see and expand with: the image's ENV plus ARG values, later
   * definitions winning (BuildKit's LLB state env). The image config keeps ENV only.
   */
  env: string[];
  /** Whether this stage set CMD (ENTRYPOINT clears an inherited CMD only). */
  cmdSet = false;
  /** The stored image the stage starts FROM (through earlier stages), if any: the built image's parent. */
  baseImageId?: Digest;
  /** How many layers the base had: a step on top of those alone starts on the base. */
  readonly baseDepth: number;
  /** The Dockerfile line of each layer this build's steps made (an earlier stage's too, for a stage built on it). */
  layerSteps = new Map<Digest, SourceLocation>();

  constructor(
    public config: ImageConfig,
    public layers: LayerMeta[],
    /** ARGs declared before the first FROM; `ARG NAME` in a stage takes its value from here. */
    readonly globalArgs: readonly ArgValue[] = [],
    /** SOURCE_DATE_EPOCH as an ISO time: every history entry and the image get it. */
    readonly epoch?: string,
  ) {
    if (envGet(config.config.Env, 'PATH') === undefined) {
      this.config = { ...config, config: { ...config.config, Env: [`PATH=${DEFAULT_PATH}`, ...(config.config.Env ?? [])] } };
    }
    this.env = [...(this.config.config.Env ?? [])];
    this.baseDepth = layers.length;
  }

  get topChainId(): Digest | undefined {
    return this.layers.at(-1)?.chainId;
  }

  nextChainId(diffId: Digest): Digest {
    return chainIdOf(this.topChainId, diffId);
  }

  /** Variables for expanding instruction arguments. */
  expansionEnv(): (name: string) => string | undefined {
    return (name) => envGet(this.env, name);
  }

  /** ENV: into the image config and the step environment. */
  setEnv(key: string, value: string): void {
    this.env = envSet(this.env, key, value);
    this.setRuntime({ Env: envSet(this.config.config.Env, key, value) });
  }

  /** ARG: declared for this stage; its value (if any) joins the step environment only. */
  declareArg(key: string, value: string | undefined): void {
    this.args = [...this.args, { key, value }];
    if (value !== undefined) this.env = envSet(this.env, key, value);
  }

  setRuntime(patch: Partial<ImageConfig['config']>): void {
    this.config = { ...this.config, config: { ...this.config.config, ...patch } };
  }

  /**
   * A metadata-only step: history with empty_layer. Its time is left open (SOURCE_DATE_EPOCH aside)
   * until the image is complete: settleHistoryTimes gives it a layer's time, as BuildKit does.
   */
  addHistory(createdBy: string): void {
    this.config = {
      ...this.config,
      history: [...this.config.history, { created: this.epoch, created_by: createdBy, comment: HISTORY_COMMENT, empty_layer: true }],
    };
  }

  /** A step that made a layer: its history entry has the layer's creation time. */
  addLayer(layer: LayerMeta, createdBy: string, location?: SourceLocation): void {
    this.layers = [...this.layers, layer];
    if (location) this.layerSteps.set(layer.chainId, location);
    this.config = {
      ...this.config,
      rootfs: { type: 'layers', diff_ids: [...this.config.rootfs.diff_ids, layer.diffId] },
      history: [...this.config.history, { created: this.epoch ?? layer.created ?? new Date().toISOString(), created_by: createdBy, comment: HISTORY_COMMENT }],
    };
  }
}
