/**
 * The Client-Server API endpoints, as a table of routes. Handlers validate the
 * request and delegate to rooms.ts (writes), reads.ts (room reads) and
 * sync.ts. Endpoints a bot does not need are answered 404 M_UNRECOGNIZED by
 * the router.
 */

import { filterById, filterId, parseSyncFilter, resolveSyncFilter } from './filter.ts';
import { type Ctx, type Route, route } from './http.ts';
import { type Content, MatrixError, badParam, forbidden, isUserId, notFound } from './model.ts';
import * as reads from './reads.ts';
import {
  createRoom,
  invite,
  join,
  leave,
  moderate,
  parseCreateRoom,
  sendEvent,
  setState,
  upgradeRoom,
} from './rooms.ts';
import type { Store } from './store.ts';
import type { SyncService } from './sync.ts';

/** Spec versions advertised; matrix-js-sdk 43 needs one of v1.1–v1.13. */
const VERSIONS = [
  'r0.6.1',
  'v1.1',
  'v1.2',
  'v1.3',
  'v1.4',
  'v1.5',
  'v1.6',
  'v1.7',
  'v1.8',
  'v1.9',
  'v1.10',
  'v1.11',
  'v1.12',
];

const isObj = (v: unknown): v is Record<string, unknown> => typeof v === 'object' && v !== null && !Array.isArray(v);

function object(body: unknown): Record<string, unknown> {
  if (!isObj(body)) throw new MatrixError(400, 'M_BAD_JSON', 'body must be a JSON object');
  return body;
}

function str(body: Record<string, unknown>, key: string): string {
  const v = body[key];
  if (typeof v !== 'string') throw new MatrixError(400, 'M_BAD_JSON', `${key} must be a string`);
  return v;
}

/** Path users other than the caller are rejected (you may only touch your own account). */
function self(ctx: Ctx): string {
  const userId = ctx.params['userId'];
  if (userId !== ctx.device.userId) throw forbidden('cannot access another user');
  return userId;
}

export function routes(store: Store, sync: SyncService): Route[] {
  const me = (ctx: Ctx): string => ctx.device.userId;
  const p = (ctx: Ctx, key: string): string => ctx.params[key] ?? '';
  const reason = (ctx: Ctx): string | undefined => {
    const r = object(ctx.body)['reason'];
    return typeof r === 'string' ? r : undefined;
  };

  return [
    // --- discovery and login
    route('GET', '/_matrix/client/versions', () => ({ versions: VERSIONS, unstable_features: {} }), { auth: false }),
    route('GET', '/.well-known/matrix/client', (ctx) => ({ 'm.homeserver': { base_url: ctx.baseUrl } }), {
      auth: false,
    }),
    route('GET', '/login', () => ({ flows: [{ type: 'm.login.password' }] }), { auth: false }),
    route('POST', '/login', (ctx) => login(store, object(ctx.body)), { auth: false }),
    // Synapse ends the device, with every token it has.
    route('POST', '/logout', (ctx) => {
      for (const [token, d] of store.tokens) if (d.key === ctx.device.key) store.tokens.delete(token);
    }),
    route('POST', '/logout/all', (ctx) => {
      for (const [token, d] of store.tokens) if (d.userId === me(ctx)) store.tokens.delete(token);
    }),
    route('GET', '/account/whoami', (ctx) => ({ user_id: me(ctx), device_id: ctx.device.deviceId, is_guest: false })),
    route('GET', '/capabilities', () => ({
      capabilities: {
        'm.change_password': { enabled: false },
        'm.set_displayname': { enabled: true },
        'm.set_avatar_url': { enabled: true },
        'm.3pid_changes': { enabled: false },
        'm.room_versions': {
          default: store.defaultRoomVersion,
          available: Object.fromEntries(
            ['1', '2', '3', '4', '5', '6', '7', '8', '9', '10', '11'].map((v) => [v, 'stable']),
          ),
        },
      },
    })),
    route('GET', '/devices', (ctx) => ({
      devices: [...store.tokens.values()].filter((d) => d.userId === me(ctx)).map((d) => ({ device_id: d.deviceId })),
    })),

    // --- filters, push rules, account data, profile, presence
    route('POST', '/user/:userId/filter', (ctx) => {
      self(ctx);
      parseSyncFilter(object(ctx.body)); // validate now rather than at the first /sync
      return { filter_id: filterId(ctx.body) };
    }),
    route('GET', '/user/:userId/filter/:filterId', (ctx) => {
      self(ctx);
      const filter = filterById(p(ctx, 'filterId'));
      if (filter === undefined) throw notFound('unknown filter');
      return filter;
    }),
    route('GET', '/pushrules/:scope*', () => ({
      global: { override: [], content: [], room: [], sender: [], underride: [] },
    })),
    route('PUT', '/pushrules/:scope*', () => ({})),
    route('DELETE', '/pushrules/:scope*', () => ({})),
    route('GET', '/user/:userId/account_data/:type', (ctx) => {
      const entry = store.user(self(ctx)).accountData.get(p(ctx, 'type'));
      if (!entry) throw notFound('account data not found');
      return entry.content;
    }),
    route('PUT', '/user/:userId/account_data/:type', (ctx) => {
      store.setAccountData(self(ctx), undefined, p(ctx, 'type'), object(ctx.body));
    }),
    route('GET', '/user/:userId/rooms/:roomId/account_data/:type', (ctx) => {
      const entry = store.user(self(ctx)).roomAccountData.get(p(ctx, 'roomId'))?.get(p(ctx, 'type'));
      if (!entry) throw notFound('account data not found');
      return entry.content;
    }),
    route('PUT', '/user/:userId/rooms/:roomId/account_data/:type', (ctx) => {
      store.setAccountData(self(ctx), p(ctx, 'roomId'), p(ctx, 'type'), object(ctx.body));
    }),
    route('GET', '/profile/:userId', (ctx) => profile(store, p(ctx, 'userId'))),
    route('GET', '/profile/:userId/:field', (ctx) => {
      const prof = profile(store, p(ctx, 'userId'));
      const field = p(ctx, 'field');
      if (!(field in prof)) throw notFound(`no ${field}`);
      return { [field]: prof[field] };
    }),
    route('PUT', '/profile/:userId/displayname', (ctx) => {
      const body = object(ctx.body);
      store.registerUser(self(ctx), { displayName: str(body, 'displayname') });
    }),
    route('PUT', '/presence/:userId/status', () => ({})),
    route('GET', '/presence/:userId/status', () => ({ presence: 'online' })),

    // --- rooms: creation, directory, membership
    route('POST', '/createRoom', (ctx) => ({ room_id: createRoom(store, me(ctx), parseCreateRoom(ctx.body)).id })),
    route('GET', '/directory/room/:alias', (ctx) => {
      const alias = p(ctx, 'alias');
      const roomId = store.aliases.get(alias);
      if (roomId === undefined) throw notFound(`room alias ${alias} not found`);
      return { room_id: roomId, servers: store.room(roomId).state.servers() };
    }),
    route('PUT', '/directory/room/:alias', (ctx) => {
      const alias = p(ctx, 'alias');
      if (!/^#[^:\s]+:\S+$/.test(alias)) throw badParam('invalid alias');
      if (store.aliases.has(alias)) throw new MatrixError(409, 'M_UNKNOWN', `${alias} already exists`);
      const room = store.room(str(object(ctx.body), 'room_id'));
      store.requireJoined(room, me(ctx));
      store.aliases.set(alias, room.id);
    }),
    route('DELETE', '/directory/room/:alias', (ctx) => {
      if (!store.aliases.delete(p(ctx, 'alias'))) throw notFound('unknown alias');
    }),
    route('GET', '/joined_rooms', (ctx) => ({
      joined_rooms: [...store.rooms.values()].filter((r) => r.state.membership(me(ctx)) === 'join').map((r) => r.id),
    })),
    // Synapse 1.67 reads `server_name` (not yet `via`) on /join, and no servers at all on /rooms/{id}/join.
    route('POST', '/join/:roomIdOrAlias', (ctx) => ({
      room_id: join(store, me(ctx), p(ctx, 'roomIdOrAlias'), ctx.query.getAll('server_name')).id,
    })),
    route('POST', '/rooms/:roomId/join', (ctx) => ({ room_id: join(store, me(ctx), p(ctx, 'roomId')).id })),
    route('POST', '/rooms/:roomId/upgrade', (ctx) => {
      const version = object(ctx.body)['new_version'];
      if (typeof version !== 'string') throw new MatrixError(400, 'M_MISSING_PARAM', "Missing params: ['new_version']");
      return { replacement_room: upgradeRoom(store, me(ctx), p(ctx, 'roomId'), version).id };
    }),
    route('POST', '/rooms/:roomId/invite', (ctx) => {
      const body = object(ctx.body);
      const r = reason(ctx);
      invite(store, me(ctx), p(ctx, 'roomId'), str(body, 'user_id'), r ? { reason: r } : {});
    }),
    route('POST', '/rooms/:roomId/leave', (ctx) => leave(store, me(ctx), p(ctx, 'roomId'), reason(ctx))),
    route('POST', '/rooms/:roomId/forget', () => ({})),
    ...(['kick', 'ban', 'unban'] as const).map((action) =>
      route('POST', `/rooms/:roomId/${action}`, (ctx) => {
        moderate(store, action, me(ctx), p(ctx, 'roomId'), str(object(ctx.body), 'user_id'), reason(ctx));
      }),
    ),

    // --- rooms: events
    route('PUT', '/rooms/:roomId/send/:type/:txnId', (ctx) => {
      const txn = { token: ctx.device.accessToken, txnId: p(ctx, 'txnId') };
      const ev = sendEvent(store, me(ctx), p(ctx, 'roomId'), p(ctx, 'type'), object(ctx.body), txn, ctx.receivedAt);
      return { event_id: ev.event_id };
    }),
    route('PUT', '/rooms/:roomId/state/:type/:stateKey*', (ctx) => ({
      event_id: setState(
        store,
        me(ctx),
        p(ctx, 'roomId'),
        p(ctx, 'type'),
        p(ctx, 'stateKey'),
        object(ctx.body) as Content,
      ).event_id,
    })),
    route('GET', '/rooms/:roomId/state', (ctx) => reads.roomState(store, ctx.device, p(ctx, 'roomId'))),
    route('GET', '/rooms/:roomId/state/:type/:stateKey*', (ctx) =>
      reads.stateEvent(
        store,
        ctx.device,
        p(ctx, 'roomId'),
        p(ctx, 'type'),
        p(ctx, 'stateKey'),
        ctx.query.get('format'),
      ),
    ),
    route('GET', '/rooms/:roomId/members', (ctx) => reads.members(store, ctx.device, p(ctx, 'roomId'), ctx.query)),
    route('GET', '/rooms/:roomId/joined_members', (ctx) => reads.joinedMembers(store, ctx.device, p(ctx, 'roomId'))),
    route('GET', '/rooms/:roomId/messages', (ctx) => reads.messages(store, ctx.device, p(ctx, 'roomId'), ctx.query)),
    route('GET', '/rooms/:roomId/event/:eventId', (ctx) =>
      reads.getEvent(store, ctx.device, p(ctx, 'roomId'), p(ctx, 'eventId')),
    ),
    route('GET', '/rooms/:roomId/context/:eventId', (ctx) =>
      reads.context(store, ctx.device, p(ctx, 'roomId'), p(ctx, 'eventId'), ctx.query),
    ),
    // Receipts, read markers and typing notifications are accepted and dropped.
    route('POST', '/rooms/:roomId/receipt/:type/:eventId', () => ({})),
    route('POST', '/rooms/:roomId/read_markers', () => ({})),
    route('PUT', '/rooms/:roomId/typing/:userId', () => ({})),

    // --- sync
    route('GET', '/sync', (ctx) => {
      const q = ctx.query;
      const timeout = Number(q.get('timeout') ?? 0);
      if (!Number.isFinite(timeout) || timeout < 0) throw badParam('timeout must be a non-negative number');
      return sync.sync(
        ctx.device,
        {
          since: q.get('since') ?? undefined,
          timeoutMs: timeout,
          filter: resolveSyncFilter(q.get('filter')),
          fullState: q.get('full_state') === 'true',
        },
        ctx.signal,
      );
    }),
  ];
}

/**
 * `m.login.password` with an `m.id.user` identifier (full ID, or a localpart
 * that is unique across the hosted server names). Each login is a new device.
 */
function login(store: Store, body: Record<string, unknown>): Record<string, unknown> {
  if (body['type'] !== 'm.login.password')
    throw new MatrixError(400, 'M_UNKNOWN', 'only m.login.password is supported');
  const identifier = body['identifier'];
  let name: unknown = body['user'];
  if (isObj(identifier)) {
    if (identifier['type'] !== 'm.id.user')
      throw new MatrixError(400, 'M_UNKNOWN', 'only m.id.user identifiers are supported');
    name = identifier['user'];
  }
  if (typeof name !== 'string') throw new MatrixError(400, 'M_BAD_JSON', 'missing user');
  const candidates = name.startsWith('@')
    ? [store.users.get(name)]
    : [...store.users.values()].filter((u) => u.userId.startsWith(`@${name}:`));
  const user = candidates.length === 1 ? candidates[0] : undefined;
  if (!user || user.password === undefined || user.password !== body['password'])
    throw forbidden('Invalid username or password');
  const deviceId = typeof body['device_id'] === 'string' ? body['device_id'] : undefined;
  const device = store.addDevice(user.userId, deviceId === undefined ? {} : { deviceId });
  return {
    user_id: user.userId,
    access_token: device.accessToken,
    device_id: device.deviceId,
    home_server: user.server,
  };
}

function profile(store: Store, userId: string): Record<string, unknown> {
  if (!isUserId(userId)) throw badParam('invalid user ID');
  const user = store.users.get(userId);
  if (!user) throw notFound('profile not found');
  return user.displayName === undefined ? {} : { displayname: user.displayName };
}
