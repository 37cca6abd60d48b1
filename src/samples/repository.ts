// Every write is idempotent: the key (room, ping event, responder) is the
// primary key and a second write of the same sample is counted as duplicate,
// except that a probe's sample adds its round trip to a stored one.
import { sql, type Transaction } from 'kysely';
import type { Db } from '../db/database.ts';
import { arrayLiteral } from '../db/arrays.ts';
import { lockRoom } from '../db/locks.ts';
import { compareNames } from '../order.ts';
import type { SampleRow, Tables } from '../db/schema.ts';
import type { Sample } from './sample.ts';

/** A pong as pingstat keeps it: by its server, with no account. */
const isKnownByServerOnly = (s: Sample) => s.responder === s.responderServer;

/**
 * The samples less the pingstat rows whose pong one of them also holds by its
 * account: the account's form is the more precise, and the insert's check
 * cannot see rows of its own statement.
 */
function oneFormPerPong(samples: readonly Sample[]): readonly Sample[] {
  if (!samples.some(isKnownByServerOnly)) return samples;
  const key = (s: Sample) => `${s.roomId}\u0000${s.pingEventId}\u0000${s.responderServer}`;
  const byAccount = new Set(samples.filter((s) => !isKnownByServerOnly(s)).map(key));
  return samples.filter((s) => !isKnownByServerOnly(s) || !byAccount.has(key(s)));
}

function byKey(a: Sample, b: Sample): number {
  return (
    compareNames(a.roomId, b.roomId) ||
    compareNames(a.pingEventId, b.pingEventId) ||
    compareNames(a.responder, b.responder)
  );
}

const DEADLOCK_ATTEMPTS = 3;

/** PostgreSQL ends one of two transactions that wait on each other (deadlock_detected); its batch is written again. */
async function retryingDeadlocks<T>(write: () => Promise<T>): Promise<T> {
  for (let attempt = 1; ; attempt++) {
    try {
      return await write();
    } catch (err) {
      if ((err as { code?: unknown }).code !== '40P01' || attempt >= DEADLOCK_ATTEMPTS) throw err;
    }
  }
}

export interface WriteCounts {
  readonly stored: number;
  readonly duplicate: number;
}

/** Rows per statement: large enough to amortise the round trip, small enough to bound memory. */
export const WRITE_BATCH_SIZE = 2000;

/**
 * Stores samples; those already stored (same room, ping and responder, or a
 * responder known only by its server and an account of that server) are left
 * as they are. One statement per batch: the columns travel as arrays
 * and are unnested server-side, which is far cheaper than one parameter per value.
 * (The database drops the digests of the hours a write touches, whatever
 * the statement: see the migration digests-dropped-by-trigger.)
 * With `keepEarliestPong`, a stored pong sample is replaced by an earlier pong
 * of the same key (see replaceLaterPongs); it counts as a duplicate.
 */
export async function recordSamples(
  db: Db,
  samples: readonly Sample[],
  options: { keepEarliestPong?: boolean } = {},
): Promise<WriteCounts> {
  let stored = 0;
  const distinct = oneFormPerPong(samples);
  for (let start = 0; start < distinct.length; start += WRITE_BATCH_SIZE) {
    // In key order (stable: a key's first sample still wins), so writers side by side take their row
    // locks in the same order; a deadlock with any other writer is retried.
    const batch = distinct.slice(start, start + WRITE_BATCH_SIZE).sort(byKey);
    const column = <T>(pick: (s: Sample) => T): T[] => batch.map(pick);
    stored += await retryingDeadlocks(() =>
      db.transaction().execute(async (tx) => {
        // Sorted, so two writers lock rooms in the same order. Exclusive where this write deletes
        // (replacing pongs), or may meet the other form of a pong that a writer beside it is storing
        // (a pingstat row's check cannot see rows not yet committed).
        const mode = options.keepEarliestPong || batch.some(isKnownByServerOnly) ? 'exclusive' : 'shared';
        const rooms = [...new Set(column((s) => s.roomId))].sort();
        for (const roomId of rooms) await lockRoom(tx, roomId, mode);
        const replaced = options.keepEarliestPong ? await replaceLaterPongs(tx, batch) : 0;
        const { rows } = await sql<{ stored: number }>`
        with inserted as (
          insert into samples (room_id, ping_event_id, ping_server, pinger, responder, responder_server,
            delay_ms, ping_ts, measured_at, source, rtt_ms, ping_age_ms)
          -- Times travel as epoch milliseconds: formatting and parsing ISO strings cost more than the insert's arithmetic.
          select room_id, ping_event_id, ping_server, pinger, responder, responder_server, delay_ms,
            to_timestamp(ping_ts_ms / 1000), to_timestamp(measured_at_ms / 1000), source, rtt_ms, ping_age_ms
          from unnest(
            ${arrayLiteral(column((s) => s.roomId))}::text[],
            ${arrayLiteral(column((s) => s.pingEventId))}::text[],
            ${arrayLiteral(column((s) => s.pingServer))}::text[],
            ${arrayLiteral(column((s) => s.pinger))}::text[],
            ${arrayLiteral(column((s) => s.responder))}::text[],
            ${arrayLiteral(column((s) => s.responderServer))}::text[],
            ${arrayLiteral(column((s) => s.delayMs))}::integer[],
            ${arrayLiteral(column((s) => s.pingTs.getTime()))}::double precision[],
            ${arrayLiteral(column((s) => s.measuredAt.getTime()))}::double precision[],
            ${arrayLiteral(column((s) => s.source))}::text[],
            ${arrayLiteral(column((s) => s.rttMs))}::double precision[],
            ${arrayLiteral(column((s) => s.pingAgeMs ?? null))}::integer[])
            as batch(room_id, ping_event_id, ping_server, pinger, responder, responder_server, delay_ms, ping_ts_ms, measured_at_ms, source, rtt_ms, ping_age_ms)
          -- A pong known by its server only (a pingstat row) is the pong of one of that server's
          -- accounts: whichever of the two was stored first stands. Written as OR-guarded
          -- subqueries, each runs per row only where it can apply, as an index probe: an
          -- account's pong looks up the one server-only key (the primary key whole); a
          -- server-only row looks up its ping's other samples. Where the batch's rooms hold no
          -- server-only row at all (asked once, of a partial index of them), the accounts'
          -- look-ups are skipped: they could find only such a row, in the same snapshot.
          where (batch.responder = batch.responder_server
              or not exists (
                select 1 from samples s
                where s.room_id = any(${arrayLiteral(rooms)}::text[]) and s.responder = s.responder_server)
              or not exists (
              select 1 from samples s
              where s.room_id = batch.room_id and s.ping_event_id = batch.ping_event_id and s.responder = batch.responder_server
                and s.responder_server = batch.responder_server))
            and (batch.responder <> batch.responder_server or not exists (
              select 1 from samples s
              where s.room_id = batch.room_id and s.ping_event_id = batch.ping_event_id
                and s.responder_server = batch.responder_server and s.responder <> batch.responder))
          on conflict do nothing
          returning 1
        )
        select count(*)::int as stored from inserted
      `.execute(tx);
        const inserted = rows[0]!.stored;
        // Every sample stored as a row of its own holds its key alone: no stored answer of that key is
        // left for a pong to stamp or a probe to add its round trip to. Each update would still look
        // every key up (and fire its trigger) for nothing, which on a fresh import is most of a batch's time.
        if (inserted === batch.length) return inserted - replaced;
        await addPongTimestamps(tx, batch);
        return inserted - replaced + (await addRoundTrips(tx, batch));
      }),
    );
  }
  return { stored, duplicate: samples.length - stored };
}

/**
 * Of two pongs of one responder to one ping, the live bot keeps the first it
 * reads. A backfill reads history backwards, so it may meet the later one
 * first: this deletes stored pong samples that a sample of `batch` precedes,
 * so the insert that follows keeps the
 * earliest. Returns how many it deleted.
 */
async function replaceLaterPongs(tx: Transaction<Tables>, batch: readonly Sample[]): Promise<number> {
  const pongs = batch.filter((s) => s.source === 'pong');
  if (pongs.length === 0) return 0;
  const { rows } = await sql<{ replaced: number }>`
    with replaced as (
      delete from samples s
      using unnest(${pongs.map((s) => s.roomId)}::text[], ${pongs.map((s) => s.pingEventId)}::text[],
        ${pongs.map((s) => s.responder)}::text[], ${pongs.map((s) => s.measuredAt.toISOString())}::timestamptz[])
        as p(room_id, ping_event_id, responder, measured_at)
      where s.room_id = p.room_id and s.ping_event_id = p.ping_event_id and s.responder = p.responder
        and s.source = 'pong' and s.measured_at > p.measured_at
      returning 1
    )
    select count(*)::int as replaced from replaced
  `.execute(tx);
  return rows[0]!.replaced;
}

/**
 * The bot's own sample of a ping is measured when the ping arrives; its pong
 * is stamped by the homeserver later, and that stamp is what the aggregator
 * stores. A sample read from that pong (by the bot when it comes back, by a
 * backfill, by a probe) has the same key and the stamp as its measured_at: it
 * is a duplicate, but lends the stored answer its pong_ts, once. Run before
 * addRoundTrips, which turns an answer's source into 'probe'.
 */
async function addPongTimestamps(tx: Transaction<Tables>, batch: readonly Sample[]): Promise<void> {
  const pongs = batch.filter((s) => s.source === 'pong' || s.source === 'probe');
  if (pongs.length === 0) return;
  await sql`
    update samples s set pong_ts = p.pong_ts
    from unnest(${pongs.map((s) => s.roomId)}::text[], ${pongs.map((s) => s.pingEventId)}::text[],
      ${pongs.map((s) => s.responder)}::text[], ${pongs.map((s) => s.measuredAt.toISOString())}::timestamptz[]) as p(room_id, ping_event_id, responder, pong_ts)
    where s.room_id = p.room_id and s.ping_event_id = p.ping_event_id and s.responder = p.responder
      and s.source = 'echo' and s.pong_ts is null
  `.execute(tx);
}

/**
 * A probe reads the same pong the bot recorded (or answered itself): its
 * sample adds the round trip to the stored one, once. Returns how many
 * samples gained one.
 */
async function addRoundTrips(tx: Transaction<Tables>, batch: readonly Sample[]): Promise<number> {
  const probed = batch.filter((s) => s.source === 'probe' && s.rttMs !== null);
  if (probed.length === 0) return 0;
  const result = await sql`
    update samples s set rtt_ms = p.rtt_ms, source = 'probe'
    from unnest(${probed.map((s) => s.roomId)}::text[], ${probed.map((s) => s.pingEventId)}::text[],
      ${probed.map((s) => s.responder)}::text[], ${probed.map((s) => s.rttMs)}::double precision[]) as p(room_id, ping_event_id, responder, rtt_ms)
    where s.room_id = p.room_id and s.ping_event_id = p.ping_event_id and s.responder = p.responder and s.rtt_ms is null
  `.execute(tx);
  return Number(result.numAffectedRows ?? 0);
}

/**
 * Deletes every sample of one ping in the given rooms (an operator's
 * correction), under the rooms' locks like
 * every write. Returns how many samples it deleted.
 */
export async function deleteSamplesOfPing(db: Db, roomIds: readonly string[], pingEventId: string): Promise<number> {
  return db.transaction().execute(async (tx) => {
    for (const roomId of [...roomIds].sort()) await lockRoom(tx, roomId, 'exclusive');
    const { rows } = await sql<{ deleted: number }>`
      with deleted as (
        delete from samples where room_id = any(${[...roomIds]}::text[]) and ping_event_id = ${pingEventId}
        returning 1
      )
      select count(*)::int as deleted from deleted
    `.execute(tx);
    return rows[0]!.deleted;
  });
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
    pingAgeMs: row.ping_age_ms,
  };
}

/** The newest samples of one ping server, newest first. */
export async function latestSamplesOfServer(
  db: Db,
  roomIds: readonly string[],
  server: string,
  limit: number,
): Promise<Sample[]> {
  const rows = await db
    .selectFrom('samples')
    .selectAll()
    .where('room_id', 'in', roomIds)
    .where('ping_server', '=', server)
    .orderBy('measured_at', 'desc')
    .orderBy('responder')
    .limit(limit)
    .execute();
  return rows.map(sampleFromRow);
}

/** Rooms that hold at least one sample, so unknown rooms can be told apart. */
export async function roomHasSamples(db: Db, roomId: string): Promise<boolean> {
  const row = await db
    .selectFrom('samples')
    .select(sql<number>`1`.as('one'))
    .where('room_id', '=', roomId)
    .limit(1)
    .executeTakeFirst();
  return row !== undefined;
}

/** True when `table` holds a row of `server` in these rooms: its samples, or its probe's pings. */
export async function serverHasRows(
  db: Db,
  table: 'samples' | 'probe_pings',
  roomIds: readonly string[],
  server: string,
): Promise<boolean> {
  const row = await db
    .selectFrom(table)
    .select(sql<number>`1`.as('one'))
    .where('room_id', 'in', roomIds)
    .where('ping_server', '=', server)
    .limit(1)
    .executeTakeFirst();
  return row !== undefined;
}

/** The room with the most recent sample, the default when no room is configured. */
export async function mostRecentRoom(db: Db): Promise<string | undefined> {
  const row = await db
    .selectFrom('samples')
    .select('room_id')
    .orderBy('measured_at', 'desc')
    .limit(1)
    .executeTakeFirst();
  return row?.room_id;
}

/** Refreshes the planner's statistics after a bulk load, so window queries pick their index. */
export async function analyzeSamples(db: Db): Promise<void> {
  await sql`analyze samples`.execute(db);
}

/**
 * Deletes samples measured before `cutoff`, room by room under the room's
 * lock. Returns how many samples.
 */
export async function deleteSamplesBefore(db: Db, cutoff: Date): Promise<number> {
  const rooms = await db.selectFrom('samples').select('room_id').distinct().where('measured_at', '<', cutoff).execute();
  let deleted = 0;
  for (const { room_id: roomId } of rooms) {
    deleted += await db.transaction().execute(async (tx) => {
      await lockRoom(tx, roomId, 'exclusive');
      const result = await tx
        .deleteFrom('samples')
        .where('room_id', '=', roomId)
        .where('measured_at', '<', cutoff)
        .executeTakeFirst();
      return Number(result.numDeletedRows);
    });
  }
  return deleted;
}
