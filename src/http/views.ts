// What each table, page and API answer needs, assembled in one place: the
// queries it runs, its rendering, and the caches of computed answers, keyed by
// the statistics' generation. A route is its schema and one call here. A table
// or page is kept whole as long as a live table (clients may keep it as long):
// probe figures, the week list and the delivery matrix are read per answer, so
// without it every request would query them again, and a dashboard polled by
// many, or the newsletter week's traffic, costs one computation per period
// instead. Pingstat's answers list every delay of the window, so they are kept
// as streamed, bounded in bytes (shared-body.ts). The /api/v1 answers are
// computed per request.
import { DEFAULT_CLOCK_OFFSET_THRESHOLD_MS } from '../config.ts';
import { InputError, NotFoundError } from '../errors.ts';
import { isValidServerName } from '../matrix-ids.ts';
import { exclusionJson, probeFieldsJson, rankedServerJson, renderLeaderboardJson } from '../render/leaderboard-json.ts';
import { renderNewsletterTable } from '../render/markdown.ts';
import { matrixSection, serverMatrixSection } from '../render/matrix.ts';
import { pingstatJsonParts, renderPingstatHtml } from '../render/pingstat.ts';
import {
  rankingPageRows,
  rankingPages,
  renderLeaderboardPage,
  renderNothingYetPage,
  renderServerPage,
  type RecentWeeks,
} from '../render/page.ts';
import { latestSamplesOfServer, mostRecentRoom } from '../samples/repository.ts';
import { sampleToRecord } from '../samples/sample.ts';
import { TtlCache } from '../stats/cache.ts';
import { listExclusions } from '../stats/exclusions.ts';
import {
  findFrozenWeek,
  frozenWeekHistory,
  frozenWeekVersion,
  listFrozenWeeks,
  type FrozenWeek,
} from '../stats/frozen-weeks.ts';
import { ROLLING_WEEK, type Leaderboard, type Statistics } from '../stats/leaderboard.ts';
import {
  matrixInWindow,
  probeFiguresInWindow,
  serverIsKnown,
  serverProbeFiguresPerBucket,
  weekBoundaries,
} from '../stats/probe-figures.ts';
import { eachRawRowsPage, pingstatGroups } from '../stats/pingstat-data.ts';
import { rawRowsFromHours } from '../stats/pong-hours.ts';
import { isFileRange, type SpillDirectory } from '../spill.ts';
import { PingstatSummaries } from '../stats/pingstat-summaries.ts';
import { summarisePingstat, type PingstatSummary } from '../stats/pingstat-summary.ts';
import { PongStore } from '../stats/pong-store.ts';
import {
  PINGSTAT_WEEK_MS,
  pingstatAgesKey,
  pingstatWindow,
  type PingstatAges,
  type PingstatWindow,
} from '../stats/pingstat-window.ts';
import type { RoomRegistry, TrackedRoom } from '../stats/rooms.ts';
import {
  resolveRoom,
  selectLeaderboard,
  selectTable,
  type LeaderboardQuery,
  type SelectionDeps,
} from '../stats/selection.ts';
import { dailyMedians, delayHistogram, hourlyMedians } from '../stats/server-detail.ts';
import { rollingWindow, shiftWeek, weekContaining, weekWindow, type TimeWindow } from '../stats/windows.ts';
import { encodeBody, type EncodedBody } from './caching.ts';
import type { HttpDeps } from './deps.ts';
import { NEWSLETTER_ROWS } from './schemas.ts';
import { SharedBodyCache, type SharedBody } from './shared-body.ts';

/** Weeks of history on a server's page: half a year. */
const SERVER_PAGE_WEEKS = 26;
/** Calendar weeks in each row's sparkline on `/`: two months, the board's week the last. */
const SPARKLINE_WEEKS = 8;
/** Days of daily medians on a server's page: a month, today included. */
const SERVER_PAGE_DAYS = 30;
/**
 * The latest samples are picked per responder from the server's newest ones:
 * an index scan, where a per-responder query would read all of the server's
 * history. Every responder active lately is among them.
 */
const LATEST_SAMPLES = 500;
/** Answers kept at once: query parameters (rooms, weeks, servers, limits) come from the internet. */
const KEPT_ANSWERS = 512;
/** Raw rows written between two turns of the event loop: the first time an hour is written, 1 MB is a few ms. */
const RAW_TURN_BYTES = 1 << 20;

/**
 * Finished pingstat answers kept at most: a week of a busy room's stats.json (57 MB
 * at a million samples) and its HTML, while the service stays small; a larger
 * answer is still made once for the clients that ask while it is made.
 */
const KEPT_PINGSTAT_BYTES = 96 * 1024 * 1024;
/** And of the spilled raw rows they keep alive, on disk: three weeks of a busy room's. */
const KEPT_PINGSTAT_FILE_BYTES = 512 * 1024 * 1024;

/** The existing aggregator's answers, each written as it is made (they list every delay of the window). */
export type PingstatAnswer = 'stats.json' | 'stats.raw.json' | 'stats.html';

/** What the views read from: the app's parts they query. */
export type ViewSources = Pick<
  HttpDeps,
  'database' | 'statistics' | 'rooms' | 'cacheSeconds' | 'clockOffsetThresholdMs' | 'spill'
>;

/** What a route is registered with: the app's parts, and the one Views built from them. */
export interface RouteDeps extends HttpDeps {
  readonly views: Views;
}

/** An answer as sent: its bytes, and whether it shows a frozen week (which clients may keep for good). */
export interface Answer {
  readonly body: EncodedBody;
  readonly frozen: boolean;
}

/** Each ranked server's median in the calendar week before the board's window (the last closed week for a rolling one). */
async function previousWeekMedians(statistics: Statistics, board: Leaderboard) {
  const week = shiftWeek(board.week ?? weekContaining(board.window.end, statistics.weekConfig).week, -1);
  const previous = await statistics.week(board.room, week);
  return { week, medians: new Map(previous.servers.map((s) => [s.server, s.medianMs])) };
}

/**
 * The weekly medians of the page's servers over the last calendar weeks, the
 * board's week the last (the current one for a rolling board): one ranking
 * per week for all rows, read as every table reads it (a frozen week as
 * published, a live one from the digests, kept by Statistics), so each point
 * is the median the week's ranking showed. A query of the samples of eight
 * weeks took 650 ms for a page of 100 servers.
 */
async function recentWeekMedians(
  statistics: Statistics,
  board: Leaderboard,
  servers: readonly string[],
): Promise<RecentWeeks> {
  const last = board.week ?? weekContaining(board.window.end, statistics.weekConfig).week;
  const weeks = Array.from({ length: SPARKLINE_WEEKS }, (_, i) => shiftWeek(last, i - SPARKLINE_WEEKS + 1));
  const medians = new Map(servers.map((s) => [s, Array<number | null>(weeks.length).fill(null)]));
  for (const [index, week] of weeks.entries())
    for (const ranked of (await statistics.week(board.room, week)).servers)
      medians.get(ranked.server)?.splice(index, 1, ranked.medianMs);
  return { weeks, medians };
}

export class Views {
  /** What rooms and tables are selected with, built once for every route. */
  readonly selection: SelectionDeps;
  readonly #statistics: Statistics;
  readonly #rooms: RoomRegistry;
  readonly #thresholdMs: number;
  readonly #answers: TtlCache<Answer>;
  /**
   * The frozen weeks' list is read, not computed, and another process (the
   * leading instance, a command-line refreeze) may freeze a week at any
   * moment: a read is shared by the clients asking while it runs, not kept.
   */
  readonly #frozenWeekLists: TtlCache<Answer>;
  /** Pingstat's answers are too large to make whole first: they are kept as streamed, bounded in bytes. */
  readonly #pingstatAnswers: SharedBodyCache;
  /** The recent pongs those answers list, kept by hour and read again only where they changed. */
  readonly #pongs = new PongStore();
  readonly #pingstatFigures: PingstatSummaries;
  readonly #spill: SpillDirectory | undefined;

  constructor(sources: ViewSources) {
    this.#spill = sources.spill;
    this.#pingstatFigures = new PingstatSummaries(sources.spill);
    this.selection = { db: sources.database.db, statistics: sources.statistics, rooms: sources.rooms };
    this.#statistics = sources.statistics;
    this.#rooms = sources.rooms;
    this.#thresholdMs = sources.clockOffsetThresholdMs ?? DEFAULT_CLOCK_OFFSET_THRESHOLD_MS;
    this.#answers = new TtlCache(sources.cacheSeconds * 1000, KEPT_ANSWERS);
    this.#frozenWeekLists = new TtlCache(0, KEPT_ANSWERS);
    this.#pingstatAnswers = new SharedBodyCache(
      sources.cacheSeconds * 1000,
      KEPT_PINGSTAT_BYTES,
      KEPT_PINGSTAT_FILE_BYTES,
    );
  }

  /**
   * `key` names the answer by its view and parameters; as JSON, since a
   * server name or room reference may contain any separator. Keyed by
   * generation too: a request made after an exclusion must not join a
   * computation begun before it.
   */
  #cached(key: readonly unknown[], compute: () => Promise<Answer>): Promise<Answer> {
    return this.#answers.getOrCompute(this.#cacheKey(key), this.#statistics.now().getTime(), compute);
  }

  /**
   * An /api/v1 answer, computed and written once however many clients ask for
   * it at once, as the tables are: writing a week of a thousand rows costs more
   * than reading it.
   */
  #cachedApi(
    key: readonly unknown[],
    compute: () => Promise<object>,
    cache: TtlCache<Answer> = this.#answers,
  ): Promise<Answer> {
    return cache.getOrCompute(this.#cacheKey(['api', ...key]), this.#statistics.now().getTime(), async () => ({
      body: encodeBody(JSON.stringify(await compute())),
      frozen: false,
    }));
  }

  #cacheKey(key: readonly unknown[]): string {
    return JSON.stringify([this.#statistics.generation, ...key]);
  }

  /** The newsletter table in markdown; an empty table is an EmptyTableError (a 404), not a table a script would publish. */
  async newsletterTable(
    query: LeaderboardQuery,
    limit: number,
  ): Promise<{ readonly text: string; readonly frozen: boolean }> {
    const { board } = await selectTable(this.selection, query, undefined);
    return { text: renderNewsletterTable(board.servers, limit), frozen: board.frozenAt !== null };
  }

  /** The ranking with every figure, probes' included: a room measured by probes alone is not empty. */
  leaderboardJson(query: LeaderboardQuery, limit: number): Promise<Answer> {
    return this.#cached(['leaderboard.json', query.room, query.week, query.days, limit], async () => {
      const { board, probes } = await selectTable(this.selection, query, { clockOffsetThresholdMs: this.#thresholdMs });
      return {
        body: encodeBody(JSON.stringify(renderLeaderboardJson(board, limit, probes))),
        frozen: board.frozenAt !== null,
      };
    });
  }

  /** `/`: the ranking's page `page`, with podium, trends, pickers and the delivery matrix. */
  async leaderboardPage(room: string | undefined, week: string | undefined, page: number): Promise<EncodedBody> {
    const { db } = this.selection;
    const answer = await this.#cached(['/', room, week, page], async () => {
      if (room === undefined && this.#rooms.default() === undefined && (await mostRecentRoom(db)) === undefined)
        return { body: encodeBody(renderNothingYetPage()), frozen: false };
      const board = await selectLeaderboard(this.selection, { room, week });
      const pages = rankingPages(board.servers.length);
      if (page > pages)
        throw new InputError(
          'page',
          `there is no page ${page}: this ranking has ${pages === 1 ? '1 page' : `${pages} pages`}`,
        );
      const probes = await probeFiguresInWindow(db, board.room, board.window, this.#thresholdMs);
      const previous = await previousWeekMedians(this.#statistics, board);
      const weeks = await listFrozenWeeks(db, board.room.id);
      const matrix = await matrixInWindow(db, board.room, board.window, this.#thresholdMs);
      const shown = rankingPageRows(board.servers, page).map((s) => s.server);
      const recent = await recentWeekMedians(this.#statistics, board, shown);
      const html = renderLeaderboardPage({
        board,
        probes,
        previous,
        weeks,
        matrixHtml: matrixSection(matrix),
        rooms: this.#rooms.list().map((r) => ({ id: r.id, label: r.reference })),
        defaultRoomId: this.#defaultRoomId(room, board),
        newsletterMarkdown: renderNewsletterTable(board.servers, NEWSLETTER_ROWS),
        page,
        recent,
      });
      return { body: encodeBody(html), frozen: false };
    });
    return answer.body;
  }

  /** `/servers/{server}`: weekly medians, this week's delay distribution, latest samples per responder. */
  async serverPage(server: string, room: string | undefined, week: string | undefined): Promise<EncodedBody> {
    const { db } = this.selection;
    const statistics = this.#statistics;
    const answer = await this.#cached(['servers', server, room, week], async () => {
      const board = await selectLeaderboard(this.selection, { room, week });
      // Any name that holds samples gets its page, valid or not: every row of the ranking links here.
      if (!(await serverIsKnown(db, board.room, server)))
        throw new NotFoundError(`no samples from ${server} in ${board.room.id}`);
      const [probe] = await probeFiguresInWindow(db, board.room, board.window, this.#thresholdMs, server);
      const weeks = await statistics.serverWeeks(board.room, server, SERVER_PAGE_WEEKS);
      const weekProbes = await serverProbeFiguresPerBucket(
        db,
        board.room,
        server,
        weekBoundaries(weeks),
        this.#thresholdMs,
      );
      const html = renderServerPage({
        server,
        board,
        probe,
        weeks: weeks.map((w, index) => ({ week: w, probe: weekProbes.get(index) })),
        days: await dailyMedians(
          db,
          board.room.roomIds,
          server,
          statistics.filters,
          statistics.now(),
          SERVER_PAGE_DAYS,
        ),
        histogram: await delayHistogram(db, board.room.roomIds, server, board.window, statistics.filters),
        hours: await hourlyMedians(db, board.room.roomIds, server, board.window, statistics.filters),
        latest: await latestSamplesOfServer(db, board.room.roomIds, server, LATEST_SAMPLES),
        defaultRoomId: this.#defaultRoomId(room, board),
        matrixHtml: serverMatrixSection(await matrixInWindow(db, board.room, board.window, this.#thresholdMs), server),
        now: statistics.now(),
      });
      return { body: encodeBody(html), frozen: false };
    });
    return answer.body;
  }

  /** A pingstat answer, shared with every client that asks for the same, once its first bytes are made. */
  async pingstat(roomId: string, ages: PingstatAges, answer: PingstatAnswer): Promise<SharedBody> {
    const room = await resolveRoom(this.selection, roomId);
    // Keyed by generation too: a request made after an exclusion must not join an answer begun before it.
    const key = JSON.stringify([this.#statistics.generation, answer, room.id, room.roomIds, pingstatAgesKey(ages)]);
    const body = this.#pingstatAnswers.get(key, this.#statistics.now().getTime(), (made) =>
      this.#makePingstat[answer](room, ages, made),
    );
    // A failure before the first byte (the database is down) is still an error reply.
    await body.started();
    return body;
  }

  // The newsletter tooling builds its table from these figures: excluded servers are left out here too.
  // (The raw rows stay complete: they are the samples as measured.)
  async #pingstatSummary(room: TrackedRoom, ages: PingstatAges): Promise<PingstatSummary> {
    const { db } = this.selection;
    const window = pingstatWindow(this.#statistics.now(), ages, PINGSTAT_WEEK_MS);
    // Two round trips at once: after a new pong, most of an answer's time is waiting for the database.
    const [exclusions, pongs] = await Promise.all([listExclusions(db, room.id), this.#pongSnapshot(room, window)]);
    const excluded = exclusions.map((e) => e.server);
    const { filters } = this.#statistics;
    if (pongs === undefined)
      return summarisePingstat(await pingstatGroups(db, room.roomIds, window, filters, excluded), room.disclaimer);
    const key = JSON.stringify([room.roomIds, pingstatAgesKey(ages)]);
    return this.#pingstatFigures.summary(key, pongs, window, filters, excluded, room.disclaimer);
  }

  #pongSnapshot(room: TrackedRoom, window: PingstatWindow) {
    return this.#pongs.snapshot(this.selection.db, room.roomIds, window, this.#statistics.now());
  }

  readonly #makePingstat: Record<
    PingstatAnswer,
    (room: TrackedRoom, ages: PingstatAges, body: SharedBody) => Promise<void>
  > = {
    'stats.json': async (room, ages, body) => {
      for (const part of pingstatJsonParts(await this.#pingstatSummary(room, ages))) body.write(part);
    },
    'stats.html': async (room, ages, body) =>
      body.write(renderPingstatHtml(await this.#pingstatSummary(room, ages), room.id)),
    // No one-week cap here: pingstat's stats_raw_json passes max_delta=0.
    'stats.raw.json': async (room, ages, body) => {
      const window = pingstatWindow(this.#statistics.now(), ages, 0n);
      const currentRoomId = room.roomIds.at(-1) ?? room.id;
      body.write('[');
      const pongs = await this.#pongSnapshot(room, window);
      if (pongs === undefined) {
        let first = true;
        await eachRawRowsPage(this.selection.db, room.roomIds, currentRoomId, window, (rows) => {
          body.write(`${first ? '' : ','}${rows.join(',')}`);
          first = false;
        });
      } else {
        let sinceTurn = 0;
        for (const rows of rawRowsFromHours(pongs.hours, pongs.dictionary, window, currentRoomId, this.#spill)) {
          body.write(rows);
          sinceTurn += isFileRange(rows) ? rows.end - rows.start : rows.length;
          // Other requests (the health check among them) get a turn between megabytes.
          if (sinceTurn >= RAW_TURN_BYTES) {
            sinceTurn = 0;
            await new Promise(setImmediate);
          }
        }
      }
      body.write(']');
    },
  };

  /** `/api/v1/matrix`: delivery times between probed servers on one clock, and each server's clock offset. */
  async deliveryMatrix(query: {
    readonly room?: string | undefined;
    readonly week?: string | undefined;
    readonly days?: number | undefined;
  }): Promise<Answer> {
    const { week, days } = query;
    const window = this.#matrixWindow(week, days);
    return this.#cachedApi(['matrix', query.room, week, days], () => this.#deliveryMatrix(query.room, window));
  }

  async #deliveryMatrix(roomReference: string | undefined, window: TimeWindow) {
    const { db } = this.selection;
    const room = await resolveRoom(this.selection, roomReference);
    const matrix = await matrixInWindow(db, room, window, this.#thresholdMs);
    return {
      room: room.id,
      start: window.start.toISOString(),
      end: window.end.toISOString(),
      threshold_ms: this.#thresholdMs,
      servers: matrix.servers,
      pairs: matrix.pairs.map((p) => ({
        from: p.from,
        to: p.to,
        median_ms: p.medianMs,
        p90_ms: p.p90Ms,
        count: p.count,
      })),
      offsets: matrix.offsets.map((o) => ({
        server: o.server,
        offset_ms: o.offsetMs,
        bound_ms: o.boundMs,
        samples: o.samples,
        flagged: o.flagged,
      })),
    };
  }

  /** `/api/v1/weeks`: a room's frozen weeks, newest first. */
  frozenWeeks(query: { readonly room?: string | undefined }): Promise<Answer> {
    return this.#cachedApi(['weeks', query.room], () => this.#frozenWeeks(query.room), this.#frozenWeekLists);
  }

  async #frozenWeeks(roomReference: string | undefined) {
    const room = await resolveRoom(this.selection, roomReference);
    const weeks = await listFrozenWeeks(this.selection.db, room.id);
    return {
      room: room.id,
      weeks: weeks.map((w) => ({
        week: w.week,
        start: w.start.toISOString(),
        end: w.end.toISOString(),
        frozen_at: w.frozenAt.toISOString(),
        servers: w.servers,
        version: w.version,
      })),
    };
  }

  /** `/api/v1/weeks/{week}`: one frozen week as published now, and every version it replaced. */
  async frozenWeek(week: string, query: { readonly room?: string | undefined }): Promise<Answer> {
    const room = await resolveRoom(this.selection, query.room);
    // A refreeze stores the week's next version: the answer kept is that of the version stored now.
    const version = await frozenWeekVersion(this.selection.db, room.id, week);
    if (version === undefined) throw new NotFoundError(`${week} is not frozen in ${room.id}`);
    return this.#cachedApi(['week', week, room.id, version], () => this.#frozenWeek(week, room));
  }

  async #frozenWeek(week: string, room: TrackedRoom) {
    const { db } = this.selection;
    const current = await findFrozenWeek(db, room.id, week);
    if (!current) throw new NotFoundError(`${week} is not frozen in ${room.id}`);
    const version = (w: FrozenWeek) => ({
      version: w.version,
      frozen_at: w.frozenAt.toISOString(),
      rows: w.servers.map((s) => rankedServerJson(s)),
      excluded: w.exclusions.map(exclusionJson),
    });
    const history = await frozenWeekHistory(db, room.id, week);
    return {
      room: room.id,
      week: current.week,
      start: current.start.toISOString(),
      end: current.end.toISOString(),
      current: version(current),
      superseded: history.map((w) => ({
        ...version(w),
        superseded_at: w.supersededAt.toISOString(),
        superseded_by: w.supersededBy,
        reason: w.reason,
      })),
    };
  }

  /** `/api/v1/servers/{server}`: one ping server's weekly figures over time and its latest samples. */
  serverHistory(
    server: string,
    query: { readonly room?: string | undefined; readonly weeks: number; readonly samples: number },
  ): Promise<Answer> {
    if (!isValidServerName(server))
      throw new InputError('server', `not a valid server name: ${JSON.stringify(server.slice(0, 100))}`);
    return this.#cachedApi(['server', server, query.room, query.weeks, query.samples], () =>
      this.#serverHistory(server, query),
    );
  }

  async #serverHistory(
    server: string,
    query: { readonly room?: string | undefined; readonly weeks: number; readonly samples: number },
  ) {
    const { db } = this.selection;
    const room = await resolveRoom(this.selection, query.room);
    if (!(await serverIsKnown(db, room, server))) throw new NotFoundError(`no samples from ${server} in ${room.id}`);
    const weeks = await this.#statistics.serverWeeks(room, server, query.weeks);
    const probes = await serverProbeFiguresPerBucket(db, room, server, weekBoundaries(weeks), this.#thresholdMs);
    const latest = await latestSamplesOfServer(db, room.roomIds, server, query.samples);
    return {
      server,
      room: room.id,
      weeks: weeks.map((w, index) => ({
        week: w.week,
        start: w.start.toISOString(),
        end: w.end.toISOString(),
        frozen: w.frozen,
        rank: w.rank,
        median_ms: w.medianMs,
        mean_ms: w.meanMs,
        pings: w.pings,
        samples: w.samples,
        ...probeFieldsJson(probes.get(index)),
        probe_pings_sent: probes.get(index)?.pingsSent ?? 0,
        probe_pings_lost: probes.get(index)?.pingsLost ?? 0,
      })),
      latest_samples: latest.map(sampleToRecord) as never,
    };
  }

  /** The week asked for, or the rolling window of the last `days` days (7 by default), as the leaderboard takes them. */
  #matrixWindow(week: string | undefined, days: number | undefined): TimeWindow {
    if (week !== undefined && days !== undefined) throw new InputError('week', 'give either week or days, not both');
    if (week === undefined)
      return rollingWindow(this.#statistics.now(), { ...ROLLING_WEEK, maxAgeSeconds: (days ?? 7) * 86_400 });
    const window = weekWindow(week, this.#statistics.weekConfig);
    if (!window) throw new InputError('week', `expected an ISO week such as 2026-W47, got ${JSON.stringify(week)}`);
    return window;
  }

  /** The room that links may leave out: the one `/` shows without a room parameter. */
  #defaultRoomId(asked: string | undefined, board: Leaderboard): string | null {
    return asked === undefined ? board.room.id : (this.#rooms.default()?.id ?? null);
  }
}
