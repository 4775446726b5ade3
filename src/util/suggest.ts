// "Did you mean": the nearest option to a mistyped name, as BuildKit suggests it.
/** Edit distance between two strings (insertions, deletions, substitutions). */
export function levenshtein(a: string, b: string): number {
  const x = [...a];
  const y = [...b];
  let prev = Array.from({ length: y.length + 1 }, (_, j) => j);
  for (let i = 1; i <= x.length; i++) {
    const row = [i];
    for (let j = 1; j <= y.length; j++) row[j] = Math.min(prev[j]! + 1, row[j - 1]! + 1, prev[j - 1]! + (x[i - 1] === y[j - 1] ? 0 : 1));
    prev = row;
  }
  return prev[y.length]!;
}

/**
 * The option nearest to a mistyped value, as BuildKit's suggest.Search finds it: at most 2 edits
 * away, none when the value is an option itself (then the mistake is elsewhere). Case-insensitive
 * matches come back in the value's case.
 */
export function nearest(value: string, options: Iterable<string>, caseSensitive: boolean): string | undefined {
  const v = caseSensitive ? value : value.toLowerCase();
  let best: string | undefined;
  let bestDistance = 3;
  for (const option of options) {
    const o = caseSensitive ? option : option.toLowerCase();
    if (o === v) return undefined;
    const d = levenshtein(v, o);
    if (d < bestDistance) {
      best = caseSensitive ? o : value === value.toLowerCase() ? o : value === value.toUpperCase() ? o.toUpperCase() : option;
      bestDistance = d;
    }
  }
  return best;
}

/** `message (did you mean X?)` when an option is near the value, else the message. */
export function didYouMean(message: string, value: string, options: Iterable<string>, caseSensitive = true): string {
  const match = nearest(value, options, caseSensitive);
  return match === undefined ? message : `${message} (did you mean ${match}?)`;
}
