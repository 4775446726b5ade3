/** Durations and sizes as Docker writes them (Go's time.ParseDuration, go-units' RAMInBytes). */

/** Parses a Go duration (`30s`, `1m30s`, `500ms`) into nanoseconds. */
export function parseDuration(s: string): number {
  const units: Record<string, number> = { ns: 1, us: 1e3, '\u00b5s': 1e3, ms: 1e6, s: 1e9, m: 60e9, h: 3600e9 };
  if (s === '0') return 0;
  const re = /(\d+(?:\.\d*)?|\.\d+)(ns|us|\u00b5s|ms|s|m|h)/gy;
  let total = 0;
  let pos = 0;
  for (let m = re.exec(s); m; m = re.exec(s)) {
    total += Number(m[1]) * units[m[2]!]!;
    pos = re.lastIndex;
  }
  if (pos !== s.length || s === '') throw new Error(`time: invalid duration "${s}"`);
  return Math.round(total);
}

/** Sizes as Docker's units.RAMInBytes: 64m, 1g, 512k, 1048576. */
export function parseSize(v: string): number | undefined {
  const m = /^(\d+(?:\.\d+)?)\s*([kmgtp]?)(i?b)?$/i.exec(v.trim());
  if (!m) return undefined;
  const mult = { '': 1, k: 1024, m: 1024 ** 2, g: 1024 ** 3, t: 1024 ** 4, p: 1024 ** 5 }[m[2]!.toLowerCase() as 'k'];
  return Math.floor(Number(m[1]) * mult);
}

const UNITS = ['B', 'kB', 'MB', 'GB', 'TB', 'PB'];

/** Decimal units with three significant digits: 12B, 1.98MB (go-units HumanSize). */
export function humanSize(bytes: number): string {
  let v = bytes;
  let i = 0;
  while (v >= 1000 && i < UNITS.length - 1) {
    v /= 1000;
    i++;
  }
  return `${Number(v.toPrecision(3))}${UNITS[i]}`;
}
