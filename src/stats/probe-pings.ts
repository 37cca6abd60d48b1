// Probe pings and the probe figures of ping servers, per time bucket.
import { sql } from 'kysely';
import type { Db } from '../db/database.ts';
import type { ProbeOutcome } from '../db/schema.ts';
import type { ProbeCounts } from './probe-counts.ts';
import type { OffsetEstimate, OneWayMeasurement, PairFigures } from './one-way.ts';

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
  await db
    .insertInto('probe_pings')
    .values({
      probe_id: ping.probeId,
      seq: ping.seq,
      sent_at: ping.sentAt,
      room_id: ping.roomId,
      ping_server: ping.pingServer,
      ping_event_id: ping.pingEventId,
      outcome: ping.outcome,
      pongs: ping.pongs,
      error: ping.error,
    })
    .onConflict((oc) => oc.columns(['probe_id', 'sent_at']).doNothing())
    .execute();
}

/** The sequence number after the probe's latest stored ping (1 for a new probe). */
export async function nextSequence(db: Db, probeId: string): Promise<number> {
  const row = await db
    .selectFrom('probe_pings')
    .select(sql<number | null>`max(seq)`.as('seq'))
    .where('probe_id', '=', probeId)
    .executeTakeFirst();
  return (row?.seq ?? 0) + 1;
}

export interface BucketProbeCounts extends ProbeCounts {
  /** Bucket i spans boundaries[i] (included) to boundaries[i + 1] (excluded). */
  readonly bucket: number;
}

/**
 * Per ping server and time bucket: probe pings sent, lost and failed (by
 * send time), and the probe samples' median round trip (by measurement
 * time). Only `server`'s when given.
 */
export async function probeCountsPerBucket(
  db: Db,
  roomIds: readonly string[],
  boundaries: readonly Date[],
  server?: string,
): Promise<BucketProbeCounts[]> {
  const bounds = boundaries.map((b) => b.toISOString());
  const first = boundaries[0]!;
  const last = boundaries[boundaries.length - 1]!;
  const rooms = roomIds as string[];
  const pingFilter = server === undefined ? sql`` : sql`and ping_server = ${server}`;
  const { rows } = await sql<{
    bucket: number;
    server: string;
    sent: number;
    lost: number;
    failed: number;
    median_rtt: number | null;
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
        percentile_cont(0.5) within group (order by rtt_ms) as median_rtt
      from samples
      where room_id = any(${rooms}::text[]) and source = 'probe' and rtt_ms is not null
        and measured_at >= ${first} and measured_at < ${last} ${pingFilter}
      group by 1, 2
    )
    select coalesce(p.bucket, t.bucket) as bucket, coalesce(p.server, t.server) as server,
      coalesce(p.sent, 0) as sent, coalesce(p.lost, 0) as lost, coalesce(p.failed, 0) as failed, t.median_rtt
    from pings p full join trips t on p.bucket = t.bucket and p.server = t.server
    order by 1, 2
  `.execute(db);
  return rows.map((r) => ({
    bucket: r.bucket,
    server: r.server,
    sent: r.sent,
    lost: r.lost,
    sendFailures: r.failed,
    medianRttMs: r.median_rtt === null ? null : Number(r.median_rtt),
  }));
}

/** Deletes probe pings sent before `cutoff`; returns how many. */
export async function deleteProbePingsBefore(db: Db, cutoff: Date): Promise<number> {
  const result = await db.deleteFrom('probe_pings').where('sent_at', '<', cutoff).executeTakeFirst();
  return Number(result.numDeletedRows);
}

/** A probe ping seen by another probe of the same process, with what follows from it. */
export interface OneWaySample extends OneWayMeasurement, OffsetEstimate {
  readonly roomId: string;
  readonly pingEventId: string;
  readonly senderProbe: string;
  readonly senderServer: string;
  readonly receiverProbe: string;
  readonly receiverServer: string;
  readonly originTs: Date;
  readonly measuredAt: Date;
}

/** PostgreSQL takes at most 65,535 parameters a statement: 13 columns a row. */
const ONE_WAY_ROWS_PER_INSERT = 2000;

/** Stores one-way samples; one stored again changes nothing. */
export async function recordOneWaySamples(db: Db, samples: readonly OneWaySample[]): Promise<void> {
  for (let start = 0; start < samples.length; start += ONE_WAY_ROWS_PER_INSERT) {
    await insertOneWaySamples(db, samples.slice(start, start + ONE_WAY_ROWS_PER_INSERT));
  }
}

async function insertOneWaySamples(db: Db, samples: readonly OneWaySample[]): Promise<void> {
  await db
    .insertInto('one_way_samples')
    .values(
      samples.map((s) => ({
        room_id: s.roomId,
        ping_event_id: s.pingEventId,
        sender_probe: s.senderProbe,
        sender_server: s.senderServer,
        receiver_probe: s.receiverProbe,
        receiver_server: s.receiverServer,
        origin_ts: s.originTs,
        measured_at: s.measuredAt,
        one_way_ms: s.oneWayMs,
        two_clock_ms: s.twoClockMs,
        send_rtt_ms: s.sendRttMs,
        offset_ms: s.offsetMs,
        offset_bound_ms: s.boundMs,
      })),
    )
    .onConflict((oc) => oc.columns(['ping_event_id', 'receiver_probe']).doNothing())
    .execute();
}

/** One sender server's clock over one time bucket: the medians of its offset estimates and of their bounds. */
export interface BucketOffset {
  readonly bucket: number;
  readonly server: string;
  readonly samples: number;
  readonly median: OffsetEstimate;
}

/**
 * Per sender server and time bucket (by measurement time), its clock offset:
 * bucket i spans boundaries[i] (included) to boundaries[i + 1] (excluded).
 * Only `server`'s when given.
 */
export async function offsetsPerBucket(
  db: Db,
  roomIds: readonly string[],
  boundaries: readonly Date[],
  server?: string,
): Promise<BucketOffset[]> {
  const bounds = boundaries.map((b) => b.toISOString());
  const rooms = roomIds as string[];
  const senderFilter = server === undefined ? sql`` : sql`and sender_server = ${server}`;
  const { rows } = await sql<{ bucket: number; server: string; samples: number; offset: number; bound: number }>`
    select width_bucket(measured_at, ${bounds}::timestamptz[]) - 1 as bucket, sender_server as server,
      count(*)::int as samples,
      percentile_cont(0.5) within group (order by offset_ms) as offset,
      percentile_cont(0.5) within group (order by offset_bound_ms) as bound
    from one_way_samples
    where room_id = any(${rooms}::text[]) and measured_at >= ${boundaries[0]!}
      and measured_at < ${boundaries[boundaries.length - 1]!} ${senderFilter}
    group by 1, 2 order by 1, 2
  `.execute(db);
  return rows.map((r) => ({
    bucket: r.bucket,
    server: r.server,
    samples: r.samples,
    median: { offsetMs: Number(r.offset), boundMs: Number(r.bound) },
  }));
}

/** The delivery matrix over [start, end) of measurement time. */
export async function pairFigures(db: Db, roomIds: readonly string[], start: Date, end: Date): Promise<PairFigures[]> {
  const rooms = roomIds as string[];
  const { rows } = await sql<{ from: string; to: string; median: number; p90: number; count: number }>`
    select sender_server as "from", receiver_server as "to", count(*)::int as count,
      percentile_cont(0.5) within group (order by one_way_ms) as median,
      percentile_cont(0.9) within group (order by one_way_ms) as p90
    from one_way_samples
    where room_id = any(${rooms}::text[]) and measured_at >= ${start} and measured_at < ${end}
    group by 1, 2 order by 1, 2
  `.execute(db);
  return rows.map((r) => ({
    from: r.from,
    to: r.to,
    medianMs: Number(r.median),
    p90Ms: Number(r.p90),
    count: r.count,
  }));
}

/** Deletes one-way samples measured before `cutoff`; returns how many. */
export async function deleteOneWaySamplesBefore(db: Db, cutoff: Date): Promise<number> {
  const result = await db.deleteFrom('one_way_samples').where('measured_at', '<', cutoff).executeTakeFirst();
  return Number(result.numDeletedRows);
}
