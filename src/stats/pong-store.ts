// The recent samples of each room lineage the aggregator-compatible routes
// were asked for, kept in memory by hour of pong time (pong-hours.ts). On
// each request the store reads the hours' versions (the table sample_hours,
// renewed by a trigger on every change of samples, by any process) and reads
// again only the hours whose version changed: after a new pong, one hour.
// Windows that start before the kept span (a `min_age` reaching back, raw
// rows older than a week) are read from the database as before.
import { sql } from 'kysely';
import type { Db } from '../db/database.ts';
import { HOUR_MS, parsePongHour, PongDictionary, type PongHour } from './pong-hours.ts';
import { PINGSTAT_WEEK_MS, type PingstatWindow } from './pingstat-window.ts';

/** What a request walks: the lineage's hours in ascending order, and the dictionary they are numbered in. */
export interface PongSnapshot {
  readonly hours: readonly PongHour[];
  readonly dictionary: PongDictionary;
}

export interface PongStoreLimits {
  /** Rows kept per lineage at most (28 bytes each): a lineage with more is read from the database. */
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
  dictionary = new PongDictionary();
  hours = new Map<number, KeptHour>();
  /** Refreshes run one at a time: each reads the versions after the one before it stored its hours. */
  queue: Promise<unknown> = Promise.resolve();
}

/** The start of the span kept at `now`: the hour holding the start of pingstat's default (and longest) week. */
export function keptFrom(now: Date): number {
  const weekStart = now.getTime() - Number(PINGSTAT_WEEK_MS);
  return Math.floor(weekStart / HOUR_MS) * HOUR_MS;
}

const HOUR_OF = sql`date_bin('1 hour', coalesce(pong_ts, measured_at), timestamptz '2000-01-01 00:00:00+00')`;
const PONG_TIME = sql`coalesce(pong_ts, measured_at)`;

async function readHours(
  db: Db,
  roomIds: readonly string[],
  hours: readonly number[],
  dictionary: PongDictionary,
): Promise<PongHour[]> {
  const from = new Date(Math.min(...hours));
  const to = new Date(Math.max(...hours) + HOUR_MS);
  // Hashed by hour, unsorted: parsePongHour sorts each hour's rows.
  const { rows } = await sql<{ hour: number; n: number; lines: string }>`
    select (extract(epoch from hour) * 1000)::float8 as hour, count(*)::int as n, string_agg(line, E'\n') as lines
    from (
      select ${HOUR_OF} as hour,
        concat_ws(',', (extract(epoch from ${PONG_TIME}) * 1000000)::bigint, delay_ms,
          array_position(${[...roomIds]}::text[], room_id) - 1,
          to_json(ping_event_id), to_json(ping_server), to_json(responder_server), to_json(responder)) as line
      from samples
      where room_id = any(${[...roomIds]}::text[]) and ${PONG_TIME} >= ${from} and ${PONG_TIME} < ${to}
    ) rows
    where hour = any(${hours.map((hour) => new Date(hour).toISOString())}::timestamptz[])
    group by hour
  `.execute(db);
  return rows.map((row) => parsePongHour(row.hour, row.n, row.lines, dictionary));
}

/** The hours again, numbered in a new dictionary holding only what they use. */
function compacted(lineage: Lineage): void {
  const from = lineage.dictionary;
  const dictionary = new PongDictionary();
  for (const [at, kept] of lineage.hours) {
    const rows = {
      ...kept.rows,
      ping: kept.rows.ping.map((p) => dictionary.ping(from.pingJson[p]!)),
      pingServer: kept.rows.pingServer.map((n) => dictionary.name(from.nameJson[n]!)),
      responderServer: kept.rows.responderServer.map((n) => dictionary.name(from.nameJson[n]!)),
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
    const from = keptFrom(now);
    const key = JSON.stringify(roomIds);
    if (window.start.getTime() < from || this.#tooLarge.has(key)) return undefined;
    let lineage = this.#lineages.get(key);
    this.#lineages.delete(key);
    lineage ??= new Lineage();
    this.#lineages.set(key, lineage);
    for (const [oldest] of this.#lineages) {
      if (this.#lineages.size <= MAX_LINEAGES) break;
      this.#lineages.delete(oldest);
    }
    const refreshed = lineage.queue.then(() => this.#refresh(db, lineage, roomIds, from));
    lineage.queue = refreshed.catch(() => undefined);
    const snapshot = await refreshed;
    if (snapshot === undefined) {
      this.#tooLarge.add(key);
      this.#lineages.delete(key);
    }
    return snapshot;
  }

  async #refresh(
    db: Db,
    lineage: Lineage,
    roomIds: readonly string[],
    from: number,
  ): Promise<PongSnapshot | undefined> {
    const listed = await db
      .selectFrom('sample_hours')
      .select(['room_id', 'hour', sql<string>`version::text`.as('version')])
      .where('room_id', 'in', roomIds.length > 0 ? [...roomIds] : [''])
      .where('hour', '>=', new Date(from))
      .orderBy('hour')
      .orderBy('room_id')
      .execute();
    const versions = new Map<number, string>();
    for (const { room_id, hour, version } of listed) {
      const at = hour.getTime();
      versions.set(at, `${versions.get(at) ?? ''}${roomIds.indexOf(room_id)}:${version};`);
    }
    for (const at of lineage.hours.keys()) if (!versions.has(at)) lineage.hours.delete(at);
    const stale = [...versions].filter(([at, version]) => lineage.hours.get(at)?.version !== version);
    // One query for all: a week's rows lie anywhere in the table, and each query would visit all of it.
    const read =
      stale.length === 0
        ? new Map<number, PongHour>()
        : new Map(
            (
              await readHours(
                db,
                roomIds,
                stale.map(([at]) => at),
                lineage.dictionary,
              )
            ).map((rows) => [rows.hour, rows]),
          );
    for (const [at, version] of stale) {
      const rows = read.get(at);
      // An hour whose samples are all gone keeps its row (and a new version): nothing to keep.
      if (rows === undefined) lineage.hours.delete(at);
      else lineage.hours.set(at, { version, rows });
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
