// Every write is idempotent: the key (room, ping event, responder) is the
// primary key and a second write of the same sample is counted as duplicate.
import { sql } from 'kysely';
import type { Db } from '../db/database.ts';
import { lockRoom } from '../db/locks.ts';
import type { SampleRow } from '../db/schema.ts';
import type { Sample } from './sample.ts';

export interface WriteCounts {
  readonly stored: number;
  readonly duplicate: number;
}

/** Rows per statement: large enough to amortise the round trip, small enough to bound memory. */
export const WRITE_BATCH_SIZE = 2000;

/**
 * Stores samples; those already stored (same room, ping and responder) are
 * left as they are. One statement per batch: the columns travel as arrays
 * and are unnested server-side, which is far cheaper than one parameter per value.
 * Anything else that changes samples must drop the hours' digests the same way.
 */
export async function recordSamples(db: Db, samples: readonly Sample[]): Promise<WriteCounts> {
  let stored = 0;
  for (let start = 0; start < samples.length; start += WRITE_BATCH_SIZE) {
    const batch = samples.slice(start, start + WRITE_BATCH_SIZE);
    const column = <T>(pick: (s: Sample) => T): T[] => batch.map(pick);
    stored += await db.transaction().execute(async (tx) => {
      // Sorted, so two writers lock rooms in the same order.
      for (const roomId of [...new Set(column((s) => s.roomId))].sort()) await lockRoom(tx, roomId);
      // A stored sample drops the digest of its hour, to be rebuilt with it.
      const { rows } = await sql<{ stored: number }>`
        with inserted as (
          insert into samples (room_id, ping_event_id, ping_server, pinger, responder, responder_server,
            delay_ms, ping_ts, measured_at, source, rtt_ms)
          select * from unnest(
            ${column((s) => s.roomId)}::text[],
            ${column((s) => s.pingEventId)}::text[],
            ${column((s) => s.pingServer)}::text[],
            ${column((s) => s.pinger)}::text[],
            ${column((s) => s.responder)}::text[],
            ${column((s) => s.responderServer)}::text[],
            ${column((s) => s.delayMs)}::integer[],
            ${column((s) => s.pingTs.toISOString())}::timestamptz[],
            ${column((s) => s.measuredAt.toISOString())}::timestamptz[],
            ${column((s) => s.source)}::text[],
            ${column((s) => s.rttMs)}::double precision[])
          on conflict do nothing
          returning room_id, measured_at
        ), touched as (
          select distinct room_id, date_bin('1 hour', measured_at, timestamptz '2000-01-01 00:00:00+00') as hour from inserted
        ), dropped as (
          delete from hourly_digests d using touched where d.room_id = touched.room_id and d.hour = touched.hour
        )
        select count(*)::int as stored from inserted
      `.execute(tx);
      return rows[0]!.stored;
    });
  }
  return { stored, duplicate: samples.length - stored };
}

export function sampleFromRow(row: SampleRow): Sample {
  return {
    roomId: row.room_id,
    pingEventId: row.ping_event_id,
    pingServer: row.ping_server,
    pinger: row.pinger,
    responder: row.responder,
    responderServer: row.responder_server,
    delayMs: row.delay_ms,
    pingTs: row.ping_ts,
    measuredAt: row.measured_at,
    source: row.source,
    rttMs: row.rtt_ms,
  };
}

/** Samples measured in [from, to] in the given rooms, oldest first. */
export async function samplesInWindow(db: Db, roomIds: readonly string[], from: Date, to: Date): Promise<Sample[]> {
  const rows = await db.selectFrom('samples').selectAll()
    .where('room_id', 'in', roomIds)
    .where('measured_at', '>=', from)
    .where('measured_at', '<=', to)
    .orderBy('measured_at').orderBy('ping_event_id').orderBy('responder')
    .execute();
  return rows.map(sampleFromRow);
}

/** The newest samples of one ping server, newest first. */
export async function latestSamplesOfServer(db: Db, roomIds: readonly string[], server: string, limit: number): Promise<Sample[]> {
  const rows = await db.selectFrom('samples').selectAll()
    .where('room_id', 'in', roomIds)
    .where('ping_server', '=', server)
    .orderBy('measured_at', 'desc').orderBy('responder')
    .limit(limit)
    .execute();
  return rows.map(sampleFromRow);
}

/** Rooms that hold at least one sample, so unknown rooms can be told apart. */
export async function roomHasSamples(db: Db, roomId: string): Promise<boolean> {
  const row = await db.selectFrom('samples').select(sql<number>`1`.as('one')).where('room_id', '=', roomId).limit(1).executeTakeFirst();
  return row !== undefined;
}

export async function serverHasSamples(db: Db, roomIds: readonly string[], server: string): Promise<boolean> {
  const row = await db.selectFrom('samples').select(sql<number>`1`.as('one'))
    .where('room_id', 'in', roomIds).where('ping_server', '=', server).limit(1).executeTakeFirst();
  return row !== undefined;
}

/** The room with the most recent sample, the default when no room is configured. */
export async function mostRecentRoom(db: Db): Promise<string | undefined> {
  const row = await db.selectFrom('samples').select('room_id').orderBy('measured_at', 'desc').limit(1).executeTakeFirst();
  return row?.room_id;
}

/** Refreshes the planner's statistics after a bulk load, so window queries pick their index. */
export async function analyzeSamples(db: Db): Promise<void> {
  await sql`analyze samples`.execute(db);
}
