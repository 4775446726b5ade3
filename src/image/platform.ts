// Platforms (os/arch/variant): parsed and normalised as containerd does, matched against index entries.
import { UsageError } from '../errors.js';
import { hostArchitecture } from './config.js';

export interface Platform {
  os: string;
  architecture: string;
  variant?: string;
}

const ARCH_ALIASES: Record<string, string> = { x86_64: 'amd64', 'x86-64': 'amd64', aarch64: 'arm64', armhf: 'arm', armel: 'arm', i386: '386' };

/** containerd's normalisation: aarch64 → arm64 (variant v8 dropped), armhf → arm/v7, x86_64 → amd64. */
export function normalizePlatform(p: Platform): Platform {
  const os = p.os.toLowerCase();
  let architecture = ARCH_ALIASES[p.architecture.toLowerCase()] ?? p.architecture.toLowerCase();
  let variant = p.variant?.toLowerCase() || undefined;
  if (p.architecture.toLowerCase() === 'armel') variant = variant ?? 'v6';
  if (p.architecture.toLowerCase() === 'armhf') variant = variant ?? 'v7';
  if (architecture === 'arm64' && variant === 'v8') variant = undefined;
  if (architecture === 'arm' && !variant) variant = 'v7';
  if (architecture === 'amd64' && variant === 'v1') variant = undefined;
  architecture = architecture || hostArchitecture();
  return variant ? { os, architecture, variant } : { os, architecture };
}

/** `linux/arm64`, `linux/arm/v7`, `arm64` (the OS is linux) as `--platform` and `FROM --platform` take them. */
export function parsePlatform(text: string): Platform {
  const parts = text.trim().split('/');
  if (parts.some((p) => p === '') || parts.length > 3) throw new UsageError(`invalid platform "${text}": expected os/arch[/variant]`);
  if (parts.length === 1) return normalizePlatform({ os: 'linux', architecture: parts[0]! });
  const [os, architecture, variant] = parts as [string, string, string?];
  if (os.toLowerCase() !== 'linux') throw new UsageError(`platform "${text}" is not supported: tsbuild builds linux images`);
  return normalizePlatform({ os, architecture, variant });
}

export function hostPlatform(): Platform {
  return normalizePlatform({ os: 'linux', architecture: hostArchitecture(), variant: process.arch === 'arm' ? `v${(process.config.variables as { arm_version?: string }).arm_version ?? '7'}` : undefined });
}

export function formatPlatform(p: Platform): string {
  return [p.os, p.architecture, p.variant].filter(Boolean).join('/');
}

/** Whether an image or index entry's platform is the one asked for (both normalised). */
export function platformMatches(candidate: Platform, wanted: Platform): boolean {
  const a = normalizePlatform(candidate);
  const b = normalizePlatform(wanted);
  return a.os === b.os && a.architecture === b.architecture && (a.variant ?? '') === (b.variant ?? '');
}
