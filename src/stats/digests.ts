// Hourly digests: the samples of each closed hour of a room, packed into one
// row (see the migration), so a week's table reads 168 rows instead of a
// million. A digest is built on first use and dropped whenever a sample of
// its hour is stored (samples/repository.ts), so it never goes stale; both
// happen under the room's advisory lock, so a build and a write cannot
// interleave.
import type { Transaction } from 'kysely';
import { lockRoom } from '../db/locks.ts';
import type { Db } from '../db/database.ts';
import type { Tables } from '../db/schema.ts';
import { columnsFromRows, type SampleColumns } from './columns.ts';
import type { TimeWindow } from './windows.ts';

export const HOUR_MS = 3_600_000;
const COLUMN_COUNT = 5;

interface DigestRow {
  hour: Date;
  servers: string;
  responders: string;
  pings: string;
  columns: Uint8Array;
}

function splitNames(text: string): string[] {
  return text === '' ? [] : text.split('\n');
}

/** Packs columns; names cannot hold newlines (they are validated IDs and server names). */
export function encodeDigest(columns: SampleColumns, hour: number): Omit<DigestRow, 'hour'> & { samples: number } {
  const n = columns.delay.length;
  const packed = new Int32Array(n * COLUMN_COUNT);
  packed.set(columns.server, 0);
  packed.set(columns.responder, n);
  packed.set(columns.ping, 2 * n);
  packed.set(columns.delay, 3 * n);
  for (let i = 0; i < n; i++) packed[4 * n + i] = columns.measuredAt[i]! - hour;
  return {
    samples: n,
    servers: columns.servers.join('\n'),
    responders: columns.responders.join('\n'),
    pings: columns.pings.join('\n'),
    columns: new Uint8Array(packed.buffer),
  };
}

export function decodeDigest(row: DigestRow): SampleColumns {
  // Copy into an aligned buffer (little-endian, as every platform Node runs on).
  const packed = new Int32Array(new Uint8Array(row.columns).buffer);
  const n = packed.length / COLUMN_COUNT;
  const hour = row.hour.getTime();
  const offsets = packed.subarray(4 * n, 5 * n);
  const measuredAt = new Float64Array(n);
  for (let i = 0; i < n; i++) measuredAt[i] = hour + offsets[i]!;
  return {
    servers: splitNames(row.servers),
    responders: splitNames(row.responders),
    pings: splitNames(row.pings),
    server: packed.subarray(0, n),
    responder: packed.subarray(n, 2 * n),
    ping: packed.subarray(2 * n, 3 * n),
    delay: packed.subarray(3 * n, 4 * n),
    measuredAt,
  };
}

const ROW_COLUMNS = ['ping_server', 'responder_server', 'ping_event_id', 'delay_ms', 'measured_at'] as const;

/** Samples of one room between two instants, as columns. */
async function rawColumns(db: Db | Transaction<Tables>, roomId: string, from: Date, to: Date, toInclusive: boolean): Promise<SampleColumns> {
  const rows = await db.selectFrom('samples').select(ROW_COLUMNS)
    .where('room_id', '=', roomId)
    .where('measured_at', '>=', from)
    .where('measured_at', toInclusive ? '<=' : '<', to)
    .execute();
  return columnsFromRows(rows);
}

/** Builds (and stores) the digests of consecutive hours [first, end). */
async function buildDigests(db: Db, roomId: string, first: number, end: number): Promise<SampleColumns[]> {
  return db.transaction().execute(async (tx) => {
    await lockRoom(tx, roomId);
    const rows = await tx.selectFrom('samples').select(ROW_COLUMNS)
      .where('room_id', '=', roomId)
      .where('measured_at', '>=', new Date(first))
      .where('measured_at', '<', new Date(end))
      .orderBy('measured_at')
      .execute();
    const built: SampleColumns[] = [];
    const values = [];
    let next = 0;
    for (let hour = first; hour < end; hour += HOUR_MS) {
      const start = next;
      while (next < rows.length && rows[next]!.measured_at.getTime() < hour + HOUR_MS) next++;
      const columns = columnsFromRows(rows.slice(start, next));
      built.push(columns);
      values.push({ room_id: roomId, hour: new Date(hour), ...encodeDigest(columns, hour) });
    }
    for (let i = 0; i < values.length; i += 500) {
      await tx.insertInto('hourly_digests').values(values.slice(i, i + 500))
        .onConflict((oc) => oc.columns(['room_id', 'hour']).doUpdateSet((eb) => ({
          samples: eb.ref('excluded.samples'), servers: eb.ref('excluded.servers'), responders: eb.ref('excluded.responders'),
          pings: eb.ref('excluded.pings'), columns: eb.ref('excluded.columns'), built_at: new Date(),
        })))
        .execute();
    }
    return built;
  });
}

/**
 * The samples of `roomIds` in `window` as columns: closed hours wholly inside
 * the window from their digests (built where missing), the partial hours at
 * either end and the current hour from the samples table.
 */
export async function windowColumns(db: Db, roomIds: readonly string[], window: TimeWindow, now: Date): Promise<SampleColumns[]> {
  const start = window.start.getTime();
  const end = window.end.getTime();
  const firstHour = Math.ceil(start / HOUR_MS) * HOUR_MS;
  const endHour = Math.min(Math.floor(end / HOUR_MS), Math.floor(now.getTime() / HOUR_MS)) * HOUR_MS;
  const chunks: SampleColumns[] = [];
  for (const roomId of roomIds) {
    if (endHour <= firstHour) {
      chunks.push(await rawColumns(db, roomId, window.start, window.end, window.endInclusive));
      continue;
    }
    const stored = await db.selectFrom('hourly_digests').select(['hour', 'servers', 'responders', 'pings', 'columns'])
      .where('room_id', '=', roomId)
      .where('hour', '>=', new Date(firstHour))
      .where('hour', '<', new Date(endHour))
      .execute();
    const have = new Set(stored.map((row) => row.hour.getTime()));
    chunks.push(...stored.map(decodeDigest));
    // Missing hours are built in runs of consecutive hours, one query per run.
    for (let hour = firstHour; hour < endHour; hour += HOUR_MS) {
      if (have.has(hour)) continue;
      let runEnd = hour + HOUR_MS;
      while (runEnd < endHour && !have.has(runEnd)) runEnd += HOUR_MS;
      chunks.push(...await buildDigests(db, roomId, hour, runEnd));
      hour = runEnd - HOUR_MS;
    }
    chunks.push(await rawColumns(db, roomId, window.start, new Date(firstHour), false));
    chunks.push(await rawColumns(db, roomId, new Date(endHour), window.end, window.endInclusive));
  }
  return chunks;
}
