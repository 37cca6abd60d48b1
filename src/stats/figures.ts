// Summary figures of a set of delays, computed in process. The leaderboard
// computes the same figures in SQL; this is used where every delay is at hand
// anyway (the pingstat-compatible output lists each one).
import { logAverage, quantileSorted, sumSimple } from 'simple-statistics';

export interface Figures {
  /** Even counts average the two middle values, as percentile_cont(0.5) does. */
  readonly medianMs: number;
  readonly meanMs: number;
  /** Geometric mean: exp(mean(ln delay)); delays are at least min_delay_ms (>= 1). */
  readonly gmeanMs: number;
  /** Linear interpolation between closest ranks, as percentile_cont(0.9). */
  readonly p90Ms: number;
  readonly minMs: number;
  readonly maxMs: number;
}

/** Figures of a non-empty list of delays sorted ascending. */
export function figuresOfSorted(sorted: readonly number[]): Figures {
  if (sorted.length === 0) throw new RangeError('figures of an empty list');
  const values = sorted as number[];
  return {
    medianMs: quantileSorted(values, 0.5),
    meanMs: sumSimple(values) / values.length,
    gmeanMs: logAverage(values),
    p90Ms: quantileSorted(values, 0.9),
    minMs: values[0]!,
    maxMs: values[values.length - 1]!,
  };
}

export function ascending(a: number, b: number): number {
  return a - b;
}
