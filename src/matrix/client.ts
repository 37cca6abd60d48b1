// A matrix-js-sdk client of one account (the bot's, or a probe's; the
// backfill and the CLI use the bot's): credentials (a password login happens once,
// its token is kept in the database), a store that keeps the sync position in
// the database, and a fetch wrapper that stamps the moment each /sync
// response has fully arrived, before the SDK spends any time on it.
import { createClient, MemoryStore, type IStoredClientOpts, type MatrixClient } from 'matrix-js-sdk';
import type { BotConfig } from '../config.ts';
import type { Db } from '../db/database.ts';
import type { Logger } from '../log.ts';
import { resumeToken } from './bot-rules.ts';
import { advisedWaitMs, waitingOutRateLimits } from './retry.ts';
import { routeSdkLogs, sdkLogger } from './sdk-logs.ts';
import { readStateValue, writeStateValue } from './state.ts';
import {
  fetchStampingArrival,
  unrefSdkRequestTimers,
  withoutCapabilityPolling,
  withParsedJson,
  type Arrival,
} from './sdk-internals.ts';
import { messageWithCauses } from '../errors.ts';

/** When a /sync response finished arriving: wall clock (ms) and monotonic time (performance.now()). */
export interface SyncArrival {
  readonly ms: number;
  readonly mono: number;
}

/** Timings the bot and the probes need from the HTTP layer. */
export class SyncClock {
  #latest: SyncArrival = { ms: 0, mono: 0 };
  /**
   * Called with each /sync response, parsed, and its arrival, the moment it
   * has arrived and before the SDK sees it: what must not wait for the SDK's
   * processing of the whole response (answering pings) starts here. The SDK
   * gets the response once what this returns has settled.
   */
  onSyncResponse: ((sync: unknown, arrival: SyncArrival) => void | Promise<void>) | undefined;

  /** The latest /sync response's arrival (0 before the first), for readers of the SDK's events, which come after it. */
  get arrivedAtMs(): number {
    return this.#latest.ms;
  }

  get arrivedAtMono(): number {
    return this.#latest.mono;
  }

  /** Stamps a /sync response's arrival. */
  arrived(arrival: SyncArrival): void {
    this.#latest = arrival;
  }
}

function syncTokenKey(userId: string): string {
  return `sync_token:${userId}`;
}

function accessTokenKey(userId: string): string {
  return `access_token:${userId}`;
}

/**
 * Keeps the sync token in the database once a sync response has been
 * processed (not when it arrives), so a crash mid-processing re-reads it.
 * The write runs beside the next /sync instead of before it: the SDK waits
 * for setSyncData before it asks again, and every millisecond it waits is
 * added to the delay of the pings that arrive meanwhile. Writes are
 * coalesced, so a slow database only ever has one token in flight.
 */
class DatabaseSyncStore extends MemoryStore {
  readonly #db: Db;
  readonly #key: string;
  readonly #log: Logger;
  readonly #saved: string | null;
  readonly #beforeSaving: () => Promise<void>;
  #unsaved: string | undefined;
  #writing: Promise<void> | undefined;

  constructor(db: Db, key: string, saved: string | null, log: Logger, beforeSaving: () => Promise<void>) {
    super();
    this.#db = db;
    this.#beforeSaving = beforeSaving;
    this.#key = key;
    this.#saved = saved;
    this.#log = log;
  }

  /**
   * Where a sync loop starts: the position saved in the database when the
   * process starts; after the bot restarts its loop, the latest response
   * received (bot-rules.ts resumeToken).
   */
  override getSavedSyncToken(): Promise<string | null> {
    return Promise.resolve(resumeToken(this.getSyncToken(), this.#saved));
  }

  override async setSyncData(syncData: Parameters<MemoryStore['setSyncData']>[0]): Promise<void> {
    await super.setSyncData(syncData);
    this.#unsaved = syncData.next_batch;
    this.#writing ??= this.#writeUnsaved();
  }

  /** Resolves once the latest processed position is in the database (or could not be written). */
  async saved(): Promise<void> {
    await this.#writing;
  }

  async #writeUnsaved(): Promise<void> {
    while (this.#unsaved !== undefined) {
      const token = this.#unsaved;
      this.#unsaved = undefined;
      try {
        // A position saved past a sample still queued would lose it if the process died now: the
        // next leader resumes from the position and never sees that ping again.
        await this.#beforeSaving();
        await writeStateValue(this.#db, this.#key, token);
      } catch (err) {
        // The next successful sync saves a newer token; a restart before that re-reads a little.
        this.#log.warn({ err }, 'could not save the sync position');
      }
    }
    this.#writing = undefined;
  }
}

const utf8 = new TextDecoder();

function isSyncRequest(url: string): boolean {
  return /\/_matrix\/client\/[^/]+\/sync(\?|$)/.test(url);
}

/**
 * fetch rejects with "fetch failed" and the reason (host, refused, not
 * found) in `cause`, which the SDK drops: its ConnectionError keeps the
 * message only (matrix-js-sdk http-api/errors.ts). The reason goes into the message.
 */
function keepingCause(err: unknown): never {
  if (err instanceof TypeError && err.cause !== undefined)
    throw new TypeError(messageWithCauses(err), { cause: err.cause });
  throw err;
}

/**
 * The fetch the SDK uses. It waits out 429s itself, as the server advises,
 * so a rate-limited sync is a slow sync and not an outage (which would turn
 * the next pings into backlog); and it stamps sync arrivals.
 */
function stampingFetch(clock: SyncClock, log: Logger): typeof fetch {
  return async (input, init) => {
    const url = typeof input === 'string' ? input : input instanceof URL ? input.href : input.url;
    const arrival: Arrival = { mono: 0, ms: 0 };
    const sync = isSyncRequest(url);
    const response = await waitingOutRateLimits(
      () => (sync ? fetchStampingArrival(input, init, arrival) : fetch(input, init)),
      // The 429 answers read here are dropped for the next attempt: their bodies need no copy.
      async (limited) => advisedWaitMs(await limited.text(), limited.headers.get('retry-after')),
      (waitMs) =>
        log.info({ path: new URL(url).pathname, waitMs }, 'rate limited by the homeserver: waiting as advised'),
      init?.signal,
    ).catch(keepingCause);
    if (!sync || !response.ok) return response;
    // Read the whole body here: "arrived" means every byte is in.
    const body = await response.arrayBuffer();
    const arrived: SyncArrival = { mono: arrival.mono || performance.now(), ms: arrival.ms || Date.now() };
    clock.arrived(arrived);
    // Built after the pings are answered: constructing a Response costs more than parsing a busy room's sync.
    const forSdk = () =>
      new Response(body, { status: response.status, statusText: response.statusText, headers: response.headers });
    if (!clock.onSyncResponse) return forSdk();
    let parsed: unknown;
    try {
      parsed = JSON.parse(utf8.decode(body));
    } catch (err) {
      // Not JSON: the SDK meets the same body next and deals with it.
      log.debug({ err }, 'a sync response could not be read ahead of the SDK');
      return forSdk();
    }
    await clock.onSyncResponse(parsed, arrived);
    return withParsedJson(forSdk(), parsed);
  };
}

/** What a client needs of an account: the bot's, or a probe's. */
export type ClientAccount = Pick<BotConfig, 'homeserverUrl' | 'userId' | 'accessToken' | 'password'>;

async function accessToken(config: ClientAccount, db: Db, log: Logger): Promise<string> {
  if (config.accessToken !== undefined) return config.accessToken;
  const saved = await readStateValue(db, accessTokenKey(config.userId));
  if (saved) return saved;
  const loginClient = createClient({ baseUrl: config.homeserverUrl, logger: sdkLogger(log) as never });
  const response = await loginClient.loginRequest({
    type: 'm.login.password',
    identifier: { type: 'm.id.user', user: config.userId },
    password: config.password!,
    initial_device_display_name: 'Pingboard',
  });
  await writeStateValue(db, accessTokenKey(config.userId), response.access_token);
  log.info(
    { userId: response.user_id, deviceId: response.device_id },
    'logged in with the password; the access token is kept in the database',
  );
  return response.access_token;
}

export interface AccountClient {
  readonly client: MatrixClient;
  readonly clock: SyncClock;
  /** Resolves once the latest processed sync position is kept: await it after stopping the client. */
  syncPositionSaved(): Promise<void>;
}

/**
 * A client of `config`'s account: the bot's (which the backfill and the CLI
 * use too) or a probe's. `beforeSavingPosition` resolves once what was
 * measured from the responses processed so far is stored.
 */
export async function createAccountClient(
  config: ClientAccount,
  db: Db,
  log: Logger,
  beforeSavingPosition: () => Promise<void> = async () => {},
): Promise<AccountClient> {
  // A no-op in the service, which routed them at start; a command's first client routes them.
  routeSdkLogs(log);
  // Its requests' timers must not keep a stopped client's process alive.
  unrefSdkRequestTimers();
  const clock = new SyncClock();
  const token = await accessToken(config, db, log);
  const savedSyncToken = (await readStateValue(db, syncTokenKey(config.userId))) ?? null;
  const store = new DatabaseSyncStore(db, syncTokenKey(config.userId), savedSyncToken, log, beforeSavingPosition);
  const client = createClient({
    baseUrl: config.homeserverUrl,
    userId: config.userId,
    accessToken: token,
    store,
    fetchFn: stampingFetch(clock, log),
    logger: sdkLogger(log) as never,
    timelineSupport: false,
  } satisfies Partial<IStoredClientOpts> & Record<string, unknown>);
  withoutCapabilityPolling(client);
  return { client, clock, syncPositionSaved: () => store.saved() };
}
