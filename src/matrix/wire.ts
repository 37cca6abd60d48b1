// Moments on the wire, from the diagnostics channels of Node's fetch (undici):
// when a request started going out, and when a response's last byte was read.
// Stamped around the fetch call instead, they would also hold the SDK,
// fetch's own bookkeeping, web streams and whatever else this process runs
// meanwhile (over a millisecond on a busy event loop), none of which is the
// network's.
//
// Sent: undici reports the moment it writes a request's headers to its
// socket. Its report that the whole request is out comes a turn of the event
// loop later, often after the homeserver has already acted on it, which would
// make a round trip look shorter than it was; the headers' moment never can.
import { subscribe, unsubscribe } from 'node:diagnostics_channel';

const SEND_HEADERS = 'undici:client:sendHeaders';

export interface SentWatch {
  /** performance.now() when the latest request to the path started going out; undefined until one has. */
  readonly sentMono: number | undefined;
  /** Stops watching; always call it, a watch costs a look at every request until then. */
  close(): void;
}

interface Watch {
  readonly path: string;
  sentMono: number | undefined;
}

const watches = new Set<Watch>();

function onSendHeaders(message: unknown): void {
  const now = performance.now();
  const target = (message as { request?: { path?: unknown } }).request?.path;
  if (typeof target !== 'string') return;
  const query = target.indexOf('?');
  const path = query < 0 ? target : target.slice(0, query);
  for (const watch of watches) if (path.endsWith(watch.path)) watch.sentMono = now;
}

/**
 * Watches requests whose path (without the query) ends with `path`, as the
 * SDK's `http` methods take it (e.g. `/rooms/!r%3Ahs/send/m.room.message/txn`).
 * A retried request (after a 429, say) restamps it: the latest attempt is the
 * one the server acted on.
 */
export function watchSent(path: string): SentWatch {
  const watch: Watch = { path, sentMono: undefined };
  if (watches.size === 0) subscribe(SEND_HEADERS, onSendHeaders);
  watches.add(watch);
  return {
    get sentMono() {
      return watch.sentMono;
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
 */
let claimant: Arrival | undefined;
const arrivals = new WeakMap<object, Arrival>();
subscribe('undici:request:create', (message) => {
  if (!claimant) return;
  arrivals.set((message as { request: object }).request, claimant);
  claimant = undefined;
});
subscribe('undici:request:trailers', (message) => {
  const arrival = arrivals.get((message as { request: object }).request);
  if (!arrival) return;
  arrival.mono = performance.now();
  arrival.ms = Date.now();
});

/** fetch(), noting in `arrival` when its response finishes arriving (0 until it has). */
export function fetchStampingArrival(input: Parameters<typeof fetch>[0], init: Parameters<typeof fetch>[1], arrival: Arrival): Promise<Response> {
  arrival.mono = arrival.ms = 0;
  claimant = arrival;
  try {
    return fetch(input, init);
  } finally {
    claimant = undefined;
  }
}
