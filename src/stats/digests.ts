// Hourly digests: the figures of each hour of a room, packed into one row
// (see the migration), so a week's table reads 168 rows instead of a million.
// A figure is a server's first pong to a ping (first-pongs.ts), in the hour
// it was measured in. Digests of closed hours are built by the scheduler and
// after an import (buildRecentDigests), never by a read: a read computes the
// hours that have none from the samples, for its answer only. An import also
// builds the hour going on, whose digest holds what is stored of it so far
// until its next sample drops it (a live room's next pong). The database drops
// a digest whenever a sample of its hour, or a pong of the same server to the
// same ping, is stored, changed or deleted (a trigger: see the migration
// digests-dropped-by-trigger), so a stored digest is never stale. A build
// holds the room's advisory lock exclusively and every write holds it shared,
// so a build and a write cannot interleave. Each stored digest has a
// generation no other ever had (see the migration digest-generations): a
// process keeps the digests it decoded or built (DecodedDigests) and, on each read,
// asks the database only for the hours' generations, reading again just the
// digests that were stored since, whichever process stored them.
import { type ExpressionBuilder, sql, type Transaction } from 'kysely';
import { lockRoom } from '../db/locks.ts';
import type { Db } from '../db/database.ts';
import type { SampleRow, Tables } from '../db/schema.ts';
import { arrayLiteral } from '../db/arrays.ts';
import { columnsFromRows, type IndexColumn, indexColumnFor, type SampleColumns } from './columns.ts';
import { compareNames } from '../order.ts';
import { FirstPongFilter, PONG_ORDER, type PongRow } from './first-pongs.ts';
import { HOUR_MS, type TimeWindow } from './windows.ts';
import { getOrInsert } from '../collections.ts';

interface StoredDigest {
  samples: number;
  /** Base64 (see the migration for why not bytea). */
  columns: string;
}

/**
 * A stored digest's numbers, its dictionaries still server_names ids (its
 * server and responder indexes point into its own lists of ids: naming
 * reads them once and writes them anew).
 */
interface UnnamedDigest extends Omit<SampleColumns, 'servers' | 'responders'> {
  readonly serverIds: Int32Array;
  readonly responderIds: Int32Array;
}

/** Each per-sample column is stored in the narrowest of these that holds all its values. */
const COLUMN_TYPES = [Int8Array, Int16Array, Int32Array] as const;
const PER_SAMPLE = ['server', 'responder', 'ping', 'delay'] as const;

function narrowestType(values: IndexColumn): (typeof COLUMN_TYPES)[number] {
  let min = 0;
  let max = 0;
  for (let i = 0; i < values.length; i++) {
    if (values[i]! < min) min = values[i]!;
    else if (values[i]! > max) max = values[i]!;
  }
  return min >= -128 && max <= 127 ? Int8Array : min >= -32_768 && max <= 32_767 ? Int16Array : Int32Array;
}

const alignedTo4 = (bytes: number) => Math.ceil(bytes / 4) * 4;

/**
 * Packs one hour's columns (little-endian, the byte order of every platform
 * Node runs on). As int32s: the number of distinct servers, responders and
 * pings, and the byte width of each per-sample column; the servers' and the
 * responders' ids in server_names; the pings' keys. Then per sample, each
 * column at its width (most hours need 2 bytes for a server index, 1 for a
 * responder's, 2 for a ping's, 4 for a delay), each padded to 4 bytes.
 */
export function encodeDigest(columns: SampleColumns, ids: ReadonlyMap<string, number>): StoredDigest {
  const n = columns.delay.length;
  const types = PER_SAMPLE.map((name) => narrowestType(columns[name]));
  const head = [
    columns.servers.length,
    columns.responders.length,
    columns.pingKeys.length / 2,
    ...types.map((type) => type.BYTES_PER_ELEMENT),
    ...columns.servers.map((name) => ids.get(name)!),
    ...columns.responders.map((name) => ids.get(name)!),
    ...columns.pingKeys,
  ];
  const buffer = new ArrayBuffer(
    4 * head.length + types.reduce((sum, type) => sum + alignedTo4(n * type.BYTES_PER_ELEMENT), 0),
  );
  new Int32Array(buffer, 0, head.length).set(head);
  let at = 4 * head.length;
  PER_SAMPLE.forEach((name, c) => {
    new types[c]!(buffer, at, n).set(columns[name]);
    at += alignedTo4(n * types[c]!.BYTES_PER_ELEMENT);
  });
  return { samples: n, columns: Buffer.from(buffer).toString('base64') };
}

/** Int32s before a digest's ids: its counts of servers, responders and pings, and its four columns' widths. */
const HEAD_COUNTS = 7;

/** Refuses a digest whose text decodes to fewer bytes than what it says it holds needs. */
function checkLength(row: StoredDigest, bytes: number, needed: number): void {
  if (needed > bytes)
    throw new Error(
      `an hourly digest is cut short: ${bytes} bytes, where it needs ${needed} (samples: ${row.samples})`,
    );
}

/** The first `count` int32s of a stored digest, decoded from the start of its text alone. */
function headInts(row: StoredDigest, count: number): Int32Array {
  const bytes = Buffer.from(row.columns.slice(0, Math.ceil((4 * count) / 3) * 4), 'base64');
  checkLength(row, bytes.length, 4 * count);
  const ints = new Int32Array(count);
  for (let i = 0; i < count; i++) ints[i] = bytes.readInt32LE(4 * i);
  return ints;
}

/** The server_names ids a stored digest names (its servers', then its responders'), read from its head. */
function digestIds(row: StoredDigest): Int32Array {
  const [servers, responders] = headInts(row, 2);
  return headInts(row, HEAD_COUNTS + servers! + responders!).subarray(HEAD_COUNTS);
}

/**
 * The digest's columns, decoded into `buffer` (at least as long as the
 * decoded digest). Those a named digest keeps (pings, their keys, delays)
 * are copied out, the pings at their stored width, the delays widened to
 * int32 for the arithmetic; the rest (the ids, and the server and responder
 * indexes, which naming reads once and writes anew) are views of `buffer`,
 * at their stored width, good until it is written again.
 */
function decodeDigest(row: StoredDigest, buffer: ArrayBuffer): UnnamedDigest {
  const written = Buffer.from(buffer).write(row.columns, 'base64');
  // The buffer is longer than this digest when it held a longer one: a view past what was written would read that one's bytes.
  const within = (end: number) => checkLength(row, written, end);
  within(4 * HEAD_COUNTS);
  const n = row.samples;
  const [servers, responders, pings, ...widths] = new Int32Array(buffer, 0, HEAD_COUNTS);
  let at = HEAD_COUNTS;
  const next = (length: number) => {
    within(4 * (at + length));
    const view = new Int32Array(buffer, 4 * at, length);
    at += length;
    return view;
  };
  const serverIds = next(servers!);
  const responderIds = next(responders!);
  const pingKeys = next(2 * pings!).slice();
  let byte = 4 * at;
  const [server, responder, ping, delay] = widths.map((width, c) => {
    const type = COLUMN_TYPES.find((t) => t.BYTES_PER_ELEMENT === width);
    if (!type) throw new Error(`an hourly digest has a column ${width} bytes wide`);
    within(byte + n * width);
    const view = new type(buffer, byte, n);
    byte += alignedTo4(n * width);
    if (PER_SAMPLE[c] === 'server' || PER_SAMPLE[c] === 'responder') return view;
    if (PER_SAMPLE[c] === 'ping') return view.slice();
    return view instanceof Int32Array ? view.slice() : new Int32Array(view);
  }) as [IndexColumn, IndexColumn, IndexColumn, Int32Array];
  return { serverIds, responderIds, pingKeys, server, responder, ping, delay };
}

/** Bytes of the buffer a DigestNames decodes into, kept between digests (a week's largest hour of a million samples decodes to about 100 kB); a longer digest gets one of its own. */
const KEPT_DECODE_BYTES = 1 << 20;

/**
 * Decodes one room's stored digests and names them through their server ids. Every digest it
 * names shares one dictionary of servers and one of responders, which grow
 * as it names more: figuresFromColumns orders a shared dictionary once, and
 * a digest kept named is not named again for each table. (A room's
 * dictionaries hold every name its digests named in this process: a table
 * costs a little per name, not per name of every room.)
 */
export class DigestNames {
  readonly #byId = new Map<number, string>();
  /** server_names' epoch (see the migration server-names-epoch) when every name kept was last read; undefined: never. */
  #epoch: string | undefined;
  #decodeBuffer = new ArrayBuffer(0);
  #servers = new SharedDictionary();
  #responders = new SharedDictionary();

  /**
   * Learns the names of `ids` before digests naming them are named, reading
   * (`read`) from server_names, whose `epoch` (null: its row is gone) the
   * digests were read with: only the ids not known yet, while the epoch is
   * the one the known names were read at. Once it has moved (rows updated or
   * deleted), every id known is read again, as any of them may name another
   * server now, or none. Asking for all of a week's ten thousand ids each
   * time the digests were stored again took a table 30 ms on PostgreSQL, 70
   * on PGlite.
   */
  async learnNames(
    ids: readonly number[],
    epoch: string | null,
    read: (ids: readonly number[]) => Promise<ReadonlyMap<number, string>>,
  ): Promise<void> {
    // Decided before the read: whether what is read is every id known (another read may learn meanwhile).
    const whole = epoch === null || epoch !== this.#epoch;
    const wanted = whole ? [...new Set([...ids, ...this.#byId.keys()])] : ids.filter((id) => !this.#byId.has(id));
    if (wanted.length > 0) this.#learn(await read(wanted), whole);
    if (whole) this.#epoch = epoch ?? undefined;
  }

  /**
   * Server names by id, as read from server_names: an id that comes back with
   * another name starts new dictionaries (digests named before keep theirs).
   * `whole`: `read` holds every id known, so one missing from it is no longer
   * in server_names.
   */
  #learn(read: ReadonlyMap<number, string>, whole: boolean): void {
    const stale = whole
      ? [...this.#byId].some(([id, name]) => read.get(id) !== name)
      : [...read].some(([id, name]) => this.#byId.has(id) && this.#byId.get(id) !== name);
    if (stale) {
      this.#servers = new SharedDictionary();
      this.#responders = new SharedDictionary();
      if (whole) this.#byId.clear();
    }
    for (const [id, name] of read) this.#byId.set(id, name);
  }

  /**
   * A stored digest decoded, its index columns turned into indexes into the
   * shared dictionaries. Each digest is decoded into one buffer kept for the
   * next, and what is kept of it is copied out: decoded all at once, a week
   * of a million samples took 12 MB more, memory touched for the first time
   * by a process that reads it (about 2.5 ms a MB on this project's machine
   * kind).
   */
  named(row: StoredDigest): SampleColumns {
    const bytes = Buffer.byteLength(row.columns, 'base64');
    let buffer = this.#decodeBuffer;
    if (bytes > buffer.byteLength) {
      buffer = new ArrayBuffer(bytes);
      if (bytes <= KEPT_DECODE_BYTES) this.#decodeBuffer = buffer;
    }
    const { serverIds, responderIds, server, responder, ...digest } = decodeDigest(row, buffer);
    return {
      ...digest,
      server: this.#servers.rewritten(server, serverIds, this.#byId),
      responder: this.#responders.rewritten(responder, responderIds, this.#byId),
      servers: this.#servers.names,
      responders: this.#responders.names,
    };
  }
}

/** Far more server names than will ever be numbered: a digest naming a larger id is corrupt. */
const MAX_SERVER_ID = 2 ** 26;

/**
 * Server ids are numbered from 1 by the database, so arrays indexed by id
 * stay small: a week's digests name ten thousand servers some 800,000 times,
 * and an array lookup is several times cheaper than a Map's.
 */
function largestId(lists: readonly Int32Array[]): number {
  let largest = 0;
  for (const list of lists) {
    for (let i = 0; i < list.length; i++) {
      const id = list[i]!;
      if (id < 1 || id > MAX_SERVER_ID) throw unknownId(id);
      if (id > largest) largest = id;
    }
  }
  return largest;
}

const unknownId = (id: number) => new Error(`an hourly digest names server id ${id}, which is not in server_names`);

class SharedDictionary {
  readonly names: string[] = [];
  /** By server id: its index in `names`, plus one (0: not there yet; ids past its end are not there either). */
  #indexOf = new Int32Array(1024);

  /** Indexes into a digest's own list of ids, turned into indexes into `names` (in the narrowest integers that hold them). */
  rewritten(indexes: IndexColumn, ids: Int32Array, namesById: ReadonlyMap<number, string>): IndexColumn {
    const shared = new Int32Array(ids.length);
    for (let i = 0; i < ids.length; i++) {
      const id = ids[i]!;
      if (!(this.#indexOf[id]! > 0)) {
        const name = id > 0 && id <= MAX_SERVER_ID ? namesById.get(id) : undefined;
        if (name === undefined) throw unknownId(id);
        if (id >= this.#indexOf.length) {
          const grown = new Int32Array(Math.min(MAX_SERVER_ID + 1, Math.max(2 * this.#indexOf.length, id + 1)));
          grown.set(this.#indexOf);
          this.#indexOf = grown;
        }
        this.names.push(name);
        this.#indexOf[id] = this.names.length;
      }
      shared[i] = this.#indexOf[id]! - 1;
    }
    const rewritten = new (indexColumnFor(this.names.length))(indexes.length);
    for (let i = 0; i < indexes.length; i++) rewritten[i] = shared[indexes[i]!]!;
    return rewritten;
  }
}

/** The distinct server ids of the stored digests. */
function idsIn(rows: readonly StoredDigest[]): number[] {
  const lists = rows.map(digestIds);
  const seen = new Uint8Array(largestId(lists) + 1);
  const ids: number[] = [];
  for (const list of lists) {
    for (let i = 0; i < list.length; i++) {
      if (seen[list[i]!] === 0) {
        seen[list[i]!] = 1;
        ids.push(list[i]!);
      }
    }
  }
  return ids;
}

async function namesOf(db: Db, ids: readonly number[]): Promise<Map<number, string>> {
  if (ids.length === 0) return new Map();
  const rows = await db
    .selectFrom('server_names')
    .select(['id', 'name'])
    .where(sql<boolean>`id = any(${arrayLiteral(ids)}::integer[])`)
    .execute();
  return new Map(rows.map((row) => [row.id, row.name]));
}

/**
 * The server_names ids of `names`, numbering the new ones. Only names not
 * stored yet are inserted (an insert that meets a conflict still uses up an
 * id), in name order: builds of two rooms that meet the same new names then
 * take their row locks in the same order, so one waits instead of both
 * deadlocking.
 */
async function idsOf(tx: Transaction<Tables>, names: readonly string[]): Promise<Map<string, number>> {
  const ids = new Map<string, number>();
  const lookUp = async (wanted: readonly string[]) => {
    const rows = await tx
      .selectFrom('server_names')
      .select(['id', 'name'])
      .where(sql<boolean>`name = any(${arrayLiteral(wanted)}::text[])`)
      .execute();
    for (const row of rows) ids.set(row.name, row.id);
  };
  await lookUp(names);
  const missing = names.filter((name) => !ids.has(name)).sort(compareNames);
  if (missing.length === 0) return ids;
  await sql`insert into server_names (name) select unnest(${arrayLiteral(missing)}::text[]) on conflict (name) do nothing`.execute(
    tx,
  );
  await lookUp(missing);
  return ids;
}

const ROW_COLUMNS = ['ping_server', 'responder_server', 'ping_event_id', 'delay_ms'] as const;

/**
 * Probing the primary key for one ping's samples costs about as much as
 * reading this many rows in a scan (measured on PostgreSQL 15 under load:
 * 34,000 probes 0.6 s, a scan of 10.3M rows 3.8 s; kept below their ratio).
 */
const PROBE_COST_IN_ROWS = 40;

/** A stretch of samples read from the table: from `from` until `to`, included or not. */
interface ReadStretch {
  readonly from: Date;
  readonly to: Date;
  readonly toInclusive: boolean;
}

/**
 * Of the pings of a window, read as `pingIds`, those that a server had
 * answered before the window began (`window.from`), as pairKey(ping, server).
 */
async function answeredBefore(
  db: Db | Transaction<Tables>,
  roomId: string,
  window: ReadStretch,
  pingIds: readonly string[],
): Promise<Set<string>> {
  if (pingIds.length === 0) return new Set();
  const { rows: table } = await sql<{ rows: number }>`
    select reltuples::float8 as rows from pg_class where oid = 'samples'::regclass`.execute(db);
  const { rows } = await answeredBeforeQuery(roomId, window, pingIds, table[0]!.rows).execute(db);
  return new Set(rows.map(pairKey));
}

/**
 * answeredBefore's statement, for a table of `tableRows` rows as last
 * analysed. The planner prices a look-up by the primary key as a random
 * read, so it scans the table's whole history for as few as 34,000 pings of
 * a table of 10M rows (8.8 s, against 0.6 s for the look-ups): they are
 * chosen here (`offset 0` keeps them) when the table is that much larger
 * than the pings; otherwise the planner chooses, without the list. The room
 * is a column of the list, not a constant: for a constant the planner counts
 * the room's rows as last analysed, which for a room that came after the
 * last ANALYZE is none, and then looked each ping up by scanning the room's
 * rows in its pong-time index (minutes for 12,500 pings of 50,000 rows);
 * against a column it counts the table's rows a room holds on average.
 */
export function answeredBeforeQuery(
  roomId: string,
  window: ReadStretch,
  pingIds: readonly string[],
  tableRows: number,
) {
  return pingIds.length * PROBE_COST_IN_ROWS < tableRows
    ? sql<PongRow>`
        select distinct answered.ping_event_id, answered.responder_server
        -- In the primary key's order: the look-ups walk its pages in order, a third faster than at random.
        from (
          select ${roomId}::text, id from unnest(${arrayLiteral(pingIds)}::text[]) as id order by id offset 0
        ) as ping(room_id, id)
        cross join lateral (
          select ping_event_id, responder_server from samples
          where room_id = ping.room_id and ping_event_id = ping.id and measured_at < ${window.from}
          offset 0
        ) answered`
    : sql<PongRow>`
        select distinct ping_event_id, responder_server from samples earlier
        where room_id = ${roomId} and measured_at < ${window.from} and exists (
          select 1 from samples later
          where later.room_id = earlier.room_id and later.ping_event_id = earlier.ping_event_id
            and later.measured_at >= ${window.from} and later.measured_at ${window.toInclusive ? sql`<=` : sql`<`} ${window.to})`;
}

const pairKey = (row: PongRow) => `${row.ping_event_id}\u0000${row.responder_server}`;

/** A figure as a digest is built from: a first pong, with the time it was measured at. */
type PongFigure = Pick<SampleRow, (typeof ROW_COLUMNS)[number]> & { readonly measured_ms: number };

/**
 * Rows a digest build takes from the database at a time. A week of a
 * million samples read in one statement held every row as an object and, on
 * PGlite, the statement's whole answer in WebAssembly memory, which never
 * shrinks: a service importing such a week through its channel peaked at
 * 853 MB and kept 838 (622 and 502 reading it this way).
 */
export const FETCH_ROWS = 20_000;

/**
 * Spans up to this long (a partial hour at a window's end, a window of
 * minutes) are read in one statement: a cursor's transaction, settings and
 * fetches would be most of such a read's round trips, for a few thousand rows.
 */
const ONE_STATEMENT_SPAN_MS = 2 * HOUR_MS;

/**
 * The figures of one room measured from `from` until `to`: each (ping,
 * responder server)'s first pong in PONG_ORDER, less those whose server had
 * already answered the same ping before `from` (a whole week's digests at
 * the cost of reading the week, where laterPongOfServer would join every
 * sample with its ping's others). The rows come sorted by the database,
 * through a cursor FETCH_ROWS at a time unless the span is short, and only
 * the first pongs are kept, each name held once.
 */
async function firstPongsFrom(
  db: Db | Transaction<Tables>,
  roomId: string,
  from: Date,
  to: Date,
  toInclusive: boolean,
): Promise<PongFigure[]> {
  const query = (on: Db | Transaction<Tables>) =>
    on
      .selectFrom('samples')
      // In milliseconds, a number: parsing a week's times as dates took a fifth of a digest build's reading.
      .select([...ROW_COLUMNS, sql<number>`(extract(epoch from measured_at) * 1000)::float8`.as('measured_ms')])
      .where('room_id', '=', roomId)
      .where('measured_at', '>=', from)
      .where('measured_at', toInclusive ? '<=' : '<', to)
      .orderBy(PONG_ORDER);
  const names = new Map<string, string>();
  const name = (text: string) => getOrInsert(names, text, () => text);
  const filter = new FirstPongFilter();
  const figures: PongFigure[] = [];
  const keepFirstPongs = (rows: readonly PongFigure[]) => {
    for (const row of rows) {
      const figure = {
        ping_server: name(row.ping_server),
        responder_server: name(row.responder_server),
        ping_event_id: name(row.ping_event_id),
        delay_ms: row.delay_ms,
        measured_ms: row.measured_ms,
      };
      if (filter.isFirst(figure)) figures.push(figure);
    }
  };
  const throughCursor = async (tx: Transaction<Tables>) => {
    // Planned for all its rows, as the statement alone is, not for the first tenth soonest, and without
    // JIT compilation: reading a week of 1M rows through the cursor took 3.0-3.4 s on PostgreSQL with
    // it, 2.3 s without (the statement alone 1.7-2.9 s with it). Both are the plan's, made by the
    // declare (whose parameters both engines type from the query): the statements after it in the
    // caller's transaction get the defaults back.
    await sql`select set_config('cursor_tuple_fraction', '1', true), set_config('jit', 'off', true)`.execute(tx);
    await sql`declare figure_rows no scroll cursor for ${query(tx)}`.execute(tx);
    await sql`select set_config(name, reset_val, true) from pg_settings where name in ('cursor_tuple_fraction', 'jit')`.execute(
      tx,
    );
    try {
      for (;;) {
        const { rows } = await sql<PongFigure>`fetch forward ${sql.lit(FETCH_ROWS)} from figure_rows`.execute(tx);
        keepFirstPongs(rows);
        if (rows.length < FETCH_ROWS) break;
      }
    } finally {
      // So the caller's transaction can read again. (After a failed statement the transaction is
      // over, the cursor with it, and the close fails too: the first failure is the one reported.)
      await sql`close figure_rows`.execute(tx).catch(() => {});
    }
  };
  if (to.getTime() - from.getTime() <= ONE_STATEMENT_SPAN_MS) keepFirstPongs(await query(db).execute());
  // A cursor lives in a transaction: the caller's, or one of its own.
  else if (db.isTransaction) await throughCursor(db as Transaction<Tables>);
  else await db.transaction().execute(throughCursor);
  // Whole pairs are dropped, so dropping them after the first pongs are chosen drops the same rows as before.
  const pingIds = [...new Set(figures.map((row) => row.ping_event_id))];
  const answered = await answeredBefore(db, roomId, { from, to, toInclusive }, pingIds);
  return answered.size === 0 ? figures : figures.filter((row) => !answered.has(pairKey(row)));
}

/** The figures of one room between two instants (see first-pongs.ts), as columns. */
async function rawColumns(db: Db, roomId: string, from: Date, to: Date, toInclusive: boolean): Promise<SampleColumns> {
  return columnsFromRows(await firstPongsFrom(db, roomId, from, to, toInclusive));
}

/**
 * The figures of each of the consecutive hours [first, end), from the
 * samples, as rows: chosen over the whole run (each pair's first pong in
 * PONG_ORDER), each in the hour it was measured in. The rows come in pong
 * order, which a bot's own answer (ordered by its pong's stamp, measured
 * when the ping arrived) or a skewed clock can set against measured_at: each
 * row goes to its own hour, in the order it came, so a digest holds the
 * figures measured in its hour and no other.
 */
async function hourRowsFromSamples(db: Db | Transaction<Tables>, roomId: string, first: number, end: number) {
  const rows = await firstPongsFrom(db, roomId, new Date(first), new Date(end), false);
  const byHour: (typeof rows)[] = Array.from({ length: (end - first) / HOUR_MS }, () => []);
  for (const row of rows) byHour[Math.floor((row.measured_ms - first) / HOUR_MS)]!.push(row);
  return byHour;
}

/** A digest as it was stored by a build: its hour (epoch milliseconds) and the generation it was stored with. */
interface BuiltDigest extends StoredDigest {
  readonly hour: number;
  readonly generation: string;
}

/** Builds and stores the digests of the consecutive hours [first, end) of one room. */
async function buildDigests(db: Db, roomId: string, first: number, end: number): Promise<BuiltDigest[]> {
  return db.transaction().execute(async (tx) => {
    await lockRoom(tx, roomId, 'exclusive');
    // A week read for its digests is a few per cent of a table holding months, yet PostgreSQL scanned the
    // whole table in parallel, its sort split between the workers: 0.87 s for the 300,000 rows of a week
    // in 10.3M, against 0.41 s through the (room, time) index with one sort. Where the rows read are much
    // of the table, the serial scan costs a sixth more (1.47M of 10.3M: 2.8 s against 2.4); over a table
    // of just the week (1M rows), the rows and the check of which pings were answered before (its
    // whole-table branch, also serial now) took as long as in parallel, within the spread of runs.
    // (PGlite never plans in parallel.)
    await sql`set local max_parallel_workers_per_gather = 0`.execute(tx);
    const hours = await hourRowsFromSamples(tx, roomId, first, end);
    const built = hours.map(columnsFromRows);
    const ids = await idsOf(tx, [...new Set(built.flatMap((columns) => [...columns.servers, ...columns.responders]))]);
    const values = built.map((columns, i) => {
      const hour = first + i * HOUR_MS;
      // Floored: measured_ms is exact to the microsecond, and a bound in whole milliseconds is passed by the floor exactly when by the time.
      const offsets = Int32Array.from(hours[i]!, (row) => Math.floor(row.measured_ms - hour));
      return {
        room_id: roomId,
        hour: new Date(hour),
        ...encodeDigest(columns, ids),
        measured_offsets: Buffer.from(offsets.buffer).toString('base64'),
      };
    });
    const stored: BuiltDigest[] = [];
    for (let i = 0; i < values.length; i += 500) {
      const chunk = values.slice(i, i + 500);
      const generations = await tx
        .insertInto('hourly_digests')
        .values(chunk)
        .onConflict((oc) =>
          oc.columns(['room_id', 'hour']).doUpdateSet((eb) => ({
            samples: eb.ref('excluded.samples'),
            columns: eb.ref('excluded.columns'),
            measured_offsets: eb.ref('excluded.measured_offsets'),
            built_at: new Date(),
            generation: sql<string>`nextval('hourly_digest_generation')`,
          })),
        )
        .returning(['hour', sql<string>`generation::text`.as('generation')])
        .execute();
      const generationOf = new Map(generations.map((row) => [row.hour.getTime(), row.generation]));
      for (const row of chunk) {
        const generation = generationOf.get(row.hour.getTime());
        if (generation === undefined)
          throw new Error(`storing the digest of ${row.hour.toISOString()} returned no row`);
        stored.push({ samples: row.samples, columns: row.columns, hour: row.hour.getTime(), generation });
      }
    }
    return stored;
  });
}

/** The closed hours wholly inside `window`, as [first, end) in epoch milliseconds (empty when end <= first). */
function closedHours(window: TimeWindow, now: Date): { first: number; end: number } {
  return {
    first: Math.ceil(window.start.getTime() / HOUR_MS) * HOUR_MS,
    end: Math.min(Math.floor(window.end.getTime() / HOUR_MS), Math.floor(now.getTime() / HOUR_MS)) * HOUR_MS,
  };
}

/** The runs of consecutive hours of [first, end) not in `have`, as [start, end) pairs. */
function missingRuns(have: ReadonlySet<number>, first: number, end: number): [number, number][] {
  const runs: [number, number][] = [];
  for (let hour = first; hour < end; hour += HOUR_MS) {
    if (have.has(hour)) continue;
    let runEnd = hour + HOUR_MS;
    while (runEnd < end && !have.has(runEnd)) runEnd += HOUR_MS;
    runs.push([hour, runEnd]);
    hour = runEnd - HOUR_MS;
  }
  return runs;
}

/** The hours of [first, end) whose digest is stored with its figures' times (one stored before them is built again). */
async function digestHours(db: Db, roomId: string, first: number, end: number): Promise<Set<number>> {
  const rows = await db
    .selectFrom('hourly_digests')
    .select('hour')
    .where('room_id', '=', roomId)
    .where('hour', '>=', new Date(first))
    .where('hour', '<', new Date(end))
    .where('measured_offsets', 'is not', null)
    .execute();
  return new Set(rows.map((row) => row.hour.getTime()));
}

/** How far back buildRecentDigests looks: the default leaderboard's window, seven days. */
const RECENT_MS = 7 * 86_400_000;

/**
 * Builds the missing digests of the closed hours of the last seven days of
 * `roomIds`, the hour they begin in partway included, so that reads of the
 * default window find them all (run by the scheduler, after an import and
 * after the bot's writes), and with `currentHour` the hour going on too (after
 * an import: the first table after it then reads none of the samples; the
 * scheduler leaves it, as a live room's next pong would drop it at once).
 * Returns how many hours it built. It waits for the rooms' writers; reads
 * never wait for it.
 */
export async function buildRecentDigests(
  db: Db,
  roomIds: readonly string[],
  now: Date,
  {
    memory,
    currentHour = false,
  }: {
    /** Where the process keeps what it built; none for a process that computes no table after. */
    readonly memory?: DecodedDigests | undefined;
    readonly currentHour?: boolean;
  } = {},
): Promise<number> {
  const first = Math.floor((now.getTime() - RECENT_MS) / HOUR_MS) * HOUR_MS;
  const end = (Math.floor(now.getTime() / HOUR_MS) + (currentHour ? 1 : 0)) * HOUR_MS;
  let built = 0;
  for (const roomId of roomIds) {
    // One transaction and one query per run of missing hours: the room's writers wait for one run at a time.
    for (const [start, runEnd] of missingRuns(await digestHours(db, roomId, first, end), first, end)) {
      const stored = await buildDigests(db, roomId, start, runEnd);
      if (memory) await keepBuilt(db, memory, roomId, stored);
      built += (runEnd - start) / HOUR_MS;
    }
  }
  return built;
}

/**
 * Keeps the digests a build stored, named as a read of them would name
 * them, so the next table of this process reads none of them back (after
 * an import of a week of a million samples, 16 MB of text, which PGlite and
 * node-postgres hand over in hundreds of milliseconds). Their names are
 * read as a read's are, after the epoch they are checked against.
 */
async function keepBuilt(db: Db, memory: DecodedDigests, roomId: string, built: readonly BuiltDigest[]): Promise<void> {
  if (built.length === 0) return;
  const names = memory.namesOf(roomId);
  const { names_epoch } = await db.selectNoFrom((eb) => namesEpoch(eb)).executeTakeFirstOrThrow();
  await names.learnNames(idsIn(built), names_epoch, (ids) => namesOf(db, ids));
  for (const digest of built) memory.keep(roomId, digest.hour, digest.generation, names.named(digest), 'built');
}

/** server_names' epoch (see the migration server-names-epoch) as text; null if its row is gone. */
function namesEpoch<From extends keyof Tables>(eb: ExpressionBuilder<Tables, From>) {
  return eb.selectFrom('server_names_epoch').select(sql<string>`epoch::text`.as('epoch')).as('names_epoch');
}

/**
 * Deletes the digests of hours that began before `cutoff`: retention deleted
 * their samples (the database already dropped those that held any; this
 * drops the empty ones too).
 */
export async function deleteDigestsBefore(db: Db, cutoff: Date): Promise<void> {
  await db.deleteFrom('hourly_digests').where('hour', '<', cutoff).execute();
}

/** Samples of decoded digests one process keeps at most (about 12 bytes each, with their ping keys and numbers): two weeks of a room of a million samples a week, some 24 MB. */
const KEPT_DIGEST_SAMPLES = 2_000_000;

interface KeptDigest {
  readonly generation: string;
  readonly digest: SampleColumns;
}

/**
 * The digests one process has decoded or built, by room and hour, each with the
 * generation it was stored with, and the names of the server ids they refer
 * to. A kept digest is used only while the database lists the same
 * generation for its hour: the trigger drops a digest whenever its samples
 * change, and whatever stores it again, here or in another process, stores
 * a new generation. Least recently used digests go first past
 * KEPT_DIGEST_SAMPLES.
 */
export class DecodedDigests {
  readonly #kept = new Map<string, KeptDigest>();
  #samples = 0;
  /** By room: names its digests as they are read (asking server_names for the ids it does not know). */
  readonly #names = new Map<string, DigestNames>();
  #decoded = 0;

  /** Digests read and decoded from the database so far (the others came from memory). */
  get decoded(): number {
    return this.#decoded;
  }

  namesOf(roomId: string): DigestNames {
    return getOrInsert(this.#names, roomId, () => new DigestNames());
  }

  /** The kept digest of a room's hour if it is still the stored one (`generation`). */
  find(roomId: string, hour: number, generation: string): SampleColumns | undefined {
    const key = `${roomId}|${hour}`;
    const kept = this.#kept.get(key);
    if (kept === undefined) return undefined;
    this.#kept.delete(key);
    if (kept.generation !== generation) {
      this.#samples -= kept.digest.delay.length;
      return undefined;
    }
    // Set again: a Map iterates in insertion order, so the first entry is the least recently used.
    this.#kept.set(key, kept);
    return kept.digest;
  }

  /** `source`: whether the digest was read from the database or built by this process (which counts only reads). */
  keep(roomId: string, hour: number, generation: string, digest: SampleColumns, source: 'read' | 'built'): void {
    const key = `${roomId}|${hour}`;
    const replaced = this.#kept.get(key);
    if (replaced) this.#samples -= replaced.digest.delay.length;
    this.#kept.delete(key);
    this.#kept.set(key, { generation, digest });
    this.#samples += digest.delay.length;
    if (source === 'read') this.#decoded++;
    for (const [oldest, { digest: old }] of this.#kept) {
      if (this.#samples <= KEPT_DIGEST_SAMPLES) break;
      this.#kept.delete(oldest);
      this.#samples -= old.delay.length;
    }
  }

  /** The kept digests of the room's hours that begin in [from, to), oldest first. */
  keptBetween(roomId: string, from: number, to: number): SampleColumns[] {
    const digests: SampleColumns[] = [];
    for (let hour = Math.ceil(from / HOUR_MS) * HOUR_MS; hour < to; hour += HOUR_MS) {
      const kept = this.#kept.get(`${roomId}|${hour}`);
      if (kept) digests.push(kept.digest);
    }
    return digests;
  }

  /** Forgets the kept digests of the room's hours [first, end) that are no longer stored. */
  forgetDropped(roomId: string, first: number, end: number, stored: ReadonlySet<number>): void {
    for (let hour = first; hour < end; hour += HOUR_MS) {
      if (stored.has(hour)) continue;
      const key = `${roomId}|${hour}`;
      const kept = this.#kept.get(key);
      if (!kept) continue;
      this.#kept.delete(key);
      this.#samples -= kept.digest.delay.length;
    }
  }
}

/**
 * The stored digests of a room's hours [first, end): from `memory` where it
 * holds the stored generation, read and decoded (and kept) otherwise.
 */
async function storedDigests(
  db: Db,
  memory: DecodedDigests,
  roomId: string,
  first: number,
  end: number,
): Promise<{ hours: Set<number>; digests: SampleColumns[] }> {
  const inRoom = db
    .selectFrom('hourly_digests')
    .where('room_id', '=', roomId)
    .where('hour', '>=', new Date(first))
    .where('hour', '<', new Date(end));
  const listed = await inRoom.select(['hour', sql<string>`generation::text`.as('generation')]).execute();
  memory.forgetDropped(roomId, first, end, new Set(listed.map((row) => row.hour.getTime())));
  const hours = new Set<number>();
  const digests: SampleColumns[] = [];
  const unread: Date[] = [];
  for (const { hour, generation } of listed) {
    const kept = memory.find(roomId, hour.getTime(), generation);
    if (kept === undefined) unread.push(hour);
    else {
      hours.add(hour.getTime());
      digests.push(kept);
    }
  }
  if (unread.length === 0) return { hours, digests };
  // A digest dropped since it was listed is simply not read: its hour is computed from the samples.
  const rows = await inRoom.select(DIGEST_READ).where('hour', 'in', unread).execute();
  for (const [i, named] of (await nameAndKeep(db, memory, roomId, rows)).entries()) {
    hours.add(rows[i]!.hour.getTime());
    digests.push(named);
  }
  return { hours, digests };
}

/** What a read of stored digests selects: enough to decode, name and keep them. */
const DIGEST_READ = [
  'hour',
  'samples',
  'columns',
  sql<string>`generation::text`.as('generation'),
  // In the digests' snapshot: names read after a later move are read again on the next read.
  namesEpoch,
] as const;

/** Decodes and names digests read from the database (rows of one snapshot), and keeps them in `memory`. */
async function nameAndKeep(
  db: Db,
  memory: DecodedDigests,
  roomId: string,
  rows: readonly (StoredDigest & { hour: Date; generation: string; names_epoch: string | null })[],
): Promise<SampleColumns[]> {
  const names = memory.namesOf(roomId);
  if (rows.length > 0) await names.learnNames(idsIn(rows), rows[0]!.names_epoch, (ids) => namesOf(db, ids));
  return rows.map((row) => {
    const named = names.named(row);
    memory.keep(roomId, row.hour.getTime(), row.generation, named, 'read');
    return named;
  });
}

/**
 * The figures of a room measured from `from` until `to` (included or not), a
 * stretch of `hour`, from that hour's digest and when each of its figures was
 * measured: undefined where the hour has no digest, or one built before those
 * times were kept, or where `to` is included and a figure was measured in its
 * millisecond (the times are whole milliseconds: such a figure may be a
 * fraction of one past it). A figure is a pair's first pong in PONG_ORDER,
 * counted where it was measured, as in every whole hour's digest; the samples
 * of the stretch alone (rawColumns) can tell otherwise only where a bot's own
 * answer, ordered by its pong's stamp, and another bot of its server straddle
 * the bound.
 */
async function digestPart(
  db: Db,
  memory: DecodedDigests,
  roomId: string,
  hour: number,
  from: number,
  to: number,
  toInclusive: boolean,
): Promise<SampleColumns | undefined> {
  const ofHour = db
    .selectFrom('hourly_digests')
    .where('room_id', '=', roomId)
    .where('hour', '=', new Date(hour))
    .where('measured_offsets', 'is not', null);
  // The figures themselves are read only when this process does not keep them (as stored: the same generation).
  const times = await ofHour
    .select(['samples', 'measured_offsets', sql<string>`generation::text`.as('generation')])
    .$narrowType<{ measured_offsets: string }>()
    .executeTakeFirst();
  if (times === undefined) return undefined;
  const offsets = decodeOffsets(times.measured_offsets, times.samples);
  const start = from - hour;
  const end = to - hour;
  if (toInclusive && offsets.includes(end)) return undefined;
  let digest = memory.find(roomId, hour, times.generation);
  if (digest === undefined) {
    const stored = await ofHour
      .select(DIGEST_READ)
      .where(sql<boolean>`generation = ${times.generation}::bigint`)
      .executeTakeFirst();
    // Stored again since: this answer reads that stretch from the samples.
    if (stored === undefined) return undefined;
    digest = (await nameAndKeep(db, memory, roomId, [stored]))[0]!;
  }
  if (digest.delay.length !== times.samples)
    throw new Error(
      `an hourly digest holds ${digest.delay.length} figures, where its row says ${times.samples} (generation ${times.generation})`,
    );
  const within = (_: number, i: number) => offsets[i]! >= start && offsets[i]! < end;
  return {
    servers: digest.servers,
    responders: digest.responders,
    pingKeys: digest.pingKeys,
    server: digest.server.filter(within) as IndexColumn,
    responder: digest.responder.filter(within) as IndexColumn,
    ping: digest.ping.filter(within) as IndexColumn,
    delay: digest.delay.filter(within),
  };
}

/** A digest's measured_offsets, refused unless they are one per figure. */
function decodeOffsets(text: string, samples: number): Int32Array {
  const bytes = Buffer.from(text, 'base64');
  if (bytes.length !== 4 * samples)
    throw new Error(
      `an hourly digest's measured times are ${bytes.length} bytes, where its ${samples} figures need ${4 * samples}`,
    );
  // Copied: a decoded Buffer may start anywhere in a shared pool, where an Int32Array cannot.
  return new Int32Array(bytes.buffer.slice(bytes.byteOffset, bytes.byteOffset + bytes.length));
}

/**
 * The figures of a room measured from `from` until `to`, a stretch of one
 * hour at an end of a window: from the hour's digest where it has one with
 * times (digestPart), from the samples otherwise. The hour going on has a
 * digest only after an import built it, until its next sample drops it.
 */
async function partialHour(
  db: Db,
  memory: DecodedDigests,
  roomId: string,
  from: number,
  to: number,
  toInclusive: boolean,
): Promise<SampleColumns> {
  if (from === to && !toInclusive) return columnsFromRows([]);
  const hour = Math.floor(from / HOUR_MS) * HOUR_MS;
  // An included end at the next hour's first instant would need that hour's figures too.
  if (toInclusive ? to < hour + HOUR_MS : to <= hour + HOUR_MS) {
    const part = await digestPart(db, memory, roomId, hour, from, to, toInclusive);
    if (part !== undefined) return part;
  }
  return rawColumns(db, roomId, new Date(from), new Date(to), toInclusive);
}

/**
 * The samples of `roomIds` in `window` as columns: closed hours wholly inside
 * the window from their digests (kept in `memory` or read), or from the
 * samples where none is stored (for this answer only: a read never writes),
 * and the partial hours at either end, the current one among them, from their
 * digests where they have one (partialHour), else from the samples table.
 */
export async function windowColumns(
  db: Db,
  memory: DecodedDigests,
  roomIds: readonly string[],
  window: TimeWindow,
  now: Date,
): Promise<SampleColumns[]> {
  const { first: firstHour, end: endHour } = closedHours(window, now);
  const chunks: SampleColumns[] = [];
  for (const roomId of roomIds) {
    if (endHour <= firstHour) {
      chunks.push(await rawColumns(db, roomId, window.start, window.end, window.endInclusive));
      continue;
    }
    // The partial hours are read while the digests are: on PostgreSQL each
    // read has a connection of its own, and the three took a third longer one
    // after the other (a week of a million samples).
    const [{ hours, digests }, before, after] = await Promise.all([
      storedDigests(db, memory, roomId, firstHour, endHour),
      partialHour(db, memory, roomId, window.start.getTime(), firstHour, false),
      partialHour(db, memory, roomId, endHour, window.end.getTime(), window.endInclusive),
    ]);
    chunks.push(...digests);
    // Missing hours are computed in runs of consecutive hours, one query per run.
    for (const [start, runEnd] of missingRuns(hours, firstHour, endHour)) {
      chunks.push(...(await hourRowsFromSamples(db, roomId, start, runEnd)).map(columnsFromRows));
    }
    chunks.push(before, after);
  }
  return chunks;
}
