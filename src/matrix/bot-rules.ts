// The bot's rules, apart from its I/O: which message is live and which is
// backlog, which rooms the bot watches and since when, and what a restart of
// its own sync loop hands over to the next loop. Every input (sync state,
// clock readings, arrival times) is an argument, so each case the bot has met
// (see test/bot-rules.test.ts) can be checked without a homeserver. The shell
// that runs them is src/bot/bot.ts; nothing here imports the SDK.

/** matrix-js-sdk's sync states (its SyncState enum's values), or null while a loop has none yet. */
export type SyncStateName = 'ERROR' | 'PREPARED' | 'STOPPED' | 'SYNCING' | 'CATCHUP' | 'RECONNECTING';

/** In step with the server: the loop has caught up and is processing live responses. */
export function inStep(state: SyncStateName | null): boolean {
  return state === 'PREPARED' || state === 'SYNCING';
}

/**
 * A message (a ping, an !echo, a room command) is live when it came in a sync
 * made in step with the server; otherwise backlog, never answered. One more
 * case: the first response of a loop the bot restarted itself (to add a
 * room) while in step. That loop has no state until it has processed that
 * response, the catch-up from the latest position received, so its messages
 * are live too — those sent after the bot began watching their room (one sent
 * in a new room before the bot joined it would measure the join). The mark
 * lasts only while the new loop has no state: once it reports one, that state
 * decides, and the stopped loop's late STOPPED never reaches here (see
 * `endsWaitForNewLoop`).
 */
export function isLive(
  syncState: SyncStateName | null,
  catchUpLive: boolean,
  sentMs: number,
  watchedSinceMs: number | undefined,
): boolean {
  return inStep(syncState) || (catchUpLive && syncState === null && sentMs >= (watchedSinceMs ?? Infinity));
}

export interface PingVerdict {
  /** Answer it (and record the measurement), or leave it as backlog. */
  readonly answer: boolean;
  /** From the ping's origin_server_ts to the arrival of the sync response that carried it. */
  readonly delayMs: number;
}

/**
 * A ping is answered when it is live and not older than `maxAgeMs` on
 * arrival: a sync in step can still bring a ping the server held back long
 * (a federation outage), which would measure the outage.
 */
export function judgePing(sentMs: number, arrivedMs: number, live: boolean, maxAgeMs: number): PingVerdict {
  const delayMs = Math.round(arrivedMs - sentMs);
  return { answer: live && delayMs <= maxAgeMs, delayMs };
}

/**
 * The rooms the bot watches, each with the moment it began watching it (wall
 * clock): messages sent there before that are backlog. A lineage's rooms are
 * watched as one; watching it again after an upgrade adds the replacement
 * from then on and keeps the older rooms' times.
 */
export class WatchedRooms<L extends { readonly roomIds: readonly string[] }> {
  readonly #lineages = new Map<string, L>();
  readonly #since = new Map<string, number>();

  watch(lineage: L, nowMs: number): void {
    for (const id of lineage.roomIds) {
      this.#lineages.set(id, lineage);
      if (!this.#since.has(id)) this.#since.set(id, nowMs);
    }
  }

  has(roomId: string): boolean {
    return this.#lineages.has(roomId);
  }

  lineageOf(roomId: string): L | undefined {
    return this.#lineages.get(roomId);
  }

  since(roomId: string): number | undefined {
    return this.#since.get(roomId);
  }

  roomIds(): string[] {
    return [...this.#lineages.keys()];
  }
}

/** The rooms a sync loop's filter names: those watched, then those awaited by ID (so that an invite to one arrives), each once. */
export function syncedRooms(watched: Iterable<string>, awaited: Iterable<string>): string[] {
  return [...new Set([...watched, ...awaited])];
}

/** A loop started over `filtered` must be restarted once the rooms to sync are `now`: a room joined while it was set up is missing from its filter. */
export function filterOutdated(filtered: readonly string[], now: readonly string[]): boolean {
  return filtered.join() !== now.join();
}

/**
 * Where a (re)started sync loop resumes: after the latest response received,
 * else the position saved when the process started. The SDK records a
 * response's token before processing it and a stopped loop still processes
 * what it has, so the new loop neither loses nor repeats a response, even one
 * whose tombstone caused the restart. Resuming from the saved position
 * instead replayed every room since the start, and its pings were answered twice.
 */
export function resumeToken(latestReceived: string | null, savedAtStart: string | null): string | null {
  return latestReceived ?? savedAtStart;
}

/**
 * Whether a sync state ends the wait for a restarted loop to settle: any
 * state of the new loop, but not the stopped loop's late STOPPED, unless the
 * bot itself is stopping (then no new loop will report anything).
 */
export function endsWaitForNewLoop(state: SyncStateName, botStopped: boolean): boolean {
  return state !== 'STOPPED' || botStopped;
}

/**
 * Restarts of the bot's sync loop, one at a time: a loop is stopped only
 * once the one before it has a state (stopping a loop still setting up
 * leaves the SDK a rejected request nobody awaits). Restarts asked for while
 * one runs come to one more after it; none once the bot stops. Each restart
 * hands the next loop whether its catch-up is live (see `isLive`).
 */
export class SyncRestarts {
  #running = false;
  #again = false;
  #catchUpLive = false;

  /** Whether the catch-up of the latest restarted loop counts as live. */
  get catchUpLive(): boolean {
    return this.#catchUpLive;
  }

  /** A restart is asked for: `start` a run of restarts, `queued` behind the run under way, or `none` (the bot stops). */
  request(botStopped: boolean): 'start' | 'queued' | 'none' {
    if (botStopped) return 'none';
    if (this.#running) {
      this.#again = true;
      return 'queued';
    }
    this.#running = true;
    return 'start';
  }

  /** The loop in `syncState` is about to be stopped for a new one. */
  restarting(syncState: SyncStateName | null): void {
    this.#again = false;
    this.#catchUpLive = inStep(syncState);
  }

  /** The new loop has settled: true when one more restart was asked for meanwhile. */
  settled(botStopped: boolean): boolean {
    return this.#again && !botStopped;
  }

  /** The run of restarts is over (done, or failed): the next request starts a new one. */
  finished(): void {
    this.#running = false;
  }
}

export interface SyncHealth {
  /** Wall-clock ms of the latest successful sync (0 before the first). */
  readonly lastSyncAtMs: number;
  /** Failed syncs since the latest successful one. */
  readonly consecutiveSyncFailures: number;
}

/** The sync health after the SDK reports `state` at `nowMs`. */
export function syncHealthAfter(health: SyncHealth, state: SyncStateName, nowMs: number): SyncHealth {
  if (inStep(state)) return { lastSyncAtMs: nowMs, consecutiveSyncFailures: 0 };
  const failed = state === 'ERROR' || state === 'RECONNECTING';
  return {
    lastSyncAtMs: health.lastSyncAtMs,
    consecutiveSyncFailures: health.consecutiveSyncFailures + (failed ? 1 : 0),
  };
}

/** What the bot knows of a configured room: its ID and lineage. */
export interface KnownRoom {
  readonly id: string;
  readonly roomIds: readonly string[];
}

/** A room's ID and lineage go to the database only when they tell it something it did not know (at most starts it read them from there). */
export function needsStoring(known: KnownRoom | undefined, now: KnownRoom): boolean {
  return known?.id !== now.id || known.roomIds.join() !== now.roomIds.join();
}
