// The SQL that feeds the statistics. Figures are computed in the database
// (one scan, grouped twice with GROUPING SETS) so a week of a million samples
// never travels to the process.
import { sql } from 'kysely';
import type { Db } from '../db/database.ts';
import type { StatsConfig } from '../config.ts';
import type { ServerFigures } from './ranking.ts';
import type { TimeWindow } from './windows.ts';

export type DelayFilter = Pick<StatsConfig, 'minDelayMs' | 'maxDelayMs'>;

interface FigureRow {
  ping_server: string;
  responder_server: string | null;
  is_total: number;
  median: number;
  p90: number;
  mean: number;
  gmean: number;
  min: number;
  max: number;
  pings: number;
  samples: number;
}

function windowEnd(window: TimeWindow) {
  return window.endInclusive ? sql`measured_at <= ${window.end}` : sql`measured_at < ${window.end}`;
}

/** Figures per ping server and per (ping server, responder server), unranked. */
export async function serverFigures(db: Db, roomIds: readonly string[], window: TimeWindow, filter: DelayFilter): Promise<ServerFigures[]> {
  // Byte-order ("C") grouping sorts several times faster than a locale
  // collation, and the sorts of a week's samples fit in memory.
  const rows = await db.transaction().execute(async (tx) => {
    await sql`set local work_mem = '64MB'`.execute(tx);
    const result = await sql<FigureRow>`
      select ping_server collate "C" as ping_server, responder_server collate "C" as responder_server,
        grouping(responder_server collate "C")::int as is_total,
        percentile_cont(0.5) within group (order by delay_ms) as median,
        percentile_cont(0.9) within group (order by delay_ms) as p90,
        avg(delay_ms)::float8 as mean,
        exp(avg(ln(delay_ms::float8))) as gmean,
        min(delay_ms) as min,
        max(delay_ms) as max,
        count(distinct ping_event_id collate "C")::int as pings,
        count(*)::int as samples
      from samples
      where room_id = any(${roomIds as string[]}::text[])
        and measured_at >= ${window.start} and ${windowEnd(window)}
        and delay_ms between ${filter.minDelayMs} and ${filter.maxDelayMs}
      group by grouping sets ((ping_server collate "C"), (ping_server collate "C", responder_server collate "C"))
      order by 1, 3 desc, 2
    `.execute(tx);
    return result.rows;
  });

  const servers: ServerFigures[] = [];
  let current: { server: ServerFigures; responders: ServerFigures['responders'][number][] } | undefined;
  // Rows arrive per ping server: its total first, then one row per responder server.
  for (const row of rows) {
    const figures = {
      medianMs: row.median, meanMs: row.mean, gmeanMs: row.gmean, p90Ms: row.p90,
      minMs: row.min, maxMs: row.max, pings: row.pings, samples: row.samples,
    };
    if (row.is_total === 1) {
      const responders: ServerFigures['responders'][number][] = [];
      current = { server: { server: row.ping_server, ...figures, responders }, responders };
      servers.push(current.server);
    } else {
      current!.responders.push({ server: row.responder_server!, ...figures });
    }
  }
  return servers;
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
  db: Db, roomIds: readonly string[], server: string, boundaries: readonly Date[], filter: DelayFilter,
): Promise<BucketFigures[]> {
  const isoBoundaries = boundaries.map((b) => b.toISOString());
  const { rows } = await sql<{ bucket: number; median: number; mean: number; pings: number; samples: number }>`
    select width_bucket(measured_at, ${isoBoundaries}::timestamptz[]) - 1 as bucket,
      percentile_cont(0.5) within group (order by delay_ms) as median,
      avg(delay_ms)::float8 as mean,
      count(distinct ping_event_id)::int as pings,
      count(*)::int as samples
    from samples
    where room_id = any(${roomIds as string[]}::text[]) and ping_server = ${server}
      and measured_at >= ${boundaries[0]!} and measured_at < ${boundaries[boundaries.length - 1]!}
      and delay_ms between ${filter.minDelayMs} and ${filter.maxDelayMs}
    group by 1 order by 1
  `.execute(db);
  return rows.map((r) => ({ bucket: r.bucket, medianMs: r.median, meanMs: r.mean, pings: r.pings, samples: r.samples }));
}
