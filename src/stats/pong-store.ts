// The recent samples of each room lineage the aggregator-compatible routes
// were asked for, kept in memory by hour of pong time (pong-hours.ts). On
// each request the store reads the hours' versions (the table sample_hours,
// renewed by a trigger on every change of samples, by any process) and reads
// again only the hours whose version changed: after a new pong, one hour.
// Windows that start before the kept span (a `min_age` reaching back, raw
// rows older than a week) are read from the database as before.
import { sql, type Transaction } from 'kysely';
import type { Db } from '../db/database.ts';
import type { Tables } from '../db/schema.ts';
import { carrySlices, narrowed, parsePongHour, PongDictionary, type PongHour } from './pong-hours.ts';
import { PONG_TIME } from './pingstat-data.ts';
import { HOUR_MS } from './windows.ts';
import { PINGSTAT_WEEK_MS, type PingstatWindow } from './pingstat-window.ts';

/** What a request walks: the lineage's hours in ascending order, and the dictionary they are numbered in. */
export interface PongSnapshot {
  readonly hours: readonly PongHour[];
  readonly dictionary: PongDictionary;
}

export interface PongStoreLimits {
  /** Rows kept per lineage at most (28 bytes of columns each, and about 100 per ping for its ID): a lineage with more is read from the database. */
  readonly maxRows: number;
  /** Pings the dictionary may number beyond the rows kept before it is made again with only theirs. */
  readonly sparePings: number;
}

const LIMITS: PongStoreLimits = { maxRows: 4_000_000, sparePings: 65_536 };
/** Lineages kept at once, the least recently asked for dropped first. */
const MAX_LINEAGES = 4;

interface KeptHour {
  /** The versions of the lineage's rooms in that hour, as read. */
  readonly version: string;
  readonly rows: PongHour;
}

class Lineage {
  /** Its rooms, oldest first: a sample's room is its index here. */
  readonly roomIds: readonly string[];
  dictionary = new PongDictionary();
  hours = new Map<number, KeptHour>();
  /** Hours whose samples are all gone, by version: their sample_hours row stays, and they are not read again. */
  empty = new Map<number, string>();

  keptVersion(at: number): string | undefined {
    return this.hours.get(at)?.version ?? this.empty.get(at);
  }
  /** Refreshes run one at a time: each reads the versions after the one before it stored its hours. */
  queue: Promise<unknown> = Promise.resolve();

  constructor(roomIds: readonly string[]) {
    this.roomIds = roomIds;
  }
}

/**
 * The span kept at `now`, [from, to): from the hour holding the start of
 * pingstat's default (and longest) week to the hour after the current one.
 * Pongs stamped later (a server's clock far ahead) are left to the
 * database, with the windows reaching them: times stay where a double holds
 * every microsecond.
 */
export function keptSpan(now: Date): { readonly from: number; readonly to: number } {
  const hourOf = (ms: number) => Math.floor(ms / HOUR_MS) * HOUR_MS;
  return { from: hourOf(now.getTime() - Number(PINGSTAT_WEEK_MS)), to: hourOf(now.getTime()) + 2 * HOUR_MS };
}

/** Stale hours past which a read first counts the rows: a lineage too large to keep is not read whole. */
const LARGE_READ_HOURS = 24;

/** Hours read in one statement when many are stale: 3.5 MB of text a statement for a week of a million rows. */
const HOURS_READ_AT_ONCE = 4;

const HOUR_OF = sql`date_bin('1 hour', ${PONG_TIME}, timestamptz '2000-01-01 00:00:00+00')`;

/** A sample as one line of text (parsePongHour reads it): to_json writes each string with no raw line break. */
function sampleLine(roomIds: readonly string[]) {
  return sql<string>`concat_ws(',', (extract(epoch from ${PONG_TIME}) * 1000000)::bigint, delay_ms,
    array_position(${[...roomIds]}::text[], room_id) - 1,
    to_json(ping_event_id), to_json(ping_server), to_json(responder_server), to_json(responder))`;
}

async function readHours(
  db: Db | Transaction<Tables>,
  roomIds: readonly string[],
  hours: readonly number[],
  dictionary: PongDictionary,
): Promise<PongHour[]> {
  const from = new Date(Math.min(...hours));
  const to = new Date(Math.max(...hours) + HOUR_MS);
  // One query for the hours given, through the (room, pong time) index from the first to the last of them.
  // Hashed by hour, unsorted: parsePongHour sorts each hour's rows.
  const { rows } = await sql<{ hour: number; n: number; lines: string }>`
    select (extract(epoch from hour) * 1000)::float8 as hour, count(*)::int as n, string_agg(line, E'\n') as lines
    from (
      select ${HOUR_OF} as hour, ${sampleLine(roomIds)} as line
      from samples
      where room_id = any(${[...roomIds]}::text[]) and ${PONG_TIME} >= ${from} and ${PONG_TIME} < ${to}
    ) rows
    where hour = any(${hours.map((hour) => new Date(hour))}::timestamptz[])
    group by hour
  `.execute(db);
  return rows.map((row) => parsePongHour(row.hour, row.n, row.lines, dictionary));
}

/** The hours' versions as one text each: the version of every room of the lineage with samples in that hour. */
function hourVersions(roomIds: readonly string[], span: ReturnType<typeof keptSpan>) {
  return sql`select hour, string_agg((array_position(${[...roomIds]}::text[], room_id) - 1)::text || ':' || version::text, ';' order by room_id) as version
    from sample_hours
    where room_id = any(${[...roomIds]}::text[]) and hour >= ${new Date(span.from)} and hour < ${new Date(span.to)}
    group by hour`;
}

interface FreshHours {
  /** Every hour of the span with samples, and its version. */
  readonly versions: Map<number, string>;
  /** The hours whose version is not the kept one, and their rows (none: the hour is empty). */
  readonly stale: [number, string][];
  readonly read: Map<number, PongHour>;
}

/**
 * The versions and the stale hours' rows in one statement, so one snapshot
 * and one round trip (a request after a new pong made five before), or
 * undefined when more than `HOURS_READ_AT_ONCE` hours are stale: those are
 * read as a first read is, a few hours a statement (the lineage's size
 * checked first when they are many).
 */
async function readChanges(
  db: Db,
  lineage: Lineage,
  span: ReturnType<typeof keptSpan>,
): Promise<FreshHours | undefined> {
  const { roomIds } = lineage;
  const known = [...lineage.hours].map(([at, kept]) => `${at}=${kept.version}`);
  for (const [at, version] of lineage.empty) known.push(`${at}=${version}`);
  // The versions go both ways as one text, and come back as one row, then a row for each stale hour read:
  // the embedded database spends more on each row and array element it passes than on the statement
  // (a week's 170 rows of versions, and as many known ones sent, were two thirds of a statement of 6 ms).
  // Each stale hour is read through the (room, pong time) index, its bounds known when it is.
  const { rows } = await sql<{
    hour: number | null;
    versions: string | null;
    stale: number | null;
    n: number | null;
    lines: string | null;
  }>`
    with listed as (${hourVersions(roomIds, span)}),
    known as (
      select split_part(entry, '=', 1)::float8 as hour, substr(entry, strpos(entry, '=') + 1) as version
      from string_to_table(${known.join(',')}::text, ',') as entry
      where entry <> ''
    ),
    stale as (
      select listed.hour from listed
      left join known on known.hour = (extract(epoch from listed.hour) * 1000)::float8
      where known.version is distinct from listed.version
    ),
    few as (select hour from stale where (select count(*) from stale) <= ${HOURS_READ_AT_ONCE})
    select null::float8 as hour,
      string_agg((extract(epoch from listed.hour) * 1000)::float8::text || '=' || listed.version, ',') as versions,
      (select count(*) from stale)::int as stale, null::int as n, null::text as lines
    from listed
    union all
    select (extract(epoch from few.hour) * 1000)::float8, null, null, rows.n, rows.lines
    from few cross join lateral (
      select count(*)::int as n, string_agg(${sampleLine(roomIds)}, E'\n') as lines
      from samples
      where room_id = any(${[...roomIds]}::text[])
        and ${PONG_TIME} >= few.hour and ${PONG_TIME} < few.hour + interval '1 hour'
    ) rows
  `.execute(db);
  // The one row with no hour is the summary; each other row is a stale hour read.
  const summary = rows.find((row) => row.hour === null)!;
  if (summary.stale! > HOURS_READ_AT_ONCE) return undefined;
  const versions = new Map<number, string>();
  for (const entry of summary.versions?.split(',') ?? []) {
    const at = entry.indexOf('=');
    versions.set(Number(entry.slice(0, at)), entry.slice(at + 1));
  }
  const stale: [number, string][] = [];
  const read = new Map<number, PongHour>();
  for (const row of rows) {
    if (row.hour === null) continue;
    stale.push([row.hour, versions.get(row.hour)!]);
    if (row.n! > 0) read.set(row.hour, parsePongHour(row.hour, row.n!, row.lines!, lineage.dictionary));
  }
  return { versions, stale, read };
}

async function rowsInSpan(
  db: Transaction<Tables>,
  roomIds: readonly string[],
  span: ReturnType<typeof keptSpan>,
): Promise<number> {
  const { rows } = await sql<{ n: number }>`select count(*)::int as n from samples
    where room_id = any(${[...roomIds]}::text[]) and ${PONG_TIME} >= ${new Date(span.from)} and ${PONG_TIME} < ${new Date(span.to)}`.execute(
    db,
  );
  return rows[0]!.n;
}

/** The hours again, numbered in a new dictionary holding only what they use. */
function compacted(lineage: Lineage): void {
  const from = lineage.dictionary;
  const dictionary = new PongDictionary();
  for (const [at, kept] of lineage.hours) {
    const rows = {
      ...kept.rows,
      ping: kept.rows.ping.map((p) => dictionary.ping(from.pingText(p))),
      // Numbered anew, an hour's names may need wider numbers than before.
      pingServer: narrowed(Int32Array.from(kept.rows.pingServer, (n) => dictionary.name(from.nameJson[n]!))),
      responderServer: narrowed(Int32Array.from(kept.rows.responderServer, (n) => dictionary.name(from.nameJson[n]!))),
      servers: kept.rows.servers.map((n) => dictionary.name(from.nameJson[n]!)),
    };
    lineage.hours.set(at, { version: kept.version, rows });
  }
  lineage.dictionary = dictionary;
}

export class PongStore {
  readonly #lineages = new Map<string, Lineage>();
  /** Lineages past their row limit, read from the database from then on. */
  readonly #tooLarge = new Set<string>();
  readonly #limits: PongStoreLimits;
  #hoursRead = 0;

  /** Hours read from the database so far. */
  get hoursRead(): number {
    return this.#hoursRead;
  }

  constructor(limits: Partial<PongStoreLimits> = {}) {
    this.#limits = { ...LIMITS, ...limits };
  }

  /**
   * The lineage's hours up to date, or undefined when the window starts
   * before the kept span or the lineage is too large to keep: the caller
   * reads the database then.
   */
  async snapshot(
    db: Db,
    roomIds: readonly string[],
    window: PingstatWindow,
    now: Date,
  ): Promise<PongSnapshot | undefined> {
    const span = keptSpan(now);
    const key = JSON.stringify(roomIds);
    if (window.start.getTime() < span.from || window.end.getTime() >= span.to || this.#tooLarge.has(key))
      return undefined;
    let lineage = this.#lineages.get(key);
    this.#lineages.delete(key);
    lineage ??= new Lineage(roomIds);
    this.#lineages.set(key, lineage);
    for (const [oldest] of this.#lineages) {
      if (this.#lineages.size <= MAX_LINEAGES) break;
      this.#lineages.delete(oldest);
    }
    const refreshed = lineage.queue.then(() => this.#refresh(db, lineage, span));
    lineage.queue = refreshed.catch(() => undefined);
    const snapshot = await refreshed;
    if (snapshot === undefined) {
      this.#tooLarge.add(key);
      this.#lineages.delete(key);
    }
    return snapshot;
  }

  /** Every hour whose version is not the kept one, unless the lineage is too large to keep. */
  async #readAll(db: Db, lineage: Lineage, span: ReturnType<typeof keptSpan>): Promise<FreshHours | undefined> {
    const { roomIds } = lineage;
    // The versions and the rows from one snapshot (on a pool of replicas, two statements could read two servers).
    return db
      .transaction()
      .setIsolationLevel('repeatable read')
      .execute(async (tx) => {
        const { rows: listed } = await sql<{ hour: number; version: string }>`
          select (extract(epoch from hour) * 1000)::float8 as hour, version from (${hourVersions(roomIds, span)}) listed`.execute(
          tx,
        );
        const versions = new Map(listed.map(({ hour, version }) => [hour, version]));
        const stale = [...versions].filter(([at, version]) => lineage.keptVersion(at) !== version);
        if (stale.length > LARGE_READ_HOURS && (await rowsInSpan(tx, roomIds, span)) > this.#limits.maxRows)
          return undefined;
        const read = new Map<number, PongHour>();
        const hours = stale.map(([at]) => at).sort((a, b) => a - b);
        // 4 hours (with samples) at a time: a result is held whole, as text, until it is parsed (a week of
        // a million rows was 120 MB of it at once, 24 hours 21 MB; on the embedded database, in memory that
        // never shrinks).
        for (let first = 0; first < hours.length; first += HOURS_READ_AT_ONCE)
          for (const rows of await readHours(
            tx,
            roomIds,
            hours.slice(first, first + HOURS_READ_AT_ONCE),
            lineage.dictionary,
          ))
            read.set(rows.hour, rows);
        return { versions, stale, read };
      });
  }

  async #refresh(db: Db, lineage: Lineage, span: ReturnType<typeof keptSpan>): Promise<PongSnapshot | undefined> {
    const fresh =
      (lineage.hours.size + lineage.empty.size > 0 ? await readChanges(db, lineage, span) : undefined) ??
      (await this.#readAll(db, lineage, span));
    if (fresh === undefined) return undefined;
    this.#hoursRead += fresh.stale.length;
    for (const at of lineage.hours.keys()) if (!fresh.versions.has(at)) lineage.hours.delete(at);
    for (const at of lineage.empty.keys()) if (!fresh.versions.has(at)) lineage.empty.delete(at);
    for (const [at, version] of fresh.stale) {
      const rows = fresh.read.get(at);
      if (rows === undefined) {
        // An hour whose samples are all gone keeps its row (and a new version): nothing to keep but that.
        lineage.hours.delete(at);
        lineage.empty.set(at, version);
      } else {
        const before = lineage.hours.get(at);
        if (before !== undefined) carrySlices(rows, before.rows);
        lineage.hours.set(at, { version, rows });
        lineage.empty.delete(at);
      }
    }
    let rows = 0;
    for (const kept of lineage.hours.values()) rows += kept.rows.delay.length;
    if (rows > this.#limits.maxRows) return undefined;
    // Each ping has a row: a dictionary holding many more pings than the rows numbers ones no longer kept.
    if (lineage.dictionary.pings > rows + this.#limits.sparePings) compacted(lineage);
    const hours = [...lineage.hours.values()].map((kept) => kept.rows).sort((a, b) => a.hour - b.hour);
    return { hours, dictionary: lineage.dictionary };
  }
}
