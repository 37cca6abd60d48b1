// Summary figures of a set of delays, computed in process: the
// pingstat-compatible output's (pingstat-summary.ts), and the quantiles the
// leaderboard's figures share (columns.ts).
import { logAverage, sumSimple } from 'simple-statistics';
import { libmExp } from './libm.ts';

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
 * array). A caller that has summed the delays' logarithms already passes
 * `logSum`, and the geometric mean is then its exponential as the C library
 * takes it (libm.ts), which the aggregator-compatible figures need.
 */
export function figuresOfSorted(sorted: ArrayLike<number>, logSum?: number): Figures {
  if (sorted.length === 0) throw new RangeError('figures of an empty list');
  // simple-statistics only indexes its input, so typed arrays serve as well.
  const values = sorted as number[];
  return {
    medianMs: quantileOfSortedRun(values, 0, values.length, 0.5),
    meanMs: sumSimple(values) / values.length,
    gmeanMs: logSum === undefined ? logAverage(values) : libmExp(logSum / values.length),
    p90Ms: quantileOfSortedRun(values, 0, values.length, 0.9),
    minMs: values[0]!,
    maxMs: values[values.length - 1]!,
  };
}

/**
 * The quantile `p` (from 0 to 1) of values[start, end), sorted
 * ascending and not empty: linear between the closest ranks (numpy's type 7,
 * percentile_cont), with simple-statistics' quantileSorted's arithmetic, on
 * a run of a larger array without a view of it.
 */
export function quantileOfSortedRun(values: ArrayLike<number>, start: number, end: number, p: number): number {
  const at = (end - start - 1) * p;
  const lower = Math.floor(at);
  if (lower === at) return values[start + at]!;
  const low = values[start + lower]!;
  return low + (at - lower) * (values[start + lower + 1]! - low);
}

export function ascending(a: number, b: number): number {
  return a - b;
}

/**
 * A sum kept exact as values are added, rounded correctly when read, as
 * Python's math.fsum computes it (Shewchuk's non-overlapping partials, then
 * CPython's half-even correction): the aggregator takes its geometric means
 * over fsum of the logarithms, and a plain sum differs from it in the last
 * digits. Its value is the exact sum's, rounded, so adding up sums of parts
 * (addSum) gives what adding every value gives, in any order.
 */
export class ExactSum {
  // Partials in typed storage, swapped without destructuring: a week of a busy room adds millions of values.
  #partials = new Float64Array(16);
  #count = 0;

  add(value: number): void {
    const partials = this.#partials;
    let x = value;
    let kept = 0;
    for (let j = 0; j < this.#count; j++) {
      let y = partials[j]!;
      if (Math.abs(x) < Math.abs(y)) {
        const larger = y;
        y = x;
        x = larger;
      }
      const hi = x + y;
      const lo = y - (hi - x);
      if (lo !== 0) partials[kept++] = lo;
      x = hi;
    }
    if (kept === partials.length) {
      this.#partials = new Float64Array(2 * partials.length);
      this.#partials.set(partials);
    }
    this.#partials[kept] = x;
    this.#count = kept + 1;
  }

  /** Adds every value `other` has added. */
  addSum(other: ExactSum): void {
    for (let j = 0; j < other.#count; j++) this.add(other.#partials[j]!);
  }

  value(): number {
    const partials = this.#partials;
    let n = this.#count;
    if (n === 0) return 0;
    let hi = partials[--n]!;
    let lo = 0;
    while (n > 0) {
      const x = hi;
      const y = partials[--n]!;
      hi = x + y;
      lo = y - (hi - x);
      if (lo !== 0) break;
    }
    if (n > 0 && ((lo < 0 && partials[n - 1]! < 0) || (lo > 0 && partials[n - 1]! > 0))) {
      const y = lo * 2;
      const x = hi + y;
      if (y === x - hi) hi = x;
    }
    return hi;
  }
}

/** The correctly rounded sum of `values`, as Python's math.fsum computes it (see ExactSum). */
export function exactSum(values: Iterable<number>): number {
  const sum = new ExactSum();
  for (const value of values) sum.add(value);
  return sum.value();
}
