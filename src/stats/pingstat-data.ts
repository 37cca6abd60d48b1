// The data of the aggregator-compatible routes, gathered by the database:
// one row per pong, as pingstat's table keeps them (its primary key is
// room, ping, pong server: the first pong a server sends for a ping counts),
// grouped and written out as JSON text by PostgreSQL, so a million samples
// never become a million objects in the process.
import { sql, type RawBuilder } from 'kysely';
import type { Db } from '../db/database.ts';
import type { DelayFilter } from './repository.ts';
import type { PingstatWindow } from './pingstat-window.ts';

/**
 * The pong's time, as pingstat's `pong_timestamp`: the window is cut on it,
 * rows are ordered by it and the raw rows list it. For the bot's own answers
 * it is their pong event's origin_server_ts once learnt (`pong_ts`); every
 * other sample's measured_at is its pong's time. The expression is indexed
 * with room_id (migration own-pong-timestamps).
 */
export const PONG_TIME = sql`coalesce(pong_ts, measured_at)`;

// Names are ordered by code point (compareNames), which is the "C" collation: it also lets
// PostgreSQL compare bytes instead of calling the locale, several times faster on large sorts.
const C = sql.raw('collate "C"');

/** The window's samples in the order the aggregator reads them (by pong time, then ping, then responder). */
const WINDOW_ORDER = sql`${PONG_TIME}, ping_event_id ${C}, responder ${C}`;

/** Enough for a week of a busy room's sorts to stay in memory rather than spill to disk (the default is 4 MB). */
const SORT_MEMORY = sql.raw(`set local work_mem = '64MB'`);

function inWindow(roomIds: readonly string[], window: PingstatWindow): RawBuilder<unknown> {
  return sql`room_id = any(${[...roomIds]}::text[]) and ${PONG_TIME} >= ${window.start} and ${PONG_TIME} <= ${window.end}`;
}

/** JSON text, as a string or already as UTF-8 bytes. */
export type JsonText = string | Buffer;

/**
 * JSON text joined into a buffer of its own, to be kept and passed along as
 * it is: Buffer.from and Buffer.concat hand out slices of a shared pool,
 * which a shared answer copies rather than keep (shared-body.ts).
 */
export function ownedBytes(parts: readonly JsonText[]): Buffer {
  const bytes = parts.map((part) => (typeof part === 'string' ? Buffer.from(part) : part));
  const owned = Buffer.allocUnsafeSlow(bytes.reduce((n, part) => n + part.length, 0));
  let at = 0;
  for (const part of bytes) at += part.copy(owned, at);
  return owned;
}

/** One (ping server, pong server) pair of the window: its pongs, as JSON text and as sorted delays. */
export interface PingstatPair {
  readonly pingServer: string;
  readonly pongServer: string;
  readonly pongs: number;
  /** The delays, in no particular order. */
  readonly delays: Float64Array;
  /** `"$ping":ms` members of the `diffs` object, comma-separated, in the window's order. */
  readonly diffsJson: JsonText;
}

export interface PingstatPings {
  readonly count: number;
  /** The ping server's pings as JSON strings, comma-separated, in order of their first pong. */
  readonly json: JsonText;
}

export interface PingstatGroups {
  readonly pairs: readonly PingstatPair[];
  readonly pings: ReadonlyMap<string, PingstatPings>;
}

/** The database's comma-separated integers (delay_ms::text), read digit by digit: no string per delay. */
function parseDelays(commaSeparated: string, count: number): Float64Array {
  const delays = new Float64Array(count);
  let n = 0;
  let value = 0;
  let sign = 1;
  for (let i = 0; i < commaSeparated.length; i++) {
    const code = commaSeparated.charCodeAt(i);
    if (code === 44) {
      delays[n++] = sign * value;
      value = 0;
      sign = 1;
    } else if (code === 45) sign = -1;
    else value = value * 10 + (code - 48);
  }
  delays[n++] = sign * value;
  if (n !== count) throw new Error(`expected ${count} delays from the database, got ${n}`);
  return delays;
}

/**
 * Every (ping server, pong server) pair of the window, delays within the
 * filter and ping servers not excluded; of several pongs of one server to
 * one ping, the first in the window's order (before the filter drops any).
 */
export async function pingstatGroups(
  db: Db,
  roomIds: readonly string[],
  window: PingstatWindow,
  filter: DelayFilter,
  excluded: readonly string[],
): Promise<PingstatGroups> {
  // to_json writes a string as JSON.stringify does for any text PostgreSQL can hold.
  const { rows } = await db.transaction().execute(async (tx) => {
    await sql`${SORT_MEMORY}`.execute(tx);
    return sql<{ ping_server: string; pong_server: string | null; n: number; delays: string | null; json: string }>`
      with kept as (
        -- Its names in "C" too, so the groupings below sort bytes rather than call the locale.
        select distinct on (ping_server ${C}, responder_server ${C}, ping_event_id ${C})
          ping_server ${C} as ping_server, responder_server ${C} as responder_server,
          ping_event_id ${C} as ping_event_id, delay_ms, ${PONG_TIME} as pong_time
        from samples
        where ${inWindow(roomIds, window)} and delay_ms >= ${filter.minDelayMs} and delay_ms <= ${filter.maxDelayMs}
          and not (ping_server = any(${[...excluded]}::text[]))
        order by ping_server ${C}, responder_server ${C}, ping_event_id ${C}, ${WINDOW_ORDER}
      ), first_pongs as (
        select ping_server, ping_event_id, min(pong_time) as first_pong from kept group by ping_server, ping_event_id
      )
      select ping_server, responder_server as pong_server, count(*)::int as n,
        string_agg(delay_ms::text, ',') as delays,
        string_agg(to_json(ping_event_id)::text || ':' || delay_ms, ',' order by pong_time, ping_event_id ${C}) as json
      from kept group by ping_server, responder_server
      union all
      select ping_server, null, count(*)::int, null, string_agg(to_json(ping_event_id)::text, ',' order by first_pong, ping_event_id ${C})
      from first_pongs group by ping_server
    `.execute(tx);
  });
  const pairs: PingstatPair[] = [];
  const pings = new Map<string, PingstatPings>();
  for (const row of rows) {
    if (row.pong_server === null) pings.set(row.ping_server, { count: row.n, json: row.json });
    else
      pairs.push({
        pingServer: row.ping_server,
        pongServer: row.pong_server,
        pongs: row.n,
        delays: parseDelays(row.delays!, row.n),
        diffsJson: row.json,
      });
  }
  return { pairs, pings };
}

/** Raw rows per page of the cursor: large enough to amortise a round trip, small enough to pass along at once. */
const RAW_PAGE_ROWS = 10_000;

/**
 * The raw rows of the window as pingstat lists them, each a JSON object's
 * text, in the window's order, one row per (room, ping, pong server): the
 * first. Every row names the lineage's newest room, `currentRoomId`: pingstat
 * moves a room's rows to its replacement when it sees the tombstone (its
 * `tombstone` handler). Delivered page by page from a cursor, so the process
 * holds one page.
 */
export async function eachRawRowsPage(
  db: Db,
  roomIds: readonly string[],
  currentRoomId: string,
  window: PingstatWindow,
  page: (jsonObjects: string[]) => void,
): Promise<void> {
  await db.transaction().execute(async (tx) => {
    await sql`${SORT_MEMORY}`.execute(tx);
    await sql`
      declare pingstat_raw no scroll cursor for
      select ${`{"room_id":${JSON.stringify(currentRoomId)},"ping_id":`}::text || to_json(ping_event_id)::text
        || ',"pong_server":' || to_json(responder_server)::text || ',"ping_server":' || to_json(ping_server)::text
        || ',"receive_diff":' || delay_ms || ',"pong_timestamp":' || floor(extract(epoch from pong_time) * 1000)::bigint || '}' as json
      from (
        select distinct on (room_id ${C}, ping_event_id ${C}, responder_server ${C})
          room_id, ping_event_id, responder_server, ping_server, delay_ms, responder, ${PONG_TIME} as pong_time
        from samples where ${inWindow(roomIds, window)}
        order by room_id ${C}, ping_event_id ${C}, responder_server ${C}, ${WINDOW_ORDER}
      ) kept
      order by pong_time, ping_event_id ${C}, responder ${C}
    `.execute(tx);
    for (;;) {
      const { rows } = await sql<{ json: string }>`fetch ${sql.raw(String(RAW_PAGE_ROWS))} from pingstat_raw`.execute(
        tx,
      );
      if (rows.length > 0) page(rows.map((row) => row.json));
      if (rows.length < RAW_PAGE_ROWS) break;
    }
  });
}
