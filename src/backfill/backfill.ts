// Backfill: reads a ping room's history backwards through /messages, and
// through the rooms it replaced (m.room.create's predecessor), and stores
// every pong in it as the live bot would have (same function, same fields).
// Pages are read ahead while the previous one is written; the position is
// saved after each page's samples are, so an interrupted run re-reads at
// most one page, and a finished one remembers how far it read.
import { Direction, Filter, type MatrixClient } from 'matrix-js-sdk';
import type { RoomConfig } from '../config.ts';
import type { Db } from '../db/database.ts';
import type { Logger } from '../log.ts';
import { readPongEvent } from '../matrix/pong.ts';
import { retryTransient } from '../matrix/retry.ts';
import { serverOfUserId } from '../matrix-ids.ts';
import { followRoom, joinVia, readPredecessor, serverOfRoomId, serversByMembers, viaServers } from '../matrix/rooms.ts';
import { readStateValue, writeStateValue } from '../matrix/state.ts';
import { recordSamples } from '../samples/repository.ts';
import { retentionCutoff } from '../samples/retention.ts';
import type { Sample } from '../samples/sample.ts';
import { storeKnownRoom } from '../stats/rooms.ts';
import {
  coverageKey,
  mergeSpan,
  nextWalk,
  parseCoverage,
  type Coverage,
  type Position,
  type Walk,
} from './coverage.ts';
import { emptyCounts, type BackfillCounts } from './progress.ts';

/** The most /messages returns at once on Synapse and the test homeserver. */
const PAGE_SIZE = 1000;
/** A room upgraded more often than this is a loop, not a lineage. */
const MAX_ROOMS = 50;
/** Server errors and broken connections are retried for about five minutes before the run gives up. */
const REQUEST_ATTEMPTS = 14;
/** At the start (joining the room) a few seconds: a wrong URL or a server that is down fails fast. */
const START_ATTEMPTS = 5;

export interface BackfillOptions {
  /** A client of the bot's account (createAccountClient); no sync is started. */
  readonly client: MatrixClient;
  readonly db: Db;
  readonly log: Logger;
  /** Pongs measured before this are not recorded, and the walk stops there. */
  readonly since: Date;
  readonly now?: Date;
  /**
   * PINGBOARD_RETENTION_DAYS: a `since` further back is moved up to what the
   * retention keeps (with a log line), as the daily clean-up would delete
   * older samples soon after they were stored. Absent: no limit.
   */
  readonly retentionDays?: number | undefined;
  /** Responders whose pongs are recorded; empty: every sender of a well-formed pong. */
  readonly trustedResponders: readonly string[];
  /** Aborting stops the walk after the page in hand; the next run continues from there. */
  readonly signal?: AbortSignal;
  /** Called after each page with the running counts (shared by every room of the run). */
  readonly onProgress?: (counts: Readonly<BackfillCounts>) => void;
  /** Counts to add to, so several rooms make one total. */
  readonly counts?: BackfillCounts;
}

export interface BackfillResult {
  readonly counts: BackfillCounts;
  /** False when the run was aborted before it reached `since`. */
  readonly completed: boolean;
  /** Rooms whose history could not be read, with why: the run covered less than asked. */
  readonly unreadable: readonly { readonly room: string; readonly error: string }[];
}

interface HistoryEvent {
  readonly type?: string;
  readonly sender?: string;
  readonly origin_server_ts?: number;
  readonly content?: Record<string, unknown>;
}

interface Page {
  readonly events: readonly HistoryEvent[];
  /** The position after this page, or undefined at the start of the room. */
  readonly end: string | undefined;
}

const httpStatus = (err: unknown) => (err as { httpStatus?: number }).httpStatus;

/** What one walk of one lineage needs from the caller. */
interface Walker {
  readonly options: BackfillOptions;
  readonly counts: BackfillCounts;
  readonly trusted: ReadonlySet<string>;
  readonly filter: Filter;
  readonly log: Logger;
  readonly joined: Set<string>;
  readonly roomsRead: Set<string>;
  readonly ownServer: string;
  /** The lineage as learnt so far, oldest first: the rooms followed, and the older ones the walk reached. */
  readonly lineage: string[];
}

/**
 * A request to a room the bot may never have joined (an old room of the
 * lineage): a 403 makes it join once and ask again. 5xx and broken
 * connections are retried with backoff; 429s are waited out in the client.
 */
async function request<T>(walker: Walker, roomId: string, what: string, operation: () => Promise<T>): Promise<T> {
  const { client, signal } = walker.options;
  const attempt = () =>
    retryTransient(operation, {
      attempts: REQUEST_ATTEMPTS,
      baseDelayMs: 250,
      maxDelayMs: 30_000,
      signal,
      onRetry: (err, n, waitMs) =>
        walker.log.warn({ err, room: roomId, attempt: n, waitMs }, `${what} failed; retrying`),
    });
  try {
    return await attempt();
  } catch (err) {
    if (httpStatus(err) !== 403 || walker.joined.has(roomId)) throw err;
    walker.joined.add(roomId);
    const via = await predecessorVia(walker, roomId);
    walker.log.info({ room: roomId, via }, 'joining an old room of the lineage to read its history');
    await retryTransient(() => joinVia(client, roomId, via), { attempts: 3, baseDelayMs: 250 });
    return attempt();
  }
}

/**
 * Servers to join an old room through: the one in its ID (its creator's),
 * then those of the members of the room that replaced it (they were in it),
 * the replacement's creator's first (whoever upgraded it).
 */
async function predecessorVia(walker: Walker, roomId: string): Promise<string[]> {
  const successor = walker.lineage[walker.lineage.indexOf(roomId) + 1];
  const members =
    successor === undefined
      ? []
      : await walker.options.client.getJoinedRoomMembers(successor).then(
          (r) => Object.keys(r.joined),
          () => [],
        );
  return viaServers(
    [serverOfRoomId(roomId), successor && serverOfRoomId(successor), ...serversByMembers(members)],
    walker.ownServer,
  );
}

async function readPage(walker: Walker, position: Position): Promise<Page> {
  const { client } = walker.options;
  const response = await request(walker, position.roomId, 'reading history', () =>
    client.createMessagesRequest(position.roomId, position.token, PAGE_SIZE, Direction.Backward, walker.filter),
  );
  const end = response.chunk.length === 0 && response.end === position.token ? undefined : response.end;
  return { events: response.chunk as HistoryEvent[], end: end ?? undefined };
}

/**
 * Samples of a page's pongs, oldest first: of two pongs with the same key the
 * live bot keeps the first, and so does the insert (an earlier page holds
 * later pongs: recordSamples' keepEarliestPong replaces those).
 */
function pageSamples(walker: Walker, roomId: string, page: Page, recordFromMs: number): Sample[] {
  const samples: Sample[] = [];
  const { counts } = walker;
  for (let i = page.events.length - 1; i >= 0; i--) {
    const event = page.events[i]!;
    const ts = event.origin_server_ts;
    if (event.type !== 'm.room.message' || typeof ts !== 'number') continue;
    counts.events++;
    if (counts.reachedMs === undefined || ts < counts.reachedMs) counts.reachedMs = ts;
    const content = event.content;
    if (
      typeof content !== 'object' ||
      content === null ||
      content['msgtype'] !== 'm.notice' ||
      typeof event.sender !== 'string' ||
      ts < recordFromMs
    )
      continue;
    const reading = readPongEvent({ roomId, sender: event.sender, ts, content }, walker.trusted);
    if (reading.kind === 'sample') {
      counts.pongs++;
      samples.push(reading.sample);
    } else if (reading.kind === 'rejected' && reading.claimsPong) {
      counts.rejected++;
      walker.log.debug({ room: roomId, sender: event.sender, reason: reading.reason }, 'malformed pong ignored');
    }
  }
  return samples;
}

type WalkEnd = 'stopped' | 'history-start' | 'aborted' | { unreadable: string; error: string };

/**
 * Reads one walk to its end, saving the coverage after every page. Returns
 * how it ended, and the coverage as last saved.
 */
async function walk(
  walker: Walker,
  key: string,
  coverage: Coverage,
  current: Walk,
  recordFromMs: number,
): Promise<{ end: WalkEnd; coverage: Coverage }> {
  const { db, signal } = walker.options;
  const visited = new Set<string>([current.position.roomId]);
  const save = async (next: Coverage) => {
    await writeStateValue(db, key, JSON.stringify(next));
    return next;
  };
  const finish = async (span: { fromMs: number | null; oldest: Position | null }) =>
    save({ covered: mergeSpan(coverage.covered, { ...span, toMs: current.toMs }) });

  let position = current.position;
  let reading: Promise<Page> = readPage(walker, position);
  for (;;) {
    let page: Page;
    try {
      page = await reading;
    } catch (err) {
      if (signal?.aborted) return { end: 'aborted', coverage };
      // A room the bot cannot read or join (4xx): the position stays saved, so the next run tries it again.
      const status = httpStatus(err);
      if (status !== undefined && status >= 400 && status < 500)
        return { end: { unreadable: position.roomId, error: (err as Error).message }, coverage };
      throw err;
    }
    if (!walker.roomsRead.has(position.roomId)) {
      walker.roomsRead.add(position.roomId);
      walker.counts.rooms++;
    }
    const oldestTs = page.events.findLast((e) => typeof e.origin_server_ts === 'number')?.origin_server_ts;
    const reachedStop = oldestTs !== undefined && oldestTs < current.stopMs;
    // Where the next page is: further back in this room, or in the room it replaced.
    let next: Position | undefined;
    if (!reachedStop) {
      if (page.end !== undefined) {
        next = { roomId: position.roomId, token: page.end };
      } else {
        const predecessor = await request(walker, position.roomId, 'reading m.room.create', () =>
          readPredecessor(walker.options.client, position.roomId),
        );
        if (predecessor !== undefined && !visited.has(predecessor) && visited.size < MAX_ROOMS) {
          visited.add(predecessor);
          if (!walker.lineage.includes(predecessor))
            walker.lineage.splice(walker.lineage.indexOf(position.roomId), 0, predecessor);
          next = { roomId: predecessor, token: null };
        }
      }
    }
    // Read ahead while this page is written.
    if (next && !signal?.aborted) {
      reading = readPage(walker, next);
      reading.catch(() => {});
    }
    const samples = pageSamples(walker, position.roomId, page, recordFromMs);
    const written = await recordSamples(db, samples, { keepEarliestPong: true });
    walker.counts.stored += written.stored;
    walker.counts.duplicate += written.duplicate;

    if (reachedStop) {
      // Reading further back starts again at this page: it holds events on both sides of the stop.
      coverage = await finish({ fromMs: current.stopMs, oldest: position });
      walker.options.onProgress?.(walker.counts);
      return { end: 'stopped', coverage };
    }
    if (!next) {
      coverage = await finish({ fromMs: null, oldest: null });
      walker.options.onProgress?.(walker.counts);
      return { end: 'history-start', coverage };
    }
    current = { ...current, position: next };
    coverage = await save({ ...coverage, pending: current });
    walker.options.onProgress?.(walker.counts);
    position = next;
    if (signal?.aborted) return { end: 'aborted', coverage };
  }
}

/**
 * Backfills one configured room (ID or alias): joins it and follows its
 * upgrades as the bot does, then reads from the newest room back through its
 * predecessors down to `since`, walking only what earlier runs have not.
 */
export async function backfillRoom(reference: string, options: BackfillOptions): Promise<BackfillResult> {
  const log = options.log.child({ component: 'backfill', room: reference });
  const counts = options.counts ?? emptyCounts();
  const filter = new Filter(options.client.getUserId() ?? undefined);
  // Pongs and pings are messages; the rest of a room's history is not worth the transfer.
  filter.setDefinition({ room: { timeline: { types: ['m.room.message'] } } });
  const ownServer = serverOfUserId(options.client.getUserId() ?? '') ?? '';
  const { lineage, stranded } = await retryTransient(() => followRoom(options.client, reference, ownServer, log), {
    attempts: START_ATTEMPTS,
    baseDelayMs: 250,
    signal: options.signal,
  });
  // The bot's own pongs are read as the live bot reads them, trusted or not: they give its answers their pong times.
  const own = options.client.getUserId();
  const trusted = new Set(
    options.trustedResponders.length > 0 && own ? [...options.trustedResponders, own] : options.trustedResponders,
  );
  const walker: Walker = {
    options,
    counts,
    trusted,
    filter,
    log,
    joined: new Set(),
    roomsRead: new Set(),
    ownServer,
    lineage: [...lineage.roomIds],
  };
  const unreadable: { room: string; error: string }[] = [];
  if (stranded) {
    log.warn(
      { from: lineage.currentId, to: stranded.roomId, err: stranded.error },
      'cannot join the upgraded room: its history is left out',
    );
    unreadable.push({ room: stranded.roomId, error: (stranded.error as Error).message });
  }
  // What the run learnt of the room, as the bot stores it: services rank the whole lineage.
  let stored = '';
  const storeLineage = async () => {
    if (walker.lineage.join() === stored) return;
    await storeKnownRoom(options.db, { reference, id: lineage.configuredId, roomIds: walker.lineage });
    stored = walker.lineage.join();
  };
  await storeLineage();
  const key = coverageKey(lineage.configuredId);
  let coverage = parseCoverage(await readStateValue(options.db, key));
  const nowMs = (options.now ?? new Date()).getTime();
  const keptFromMs =
    options.retentionDays === undefined ? -Infinity : retentionCutoff(new Date(nowMs), options.retentionDays).getTime();
  let sinceMs = options.since.getTime();
  if (sinceMs < keptFromMs) {
    log.warn(
      { since: options.since, keptFrom: new Date(keptFromMs), retentionDays: options.retentionDays },
      'the backfill reaches further back than PINGBOARD_RETENTION_DAYS keeps samples: it reads back to the retention only',
    );
    sinceMs = keptFromMs;
  }
  const newest: Position = { roomId: lineage.currentId, token: null };
  log.info(
    {
      since: new Date(sinceMs),
      lineage: lineage.roomIds,
      covered: coverage.covered,
      pending: coverage.pending !== undefined,
    },
    'backfill started',
  );
  for (
    let current = nextWalk(coverage, sinceMs, nowMs, newest);
    current;
    current = nextWalk(coverage, sinceMs, nowMs, newest)
  ) {
    if (options.signal?.aborted) return { counts, completed: false, unreadable };
    // A walk an earlier run left (with an older `since`) may reach back past the retention: it records none of that.
    const result = await walk(walker, key, coverage, current, Math.max(keptFromMs, Math.min(sinceMs, current.stopMs)));
    coverage = result.coverage;
    await storeLineage();
    if (result.end === 'aborted') return { counts, completed: false, unreadable };
    if (typeof result.end === 'object') {
      log.warn(
        { unreadable: result.end.unreadable, error: result.end.error },
        'cannot read an old room of the lineage: its history is left out',
      );
      unreadable.push({ room: result.end.unreadable, error: result.end.error });
      break;
    }
  }
  log.info({ counts, covered: coverage.covered }, 'backfill finished');
  return { counts, completed: unreadable.length === 0, unreadable };
}

/** Backfills several configured rooms one after the other, with one set of counts. */
export async function backfillRooms(
  rooms: readonly RoomConfig[] | readonly string[],
  options: BackfillOptions,
): Promise<BackfillResult> {
  const counts = options.counts ?? emptyCounts();
  const unreadable: BackfillResult['unreadable'][number][] = [];
  for (const room of rooms) {
    const reference = typeof room === 'string' ? room : room.id;
    let result: BackfillResult;
    try {
      result = await backfillRoom(reference, { ...options, counts });
    } catch (err) {
      // A room the bot cannot join or resolve (4xx): the other rooms are still worth their backfill.
      const status = httpStatus(err);
      if (status === undefined || status < 400 || status >= 500) throw err;
      options.log.warn({ err, room: reference }, 'cannot backfill the room');
      unreadable.push({ room: reference, error: (err as Error).message });
      continue;
    }
    unreadable.push(...result.unreadable);
    if (!result.completed && result.unreadable.length === 0) return { counts, completed: false, unreadable };
  }
  return { counts, completed: unreadable.length === 0, unreadable };
}

export interface BackgroundBackfill {
  /** Resolves when the backfill ends (undefined when it failed: the failure is logged). */
  readonly done: Promise<BackfillResult | undefined>;
  /** Stops it after the page in hand; the next start continues there. */
  stop(): Promise<void>;
}

/** `serve`'s backfill at start: runs beside the HTTP API and the bot, never in their way. */
export function startBackgroundBackfill(
  rooms: readonly RoomConfig[],
  options: Omit<BackfillOptions, 'signal'>,
): BackgroundBackfill {
  const controller = new AbortController();
  const started = performance.now();
  const counts = options.counts ?? emptyCounts();
  const summary = () => ({
    ...counts,
    reached: counts.reachedMs === undefined ? null : new Date(counts.reachedMs).toISOString(),
    seconds: Math.round((performance.now() - started) / 100) / 10,
  });
  // A stop (shutdown) ends the run wherever it is, a retry's wait included: that is no failure, and no finish either.
  const interrupted = () =>
    options.log.info(summary(), 'backfill at start interrupted by the stop; the next start continues where it stopped');
  const done = backfillRooms(rooms, { ...options, counts, signal: controller.signal }).then(
    (result) => {
      if (controller.signal.aborted && !result.completed) interrupted();
      else
        options.log.info(
          { ...summary(), completed: result.completed, unreadable: result.unreadable.length },
          'backfill at start finished',
        );
      return result;
    },
    (err: unknown) => {
      if (controller.signal.aborted) interrupted();
      else options.log.error({ err, ...summary() }, 'backfill at start failed; the next start tries again');
      return undefined;
    },
  );
  return {
    done,
    stop: async () => {
      controller.abort();
      await done;
    },
  };
}
