// How `--check` shows its warnings: buildx's text (each with the Dockerfile lines it is about),
// or BuildKit's lint result as JSON (`--call=check,format=json`).
import type { CheckWarning } from './linter.js';

/** The lines around a warning's, as BuildKit's errdefs Source.Print shows them. */
export function sourceSnippet(file: string, text: string, start: number, end: number): string {
  const lines = text.split('\n');
  if (start < 1 || start > lines.length) return '';
  let last = Math.min(end, lines.length);
  let first = start;
  const pad = last === first ? 4 : 2;
  for (let p = 0; p < pad; p++) {
    if (first > 1) {
      first--;
      p++;
    }
    if (last !== lines.length) {
      last++;
      p++;
    }
  }
  let out = `${file}:${start}\n--------------------\n`;
  for (let i = first; i <= last; i++) out += ` ${String(i).padStart(3)} | ${i >= start && i <= end ? '>>>' : '   '} ${lines[i - 1]}\n`;
  return `${out}--------------------\n`;
}

/** Warnings by line, ties in the order they were given (BuildKit's sort, stable as it is for a dozen). */
export function byLine(warnings: readonly CheckWarning[]): CheckWarning[] {
  return warnings.map((w, i) => ({ w, i })).sort((a, b) => (a.w.location?.line ?? 0) - (b.w.location?.line ?? 0) || a.i - b.i).map((x) => x.w);
}

/** `docker build --check`'s text: the count, then each warning with its rule, link, message, (fix) and lines. */
export function checkText(file: string, text: string, warnings: readonly CheckWarning[], failed: boolean): string {
  let out = '';
  if (warnings.length > 0) out += `Check complete, ${warnings.length === 1 ? '1 warning has' : `${warnings.length} warnings have`} been found!\n`;
  for (const w of byLine(warnings)) {
    out += `\nWARNING: ${w.rule.name}${w.rule.url ? ` - ${w.rule.url}` : ''}\n${w.message}\n`;
    if (w.rule.fix) out += `Fix: ${w.rule.fix}\n`;
    if (w.location) out += sourceSnippet(file, text, w.location.line, w.location.endLine ?? w.location.line);
  }
  if (failed) return warnings.length > 0 ? `${out}\n` : out;
  return warnings.length === 0 ? 'Check complete, no warnings found.\n' : out;
}

/** BuildKit's lint result (frontend/subrequests/lint): what `--call=check,format=json` prints. */
export function checkJson(file: string, text: string, warnings: readonly CheckWarning[], error?: { message: string; line?: number }): string {
  const ranges = (start: number, end: number) => Array.from({ length: end - start + 1 }, (_, i) => ({ start: { line: start + i }, end: { line: start + i } }));
  const result = {
    warnings: warnings.map((w) => ({
      ruleName: w.rule.name,
      description: w.rule.description,
      ...(w.rule.url ? { url: w.rule.url } : {}),
      detail: w.message,
      ...(w.location ? { location: { ranges: ranges(w.location.line, w.location.endLine ?? w.location.line) } } : {}),
    })),
    sources: [{ filename: file, data: Buffer.from(text).toString('base64'), language: 'Dockerfile' }],
    ...(error ? { buildError: { message: error.message, location: error.line ? { ranges: ranges(error.line, error.line) } : {} } } : {}),
  };
  return JSON.stringify(result, null, 2);
}
