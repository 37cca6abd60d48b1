// When a request started going out: the instant a probe's round trip starts.
// Stamped before the request, it would also hold the SDK building the request,
// fetch's own bookkeeping, the wait for a free connection and whatever else
// this process runs meanwhile (over a millisecond on a busy event loop), none
// of which the ping spends on its way. Node's fetch (undici) reports on a
// diagnostics channel the moment it writes a request's headers to its socket.
// Its report that the whole request is out comes a turn of the event loop
// later, often after the homeserver has already acted on it, which would make
// a round trip look shorter than it was; the headers' moment never can.
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
