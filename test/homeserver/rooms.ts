/**
 * Room operations with Matrix semantics, shared by the HTTP endpoints and the
 * programmatic test helpers. Authorisation is deliberately limited to
 * membership: you must be joined to send, you need an invite (or a public
 * room) to join; power levels are recorded but never enforced.
 */

import {
  type Content,
  MatrixError,
  type Room,
  type StoredEvent,
  badParam,
  forbidden,
  isUserId,
  membershipOf,
  notFound,
  randomId,
  serverOf,
} from './model.ts';
import type { EventDraft, Store } from './store.ts';

/** Body of `POST /createRoom` (spec names), also accepted by the `createRoom` helper. */
export interface CreateRoomRequest {
  room_alias_name?: string;
  name?: string;
  topic?: string;
  visibility?: 'public' | 'private';
  preset?: 'private_chat' | 'public_chat' | 'trusted_private_chat';
  invite?: string[];
  is_direct?: boolean;
  room_version?: string;
  creation_content?: Content;
  initial_state?: Array<{ type: string; state_key?: string; content: Content }>;
  power_level_content_override?: Content;
}

const obj = (v: unknown): v is Record<string, unknown> => typeof v === 'object' && v !== null && !Array.isArray(v);

/** Validates an untrusted createRoom body (from HTTP). */
export function parseCreateRoom(body: unknown): CreateRoomRequest {
  if (!obj(body)) throw new MatrixError(400, 'M_BAD_JSON', 'body must be an object');
  const strings = ['room_alias_name', 'name', 'topic', 'visibility', 'preset', 'room_version'] as const;
  for (const k of strings)
    if (body[k] !== undefined && typeof body[k] !== 'string') throw badParam(`${k} must be a string`);
  if (
    body['invite'] !== undefined &&
    !(Array.isArray(body['invite']) && body['invite'].every((u) => typeof u === 'string' && isUserId(u)))
  ) {
    throw badParam('invite must be a list of user IDs');
  }
  for (const k of ['creation_content', 'power_level_content_override'] as const) {
    if (body[k] !== undefined && !obj(body[k])) throw badParam(`${k} must be an object`);
  }
  const initial = body['initial_state'];
  if (
    initial !== undefined &&
    !(Array.isArray(initial) && initial.every((e) => obj(e) && typeof e['type'] === 'string' && obj(e['content'])))
  ) {
    throw badParam('initial_state must be a list of state events');
  }
  return body as CreateRoomRequest;
}

/** Creates a room the way the spec orders it: create, creator join, power levels, alias, preset, initial_state, name, topic, invites. */
export function createRoom(store: Store, creator: string, req: CreateRoomRequest = {}): Room {
  store.user(creator);
  const server = serverOf(creator);
  const alias = req.room_alias_name === undefined ? undefined : `#${req.room_alias_name}:${server}`;
  if (alias !== undefined && (req.room_alias_name === '' || /[:\s]/.test(req.room_alias_name ?? '')))
    throw badParam('invalid room_alias_name');
  if (alias !== undefined && store.aliases.has(alias)) throw new MatrixError(400, 'M_ROOM_IN_USE', `${alias} is taken`);

  const version = req.room_version ?? store.defaultRoomVersion;
  const preset = req.preset ?? (req.visibility === 'public' ? 'public_chat' : 'private_chat');
  const room = store.newRoom(server, version);
  const state = (type: string, content: Content, stateKey = ''): StoredEvent =>
    store.send(room, { type, sender: creator, content, stateKey });

  // Room versions up to 10 name the creator in the create event; 11+ use the sender.
  const createContent: Content = {
    room_version: version,
    ...(Number(version) < 11 || Number.isNaN(Number(version)) ? { creator } : {}),
  };
  state('m.room.create', { ...createContent, ...req.creation_content });
  state('m.room.member', { membership: 'join', ...displayName(store, creator) }, creator);
  const users: Record<string, number> = { [creator]: 100 };
  if (preset === 'trusted_private_chat') for (const u of req.invite ?? []) users[u] = 100;
  state('m.room.power_levels', {
    users,
    users_default: 0,
    events: {
      'm.room.name': 50,
      'm.room.power_levels': 100,
      'm.room.history_visibility': 100,
      'm.room.canonical_alias': 50,
      'm.room.avatar': 50,
      'm.room.tombstone': 100,
      'm.room.server_acl': 100,
      'm.room.encryption': 100,
    },
    events_default: 0,
    state_default: 50,
    ban: 50,
    kick: 50,
    redact: 50,
    invite: 0,
    notifications: { room: 50 },
    ...req.power_level_content_override,
  });
  if (alias !== undefined) {
    store.aliases.set(alias, room.id);
    state('m.room.canonical_alias', { alias });
  }
  state('m.room.join_rules', { join_rule: preset === 'public_chat' ? 'public' : 'invite' });
  state('m.room.history_visibility', { history_visibility: 'shared' });
  state('m.room.guest_access', { guest_access: preset === 'public_chat' ? 'forbidden' : 'can_join' });
  for (const e of req.initial_state ?? []) state(e.type, e.content, e.state_key ?? '');
  if (req.name !== undefined) state('m.room.name', { name: req.name });
  if (req.topic !== undefined) state('m.room.topic', { topic: req.topic });
  for (const invitee of req.invite ?? [])
    invite(store, creator, room.id, invitee, req.is_direct ? { is_direct: true } : {});
  return room;
}

/** State Synapse 1.67 copies into the replacement room (handlers/room.py `clone_existing_room`). */
const COPIED_ON_UPGRADE = [
  'm.room.join_rules',
  'm.room.name',
  'm.room.topic',
  'm.room.history_visibility',
  'm.room.guest_access',
  'm.room.avatar',
  'm.room.encryption',
  'm.room.server_acl',
  'm.room.power_levels',
];

/**
 * `POST /rooms/{roomId}/upgrade` as Synapse 1.67 does it (handlers/room.py
 * `upgrade_room`): a new room that only the upgrader is in, so only the
 * upgrading server has it, with the old room's main state and a
 * `predecessor`; then the tombstone in the old room, the upgrading server's
 * aliases moved to the new room, and the old room restricted (invite and
 * events_default raised to 50). Nobody is invited: members follow by joining.
 */
export function upgradeRoom(store: Store, sender: string, roomId: string, newVersion: string): Room {
  const old = store.room(roomId);
  store.requireJoined(old, sender);
  const tombstoneId = `$${randomId()}`;
  const initial = COPIED_ON_UPGRADE.flatMap((type) => {
    const ev = old.state.get(type, '');
    return ev ? [{ type, content: ev.content }] : [];
  });
  const room = createRoom(store, sender, {
    room_version: newVersion,
    preset: 'private_chat',
    initial_state: initial,
    creation_content: { predecessor: { room_id: old.id, event_id: tombstoneId } },
  });
  store.send(old, {
    type: 'm.room.tombstone',
    sender,
    stateKey: '',
    eventId: tombstoneId,
    content: { body: 'This room has been replaced', replacement_room: room.id },
  });
  const server = serverOf(sender);
  for (const [alias, target] of store.aliases)
    if (target === old.id && serverOf(alias) === server) store.aliases.set(alias, room.id);
  const canonical = old.state.get('m.room.canonical_alias', '')?.content['alias'];
  if (typeof canonical === 'string' && serverOf(canonical) === server) {
    store.send(room, { type: 'm.room.canonical_alias', sender, stateKey: '', content: { alias: canonical } });
    store.send(old, { type: 'm.room.canonical_alias', sender, stateKey: '', content: {} });
  }
  const levels = old.state.get('m.room.power_levels', '')?.content ?? {};
  const restricted = Math.max(Number(levels['users_default'] ?? 0) + 1, 50);
  const raised = Object.fromEntries(
    ['invite', 'events_default'].filter((key) => Number(levels[key] ?? 0) < restricted).map((key) => [key, restricted]),
  );
  if (Object.keys(raised).length > 0)
    store.send(old, { type: 'm.room.power_levels', sender, stateKey: '', content: { ...levels, ...raised } });
  return room;
}

function displayName(store: Store, userId: string): Content {
  const name = store.users.get(userId)?.displayName;
  return name === undefined ? {} : { displayname: name };
}

/** `#alias:server` or `!room:server` → the room, or 404. */
export function resolveRoom(store: Store, roomIdOrAlias: string): Room {
  if (roomIdOrAlias.startsWith('#')) {
    const roomId = store.aliases.get(roomIdOrAlias);
    if (roomId === undefined) throw notFound(`room alias ${roomIdOrAlias} not found`);
    return store.room(roomId);
  }
  if (!roomIdOrAlias.startsWith('!')) throw badParam(`not a room ID or alias: ${roomIdOrAlias}`);
  return store.room(roomIdOrAlias);
}

/**
 * Joins a room as Synapse 1.67 decides (handlers/room_member.py,
 * `update_membership_locked` and `_remote_join`). A server with a joined
 * member has the room and joins locally. Any other server must ask a server
 * that is in the room: the `via` servers (`server_name` on `/join`), or the
 * directory's servers for an alias, plus the inviter's server when the user
 * is invited. Those are asked in order (federation_client.py
 * `_try_destination_list`): an unknown server is skipped as unreachable, and
 * the first that answers decides; one that is not in the room answers 404
 * and the join fails with it.
 */
export function join(store: Store, userId: string, roomIdOrAlias: string, via: readonly string[] = []): Room {
  store.user(userId);
  const own = serverOf(userId);
  let room: Room | undefined;
  let servers = [...via];
  if (roomIdOrAlias.startsWith('#')) {
    room = resolveRoom(store, roomIdOrAlias);
    servers = room.state.servers();
  } else {
    if (!roomIdOrAlias.startsWith('!')) throw badParam(`${roomIdOrAlias} was not legal room ID or room alias`);
    room = store.rooms.get(roomIdOrAlias);
  }
  if (room?.state.membership(userId) === 'join') return room;
  if (!room?.state.hasServer(own)) {
    const invite = room?.state.members.get(userId);
    if (invite && membershipOf(invite) === 'invite') servers.push(serverOf(invite.sender));
    room = remoteRoom(
      store,
      roomIdOrAlias,
      room,
      servers.filter((server) => server !== own),
    );
  }
  const membership = room.state.membership(userId);
  if (membership === 'ban') throw forbidden(`${userId} is banned from ${room.id}`);
  const rule = room.state.get('m.room.join_rules', '')?.content['join_rule'];
  if (membership !== 'invite' && rule !== 'public') throw forbidden(`${userId} is not invited to ${room.id}`);
  store.send(room, {
    type: 'm.room.member',
    sender: userId,
    stateKey: userId,
    content: { membership: 'join', ...displayName(store, userId) },
  });
  return room;
}

/** The room as the first reachable server of `servers` hands it over for a join, or that server's refusal. */
function remoteRoom(store: Store, roomId: string, room: Room | undefined, servers: readonly string[]): Room {
  if (servers.length === 0)
    throw new MatrixError(
      404,
      'M_UNKNOWN',
      "Can't join remote room because no servers that are in the room have been provided.",
    );
  for (const server of servers) {
    if (!store.servers.has(server)) continue;
    if (room?.state.hasServer(server)) return room;
    throw notFound(
      room?.state.everJoined.has(server)
        ? 'Not an active room on this server'
        : `Could not find room_version for ${roomId}`,
    );
  }
  throw new MatrixError(502, 'M_UNKNOWN', 'Failed to make_join via any server');
}

export function invite(
  store: Store,
  inviter: string,
  roomId: string,
  target: string,
  extra: Content = {},
): StoredEvent {
  if (!isUserId(target)) throw badParam(`invalid user ID ${target}`);
  const room = store.room(roomId);
  store.requireJoined(room, inviter);
  const m = room.state.membership(target);
  if (m === 'join') throw forbidden(`${target} is already in the room`);
  if (m === 'ban') throw forbidden(`${target} is banned from the room`);
  return store.send(room, {
    type: 'm.room.member',
    sender: inviter,
    stateKey: target,
    content: { membership: 'invite', ...extra, ...displayName(store, target) },
  });
}

/** Leaves a room or rejects an invite; leaving twice is a no-op. */
export function leave(store: Store, userId: string, roomId: string, reason?: string): void {
  const room = store.room(roomId);
  const m = room.state.membership(userId);
  if (m === 'leave') return;
  if (m !== 'join' && m !== 'invite' && m !== 'knock') throw forbidden(`${userId} is not in room ${roomId}`);
  store.send(room, {
    type: 'm.room.member',
    sender: userId,
    stateKey: userId,
    content: { membership: 'leave', ...(reason ? { reason } : {}) },
  });
}

/** Kick, ban and unban: the sender must be joined (power levels are not checked). */
export function moderate(
  store: Store,
  action: 'kick' | 'ban' | 'unban',
  sender: string,
  roomId: string,
  target: string,
  reason?: string,
): void {
  const room = store.room(roomId);
  store.requireJoined(room, sender);
  const m = room.state.membership(target);
  if (action === 'kick' && m !== 'join' && m !== 'invite') throw forbidden(`${target} is not in the room`);
  if (action === 'unban' && m !== 'ban') throw forbidden(`${target} is not banned`);
  const membership = action === 'ban' ? 'ban' : 'leave';
  store.send(room, {
    type: 'm.room.member',
    sender,
    stateKey: target,
    content: { membership, ...(reason ? { reason } : {}) },
  });
}

/**
 * Sends a message-like event. With a transaction (access token + txnId) a repeated
 * request returns the first event instead of creating a new one.
 */
export function sendEvent(
  store: Store,
  sender: string,
  roomId: string,
  type: string,
  content: Content,
  txn?: { token: string; txnId: string },
  requestedAt?: number,
): StoredEvent {
  const room = store.room(roomId);
  const txnKey = txn && [txn.token, roomId, type, txn.txnId].join('\u0000');
  if (txnKey !== undefined) {
    const previous = store.txns.get(txnKey);
    const ev = previous === undefined ? undefined : room.byId.get(previous);
    if (ev) return ev;
  }
  store.requireJoined(room, sender);
  const draft: EventDraft = { type, sender, content };
  if (txn) draft.txn = txn;
  if (requestedAt !== undefined) draft.requestedAt = requestedAt;
  const ev = store.send(room, draft);
  if (txnKey !== undefined) store.txns.set(txnKey, ev.event_id);
  return ev;
}

/** Sets room state. Membership goes through join/invite/leave, except own profile updates. */
export function setState(
  store: Store,
  sender: string,
  roomId: string,
  type: string,
  stateKey: string,
  content: Content,
): StoredEvent {
  const room = store.room(roomId);
  store.requireJoined(room, sender);
  if (type === 'm.room.create') throw forbidden('the create event cannot be replaced');
  if (type === 'm.room.member' && (stateKey !== sender || content['membership'] !== 'join')) {
    throw forbidden('use the membership endpoints to change membership');
  }
  if (
    type === 'm.room.canonical_alias' &&
    typeof content['alias'] === 'string' &&
    store.aliases.get(content['alias']) !== room.id
  ) {
    throw new MatrixError(400, 'M_BAD_ALIAS', `${content['alias']} does not point to this room`);
  }
  return store.send(room, { type, sender, content, stateKey });
}

/**
 * Bulk-joins `count` synthetic members (not registered users) that every
 * server already knows about: for memory/lazy-loading tests. Returns their IDs.
 */
export function addMembers(store: Store, roomId: string, count: number, server: string): string[] {
  const room = store.room(roomId);
  const first = store.syntheticMembers;
  store.syntheticMembers += count;
  const ids: string[] = [];
  const drafts: EventDraft[] = [];
  for (let i = 0; i < count; i++) {
    const id = `@member${first + i}:${server}`;
    ids.push(id);
    drafts.push({ type: 'm.room.member', sender: id, stateKey: id, content: { membership: 'join' } });
  }
  store.server(server);
  store.import(room, drafts);
  return ids;
}

/** One event of a bulk history import. */
export interface HistoryEvent {
  sender: string;
  /** Default `m.room.message`. */
  type?: string;
  /** A string is shorthand for an `m.text` message. */
  content: Content | string;
  /** Explicit origin_server_ts; default now. */
  ts?: number;
  stateKey?: string;
}

/**
 * Appends already-federated history (visible on every server at once, no
 * membership checks) — cheap enough for 50,000+ events in one call.
 */
export function addHistory(store: Store, roomId: string, events: HistoryEvent[]): StoredEvent[] {
  const room = store.room(roomId);
  return store.import(
    room,
    events.map((e) => {
      const d: EventDraft = { type: e.type ?? 'm.room.message', sender: e.sender, content: textContent(e.content) };
      if (e.ts !== undefined) d.ts = e.ts;
      if (e.stateKey !== undefined) d.stateKey = e.stateKey;
      return d;
    }),
  );
}

export function textContent(content: Content | string): Content {
  return typeof content === 'string' ? { msgtype: 'm.text', body: content } : content;
}
