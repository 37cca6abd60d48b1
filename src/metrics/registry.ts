// A small metrics registry and the Prometheus text exposition format
// (version 0.0.4): HELP and TYPE lines, escaped label values, histograms as
// cumulative _bucket series ending in le="+Inf", then _sum and _count.
// Rendering is pure and tested directly.
import { getOrInsert } from '../collections.ts';

export const CONTENT_TYPE = 'text/plain; version=0.0.4; charset=utf-8';

export type MetricType = 'counter' | 'gauge' | 'histogram';
export type Labels = Readonly<Record<string, string>>;

export interface Sample {
  readonly labels: Labels;
  readonly value: number;
}

export interface HistogramSample {
  readonly labels: Labels;
  /** Cumulative counts, one per bucket bound, in the order of `buckets`. */
  readonly bucketCounts: readonly number[];
  readonly sum: number;
  readonly count: number;
}

export type MetricFamily =
  | {
      readonly name: string;
      readonly help: string;
      readonly type: 'counter' | 'gauge';
      readonly samples: readonly Sample[];
    }
  | {
      readonly name: string;
      readonly help: string;
      readonly type: 'histogram';
      readonly buckets: readonly number[];
      readonly samples: readonly HistogramSample[];
    };

export function escapeHelp(text: string): string {
  return text.replace(/\\/g, '\\\\').replace(/\n/g, '\\n');
}

export function escapeLabelValue(value: string): string {
  return value.replace(/\\/g, '\\\\').replace(/\n/g, '\\n').replace(/"/g, '\\"');
}

export function formatValue(value: number): string {
  if (Number.isNaN(value)) return 'NaN';
  if (value === Infinity) return '+Inf';
  if (value === -Infinity) return '-Inf';
  return String(value);
}

function labelText(labels: Labels, extra?: readonly [string, string]): string {
  const pairs = Object.entries(labels);
  if (extra) pairs.push([extra[0], extra[1]]);
  if (pairs.length === 0) return '';
  return `{${pairs.map(([k, v]) => `${k}="${escapeLabelValue(v)}"`).join(',')}}`;
}

export function renderFamilies(families: readonly MetricFamily[]): string {
  const lines: string[] = [];
  for (const family of families) {
    lines.push(`# HELP ${family.name} ${escapeHelp(family.help)}`, `# TYPE ${family.name} ${family.type}`);
    if (family.type === 'histogram') {
      for (const sample of family.samples) {
        family.buckets.forEach((bound, i) => {
          lines.push(
            `${family.name}_bucket${labelText(sample.labels, ['le', formatValue(bound)])} ${sample.bucketCounts[i]}`,
          );
        });
        lines.push(`${family.name}_bucket${labelText(sample.labels, ['le', '+Inf'])} ${sample.count}`);
        lines.push(`${family.name}_sum${labelText(sample.labels)} ${formatValue(sample.sum)}`);
        lines.push(`${family.name}_count${labelText(sample.labels)} ${sample.count}`);
      }
    } else {
      for (const sample of family.samples)
        lines.push(`${family.name}${labelText(sample.labels)} ${formatValue(sample.value)}`);
    }
  }
  return `${lines.join('\n')}\n`;
}

/**
 * Bounds a label's cardinality: the first `cap` distinct values keep their
 * own label, every later one becomes `other`. Anyone can join the ping room
 * from any server, so ping server names are not a bounded set.
 */
export class CappedLabel {
  static readonly OTHER = 'other';
  readonly #cap: number;
  readonly #admitted = new Set<string>();

  constructor(cap: number) {
    this.#cap = cap;
  }

  get size(): number {
    return this.#admitted.size;
  }

  value(raw: string): string {
    if (this.#admitted.has(raw)) return raw;
    if (this.#admitted.size < this.#cap) {
      this.#admitted.add(raw);
      return raw;
    }
    return CappedLabel.OTHER;
  }
}

function key(labels: Labels): string {
  return JSON.stringify(Object.entries(labels));
}

/** A counter per label set. */
export class Counter {
  readonly #values = new Map<string, { labels: Labels; value: number }>();
  readonly name: string;
  readonly help: string;

  constructor(name: string, help: string) {
    this.name = name;
    this.help = help;
  }

  inc(labels: Labels = {}, by = 1): void {
    const k = key(labels);
    const entry = this.#values.get(k);
    if (entry) entry.value += by;
    else this.#values.set(k, { labels, value: by });
  }

  family(): MetricFamily {
    return { name: this.name, help: this.help, type: 'counter', samples: [...this.#values.values()] };
  }
}

/** A histogram per label set, over fixed bucket bounds. */
export class Histogram {
  readonly #series = new Map<string, { labels: Labels; counts: number[]; sum: number; count: number }>();
  readonly name: string;
  readonly help: string;
  readonly buckets: readonly number[];

  constructor(name: string, help: string, buckets: readonly number[]) {
    this.name = name;
    this.help = help;
    this.buckets = [...buckets].sort((a, b) => a - b);
  }

  observe(value: number, labels: Labels = {}): void {
    const k = key(labels);
    const series = getOrInsert(this.#series, k, () => ({
      labels,
      counts: this.buckets.map(() => 0),
      sum: 0,
      count: 0,
    }));
    this.buckets.forEach((bound, i) => {
      if (value <= bound) series.counts[i]!++;
    });
    series.sum += value;
    series.count++;
  }

  family(): MetricFamily {
    return {
      name: this.name,
      help: this.help,
      type: 'histogram',
      buckets: this.buckets,
      samples: [...this.#series.values()].map((s) => ({
        labels: s.labels,
        bucketCounts: s.counts,
        sum: s.sum,
        count: s.count,
      })),
    };
  }
}
