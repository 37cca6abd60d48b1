/**
 * Data model of the test homeserver: events, room state and the per-server
 * "views" of a room that simulate federation.
 *
 * One process hosts many server names. Every room has one authoritative event
 * list (used for auth checks and by test helpers) and one {@link RoomView} per
 * server name. An event is appended to its origin server's view at once and to
 * the other views after the simulated federation delay, so each server sees
 * the room in its own delivery order, exactly like real federated servers do.
 */

import { randomBytes } from 'node:crypto';
import { preciseNow } from './federation.ts';

/** Event JSON content; opaque to the server except for a few known keys. */
export type Content = Record<string, unknown>;

/** An event as stored. Shared (never copied) between all views of a room. */
export interface StoredEvent {
  event_id: string;
  room_id: string;
  type: string;
  sender: string;
  content: Content;
  /** Present on state events only (may be the empty string). */
  state_key?: string;
  /** Stamped with the origin server's (possibly skewed) clock. */
  origin_server_ts: number;
  /** Real time the event was created; `unsigned.age` is computed from it. */
  sentAt: number;
  /** Real time (fractional ms) the send request that made it reached the server (else sentAt): federation delays count from it. */
  requestedAt: number;
  /** Server name of the sender, which decides the federation delay. */
  origin: string;
  /** Set for events sent by a client with a transaction ID (echoed to that device only). */
  txn?: { token: string; txnId: string };
}

/** Matrix errors thrown anywhere in the server and turned into JSON responses. */
export class MatrixError extends Error {
  readonly status: number;
  readonly errcode: string;
  readonly extra: Record<string, unknown>;
  constructor(status: number, errcode: string, error: string, extra: Record<string, unknown> = {}) {
    super(error);
    this.status = status;
    this.errcode = errcode;
    this.extra = extra;
  }
}

export const forbidden = (why: string): MatrixError => new MatrixError(403, 'M_FORBIDDEN', why);
export const notFound = (why: string): MatrixError => new MatrixError(404, 'M_NOT_FOUND', why);
export const badParam = (why: string): MatrixError => new MatrixError(400, 'M_INVALID_PARAM', why);

/** `@name:server` → `server` (server names may contain a port: `example.org:8448`). */
export function serverOf(id: string): string {
  const i = id.indexOf(':');
  if (i < 1) throw badParam(`not a Matrix ID: ${id}`);
  return id.slice(i + 1);
}

export function isUserId(id: string): boolean {
  return /^@[^:\s]+:[^\s]+$/.test(id);
}

/** Random, URL-safe identifiers in the shape of room v4+ IDs (`$` + 43 chars). */
export function randomId(bytes = 32): string {
  return randomBytes(bytes).toString('base64url');
}

export const stateKeyOf = (type: string, stateKey: string): string => `${type}\u0000${stateKey}`;

export function membershipOf(ev: StoredEvent | undefined): string | undefined {
  const m = ev?.content['membership'];
  return typeof m === 'string' ? m : undefined;
}

/**
 * Current state of a room (or of one server's view of it). Member events are
 * kept apart from the rest so that lazy-loading syncs never touch the (possibly
 * huge) member list; joined/invited counts are maintained incrementally.
 */
export class RoomState {
  readonly members = new Map<string, StoredEvent>();
  readonly other = new Map<string, StoredEvent>();
  joined = 0;
  invited = 0;
  /** Joined members per server name: a server with one is "in the room" (it has the room). */
  readonly joinedByServer = new Map<string, number>();
  /** Servers that have had a member join at some point (they know of the room even after all left). */
  readonly everJoined = new Set<string>();

  get(type: string, stateKey: string): StoredEvent | undefined {
    return type === 'm.room.member' ? this.members.get(stateKey) : this.other.get(stateKeyOf(type, stateKey));
  }

  membership(userId: string): string | undefined {
    return membershipOf(this.members.get(userId));
  }

  /** Applies a state event; returns the event it replaced (for prev_content and rewinding). */
  apply(ev: StoredEvent): StoredEvent | undefined {
    const key = ev.state_key;
    if (key === undefined) return undefined;
    if (ev.type !== 'm.room.member') {
      const k = stateKeyOf(ev.type, key);
      const prev = this.other.get(k);
      this.other.set(k, ev);
      return prev;
    }
    const prev = this.members.get(key);
    this.count(key, membershipOf(prev), -1);
    this.count(key, membershipOf(ev), +1);
    this.members.set(key, ev);
    return prev;
  }

  /** Whether `server` has a joined member: what Synapse's `_is_host_in_room` asks. */
  hasServer(server: string): boolean {
    return (this.joinedByServer.get(server) ?? 0) > 0;
  }

  /** The servers in the room, most joined members first (what a directory lookup answers). */
  servers(): string[] {
    return [...this.joinedByServer]
      .filter(([, n]) => n > 0)
      .sort((a, b) => b[1] - a[1])
      .map(([server]) => server);
  }

  private count(userId: string, membership: string | undefined, delta: number): void {
    if (membership === 'join') {
      this.joined += delta;
      const server = userId.slice(userId.indexOf(':') + 1);
      this.joinedByServer.set(server, (this.joinedByServer.get(server) ?? 0) + delta);
      if (delta > 0) this.everJoined.add(server);
    } else if (membership === 'invite') {
      this.invited += delta;
    }
  }

  *all(): Iterable<StoredEvent> {
    yield* this.other.values();
    yield* this.members.values();
  }
}

/**
 * One server's copy of a room: the events in the order they reached that
 * server, each with a position in the server's stream (the number sync and
 * pagination tokens are made of), plus the state derived from them.
 */
export class RoomView {
  readonly server: string;
  readonly events: StoredEvent[] = [];
  /** `streams[i]` is the stream position of `events[i]`; strictly increasing. */
  readonly streams: number[] = [];
  readonly state = new RoomState();
  /** Stream position of each delivered event, by event ID. */
  readonly positions = new Map<string, number>();
  /** Real time (fractional ms) each event reached this server, by event ID: the delay actually injected, timer lateness included. */
  readonly deliveredAt = new Map<string, number>();
  /** For each state event: the state event it replaced in this view (undefined = none). */
  readonly replaced = new Map<string, StoredEvent | undefined>();

  constructor(server: string) {
    this.server = server;
  }

  append(ev: StoredEvent, stream: number): void {
    this.events.push(ev);
    this.streams.push(stream);
    this.positions.set(ev.event_id, stream);
    this.deliveredAt.set(ev.event_id, preciseNow());
    if (ev.state_key !== undefined) this.replaced.set(ev.event_id, this.state.apply(ev));
  }

  /** Index of the first event whose stream position is greater than `stream`. */
  indexAfter(stream: number): number {
    let lo = 0;
    let hi = this.streams.length;
    while (lo < hi) {
      const mid = (lo + hi) >>> 1;
      if ((this.streams[mid] ?? 0) <= stream) lo = mid + 1;
      else hi = mid;
    }
    return lo;
  }

  /**
   * State as it was just before `events[index]`: rewinds the current state
   * over the state events from the end of the view back to `index`. Returns
   * only the keys that differ from the current state (undefined = no state).
   */
  rewind(index: number): Map<string, StoredEvent | undefined> {
    const overrides = new Map<string, StoredEvent | undefined>();
    for (let i = this.events.length - 1; i >= index; i--) {
      const ev = this.events[i];
      if (ev?.state_key === undefined) continue;
      overrides.set(stateKeyOf(ev.type, ev.state_key), this.replaced.get(ev.event_id));
    }
    return overrides;
  }
}

/** A room: authoritative state and event list, plus one view per server name. */
export class Room {
  readonly id: string;
  readonly version: string;
  /** All events in creation order (what the "origin" side sees; used for auth and helpers). */
  readonly events: StoredEvent[] = [];
  readonly byId = new Map<string, StoredEvent>();
  readonly state = new RoomState();
  readonly views = new Map<string, RoomView>();

  constructor(id: string, version: string) {
    this.id = id;
    this.version = version;
  }

  view(server: string): RoomView {
    const v = this.views.get(server);
    if (!v) throw new Error(`no view of ${this.id} for server ${server}`);
    return v;
  }
}

/**
 * Serialises an event for a client (ClientEvent of the spec).
 * @param view the reader's view, for `unsigned.prev_content`
 * @param token the reader's access token: `transaction_id` goes to sends made with that token only,
 *   as Synapse 1.67 matches it (the access token, not the device)
 * @param withRoomId sync omits `room_id`; every other endpoint includes it
 */
export function toClientEvent(
  ev: StoredEvent,
  view: RoomView | undefined,
  token: string | undefined,
  withRoomId: boolean,
): Record<string, unknown> {
  // As Synapse 1.67 (serialize_event) does: `age` from the `age_ts` that only events created on the
  // reader's server keep in `unsigned`; a federated event's is moved out of it on receipt
  // (federation_server.py, synapse#8429), so its clients never get an age.
  const unsigned: Record<string, unknown> =
    ev.origin === view?.server ? { age: Math.max(0, Date.now() - ev.sentAt) } : {};
  if (ev.txn && ev.txn.token === token) unsigned['transaction_id'] = ev.txn.txnId;
  const out: Record<string, unknown> = {
    type: ev.type,
    content: ev.content,
    sender: ev.sender,
    event_id: ev.event_id,
    origin_server_ts: ev.origin_server_ts,
    unsigned,
  };
  if (withRoomId) out['room_id'] = ev.room_id;
  if (ev.state_key !== undefined) {
    out['state_key'] = ev.state_key;
    const prev = view?.replaced.get(ev.event_id);
    if (prev) {
      unsigned['prev_content'] = prev.content;
      unsigned['replaces_state'] = prev.event_id;
      unsigned['prev_sender'] = prev.sender;
    }
  }
  return out;
}

/** Stripped state event, as used in `invite_state`. */
export function toStrippedEvent(ev: StoredEvent): Record<string, unknown> {
  return { type: ev.type, state_key: ev.state_key ?? '', content: ev.content, sender: ev.sender };
}

/** Event types whose stripped state invitees get to see (spec: "stripped state"). */
export const STRIPPED_STATE_TYPES = [
  'm.room.create',
  'm.room.name',
  'm.room.avatar',
  'm.room.topic',
  'm.room.join_rules',
  'm.room.canonical_alias',
  'm.room.encryption',
];
