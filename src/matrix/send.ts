// Room messages the bot writes (pongs, echoes, command replies) go straight
// out over node:http(s), not through the SDK or fetch. Measured on the bench
// machine, a request through fetch cost about 400 µs of CPU, 80 µs of it
// before the request was on its way; through node:http, 100 µs and 26 µs.
// The pongs to the pings of one sync go out one after another, so the last
// pays for all before it. The SDK's request path adds its own work on top:
// copying the options, a token check awaited before anything is sent.
import http from 'node:http';
import https from 'node:https';
import { HTTPError, parseErrorResponse } from 'matrix-js-sdk';
import { advisedWaitMs, waitingOutRateLimits } from './retry.ts';

export interface MessageSenderOptions {
  readonly homeserverUrl: string;
  readonly accessToken: () => string;
  /** Told about each 429 that is being waited out. */
  readonly onRateLimited: (waitMs: number) => void;
  /** Names the sending instance in the homeserver's logs (several instances share one device). */
  readonly userAgent?: string;
  /** A request with no answer for this long fails as a broken connection would (default 30 s). */
  readonly timeoutMs?: number;
}

export interface MessageSender {
  /**
   * Sends an `m.room.message`. Resolves once the homeserver has stored it,
   * with the event ID it answered (undefined when the answer holds none).
   * Rejects with the SDK's MatrixError or HTTPError (with `httpStatus`) for
   * an error answer, or with the connection's error when there was none.
   * `onWritten` is told (performance.now()) when node:http reports a
   * request's last byte written to its connection (over TLS, a turn of the
   * event loop after it went out): at most once per request made, and 429s
   * make more.
   */
  send(roomId: string, content: object, txnId: string, onWritten?: (mono: number) => void): Promise<string | undefined>;
  /** Ends every send still waiting (on a rate limit, on an answer) and closes the kept-alive connections. */
  close(): void;
}

/**
 * Resolves once the requests sent so far are written, those on a kept-alive
 * connection (one that needs a new connection waits for its connect).
 * node:http writes a request on the next tick, and ticks wait until no
 * promise job is left: a caller that goes on with promise jobs of its own
 * (the SDK processing a whole sync) would otherwise hold every write back.
 */
export function requestsWritten(): Promise<void> {
  return new Promise((resolve) => process.nextTick(resolve));
}

interface Answer {
  readonly status: number;
  readonly contentType: string | undefined;
  readonly retryAfter: string | undefined;
  readonly location: string | undefined;
  readonly body: string;
}

/** The `event_id` of a send's answer, if it holds one. */
function eventIdOf(body: string): string | undefined {
  try {
    const eventId = (JSON.parse(body) as { event_id?: unknown } | null)?.event_id;
    return typeof eventId === 'string' ? eventId : undefined;
  } catch {
    return undefined;
  }
}

export function createMessageSender(options: MessageSenderOptions): MessageSender {
  const base = new URL(options.homeserverUrl);
  const transport = base.protocol === 'https:' ? https : http;
  const agent = new transport.Agent({ keepAlive: true });
  const closing = new AbortController();
  const target = {
    protocol: base.protocol,
    // node:http wants an IPv6 literal without its URL brackets.
    hostname: base.hostname.replace(/^\[(.*)\]$/, '$1'),
    port: base.port,
    agent,
    method: 'PUT',
    timeout: options.timeoutMs ?? 30_000,
    signal: closing.signal,
  };
  const roomsPath = `${base.pathname.replace(/\/+$/, '')}/_matrix/client/v3/rooms/`;

  const put = (path: string, body: string, onWritten: ((mono: number) => void) | undefined) =>
    new Promise<Answer>((resolve, reject) => {
      const request = transport.request(
        {
          ...target,
          path,
          headers: {
            authorization: `Bearer ${options.accessToken()}`,
            'content-type': 'application/json',
            'content-length': Buffer.byteLength(body),
            ...(options.userAgent === undefined ? {} : { 'user-agent': options.userAgent }),
          },
        },
        (response) => {
          const chunks: Buffer[] = [];
          response.on('data', (chunk: Buffer) => chunks.push(chunk));
          response.on('error', reject);
          response.on('end', () =>
            resolve({
              status: response.statusCode!,
              contentType: response.headers['content-type'],
              retryAfter: response.headers['retry-after'],
              location: response.headers.location,
              body: Buffer.concat(chunks).toString('utf8'),
            }),
          );
        },
      );
      request.on('timeout', () =>
        request.destroy(new Error(`no answer from the homeserver within ${target.timeout} ms`)),
      );
      request.on('error', reject);
      if (onWritten) request.once('finish', () => onWritten(performance.now()));
      request.end(body);
    });

  return {
    async send(roomId, content, txnId, onWritten) {
      const path = `${roomsPath}${encodeURIComponent(roomId)}/send/m.room.message/${encodeURIComponent(txnId)}`;
      const body = JSON.stringify(content);
      const answer = await waitingOutRateLimits(
        () => put(path, body, onWritten),
        (limited) => advisedWaitMs(limited.body, limited.retryAfter),
        options.onRateLimited,
        closing.signal,
      );
      if (answer.status >= 200 && answer.status < 300) return eventIdOf(answer.body);
      // fetch would follow it; here every send would fail, so the log line says where to point the bot.
      if (answer.status >= 300 && answer.status < 400 && answer.location !== undefined) {
        throw new HTTPError(
          `the homeserver redirected the send (${answer.status}) to ${answer.location}: set the homeserver URL to where it points`,
          answer.status,
        );
      }
      // Read as the SDK reads its own error answers, so callers tell them apart the same way.
      // Statuses a fetch Response cannot carry with a body.
      if (answer.status < 200 || answer.status > 599 || answer.status === 304) {
        throw new HTTPError(`Server returned ${answer.status} error`, answer.status);
      }
      const headers = answer.contentType === undefined ? undefined : { 'content-type': answer.contentType };
      throw parseErrorResponse(new Response(answer.body, { status: answer.status, headers }), answer.body);
    },
    close: () => {
      closing.abort(new Error('the message sender was closed'));
      agent.destroy();
    },
  };
}
