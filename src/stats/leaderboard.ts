// The leaderboard for a room over a window: computed from samples (rolling
// windows and open weeks, cached briefly) or read from a frozen week. Reading
// writes nothing: weeks are frozen and digests built by the scheduler
// (schedule/jobs.ts) through freezeDueWeeks and buildDigests.
import type { StatsConfig, WeekConfig } from '../config.ts';
import type { Db } from '../db/database.ts';
import { InputError } from '../errors.ts';
import { getOrInsert } from '../collections.ts';
import { TtlCache } from './cache.ts';
import { listExclusions, type Exclusion } from './exclusions.ts';
import { findFrozenWeek, refreezeWeek, storeFrozenWeek, type FrozenWeek } from './frozen-weeks.ts';
import { rankServers, type RankedServer } from './ranking.ts';
import { FiguresScratch, figuresFromColumns, PingNumbers, prepareFigures } from './columns.ts';
import { buildRecentDigests, DecodedDigests, windowColumns } from './digests.ts';
import { serverFiguresPerBucket, type BucketFigures } from './repository.ts';
import type { TrackedRoom } from './rooms.ts';
import {
  HOUR_MS,
  isWeekFreezable,
  lastFreezableWeek,
  rollingWindow,
  shiftWeek,
  weekContaining,
  weekWindow,
  type RollingOptions,
  type TimeWindow,
  type WeekWindow,
  WEEK_MS,
} from './windows.ts';

export interface Leaderboard {
  readonly room: TrackedRoom;
  /** `week` is set for calendar weeks, null for rolling windows. */
  readonly week: string | null;
  readonly window: TimeWindow;
  readonly frozenAt: Date | null;
  readonly generatedAt: Date;
  readonly filters: StatsConfig;
  /** The whole ranking; renderers cut it to the requested length. */
  readonly servers: readonly RankedServer[];
  /** Servers left out of the ranking by an operator or room admin, with the reason. */
  readonly exclusions: readonly Exclusion[];
  /** For frozen weeks: 1, then one more for each re-freeze. */
  readonly version: number | null;
}

/** The default window: the seven days up to now. */
export const ROLLING_WEEK = { maxAgeSeconds: 7 * 86_400, minAgeSeconds: 0, capSpanToWeek: false } as const;

export interface ServerWeek {
  readonly week: string;
  readonly start: Date;
  readonly end: Date;
  readonly frozen: boolean;
  /** The published rank, for frozen weeks. */
  readonly rank: number | null;
  /** Null when the server has no sample in the week. */
  readonly medianMs: number | null;
  readonly meanMs: number | null;
  readonly pings: number;
  readonly samples: number;
}

export interface StatisticsOptions {
  readonly db: Db;
  readonly stats: StatsConfig;
  readonly weeks: WeekConfig;
  readonly cacheSeconds: number;
  readonly now?: () => Date;
  /**
   * Whether the digests this process builds are kept for its tables (the
   * default): a one-shot command that builds them and exits has no table to
   * keep them for (naming a week of a million samples costs it hundreds of
   * milliseconds and some 24 MB).
   */
  readonly keepBuiltDigests?: boolean;
}

export class Statistics {
  readonly #db: Db;
  readonly #filters: StatsConfig;
  readonly #weeks: WeekConfig;
  readonly #now: () => Date;
  readonly #keepBuilt: boolean;
  readonly #live: TtlCache<Leaderboard>;
  // Frozen weeks never change: once read they are kept (bounded).
  readonly #frozen = new TtlCache<FrozenWeek>(365 * 86_400_000, 512);
  readonly #digests = new DecodedDigests();
  readonly #scratch = new FiguresScratch();
  /** By room (its lineage's ids): each room's tables number their own pings. */
  readonly #pingNumbers = new Map<string, PingNumbers>();

  constructor(options: StatisticsOptions) {
    this.#db = options.db;
    this.#filters = options.stats;
    this.#weeks = options.weeks;
    this.#now = options.now ?? (() => new Date());
    this.#keepBuilt = options.keepBuiltDigests ?? true;
    this.#live = new TtlCache(options.cacheSeconds * 1000, 256);
  }

  /** Hourly digests read from the database and decoded so far; the others were still in memory. */
  get digestsDecoded(): number {
    return this.#digests.decoded;
  }

  get weekConfig(): WeekConfig {
    return this.#weeks;
  }

  get filters(): StatsConfig {
    return this.#filters;
  }

  now(): Date {
    return this.#now();
  }

  /** The rolling window ending now (the default: the last seven days). */
  async rolling(room: TrackedRoom, options: RollingOptions): Promise<Leaderboard> {
    const key = `rolling|${room.roomIds.join(',')}|${options.maxAgeSeconds}|${options.minAgeSeconds}|${options.capSpanToWeek}`;
    return this.#cached(key, () => this.#compute(room, null, rollingWindow(this.#now(), options)));
  }

  /**
   * A calendar week: as frozen once the scheduler has frozen it, computed
   * live before (the same table a freeze would store, not stored).
   */
  async week(room: TrackedRoom, label: string): Promise<Leaderboard> {
    const window = this.#weekWindow(label);
    if (!window) throw new InputError('week', `expected an ISO week such as 2026-W47, got ${JSON.stringify(label)}`);
    const now = this.#now();
    if (window.start > now) throw new InputError('week', `${label} has not started yet`);
    if (isWeekFreezable(window, now, this.#weeks)) {
      const frozen = await this.#frozenWeek(room, label);
      if (frozen) return this.#fromFrozen(room, frozen);
    }
    return this.#cached(`week|${room.roomIds.join(',')}|${label}`, () => this.#compute(room, label, window));
  }

  /**
   * Builds the missing hourly digests of the last seven days of the rooms
   * (each room all the IDs of its lineage), keeping what it stored in memory,
   * named, for the tables that follow (unless told not to); with
   * `currentHour`, the hour going on too (see buildRecentDigests). Then does
   * with what it kept what each room's next rolling-week table would do
   * first (prepareFigures): after an import of a week of a million samples,
   * 30 ms here, and a first table of 102–113 ms instead of 113–146 on
   * PostgreSQL. Returns how many hours it built.
   */
  async buildDigests(rooms: readonly Pick<TrackedRoom, 'roomIds'>[], { currentHour = false } = {}): Promise<number> {
    const lineages = new Map(rooms.map((room) => [pingNumbersKey(room), room]));
    const roomIds = [...new Set(rooms.flatMap((room) => room.roomIds))];
    const memory = this.#keepBuilt ? this.#digests : undefined;
    const built = await buildRecentDigests(this.#db, roomIds, this.#now(), { memory, currentHour });
    if (memory === undefined || built === 0) return built;
    // The closed hours of the rolling week: its first and last hours are cut at the table, into chunks of their own.
    const end = this.#now().getTime();
    for (const room of lineages.values()) {
      const kept = room.roomIds.flatMap((id) =>
        memory.keptBetween(id, end - WEEK_MS, Math.floor(end / HOUR_MS) * HOUR_MS),
      );
      if (kept.length > 0) prepareFigures(kept, this.#pingNumbersOf(room));
    }
    return built;
  }

  /** What freezing a week stores: its table and the filters and exclusions it was computed with. */
  #frozenRecord(room: TrackedRoom, label: string, window: TimeWindow, board: Leaderboard) {
    return {
      roomId: room.id,
      week: label,
      start: window.start,
      end: window.end,
      filters: this.#filters,
      servers: board.servers,
      exclusions: board.exclusions,
    };
  }

  /**
   * Freezes a closed week. A week without any ranked server is not frozen:
   * history imported later would otherwise be locked out of it for good.
   */
  async freeze(room: TrackedRoom, label: string): Promise<FrozenWeek | undefined> {
    const window = weekWindow(label, this.#weeks);
    if (!window || !isWeekFreezable(window, this.#now(), this.#weeks)) return undefined;
    const board = await this.#compute(room, label, window);
    if (board.servers.length === 0) return undefined;
    const frozen = await storeFrozenWeek(this.#db, this.#frozenRecord(room, label, window, board));
    this.#frozen.set(`${room.id}|${label}`, frozen, now(this));
    // What was rendered of the week before, computed live, gives way to the frozen table.
    this.#generation++;
    return frozen;
  }

  /**
   * Computes a closed week again and stores it as the week's next version
   * (the replaced one stays in its history): how an exclusion reaches a
   * table that was already published.
   */
  async refreeze(room: TrackedRoom, label: string, by: string, reason: string): Promise<FrozenWeek> {
    const window = this.#weekWindow(label);
    if (!window) throw new InputError('week', `expected an ISO week such as 2026-W47, got ${JSON.stringify(label)}`);
    if (!isWeekFreezable(window, this.#now(), this.#weeks))
      throw new InputError('week', `${label} has not closed yet (or is in its grace period): it cannot be frozen`);
    const board = await this.#compute(room, label, window);
    const frozen = await refreezeWeek(this.#db, this.#frozenRecord(room, label, window, board), by, reason);
    this.#frozen.set(`${room.id}|${label}`, frozen, now(this));
    this.#generation++;
    return frozen;
  }

  /** Forgets the live tables computed so far: an exclusion or a deletion shows at once. */
  forgetLiveTables(): void {
    this.#live.clear();
    this.#generation++;
  }

  #generation = 0;

  /** Changes whenever tables computed before may be out of date: caches of what is made from them key on it. */
  get generation(): number {
    return this.#generation;
  }

  /** Freezes, for each room, the last week that has closed, unless done already. Returns the weeks frozen. */
  async freezeDueWeeks(rooms: readonly TrackedRoom[]): Promise<string[]> {
    const label = lastFreezableWeek(this.#now(), this.#weeks).week;
    const frozen: string[] = [];
    for (const room of rooms) {
      if (await this.#frozenWeek(room, label)) continue;
      if (await this.freeze(room, label)) frozen.push(`${room.id} ${label}`);
    }
    return frozen;
  }

  /**
   * One server's figures for each of the last `count` calendar weeks, the
   * current one included: the frozen figures where a week is frozen (what
   * was published), computed from samples otherwise.
   */
  async serverWeeks(room: TrackedRoom, server: string, count: number): Promise<ServerWeek[]> {
    const current = weekContaining(this.#now(), this.#weeks).week;
    const windows = Array.from(
      { length: count },
      (_, i) => weekWindow(shiftWeek(current, i - count + 1), this.#weeks)!,
    );
    const frozenWeeks: (FrozenWeek | undefined)[] = [];
    for (const window of windows) frozenWeeks.push(await this.#frozenWeek(room, window.week));
    // Only the weeks that are not frozen are computed from samples: usually the current one alone.
    const firstLive = frozenWeeks.indexOf(undefined);
    const lastLive = frozenWeeks.lastIndexOf(undefined);
    const boundaries = [windows[firstLive]?.start, ...windows.slice(firstLive, lastLive + 1).map((w) => w.end)];
    const live =
      firstLive < 0
        ? new Map<number, BucketFigures>()
        : new Map(
            (await serverFiguresPerBucket(this.#db, room.roomIds, server, boundaries as Date[], this.#filters)).map(
              (b) => [b.bucket + firstLive, b],
            ),
          );
    const result: ServerWeek[] = [];
    for (const [index, window] of windows.entries()) {
      const frozen = frozenWeeks[index];
      const base = { week: window.week, start: window.start, end: window.end, frozen: frozen !== undefined };
      const figures = frozen ? frozen.servers.find((s) => s.server === server) : live.get(index);
      result.push({
        ...base,
        rank: frozen ? ((figures as RankedServer | undefined)?.rank ?? null) : null,
        medianMs: figures?.medianMs ?? null,
        meanMs: figures?.meanMs ?? null,
        pings: figures?.pings ?? 0,
        samples: figures?.samples ?? 0,
      });
    }
    return result;
  }

  // Time-zone arithmetic is the costliest part of serving a frozen week from memory.
  readonly #weekWindows = new Map<string, WeekWindow | undefined>();

  #weekWindow(label: string): WeekWindow | undefined {
    if (!this.#weekWindows.has(label)) {
      if (this.#weekWindows.size >= 1024) this.#weekWindows.clear();
      this.#weekWindows.set(label, weekWindow(label, this.#weeks));
    }
    return this.#weekWindows.get(label);
  }

  async #frozenWeek(room: TrackedRoom, label: string): Promise<FrozenWeek | undefined> {
    const key = `${room.id}|${label}`;
    const cached = this.#frozen.get(key, now(this));
    if (cached) return cached;
    const stored = await findFrozenWeek(this.#db, room.id, label);
    if (stored) this.#frozen.set(key, stored, now(this));
    return stored;
  }

  #fromFrozen(room: TrackedRoom, frozen: FrozenWeek): Leaderboard {
    return {
      room,
      week: frozen.week,
      window: { start: frozen.start, end: frozen.end, endInclusive: false },
      frozenAt: frozen.frozenAt,
      generatedAt: frozen.frozenAt,
      filters: frozen.filters,
      servers: frozen.servers,
      exclusions: frozen.exclusions,
      version: frozen.version,
    };
  }

  // Keyed by generation too: a request made after an exclusion must not join a computation begun before it.
  #cached(key: string, compute: () => Promise<Leaderboard>): Promise<Leaderboard> {
    return this.#live.getOrCompute(`${this.#generation}|${key}`, now(this), compute);
  }

  #pingNumbersOf(room: Pick<TrackedRoom, 'roomIds'>): PingNumbers {
    const key = pingNumbersKey(room);
    if (!this.#pingNumbers.has(key) && this.#pingNumbers.size >= ROOMS_NUMBERED) this.#pingNumbers.clear();
    return getOrInsert(this.#pingNumbers, key, () => new PingNumbers());
  }

  async #compute(room: TrackedRoom, week: string | null, window: TimeWindow): Promise<Leaderboard> {
    // Two reads at once, as the pingstat answers do: the table waits for the database most.
    const [exclusions, columns] = await Promise.all([
      listExclusions(this.#db, room.id),
      windowColumns(this.#db, this.#digests, room.roomIds, window, this.#now()),
    ]);
    const excluded = new Set(exclusions.map((e) => e.server));
    const figures = figuresFromColumns(columns, this.#filters, {
      pings: this.#pingNumbersOf(room),
      scratch: this.#scratch,
    });
    return {
      room,
      week,
      window,
      frozenAt: null,
      generatedAt: this.#now(),
      filters: this.#filters,
      // Excluded before ranking, so the ranks that remain have no gaps.
      servers: rankServers(
        figures.filter((f) => !excluded.has(f.server)),
        this.#filters.minPings,
      ),
      exclusions,
      version: null,
    };
  }
}

/** A room's ping numbers are kept for its lineage: a table numbers the pings of all its room IDs together. */
const pingNumbersKey = (room: Pick<TrackedRoom, 'roomIds'>) => room.roomIds.join('\n');

/** Rooms whose ping numbers are kept: past it, they are all dropped (and made again as tables are asked for). */
const ROOMS_NUMBERED = 64;

function now(statistics: Statistics): number {
  return statistics.now().getTime();
}
