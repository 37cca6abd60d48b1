/**
 * In-memory store of the test homeserver: server names, users and their
 * devices, rooms and aliases, account data, and the single place where events
 * are created and delivered (instantly to the sender's server, later to the
 * others, see {@link Federation}). Nothing is persisted.
 */

import { randomBytes } from 'node:crypto';
import { Federation } from './federation.ts';
import {
  type Content,
  MatrixError,
  Room,
  RoomView,
  type StoredEvent,
  badParam,
  forbidden,
  isUserId,
  membershipOf,
  randomId,
  serverOf,
} from './model.ts';
import { getOrInsert } from '../../src/collections.ts';

/** Simulated behaviour of one server name. */
export interface ServerConfig {
  /** Federation delay added to events leaving and entering this server (ms). */
  delayMs: number;
  /** Offset of this server's clock, used for `origin_server_ts` (ms). */
  clockOffsetMs: number;
}

export interface ServerState extends ServerConfig {
  name: string;
  /** Last stream position handed out on this server (sync/pagination tokens). */
  stream: number;
  /** Rooms in which each registered local user has a membership, for /sync. */
  userRooms: Map<string, Set<Room>>;
}

export interface AccountDataEntry {
  content: Content;
  stream: number;
}

export interface User {
  userId: string;
  server: string;
  password: string | undefined;
  displayName: string | undefined;
  accountData: Map<string, AccountDataEntry>;
  roomAccountData: Map<string, Map<string, AccountDataEntry>>;
}

/** A logged-in device; its access token is the key of {@link Store.tokens}. */
export interface Device {
  userId: string;
  deviceId: string;
  accessToken: string;
  /** `${userId}|${deviceId}`. */
  key: string;
}

/** Fields of a new event; the store fills in IDs, timestamps and the room. */
export interface EventDraft {
  type: string;
  sender: string;
  content: Content;
  stateKey?: string;
  /** Explicit origin_server_ts (history import); default: origin server's clock. */
  ts?: number;
  /** An ID chosen in advance (an upgrade names its tombstone in the new room before sending it). */
  eventId?: string;
  txn?: { token: string; txnId: string };
  /** When the client's send request reached the server (preciseNow()); default: when the event is created. */
  requestedAt?: number;
}

export class Store {
  /** Changes on every process start so tokens of an earlier process are recognised. */
  readonly epoch = Date.now().toString(36) + randomBytes(2).toString('hex');
  readonly servers = new Map<string, ServerState>();
  readonly users = new Map<string, User>();
  readonly tokens = new Map<string, Device>();
  readonly rooms = new Map<string, Room>();
  readonly aliases = new Map<string, string>();
  /** (access token, room, type, txnId) → event ID, for idempotent sends. */
  readonly txns = new Map<string, string>();
  readonly federation = new Federation();
  defaultRoomVersion = '10';
  /** Counter for the IDs of synthetic members (see addMembers). */
  syntheticMembers = 0;
  /** Called (batched per microtask) when something new is visible on a server. */
  onChange: (server: string) => void = () => {};
  /** Called for every new event, at creation time (before any delivery delay). */
  readonly eventListeners = new Set<(ev: StoredEvent) => void>();
  private readonly dirty = new Set<string>();

  server(name: string): ServerState {
    const s = this.servers.get(name);
    if (s) return s;
    const created: ServerState = { name, delayMs: 0, clockOffsetMs: 0, stream: 0, userRooms: new Map() };
    this.servers.set(name, created);
    // A server that appears later has "backfilled" every existing room.
    for (const room of this.rooms.values()) {
      const view = new RoomView(name);
      for (const ev of room.events) view.append(ev, ++created.stream);
      room.views.set(name, view);
    }
    return created;
  }

  setServer(name: string, config: Partial<ServerConfig>): void {
    const s = this.server(name);
    if (config.delayMs !== undefined) s.delayMs = config.delayMs;
    if (config.clockOffsetMs !== undefined) s.clockOffsetMs = config.clockOffsetMs;
  }

  /** Sync/pagination token for a stream position of this process. */
  token(stream: number): string {
    return `s${stream}_${this.epoch}`;
  }

  /** Stream position of a token, or undefined for a token of another process (e.g. before a restart). */
  parseToken(token: string): number | undefined {
    const m = /^s(\d+)_([0-9a-z]+)$/.exec(token);
    if (!m) throw badParam(`invalid token ${token}`);
    return m[2] === this.epoch ? Number(m[1]) : undefined;
  }

  // --- users and devices -------------------------------------------------

  registerUser(userId: string, opts: { password?: string; displayName?: string } = {}): User {
    if (!isUserId(userId)) throw badParam(`invalid user ID ${userId}`);
    let user = this.users.get(userId);
    if (!user) {
      const server = serverOf(userId);
      user = {
        userId,
        server,
        password: undefined,
        displayName: undefined,
        accountData: new Map(),
        roomAccountData: new Map(),
      };
      this.users.set(userId, user);
      // Index rooms the user already has a membership in (e.g. seeded synthetic members).
      const s = this.server(server);
      for (const room of this.rooms.values()) {
        if (room.view(server).state.members.has(userId)) this.indexMembership(s, userId, room);
      }
    }
    if (opts.password !== undefined) user.password = opts.password;
    if (opts.displayName !== undefined) user.displayName = opts.displayName;
    return user;
  }

  user(userId: string): User {
    const u = this.users.get(userId);
    if (!u) throw new MatrixError(404, 'M_NOT_FOUND', `unknown user ${userId}`);
    return u;
  }

  addDevice(userId: string, opts: { deviceId?: string; accessToken?: string } = {}): Device {
    this.user(userId);
    const deviceId =
      opts.deviceId ??
      randomId(6)
        .toUpperCase()
        .replace(/[^A-Z0-9]/g, 'X');
    const accessToken = opts.accessToken ?? `syt_${randomId(24)}`;
    const device: Device = { userId, deviceId, accessToken, key: `${userId}|${deviceId}` };
    // Logging in again with a device ID gives that device one more token; the old ones stay valid (Synapse 1.67).
    this.tokens.set(accessToken, device);
    return device;
  }

  // --- events ------------------------------------------------------------

  /** Creates a room with views for every known server; events are added with {@link send}. */
  newRoom(creatorServer: string, version: string): Room {
    const room = new Room(`!${randomId(18)}:${creatorServer}`, version);
    this.server(creatorServer);
    for (const name of this.servers.keys()) room.views.set(name, new RoomView(name));
    this.rooms.set(room.id, room);
    return room;
  }

  room(roomId: string): Room {
    const room = this.rooms.get(roomId);
    if (!room) throw new MatrixError(404, 'M_NOT_FOUND', `unknown room ${roomId}`);
    return room;
  }

  private create(room: Room, d: EventDraft, origin: string, now: number): StoredEvent {
    const ev: StoredEvent = {
      event_id: d.eventId ?? `$${randomId()}`,
      room_id: room.id,
      type: d.type,
      sender: d.sender,
      content: d.content,
      origin_server_ts: d.ts ?? now + this.server(origin).clockOffsetMs,
      sentAt: d.ts ?? now,
      requestedAt: d.requestedAt ?? d.ts ?? now,
      origin,
    };
    if (d.stateKey !== undefined) ev.state_key = d.stateKey;
    if (d.txn) ev.txn = d.txn;
    room.events.push(ev);
    room.byId.set(ev.event_id, ev);
    room.state.apply(ev);
    for (const listener of this.eventListeners) listener(ev);
    return ev;
  }

  /**
   * Adds an event to a room. It is visible on the sender's server at once and
   * on server B delay(origin) + delay(B) after the send request reached the
   * server (after the event's creation when no request made it). Callers
   * check permissions.
   */
  send(room: Room, draft: EventDraft): StoredEvent {
    const origin = serverOf(draft.sender);
    const now = Date.now();
    const ev = this.create(room, draft, origin, now);
    const delay = this.server(origin).delayMs;
    for (const [name, view] of room.views) {
      if (name === origin) {
        this.deliver(view, ev);
      } else {
        // From the request's arrival, where a client's one-way measurement starts: the server's
        // own time taking the request (slow on a busy machine) is not added to the delay.
        const due = ev.requestedAt + delay + this.server(name).delayMs;
        this.federation.schedule(origin, name, due, () => this.deliver(view, ev));
      }
    }
    return ev;
  }

  /** Adds events that every server already has (history, seeded members): no delay. */
  import(room: Room, drafts: EventDraft[]): StoredEvent[] {
    const now = Date.now();
    const events = drafts.map((d) => this.create(room, d, serverOf(d.sender), now));
    for (const view of room.views.values()) {
      for (const ev of events) this.deliver(view, ev);
    }
    return events;
  }

  private deliver(view: RoomView, ev: StoredEvent): void {
    const server = this.server(view.server);
    view.append(ev, ++server.stream);
    if (
      ev.type === 'm.room.member' &&
      ev.state_key !== undefined &&
      this.users.get(ev.state_key)?.server === view.server
    ) {
      const room = this.rooms.get(ev.room_id);
      if (room) this.indexMembership(server, ev.state_key, room);
    }
    this.changed(server.name);
  }

  private indexMembership(server: ServerState, userId: string, room: Room): void {
    getOrInsert(server.userRooms, userId, () => new Set()).add(room);
  }

  /** Wakes long-polling syncs of a server, once per microtask however many events arrive. */
  changed(server: string): void {
    if (this.dirty.size === 0) {
      queueMicrotask(() => {
        const servers = [...this.dirty];
        this.dirty.clear();
        for (const s of servers) this.onChange(s);
      });
    }
    this.dirty.add(server);
  }

  // --- account data ------------------------------------------------------

  setAccountData(userId: string, roomId: string | undefined, type: string, content: Content): void {
    const user = this.user(userId);
    const entry = { content, stream: ++this.server(user.server).stream };
    if (roomId === undefined) {
      user.accountData.set(type, entry);
    } else {
      this.room(roomId);
      getOrInsert(user.roomAccountData, roomId, () => new Map()).set(type, entry);
    }
    this.changed(user.server);
  }

  // --- permission helpers ------------------------------------------------

  /** Throws unless the user is joined (authoritative state: what the sender's server knows). */
  requireJoined(room: Room, userId: string): void {
    if (room.state.membership(userId) !== 'join') throw forbidden(`${userId} is not in room ${room.id}`);
  }

  /**
   * How far into its server's view of the room a user may read: everything
   * while joined, up to its leave event after leaving, nothing otherwise.
   * Returns the last readable stream position.
   */
  readableUntil(room: Room, userId: string): { view: RoomView; until: number } {
    const view = room.view(serverOf(userId));
    const member = view.state.members.get(userId);
    const m = membershipOf(member);
    if (m === 'join') return { view, until: Infinity };
    if (member && (m === 'leave' || m === 'ban') && membershipOf(view.replaced.get(member.event_id)) === 'join') {
      return { view, until: view.positions.get(member.event_id) ?? 0 };
    }
    throw forbidden(`${userId} is not in room ${room.id}`);
  }

  /** Stops all timers (pending federation deliveries are dropped). */
  close(): void {
    this.federation.clear();
  }
}
