/**
 * HTTP front end: a tiny router over node:http, access-token auth, JSON
 * bodies and errors, fault injection, a request log, and the outage switch
 * (stop listening and drop every connection, then listen again on the same
 * port with all state intact).
 */

import { type IncomingMessage, type Server, type ServerResponse, createServer } from 'node:http';
import type { Socket } from 'node:net';
import type { Fault, Faults } from './faults.ts';
import { preciseNow } from './federation.ts';
import { parseJson } from './filter.ts';
import { MatrixError } from './model.ts';
import type { Device, Store } from './store.ts';

/** What a route handler gets. */
export interface Ctx {
  method: string;
  path: string;
  params: Record<string, string>;
  query: URLSearchParams;
  body: unknown;
  /** The authenticated device (always set for routes with auth). */
  device: Device;
  /** The access token as sent, if any. */
  token: string | undefined;
  /** Aborted when the client disconnects (long-polls stop waiting). */
  signal: AbortSignal;
  /** Public base URL of this server, e.g. for .well-known. */
  baseUrl: string;
  /** preciseNow() when the request's head had arrived (after an injected delay): a client's send starts then. */
  receivedAt: number;
}

/** A handler returns the JSON body of a 200 response or throws a MatrixError. */
export type Handler = (ctx: Ctx) => unknown;

export interface Route {
  method: string;
  pattern: RegExp;
  keys: string[];
  auth: boolean;
  handler: Handler;
}

/** Client-server API versions a route answers under. */
const CLIENT_PREFIX = '/_matrix/client/(?:v3|r0|v1|unstable)';

/**
 * Declares a route. `path` is relative to the client API prefix unless it
 * starts with `/_` or `/.` (e.g. `/_matrix/client/versions`, `/.well-known/...`); `:name` matches one path segment,
 * `:name*` the rest of the path (possibly empty, may contain slashes).
 */
export function route(method: string, path: string, handler: Handler, opts: { auth?: boolean } = {}): Route {
  const keys: string[] = [];
  const absolute = path.startsWith('/_') || path.startsWith('/.');
  const source = path.replace(/[.]/g, '\\.').replace(/\/:(\w+)(\*?)/g, (_m, key: string, rest: string) => {
    keys.push(key);
    return rest ? '(?:/(.*))?' : '/([^/]+)';
  });
  const pattern = new RegExp(`^${absolute ? '' : CLIENT_PREFIX}${source}$`);
  return { method, pattern, keys, auth: opts.auth ?? true, handler };
}

/** One request as seen by the server (for assertions such as "sent exactly once"). */
export interface RequestRecord {
  time: number;
  method: string;
  path: string;
  /** The query string as sent (`?since=…`), or empty. */
  search: string;
  userId: string | undefined;
  /** Status sent, or undefined if the connection was dropped / is still open. */
  status: number | undefined;
  fault: Fault['kind'] | undefined;
  /** True when no route matched (the SDK called something not implemented). */
  unrecognized: boolean;
  /** The client's User-Agent header, if it sent one. */
  userAgent: string | undefined;
}

export class HttpFront {
  readonly log: RequestRecord[] = [];
  private readonly server: Server;
  private readonly sockets = new Set<Socket>();
  private readonly routes: Route[];
  private readonly store: Store;
  private readonly faults: Faults;
  private readonly debug: ((line: string) => void) | undefined;
  private host = '127.0.0.1';
  port = 0;
  up = false;

  constructor(routes: Route[], store: Store, faults: Faults, debug: ((line: string) => void) | undefined) {
    this.routes = routes;
    this.store = store;
    this.faults = faults;
    this.debug = debug;
    this.server = createServer((req, res) => void this.handle(req, res));
    this.server.on('connection', (socket) => {
      this.sockets.add(socket);
      socket.once('close', () => this.sockets.delete(socket));
    });
  }

  get baseUrl(): string {
    return `http://${this.host}:${this.port}`;
  }

  /** Starts listening; port 0 picks a free port, which later restarts reuse. */
  async listen(port: number, host: string): Promise<void> {
    this.host = host;
    await new Promise<void>((resolve, reject) => {
      this.server.once('error', reject);
      this.server.listen(port, host, () => {
        this.server.off('error', reject);
        resolve();
      });
    });
    const address = this.server.address();
    if (address && typeof address === 'object') this.port = address.port;
    this.up = true;
  }

  /** Outage: refuse new connections and destroy open ones (in-flight requests get no answer). */
  async goDown(): Promise<void> {
    if (!this.up) return;
    this.up = false;
    const closed = new Promise<void>((resolve) => this.server.close(() => resolve()));
    for (const socket of this.sockets) socket.destroy();
    await closed;
  }

  /** Ends an outage: listens again on the same port. */
  async comeUp(): Promise<void> {
    if (!this.up) await this.listen(this.port, this.host);
  }

  private async handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const url = new URL(req.url ?? '/', 'http://localhost');
    const method = req.method ?? 'GET';
    const path = url.pathname;
    const token =
      /^Bearer (.+)$/.exec(req.headers.authorization ?? '')?.[1] ?? url.searchParams.get('access_token') ?? undefined;
    const device = token === undefined ? undefined : this.store.tokens.get(token);
    const arrivedAt = preciseNow();
    const record: RequestRecord = {
      time: Date.now(),
      method,
      path,
      search: url.search,
      userId: device?.userId,
      status: undefined,
      fault: undefined,
      unrecognized: false,
      userAgent: req.headers['user-agent'],
    };
    this.log.push(record);
    res.on('finish', () => {
      record.status = res.statusCode;
      this.debug?.(`${method} ${path} ${res.statusCode}${device ? ` (${device.userId})` : ''}`);
    });
    const abort = new AbortController();
    res.on('close', () => abort.abort(new Error('client went away')));
    res.setHeader('Access-Control-Allow-Origin', '*');
    if (method === 'OPTIONS') {
      res.setHeader('Access-Control-Allow-Headers', 'Authorization, Content-Type');
      res.setHeader('Access-Control-Allow-Methods', 'GET, POST, PUT, DELETE, OPTIONS');
      res.writeHead(204).end();
      return;
    }
    try {
      const fault = this.faults.take(method, path, device?.userId);
      if (fault) {
        record.fault = fault.kind;
        this.debug?.(`${method} ${path}: injected ${fault.kind}`);
        if (fault.kind === 'disconnect') {
          req.socket.destroy();
          return;
        }
        if (fault.kind === 'stall') return; // Dropped when the client or goDown()/stop() closes the socket.
        if (fault.kind === 'delay') await new Promise((resolve) => setTimeout(resolve, fault.ms));
        if (fault.kind === 'rateLimit') {
          if (fault.retryAfterHeader) res.setHeader('Retry-After', String(Math.ceil(fault.retryAfterMs / 1000)));
          throw new MatrixError(429, 'M_LIMIT_EXCEEDED', 'Too many requests (injected)', {
            retry_after_ms: fault.retryAfterMs,
          });
        }
        if (fault.kind === 'error')
          throw new MatrixError(fault.status, fault.errcode ?? 'M_UNKNOWN', fault.error ?? 'Injected failure');
      }
      const receivedAt = fault?.kind === 'delay' ? preciseNow() : arrivedAt;
      const found = this.match(method, path);
      if (!found) {
        record.unrecognized = true;
        this.debug?.(`unrecognized: ${method} ${path}`);
        throw new MatrixError(404, 'M_UNRECOGNIZED', `Unrecognized request: ${method} ${path}`);
      }
      if (found === 'method') throw new MatrixError(405, 'M_UNRECOGNIZED', `Method ${method} not allowed on ${path}`);
      const { route, params } = found;
      if (route.auth && token === undefined) throw new MatrixError(401, 'M_MISSING_TOKEN', 'Missing access token');
      if (route.auth && !device)
        throw new MatrixError(401, 'M_UNKNOWN_TOKEN', 'Unknown access token', { soft_logout: false });
      const text = method === 'GET' || method === 'HEAD' ? '' : await readBody(req);
      const body = text.trim() === '' ? {} : parseJson(text);
      const ctx: Ctx = {
        method,
        path,
        params,
        query: url.searchParams,
        body,
        device: device as Device,
        token,
        signal: abort.signal,
        baseUrl: this.baseUrl,
        receivedAt,
      };
      const result = await route.handler(ctx);
      send(res, 200, fault?.kind === 'repeatTimeline' ? repeatTimeline(result) : (result ?? {}));
    } catch (err) {
      // The client went away (or goDown()/stop() dropped it): nobody to answer.
      if (abort.signal.aborted || req.socket.destroyed || res.writableEnded) return;
      if (err instanceof MatrixError) {
        send(res, err.status, { errcode: err.errcode, error: err.message, ...err.extra });
      } else {
        (this.debug ?? console.error)(
          `internal error on ${method} ${path}: ${err instanceof Error ? err.stack : String(err)}`,
        );
        send(res, 500, { errcode: 'M_UNKNOWN', error: String(err) });
      }
    }
  }

  private match(method: string, path: string): { route: Route; params: Record<string, string> } | 'method' | undefined {
    let wrongMethod = false;
    for (const route of this.routes) {
      const m = route.pattern.exec(path);
      if (!m) continue;
      if (route.method !== method) {
        wrongMethod = true;
        continue;
      }
      const params: Record<string, string> = {};
      route.keys.forEach((key, i) => {
        try {
          params[key] = decodeURIComponent(m[i + 1] ?? '');
        } catch {
          throw new MatrixError(400, 'M_INVALID_PARAM', `malformed path: ${path}`);
        }
      });
      return { route, params };
    }
    return wrongMethod ? 'method' : undefined;
  }

  /** Stops for good: closes the listener and every connection. */
  async close(): Promise<void> {
    await this.goDown();
  }
}

/** A sync response whose joined rooms list each timeline event twice in a row. */
function repeatTimeline(result: unknown): unknown {
  const join =
    (result as { rooms?: { join?: Record<string, { timeline?: { events?: unknown[] } }> } } | undefined)?.rooms?.join ??
    {};
  for (const room of Object.values(join)) {
    if (room.timeline?.events) room.timeline.events = room.timeline.events.flatMap((event) => [event, event]);
  }
  return result;
}

const MAX_BODY = 16 * 1024 * 1024;

function readBody(req: IncomingMessage): Promise<string> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    let size = 0;
    req.on('data', (chunk: Buffer) => {
      size += chunk.length;
      if (size > MAX_BODY) reject(new MatrixError(413, 'M_TOO_LARGE', 'Request body too large'));
      else chunks.push(chunk);
    });
    req.on('end', () => resolve(Buffer.concat(chunks).toString('utf8')));
    req.on('error', reject);
  });
}

function send(res: ServerResponse, status: number, body: unknown): void {
  if (res.destroyed || res.writableEnded) return;
  const text = JSON.stringify(body);
  res.writeHead(status, { 'Content-Type': 'application/json', 'Content-Length': Buffer.byteLength(text) });
  res.end(text);
}
