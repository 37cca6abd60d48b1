// Summary figures of a set of delays, computed in process, for the
// leaderboard (columns.ts) and the pingstat-compatible output alike.
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

/**
 * Figures of a non-empty list of delays sorted ascending (an array or a typed
 * array). A caller that has summed the delays' logarithms in that order
 * already passes `logSum`, which gives the same geometric mean.
 */
export function figuresOfSorted(sorted: ArrayLike<number>, logSum?: number): Figures {
  if (sorted.length === 0) throw new RangeError('figures of an empty list');
  // simple-statistics only indexes its input, so typed arrays serve as well.
  const values = sorted as number[];
  return {
    medianMs: quantileSorted(values, 0.5),
    meanMs: sumSimple(values) / values.length,
    gmeanMs: logSum === undefined ? logAverage(values) : Math.exp(logSum / values.length),
    p90Ms: quantileSorted(values, 0.9),
    minMs: values[0]!,
    maxMs: values[values.length - 1]!,
  };
}

export function ascending(a: number, b: number): number {
  return a - b;
}
