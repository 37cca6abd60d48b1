// Everything Pingboard relies on that matrix-js-sdk (pinned in package.json)
// and Node's fetch (undici) do not promise: a private field, a deep import,
// the SDK's root logger's internals, a Response whose json() is replaced, the
// SDK's request timers and capability poller, and undici's diagnostics messages. test/sdk-internals.test.ts pins each one and
// fails when an upgrade changes what it relies on.
//
// Load order: some SDK modules take a method of the SDK's root logger once,
// when they load (event-timeline-set.js binds `logger.log` into its
// `debuglog`; timeline-window.js does the same), so the root logger's methods
// must be replaced before those modules load. This module therefore imports
// only the SDK's logger.js and utils.js (which loads neither), and is
// evaluated before anything imports matrix-js-sdk: main.ts imports
// sdk-logs.ts, which imports it, before any module that loads the SDK.
import { subscribe, unsubscribe } from 'node:diagnostics_channel';
import type { MatrixClient, Room } from 'matrix-js-sdk';
import { logger as sdkRootLogger } from 'matrix-js-sdk/lib/logger.js';
import { encodeUri } from 'matrix-js-sdk/lib/utils.js';

// ---- The SDK's root logger (loglevel's "matrix" logger and its children) ----

/** Where the root logger's lines go: its method ('debug', 'error', …), a child logger's name, the arguments. */
export type RootLogSink = (method: string, prefix: string | undefined, args: unknown[]) => void;

interface LoglevelLogger {
  methodFactory: (method: string) => (this: { prefix?: string }, ...args: unknown[]) => void;
  rebuild(): void;
}

let rootSink: RootLogSink | undefined;

/** The SDK's root logger, as loglevel builds it: children inherit its methodFactory when created (`getChild`). */
const sdkRoot = sdkRootLogger as unknown as LoglevelLogger;
sdkRoot.methodFactory = (method) =>
  function (...args) {
    rootSink?.(method, this.prefix, args);
  };
sdkRoot.rebuild();

/**
 * Sends the root logger's lines to `sink` (nowhere until then). The first
 * call decides, for the whole process: the service's start, before any
 * client; the log context of whichever client was created last must not
 * take over every SDK line.
 */
export function routeRootLogger(sink: RootLogSink): void {
  rootSink ??= sink;
}

// ---- A room's relation index ----

/**
 * Drops the index of relations the SDK builds from every event of a room
 * (each pong relates to its ping), which no timeline reset clears: the
 * private `relations` map of the room's RelationsContainer.
 */
export function clearRelationIndex(room: Room): void {
  (room.relations as unknown as { relations?: Map<string, unknown> }).relations?.clear();
}

// ---- A deep import ----

/** The SDK's path templating (`/rooms/$roomId/…` with each value URI-encoded), as its own requests build paths. */
export { encodeUri };

// ---- A Response parsed once ----

/**
 * `response`, whose json() answers `parsed` instead of parsing the body
 * again: the SDK reads JSON bodies with json() (http-api/fetch.js), and
 * parsing each sync twice would double the garbage it leaves, which the
 * young generation then collects twice as often.
 */
export function withParsedJson(response: Response, parsed: unknown): Response {
  Object.defineProperty(response, 'json', { value: () => Promise.resolve(parsed) });
  return response;
}

// ---- The SDK's request timers ----

/** Timers at least this long are checked for the SDK's (its local timeouts run from 15 s to 110 s). */
const SDK_TIMEOUT_MIN_MS = 10_000;
let sdkTimersUnrefed = false;

/** Whether the caller of setTimeout (two frames up) is the SDK's timeoutSignal: a short stack keeps this cheap. */
function armedByTimeoutSignal(): boolean {
  const limit = Error.stackTraceLimit;
  Error.stackTraceLimit = 3;
  const stack = new Error().stack;
  Error.stackTraceLimit = limit;
  return stack?.includes('at timeoutSignal ') === true;
}

/**
 * matrix-js-sdk arms a timer for each request with a local timeout
 * (timeoutSignal in http-api/utils.js: 110 s for a /sync) and never clears
 * it, so a stopped client kept its process alive up to two minutes after
 * its last request: a finished command, a stopped service, a test file.
 * Those timers are unref'd (they only abort a request, which a stopped
 * client has aborted already): setTimeout is wrapped once, for the whole
 * process. Idempotent; called before a client is created.
 */
export function unrefSdkRequestTimers(): void {
  if (sdkTimersUnrefed) return;
  sdkTimersUnrefed = true;
  const arm = globalThis.setTimeout;
  const wrapped = ((...args: Parameters<typeof setTimeout>) => {
    const timer = arm(...args);
    if ((args[1] ?? 0) >= SDK_TIMEOUT_MIN_MS && armedByTimeoutSignal()) timer.unref();
    return timer;
  }) as typeof setTimeout;
  // util.promisify(setTimeout) reads a property of the function.
  Object.defineProperties(wrapped, Object.getOwnPropertyDescriptors(arm));
  globalThis.setTimeout = wrapped;
}

// ---- The SDK's capability poller ----

/**
 * startClient polls the server's capabilities (every 6 hours, 30 s after a
 * failure), which Pingboard never reads. A poll in flight when the client
 * stops arms its next timer once it ends, after the stop had cleared the
 * timers (capabilityPoller.ts): a stopped client then went on polling, and
 * kept its process alive. `client` does not poll; getCapabilities() still
 * fetches them when asked.
 */
export function withoutCapabilityPolling(client: MatrixClient): void {
  (client as unknown as { serverCapabilitiesService: { start(): void } }).serverCapabilitiesService.start = () => {};
}

/**
 * Stops `client`. The SDK sends its first /sync, then waits for the store's
 * saved sync, and only then enters the loop that awaits that request
 * (sync.ts); a stop in between (the bot's store reads the database there)
 * aborts a request nothing awaits, whose AbortError went unhandled. A stop
 * while it reads the saved sync token, before that request exists, is met
 * by the request made afterwards, already aborted, which the stopped loop
 * never awaits either. So every sync request of the stopped loop, the one
 * under way and any it still makes, is marked handled; the loop, when it
 * runs, still sees the rejection.
 */
export function stopSyncing(client: MatrixClient): void {
  const syncApi = syncApiOf(client);
  if (syncApi) markSyncRequestsHandled(syncApi);
  client.stopClient();
}

interface SyncApi {
  currentSyncRequest?: Promise<unknown>;
  stop(): void;
}

function syncApiOf(client: MatrixClient): SyncApi | undefined {
  return (client as unknown as { syncApi?: SyncApi }).syncApi;
}

function markSyncRequestsHandled(syncApi: SyncApi): void {
  let request = syncApi.currentSyncRequest;
  request?.catch(() => {});
  Object.defineProperty(syncApi, 'currentSyncRequest', {
    configurable: true,
    get: () => request,
    set: (next: Promise<unknown> | undefined) => {
      next?.catch(() => {});
      request = next;
    },
  });
}

/**
 * Starts `client`'s sync. startClient awaits the server's versions, then
 * starts its sync loop without looking whether the client was stopped
 * meanwhile (client.ts), and stopClient returns at once for a client already
 * stopped: such a loop would sync on for a stopped bot. It is stopped here.
 */
export async function startSyncing(client: MatrixClient, options: Parameters<MatrixClient['startClient']>[0]) {
  await client.startClient(options);
  const orphaned = client.clientRunning ? undefined : syncApiOf(client);
  if (!orphaned) return;
  markSyncRequestsHandled(orphaned);
  orphaned.stop();
  (client as unknown as { syncApi?: SyncApi }).syncApi = undefined;
}

// ---- Moments on the wire, from undici's diagnostics channels ----
//
// When a request started going out, and when a response's last byte was
// read. Stamped around the fetch call instead, they would also hold the SDK,
// fetch's own bookkeeping, web streams and whatever else this process runs
// meanwhile (over a millisecond on a busy event loop), none of which is the
// network's.
//
// Sent: undici reports the moment it writes a request's headers to its
// socket. Its report that the whole request is out comes a turn of the event
// loop later, often after the homeserver has already acted on it, which would
// make a round trip look shorter than it was; the headers' moment never can.

export const SEND_HEADERS = 'undici:client:sendHeaders';
export const REQUEST_CREATE = 'undici:request:create';
export const REQUEST_TRAILERS = 'undici:request:trailers';

export interface SentWatch {
  /** performance.now() when the latest request to the path started going out; undefined until one has. */
  readonly sentMono: number | undefined;
  /** performance.now() when the answer to that request had arrived, last byte read; undefined until it has. */
  readonly answeredMono: number | undefined;
  /** Stops watching; always call it, a watch costs a look at every request until then. */
  close(): void;
}

interface Watch {
  readonly path: string;
  sentMono: number | undefined;
  /** Undici's request object of the latest attempt, to know its answer by. */
  request: object | undefined;
  answeredMono: number | undefined;
}

const watches = new Set<Watch>();

function onSendHeaders(message: unknown): void {
  const now = performance.now();
  const request = (message as { request?: { path?: unknown } }).request;
  const target = request?.path;
  if (typeof target !== 'string') return;
  const query = target.indexOf('?');
  const path = query < 0 ? target : target.slice(0, query);
  for (const watch of watches) {
    if (!path.endsWith(watch.path)) continue;
    watch.sentMono = now;
    watch.request = request;
    watch.answeredMono = undefined;
  }
}

/**
 * Watches requests whose path (without the query) ends with `path`, as the
 * SDK's `http` methods take it (e.g. `/rooms/!r%3Ahs/send/m.room.message/txn`).
 * A retried request (after a 429, say) restamps it: the latest attempt is the
 * one the server acted on.
 */
export function watchSent(path: string): SentWatch {
  const watch: Watch = { path, sentMono: undefined, request: undefined, answeredMono: undefined };
  if (watches.size === 0) subscribe(SEND_HEADERS, onSendHeaders);
  watches.add(watch);
  return {
    get sentMono() {
      return watch.sentMono;
    },
    get answeredMono() {
      return watch.answeredMono;
    },
    close() {
      if (watches.delete(watch) && watches.size === 0) unsubscribe(SEND_HEADERS, onSendHeaders);
    },
  };
}

/** When a response finished arriving, on both clocks. */
export interface Arrival {
  mono: number;
  ms: number;
}

/**
 * The moment undici has read a response's last byte (its "trailers"
 * diagnostics message), before fetch hands the body over through a web
 * stream: a tenth to a few tenths of a millisecond earlier than the body's
 * promise settles, more on a busy event loop. Undici announces each request
 * ("create") synchronously inside fetch(), so the request is matched to the
 * call that is being made; should that ever stop holding, nothing is
 * matched and the arrival is stamped when the body has been read.
 * Subscribed when this module loads, so that these stamps come before any
 * other subscriber's work on the same message.
 */
let claimant: Arrival | undefined;
const arrivals = new WeakMap<object, Arrival>();
subscribe(REQUEST_CREATE, (message) => {
  if (!claimant) return;
  arrivals.set((message as { request: object }).request, claimant);
  claimant = undefined;
});
subscribe(REQUEST_TRAILERS, (message) => {
  const request = (message as { request: object }).request;
  for (const watch of watches) if (watch.request === request) watch.answeredMono = performance.now();
  const arrival = arrivals.get(request);
  if (!arrival) return;
  arrival.mono = performance.now();
  arrival.ms = Date.now();
});

/** fetch(), noting in `arrival` when its response finishes arriving (0 until it has). */
export function fetchStampingArrival(
  input: Parameters<typeof fetch>[0],
  init: Parameters<typeof fetch>[1],
  arrival: Arrival,
): Promise<Response> {
  arrival.mono = arrival.ms = 0;
  claimant = arrival;
  try {
    return fetch(input, init);
  } finally {
    claimant = undefined;
  }
}
