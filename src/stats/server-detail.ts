// What a server's page shows besides its weekly figures: how its delays are
// distributed over a window, and its median day by day and by hour of day.
import { sql } from 'kysely';
import type { Db } from '../db/database.ts';
import { serverFiguresIn, serverFiguresPerBucket, type DelayFilter } from './repository.ts';
import type { TimeWindow } from './windows.ts';

export interface DelayBin {
  /** Delays d with fromMs <= d < toMs (the last bin includes its end). */
  readonly fromMs: number;
  readonly toMs: number;
  readonly samples: number;
}

/**
 * Bin edges of a 1-2-5 series from the filter's lowest to its highest delay:
 * delays span four orders of magnitude, so equal-width bins would put almost
 * everything in the first.
 */
export function delayBinEdges(filter: DelayFilter): number[] {
  const edges = [filter.minDelayMs];
  for (let decade = 1; decade <= filter.maxDelayMs; decade *= 10) {
    for (const step of [1, 2, 5]) {
      const edge = decade * step;
      if (edge > filter.minDelayMs && edge < filter.maxDelayMs) edges.push(edge);
    }
  }
  edges.push(filter.maxDelayMs);
  return edges;
}

/**
 * One server's delays in the window, counted per bin (every bin listed, empty
 * ones too): the figures its median is taken from (first-pongs.ts), so the
 * count matches the summary beside it.
 */
export async function delayHistogram(
  db: Db,
  roomIds: readonly string[],
  server: string,
  window: TimeWindow,
  filter: DelayFilter,
): Promise<DelayBin[]> {
  const edges = delayBinEdges(filter);
  const { rows } = await sql<{ bin: number; samples: number }>`
    select least(width_bucket(delay_ms, ${edges}::int[]), ${edges.length - 1}) - 1 as bin, count(*)::int as samples
    from samples
    where ${serverFiguresIn(roomIds, server, window, filter)}
    group by 1
  `.execute(db);
  const counts = new Map(rows.map((r) => [Number(r.bin), Number(r.samples)]));
  return edges.slice(0, -1).map((fromMs, i) => ({ fromMs, toMs: edges[i + 1]!, samples: counts.get(i) ?? 0 }));
}

export interface DayFigures {
  /** The UTC day, as YYYY-MM-DD. */
  readonly day: string;
  readonly medianMs: number | null;
  readonly pings: number;
}

const DAY_MS = 86_400_000;

/** The UTC midnights that bound the `count` days up to and including `now`'s day (today so far). */
export function dayBoundaries(now: Date, count: number): Date[] {
  const endOfToday = Date.UTC(now.getUTCFullYear(), now.getUTCMonth(), now.getUTCDate() + 1);
  return Array.from({ length: count + 1 }, (_, i) => new Date(endOfToday - (count - i) * DAY_MS));
}

/**
 * One server's median delay per UTC day over the last `count` days, every
 * day listed (those without a sample have no median), from its first pongs
 * as the ranking counts them.
 */
export async function dailyMedians(
  db: Db,
  roomIds: readonly string[],
  server: string,
  filter: DelayFilter,
  now: Date,
  count: number,
): Promise<DayFigures[]> {
  const boundaries = dayBoundaries(now, count);
  const figures = new Map(
    (await serverFiguresPerBucket(db, roomIds, server, boundaries, filter)).map((b) => [b.bucket, b]),
  );
  return boundaries.slice(0, -1).map((start, i) => ({
    day: start.toISOString().slice(0, 10),
    medianMs: figures.get(i)?.medianMs ?? null,
    pings: figures.get(i)?.pings ?? 0,
  }));
}

export interface HourFigures {
  /** The UTC hour of day, 0 to 23. */
  readonly hour: number;
  readonly medianMs: number | null;
  readonly pings: number;
}

/**
 * One server's median delay per UTC hour of day over the window, all 24 hours
 * listed (those without a sample have no median), from its first pongs as the
 * ranking counts them: whether it is slower at some hours, a nightly backup's.
 */
export async function hourlyMedians(
  db: Db,
  roomIds: readonly string[],
  server: string,
  window: TimeWindow,
  filter: DelayFilter,
): Promise<HourFigures[]> {
  const { rows } = await sql<{ hour: number; median: number; pings: number }>`
    select extract(hour from measured_at at time zone 'UTC')::int as hour,
      percentile_cont(0.5) within group (order by delay_ms) as median,
      count(distinct ping_event_id)::int as pings
    from samples
    where ${serverFiguresIn(roomIds, server, window, filter)}
    group by 1
  `.execute(db);
  const figures = new Map(rows.map((r) => [Number(r.hour), r]));
  return Array.from({ length: 24 }, (_, hour) => {
    const row = figures.get(hour);
    return { hour, medianMs: row ? Number(row.median) : null, pings: row ? Number(row.pings) : 0 };
  });
}
