// The leaderboard for a room over a window: computed from samples (rolling
// windows and open weeks, cached briefly) or read from a frozen week.
import type { StatsConfig, WeekConfig } from '../config.ts';
import type { Db } from '../db/database.ts';
import { InputError } from '../errors.ts';
import { TtlCache } from './cache.ts';
import { findFrozenWeek, storeFrozenWeek, type FrozenWeek } from './frozen-weeks.ts';
import { rankServers, type RankedServer } from './ranking.ts';
import { figuresFromColumns } from './columns.ts';
import { windowColumns } from './digests.ts';
import { serverFiguresPerBucket } from './repository.ts';
import type { TrackedRoom } from './rooms.ts';
import {
  isWeekFreezable, lastFreezableWeek, rollingWindow, shiftWeek, weekContaining, weekWindow, type RollingOptions, type TimeWindow, type WeekWindow,
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
}

export class Statistics {
  readonly #db: Db;
  readonly #filters: StatsConfig;
  readonly #weeks: WeekConfig;
  readonly #now: () => Date;
  readonly #live: TtlCache<Leaderboard>;
  // Frozen weeks never change: once read they are kept (bounded).
  readonly #frozen = new TtlCache<FrozenWeek>(365 * 86_400_000, 512);

  constructor(options: StatisticsOptions) {
    this.#db = options.db;
    this.#filters = options.stats;
    this.#weeks = options.weeks;
    this.#now = options.now ?? (() => new Date());
    this.#live = new TtlCache(options.cacheSeconds * 1000, 256);
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

  /** A calendar week: frozen once closed (freezing it now if needed), computed live before. */
  async week(room: TrackedRoom, label: string): Promise<Leaderboard> {
    const window = this.#weekWindow(label);
    if (!window) throw new InputError('week', `expected an ISO week such as 2026-W47, got ${JSON.stringify(label)}`);
    const now = this.#now();
    if (window.start > now) throw new InputError('week', `${label} has not started yet`);
    if (isWeekFreezable(window, now, this.#weeks)) {
      const frozen = await this.#frozenWeek(room, label) ?? await this.freeze(room, label);
      if (frozen) return this.#fromFrozen(room, frozen);
    }
    return this.#cached(`week|${room.roomIds.join(',')}|${label}`, () => this.#compute(room, label, window));
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
    const frozen = await storeFrozenWeek(this.#db, {
      roomId: room.id, week: label, start: window.start, end: window.end, filters: this.#filters, servers: board.servers,
    });
    this.#frozen.set(`${room.id}|${label}`, frozen, now(this));
    return frozen;
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
    const windows = Array.from({ length: count }, (_, i) => weekWindow(shiftWeek(current, i - count + 1), this.#weeks)!);
    const boundaries = [windows[0]!.start, ...windows.map((w) => w.end)];
    const live = new Map((await serverFiguresPerBucket(this.#db, room.roomIds, server, boundaries, this.#filters)).map((b) => [b.bucket, b]));
    const result: ServerWeek[] = [];
    for (const [index, window] of windows.entries()) {
      const frozen = await this.#frozenWeek(room, window.week);
      const base = { week: window.week, start: window.start, end: window.end, frozen: frozen !== undefined };
      const figures = frozen ? frozen.servers.find((s) => s.server === server) : live.get(index);
      result.push({
        ...base,
        rank: frozen ? (figures as RankedServer | undefined)?.rank ?? null : null,
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
    };
  }

  async #cached(key: string, compute: () => Promise<Leaderboard>): Promise<Leaderboard> {
    const hit = this.#live.get(key, now(this));
    if (hit) return hit;
    const board = await compute();
    this.#live.set(key, board, now(this));
    return board;
  }

  async #compute(room: TrackedRoom, week: string | null, window: TimeWindow): Promise<Leaderboard> {
    const figures = figuresFromColumns(await windowColumns(this.#db, room.roomIds, window, this.#now()), window, this.#filters);
    return {
      room,
      week,
      window,
      frozenAt: null,
      generatedAt: this.#now(),
      filters: this.#filters,
      servers: rankServers(figures, this.#filters.minPings),
    };
  }
}

function now(statistics: Statistics): number {
  return statistics.now().getTime();
}
