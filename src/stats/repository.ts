// The SQL behind one server's history: the ranking's figures (first-pongs.ts),
// so a week's figures do not change when it is frozen. (The leaderboard's
// come from hourly digests: see digests.ts and columns.ts.)
import { sql, type RawBuilder } from 'kysely';
import type { Db } from '../db/database.ts';
import type { StatsConfig } from '../config.ts';
import { laterPongOfServer } from './first-pongs.ts';
import type { TimeWindow } from './windows.ts';

export type DelayFilter = Pick<StatsConfig, 'minDelayMs' | 'maxDelayMs'>;

/**
 * The rows of `samples` that are `server`'s figures in the window: its pings'
 * first pongs of each server (first-pongs.ts), within the delay filter.
 */
export function serverFiguresIn(
  roomIds: readonly string[],
  server: string,
  window: TimeWindow,
  filter: DelayFilter,
): RawBuilder<boolean> {
  return sql<boolean>`room_id = any(${roomIds as string[]}::text[]) and ping_server = ${server}
    and measured_at >= ${window.start} and measured_at ${window.endInclusive ? sql`<=` : sql`<`} ${window.end}
    and delay_ms between ${filter.minDelayMs} and ${filter.maxDelayMs}
    and not ${laterPongOfServer('samples')}`;
}

export interface BucketFigures {
  /** Index into the boundaries: bucket i spans boundaries[i] to boundaries[i + 1]. */
  readonly bucket: number;
  readonly medianMs: number;
  readonly meanMs: number;
  readonly pings: number;
  readonly samples: number;
}

/**
 * One ping server's figures per consecutive time bucket (calendar weeks, whose
 * lengths vary across daylight-saving changes), in one grouped query.
 */
export async function serverFiguresPerBucket(
  db: Db,
  roomIds: readonly string[],
  server: string,
  boundaries: readonly Date[],
  filter: DelayFilter,
): Promise<BucketFigures[]> {
  const isoBoundaries = boundaries.map((b) => b.toISOString());
  const { rows } = await sql<{ bucket: number; median: number; mean: number; pings: number; samples: number }>`
    select width_bucket(measured_at, ${isoBoundaries}::timestamptz[]) - 1 as bucket,
      percentile_cont(0.5) within group (order by delay_ms) as median,
      avg(delay_ms)::float8 as mean,
      count(distinct ping_event_id)::int as pings,
      count(*)::int as samples
    from samples
    where ${serverFiguresIn(roomIds, server, { start: boundaries[0]!, end: boundaries.at(-1)!, endInclusive: false }, filter)}
    group by 1 order by 1
  `.execute(db);
  return rows.map((r) => ({
    bucket: r.bucket,
    medianMs: r.median,
    meanMs: r.mean,
    pings: r.pings,
    samples: r.samples,
  }));
}
