/**
 * Programmatic API of the test homeserver (see README.md).
 *
 *   const hs = await startTestHomeserver({ servers: { 'slow.example': { delayMs: 300 } } });
 *   const bot = hs.registerUser('@bot:bot.example', { password: 'pw' });
 *   const roomId = hs.createRoom('@alice:slow.example', { invite: [bot.userId] });
 *   ...
 *   await hs.stop();
 *
 * Helpers write straight into the store (fast seeding, same rules as the
 * HTTP endpoints); the code under test talks real HTTP to `hs.url`.
 */

import { type Fault, type FaultMatch, Faults, type Injection } from './faults.ts';
import { HttpFront, type RequestRecord, type Route, route } from './http.ts';
import { type Content, MatrixError, type StoredEvent, forbidden, serverOf } from './model.ts';
import * as rooms from './rooms.ts';
import { routes } from './routes.ts';
import { type ServerConfig, Store } from './store.ts';
import { SyncService } from './sync.ts';

export type { Content, Fault, FaultMatch, Injection, RequestRecord, ServerConfig, StoredEvent };
export type { CreateRoomRequest, HistoryEvent } from './rooms.ts';
export { MatrixError };

export interface TestHomeserverOptions {
  /** Default 0: any free port (kept across goDown()/comeUp()). */
  port?: number;
  /** Default 127.0.0.1. */
  host?: string;
  /** Server names to configure up front; others appear on first use with no delay. */
  servers?: Record<string, Partial<ServerConfig>>;
  /** Log every request and every unrecognized endpoint (true: to stderr). Also env TEST_HS_DEBUG=1. */
  debug?: boolean | ((line: string) => void);
  /** Room version of new rooms unless the request names one. Default "10". */
  defaultRoomVersion?: string;
  /** Enables `POST /_test/{operation}` (for the CLI): requests must carry this bearer token. */
  adminToken?: string;
}

export interface RegisterOptions {
  /** Enables password login. */
  password?: string;
  /** Fixed access token for the device created now (default: random). */
  accessToken?: string;
  deviceId?: string;
  displayName?: string;
}

export interface RegisteredUser {
  userId: string;
  accessToken: string;
  deviceId: string;
}

/** Which requests to count or list; all given conditions must hold. */
export interface RequestMatch {
  path?: string | RegExp;
  method?: string;
  userId?: string;
}

export async function startTestHomeserver(opts: TestHomeserverOptions = {}): Promise<TestHomeserver> {
  const hs = new TestHomeserver(opts);
  await hs.http.listen(opts.port ?? 0, opts.host ?? '127.0.0.1');
  return hs;
}

export class TestHomeserver {
  /** The store, for assertions the helpers do not cover. */
  readonly store = new Store();
  readonly sync: SyncService;
  readonly faults = new Faults();
  /** @internal */
  readonly http: HttpFront;
  private readonly listeners = new Set<(ev: StoredEvent) => void>();

  constructor(opts: TestHomeserverOptions) {
    if (opts.defaultRoomVersion) this.store.defaultRoomVersion = opts.defaultRoomVersion;
    for (const [name, config] of Object.entries(opts.servers ?? {})) this.store.setServer(name, config);
    this.sync = new SyncService(this.store);
    this.store.onChange = (server) => this.sync.wake(server);
    this.store.eventListeners.add((ev) => {
      for (const l of [...this.listeners]) l(ev);
    });
    const envDebug = process.env['TEST_HS_DEBUG'] === '1';
    const debug =
      typeof opts.debug === 'function'
        ? opts.debug
        : opts.debug || envDebug
          ? (line: string) => console.error(`[test-hs] ${line}`)
          : undefined;
    const all = routes(this.store, this.sync);
    if (opts.adminToken) all.push(adminRoute(this, opts.adminToken));
    this.http = new HttpFront(all, this.store, this.faults, debug);
  }

  /** Base URL for clients, e.g. `http://127.0.0.1:41234`. */
  get url(): string {
    return this.http.baseUrl;
  }

  get port(): number {
    return this.http.port;
  }

  // --- setup --------------------------------------------------------------

  /** Changes a server's federation delay / clock offset; applies to events sent from now on. */
  setServer(name: string, config: Partial<ServerConfig>): void {
    this.store.setServer(name, config);
  }

  /** Registers a user (idempotent) and creates a device; returns its access token. */
  registerUser(userId: string, opts: RegisterOptions = {}): RegisteredUser {
    const owner = opts.accessToken === undefined ? undefined : this.store.tokens.get(opts.accessToken)?.userId;
    if (owner !== undefined && owner !== userId) throw new Error(`access token already belongs to ${owner}`);
    this.store.registerUser(userId, opts);
    const device = this.store.addDevice(userId, opts);
    return { userId, accessToken: device.accessToken, deviceId: device.deviceId };
  }

  /** Creates a room like `POST /createRoom` (same body shape). Returns the room ID. */
  createRoom(creator: string, req: rooms.CreateRoomRequest = {}): string {
    return rooms.createRoom(this.store, creator, req).id;
  }

  /**
   * Joins by room ID or alias, with the rules of `POST /join`: by ID from a
   * server not in the room, `via` must name a server that is (or the user be
   * invited). Returns the room ID.
   */
  join(userId: string, roomIdOrAlias: string, via: readonly string[] = []): string {
    return rooms.join(this.store, userId, roomIdOrAlias, via).id;
  }

  /** Upgrades a room like `POST /rooms/{roomId}/upgrade`. Returns the replacement room's ID. */
  upgradeRoom(userId: string, roomId: string, newVersion = this.store.defaultRoomVersion): string {
    return rooms.upgradeRoom(this.store, userId, roomId, newVersion).id;
  }

  invite(inviter: string, roomId: string, userId: string): string {
    return rooms.invite(this.store, inviter, roomId, userId).event_id;
  }

  leave(userId: string, roomId: string): void {
    rooms.leave(this.store, userId, roomId);
  }

  /** Sends an `m.room.message` (a string becomes an m.text body). Returns the event ID. */
  sendMessage(userId: string, roomId: string, content: Content | string): string {
    return this.sendEvent(userId, roomId, 'm.room.message', rooms.textContent(content));
  }

  sendEvent(userId: string, roomId: string, type: string, content: Content): string {
    return rooms.sendEvent(this.store, userId, roomId, type, content).event_id;
  }

  setState(userId: string, roomId: string, type: string, stateKey: string, content: Content): string {
    return rooms.setState(this.store, userId, roomId, type, stateKey, content).event_id;
  }

  /** Joins `count` synthetic members at once (visible everywhere immediately). Returns their IDs. */
  addMembers(roomId: string, count: number, opts: { server?: string } = {}): string[] {
    return rooms.addMembers(this.store, roomId, count, opts.server ?? serverOf(roomId));
  }

  /** Appends already-federated events with explicit timestamps. Returns their IDs. */
  addHistory(roomId: string, events: rooms.HistoryEvent[]): string[] {
    return rooms.addHistory(this.store, roomId, events).map((e) => e.event_id);
  }

  // --- inspection -----------------------------------------------------------

  /** All events of a room in creation order (independent of delivery delays). */
  events(roomId: string): readonly StoredEvent[] {
    return this.store.room(roomId).events;
  }

  /** When each event of a room reached `server` (real ms), by event ID: what a bot on that server can measure at best. */
  deliveries(roomId: string, server: string): Record<string, number> {
    const view = this.store.room(roomId).views.get(server);
    return view ? Object.fromEntries(view.deliveredAt) : {};
  }

  /** Current content of a state event (authoritative state), if any. */
  state(roomId: string, type: string, stateKey = ''): Content | undefined {
    return this.store.room(roomId).state.get(type, stateKey)?.content;
  }

  /** Resolves with the next event created (by anyone, via HTTP or helpers) that matches. */
  nextEvent(predicate: (ev: StoredEvent) => boolean = () => true, timeoutMs = 10_000): Promise<StoredEvent> {
    return new Promise((resolve, reject) => {
      const listener = (ev: StoredEvent): void => {
        if (!predicate(ev)) return;
        this.listeners.delete(listener);
        clearTimeout(timer);
        resolve(ev);
      };
      const timer = setTimeout(() => {
        this.listeners.delete(listener);
        reject(new Error(`no matching event within ${timeoutMs} ms`));
      }, timeoutMs);
      this.listeners.add(listener);
    });
  }

  /** Every request received so far (or those matching). */
  requests(match: RequestMatch = {}): RequestRecord[] {
    return this.http.log.filter(
      (r) =>
        (match.method === undefined || r.method === match.method.toUpperCase()) &&
        (match.userId === undefined || r.userId === match.userId) &&
        (match.path === undefined ||
          (typeof match.path === 'string' ? r.path.includes(match.path) : match.path.test(r.path))),
    );
  }

  countRequests(match: RequestMatch = {}): number {
    return this.requests(match).length;
  }

  clearRequestLog(): void {
    this.http.log.length = 0;
  }

  // --- faults and outages ---------------------------------------------------

  /** Arms a fault for the next `match.times` (default 1) matching requests. */
  inject(fault: Fault, match: FaultMatch = {}): Injection {
    return this.faults.inject(fault, match);
  }

  clearFaults(): void {
    this.faults.clear();
  }

  /** Outage: stops listening and drops all connections; state and federation timers live on. */
  goDown(): Promise<void> {
    return this.http.goDown();
  }

  /** Listens again on the same port. */
  comeUp(): Promise<void> {
    return this.http.comeUp();
  }

  get isUp(): boolean {
    return this.http.up;
  }

  /** Stops everything (connections, long-polls, timers) so the process can exit. */
  async stop(): Promise<void> {
    this.faults.clear();
    this.store.close();
    this.listeners.clear();
    await this.http.close(); // destroys connections, which ends their long-polls quietly
    this.sync.close();
  }
}

/** Helpers callable over HTTP as `POST /_test/{name}` with `{"args": [...]}` (used by the CLI). */
const ADMIN_OPERATIONS = [
  'registerUser',
  'setServer',
  'createRoom',
  'join',
  'upgradeRoom',
  'invite',
  'leave',
  'sendMessage',
  'sendEvent',
  'setState',
  'addMembers',
  'addHistory',
  'events',
  'deliveries',
  'state',
  'inject',
  'clearFaults',
  'requests',
  'countRequests',
  'clearRequestLog',
] as const;

function adminRoute(hs: TestHomeserver, token: string): Route {
  return route(
    'POST',
    '/_test/:operation',
    (ctx) => {
      // Checked here rather than by the router: admin tokens are not user tokens.
      if (ctx.token !== token) throw forbidden('bad admin token');
      const name = ADMIN_OPERATIONS.find((op) => op === ctx.params['operation']);
      if (!name) throw new MatrixError(404, 'M_UNRECOGNIZED', `unknown operation ${ctx.params['operation']}`);
      const body = ctx.body as { args?: unknown };
      const args = Array.isArray(body.args) ? body.args : [];
      // Paths cannot be RegExps in JSON: `{ "pathRegex": "..." }` stands for one.
      const revive = (v: unknown): unknown => {
        if (typeof v !== 'object' || v === null || !('pathRegex' in v)) return v;
        const { pathRegex, ...rest } = v as { pathRegex: string };
        return { ...rest, path: new RegExp(pathRegex) };
      };
      const result = (hs[name] as (...a: unknown[]) => unknown).apply(hs, args.map(revive));
      return { result: result ?? null };
    },
    { auth: false },
  );
}
