// The registry flags every registry-talking command takes (dockerd's daemon settings, per command).
import type { RegistryOptions } from '../registry/hosts.js';

export interface RegistryFlags {
  registryMirror: string[];
  insecureRegistry: string[];
}

export function registryOptions(flags: RegistryFlags): RegistryOptions {
  return { mirrors: flags.registryMirror, insecureRegistries: flags.insecureRegistry };
}
