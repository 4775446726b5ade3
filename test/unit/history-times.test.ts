import { describe, expect, it } from 'vitest';
import { scratchConfig, settleHistoryTimes, type HistoryEntry } from '../../src/image/config.js';

const base = '2020-01-01T00:00:00Z';
const t1 = '2026-11-29T10:00:00Z';
const t2 = '2026-11-29T10:00:05Z';
const meta = (by: string): HistoryEntry => ({ created_by: by, empty_layer: true });
const layer = (by: string, created: string): HistoryEntry => ({ created_by: by, created });

/** BuildKit's exporter rules (exporter/containerimage/writer.go, normalizeLayersAndHistory). */
const cases: Array<[string, HistoryEntry[], Array<string | undefined>, string | undefined]> = [
  ['metadata before the first new layer takes that layer\'s time, not the base\'s', [layer('base', base), meta('ENV A=1'), layer('RUN x', t1), meta('ENV B=2')], [base, t1, t1, t1], t1],
  // the first open entry takes the first layer time after it, later ones the layer time before them
  ['metadata between layers', [layer('base', base), layer('RUN x', t1), meta('ENV A'), layer('RUN y', t2), meta('ENV B')], [base, t1, t2, t2, t2], t2],
  ['metadata before and between layers', [layer('base', base), meta('ENV A'), layer('RUN x', t1), meta('ENV B'), layer('RUN y', t2)], [base, t1, t1, t1, t2], t2],
  ['metadata only: the base\'s newest time', [layer('base', base), meta('ENV A=1')], [base, base], base],
  ['nothing to settle', [layer('base', base), layer('RUN x', t1)], [base, t1], t1],
];

describe('history times', () => {
  it.each(cases)('%s', (_, history, times, created) => {
    const settled = settleHistoryTimes({ ...scratchConfig(), history });
    expect(settled.history.map((h) => h.created)).toEqual(times);
    expect(settled.created).toBe(created);
  });

  it('SOURCE_DATE_EPOCH is the image\'s time', () => {
    const epoch = '2001-01-01T00:00:00.000Z';
    expect(settleHistoryTimes({ ...scratchConfig(), history: [layer('base', base), { ...meta('ENV A'), created: epoch }] }, epoch).created).toBe(epoch);
  });
});
