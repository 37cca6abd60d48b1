// Probe pings and the probe figures of ping servers, per time bucket.
import { sql } from 'kysely';
import type { Db } from '../db/database.ts';
import type { ProbeOutcome } from '../db/schema.ts';
import type { ProbeCounts } from './figures.ts';

export interface ProbePing {
  readonly probeId: string;
  readonly seq: number;
  readonly sentAt: Date;
  readonly roomId: string;
  readonly pingServer: string;
  readonly pingEventId: string | null;
  readonly outcome: ProbeOutcome;
  readonly pongs: number;
  readonly error: string | null;
}

/** Stores what became of one ping; storing it again changes nothing. */
export async function recordProbePing(db: Db, ping: ProbePing): Promise<void> {
  await db.insertInto('probe_pings').values({
    probe_id: ping.probeId, seq: ping.seq, sent_at: ping.sentAt, room_id: ping.roomId, ping_server: ping.pingServer,
    ping_event_id: ping.pingEventId, outcome: ping.outcome, pongs: ping.pongs, error: ping.error,
  }).onConflict((oc) => oc.columns(['probe_id', 'sent_at']).doNothing()).execute();
}

/** The sequence number after the probe's latest stored ping (1 for a new probe). */
export async function nextSequence(db: Db, probeId: string): Promise<number> {
  const row = await db.selectFrom('probe_pings').select(sql<number | null>`max(seq)`.as('seq')).where('probe_id', '=', probeId).executeTakeFirst();
  return (row?.seq ?? 0) + 1;
}

export interface BucketProbeCounts extends ProbeCounts {
  /** Bucket i spans boundaries[i] (included) to boundaries[i + 1] (excluded). */
  readonly bucket: number;
}

/**
 * Per ping server and time bucket: probe pings sent, lost and failed (by
 * send time), and the probe samples' median round trip and impossible
 * one-way delays (by measurement time). Only `server`'s when given.
 */
export async function probeCountsPerBucket(
  db: Db, roomIds: readonly string[], boundaries: readonly Date[], server?: string,
): Promise<BucketProbeCounts[]> {
  const bounds = boundaries.map((b) => b.toISOString());
  const first = boundaries[0]!;
  const last = boundaries[boundaries.length - 1]!;
  const rooms = roomIds as string[];
  const pingFilter = server === undefined ? sql`` : sql`and ping_server = ${server}`;
  const { rows } = await sql<{
    bucket: number; server: string; sent: number; lost: number; failed: number; samples: number; median_rtt: number | null; impossible: number;
  }>`
    with pings as (
      select width_bucket(sent_at, ${bounds}::timestamptz[]) - 1 as bucket, ping_server as server,
        count(*) filter (where outcome <> 'send_failed')::int as sent,
        count(*) filter (where outcome = 'lost')::int as lost,
        count(*) filter (where outcome = 'send_failed')::int as failed
      from probe_pings
      where room_id = any(${rooms}::text[]) and sent_at >= ${first} and sent_at < ${last} ${pingFilter}
      group by 1, 2
    ), trips as (
      select width_bucket(measured_at, ${bounds}::timestamptz[]) - 1 as bucket, ping_server as server,
        count(*)::int as samples,
        percentile_cont(0.5) within group (order by rtt_ms) as median_rtt,
        count(*) filter (where delay_ms < 0 or delay_ms > rtt_ms)::int as impossible
      from samples
      where room_id = any(${rooms}::text[]) and source = 'probe' and rtt_ms is not null
        and measured_at >= ${first} and measured_at < ${last} ${pingFilter}
      group by 1, 2
    )
    select coalesce(p.bucket, t.bucket) as bucket, coalesce(p.server, t.server) as server,
      coalesce(p.sent, 0) as sent, coalesce(p.lost, 0) as lost, coalesce(p.failed, 0) as failed,
      coalesce(t.samples, 0) as samples, t.median_rtt, coalesce(t.impossible, 0) as impossible
    from pings p full join trips t on p.bucket = t.bucket and p.server = t.server
    order by 1, 2
  `.execute(db);
  return rows.map((r) => ({
    bucket: r.bucket, server: r.server, sent: r.sent, lost: r.lost, sendFailures: r.failed, samples: r.samples,
    medianRttMs: r.median_rtt === null ? null : Number(r.median_rtt), impossibleDelays: r.impossible,
  }));
}

/** Deletes probe pings sent before `cutoff`; returns how many. */
export async function deleteProbePingsBefore(db: Db, cutoff: Date): Promise<number> {
  const result = await db.deleteFrom('probe_pings').where('sent_at', '<', cutoff).executeTakeFirst();
  return Number(result.numDeletedRows);
}

/** True when a probe on `server` has tried to ping in these rooms. */
export async function serverHasProbePings(db: Db, roomIds: readonly string[], server: string): Promise<boolean> {
  const row = await db.selectFrom('probe_pings').select(sql<number>`1`.as('one'))
    .where('room_id', 'in', roomIds).where('ping_server', '=', server).limit(1).executeTakeFirst();
  return row !== undefined;
}
