/** Docker's ways of printing sizes, durations and tables. */

/** "2 minutes ago", as go-units HumanDuration + " ago". */
export function humanAgo(iso: string | undefined, now = Date.now()): string {
  if (!iso) return 'N/A';
  const s = (now - Date.parse(iso)) / 1000;
  if (Number.isNaN(s)) return 'N/A';
  const plural = (n: number, unit: string) => `${n} ${unit}${n === 1 ? '' : 's'}`;
  let d: string;
  if (s < 1) d = 'Less than a second';
  else if (s < 60) d = plural(Math.floor(s), 'second');
  else if (s < 120) d = 'About a minute';
  else if (s < 3600) d = plural(Math.floor(s / 60), 'minute');
  else if (s < 7200) d = 'About an hour';
  else if (s < 48 * 3600) d = plural(Math.floor(s / 3600), 'hour');
  else if (s < 14 * 86400) d = plural(Math.floor(s / 86400), 'day');
  else if (s < 60 * 86400) d = plural(Math.floor(s / (7 * 86400)), 'week');
  else if (s < 2 * 365 * 86400) d = plural(Math.floor(s / (30 * 86400)), 'month');
  else d = plural(Math.floor(s / (365 * 86400)), 'year');
  return `${d} ago`;
}

/** Columns padded to the widest cell plus three spaces, like Docker's tabwriter. */
export function table(rows: string[][]): string {
  const widths: number[] = [];
  for (const r of rows) r.forEach((c, i) => (widths[i] = Math.max(widths[i] ?? 0, [...c].length)));
  return rows
    .map((r) => r.map((c, i) => (i === r.length - 1 ? c : c + ' '.repeat(widths[i]! - [...c].length + 3))).join(''))
    .join('\n');
}

/** Docker truncates long cells with an ellipsis. */
export function ellipsis(s: string, max: number): string {
  const chars = [...s];
  return chars.length <= max ? s : `${chars.slice(0, max - 1).join('')}…`;
}

export function shortId(id: string): string {
  return id.replace(/^sha256:/, '').slice(0, 12);
}
