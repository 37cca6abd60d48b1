/**
 * Tests of the test homeserver, driven by the real matrix-js-sdk over HTTP.
 */

import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { createInterface } from 'node:readline';
import t from 'tap';
import {
  ClientEvent,
  Direction,
  EventType,
  Filter,
  Method,
  type MatrixClient,
  type MatrixEvent,
  PendingEventOrdering,
  type Room,
  RoomEvent,
  SyncState,
  createClient,
} from 'matrix-js-sdk';
import { logger as sdkRootLogger } from 'matrix-js-sdk/lib/logger.js';
import type { Logger } from 'matrix-js-sdk/lib/logger.js';
import { type TestHomeserver, type TestHomeserverOptions, startTestHomeserver } from './homeserver/index.ts';
import { unrefSdkRequestTimers } from '../src/matrix/sdk-internals.ts';
import { until } from './helpers/until.ts';

// Its clients are the SDK's own, not the service's (createAccountClient): their request timers must not hold the file's process either.
unrefSdkRequestTimers();

// Silence the SDK: its components log through children of the root logger,
// which inherit the root's method factory when they are created.
const silentRoot = sdkRootLogger as unknown as { methodFactory: () => () => void; rebuild: () => void };
silentRoot.methodFactory = () => () => {};
silentRoot.rebuild();
const quiet: Logger = { trace() {}, debug() {}, info() {}, warn() {}, error() {}, getChild: () => quiet };

/** What the helpers need of a tap test. */
interface Teardown {
  teardown(fn: () => unknown): void;
}

const sleep = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms));

/**
 * Until the homeserver has delivered every event of `eventIds` to `server`:
 * its federation timers fire late on a busy machine, so a fixed wait misses them.
 */
function delivered(hs: TestHomeserver, roomId: string, server: string, eventIds: readonly string[]): Promise<true> {
  return until(`${eventIds.length} events delivered to ${server}`, () =>
    eventIds.every((id) => id in hs.deliveries(roomId, server)),
  );
}

/** A homeserver that is stopped when the test ends. */
async function homeserver(t: Teardown, opts: TestHomeserverOptions = {}): Promise<TestHomeserver> {
  const hs = await startTestHomeserver(opts);
  t.teardown(() => hs.stop());
  return hs;
}

/** Logs in with a password over HTTP and starts a syncing client (stopped at teardown). */
async function startClient(
  t: Teardown,
  hs: TestHomeserver,
  userId: string,
  password: string,
  filter?: Filter,
): Promise<MatrixClient> {
  const login = await createClient({ baseUrl: hs.url, logger: quiet }).loginRequest({
    type: 'm.login.password',
    identifier: { type: 'm.id.user', user: userId },
    password,
  });
  const client = createClient({
    baseUrl: hs.url,
    userId: login.user_id,
    accessToken: login.access_token,
    deviceId: login.device_id,
    logger: quiet,
  });
  t.teardown(() => client.stopClient());
  const prepared = new Promise<void>((resolve) => {
    const onSync = (state: SyncState): void => {
      if (state !== SyncState.Prepared) return;
      client.off(ClientEvent.Sync, onSync);
      resolve();
    };
    client.on(ClientEvent.Sync, onSync);
  });
  await client.startClient({
    lazyLoadMembers: true,
    initialSyncLimit: 10,
    pendingEventOrdering: PendingEventOrdering.Detached,
    ...(filter ? { filter } : {}),
  });
  await prepared;
  return client;
}

/** Resolves with the first live timeline event matching `predicate`, and when it arrived. */
function nextTimelineEvent(
  client: MatrixClient,
  predicate: (ev: MatrixEvent, room: Room | undefined) => boolean,
  timeoutMs = 10_000,
): Promise<{ event: MatrixEvent; at: number }> {
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => {
      client.off(RoomEvent.Timeline, onEvent);
      reject(new Error('timed out waiting for a timeline event'));
    }, timeoutMs);
    const onEvent = (ev: MatrixEvent, room: Room | undefined): void => {
      if (!predicate(ev, room)) return;
      const at = Date.now();
      clearTimeout(timer);
      client.off(RoomEvent.Timeline, onEvent);
      resolve({ event: ev, at });
    };
    client.on(RoomEvent.Timeline, onEvent);
  });
}

const isMessage = (body: string) => (ev: MatrixEvent) =>
  ev.getType() === 'm.room.message' && ev.getContent()['body'] === body;

async function api(
  hs: TestHomeserver,
  token: string,
  method: string,
  path: string,
  body?: unknown,
): Promise<{ status: number; json: Record<string, unknown> }> {
  const res = await fetch(`${hs.url}/_matrix/client/v3${path}`, {
    method,
    headers: { Authorization: `Bearer ${token}`, 'Content-Type': 'application/json' },
    ...(body === undefined ? {} : { body: JSON.stringify(body) }),
  });
  return { status: res.status, json: (await res.json()) as Record<string, unknown> };
}

t.test('login, whoami and a clean SDK start', async (t) => {
  const hs = await homeserver(t);
  hs.registerUser('@bot:bot.example', { password: 'secret' });
  const bot = await startClient(t, hs, '@bot:bot.example', 'secret');
  const me = await bot.whoami();
  t.equal(me.user_id, '@bot:bot.example');
  t.equal(me.device_id, bot.getDeviceId());
  const unrecognized = hs
    .requests()
    .filter((r) => r.unrecognized)
    .map((r) => r.path);
  // Only unstable (MSC) endpoints may be probed and answered M_UNRECOGNIZED.
  t.same(
    unrecognized.filter((p) => !p.includes('/unstable/')),
    [],
  );
  t.ok(hs.countRequests({ path: '/filter', method: 'POST' }) >= 1, 'the SDK uploaded its filter');
  const wrong = await createClient({ baseUrl: hs.url, logger: quiet })
    .loginRequest({ type: 'm.login.password', identifier: { type: 'm.id.user', user: 'bot' }, password: 'nope' })
    .catch((e: { httpStatus?: number; errcode?: string }) => e);
  t.match(wrong, { httpStatus: 403, errcode: 'M_FORBIDDEN' });
});

t.test('a room-limited, lazy-loading filter; messages arrive via Room.timeline', async (t) => {
  const hs = await homeserver(t);
  hs.registerUser('@bot:bot.example', { password: 'pw' });
  hs.registerUser('@alice:bot.example');
  const watched = hs.createRoom('@alice:bot.example', { invite: ['@bot:bot.example'] });
  const ignored = hs.createRoom('@alice:bot.example', { invite: ['@bot:bot.example'] });
  hs.join('@bot:bot.example', watched);
  hs.join('@bot:bot.example', ignored);
  const filter = new Filter('@bot:bot.example');
  filter.setDefinition({ room: { rooms: [watched], timeline: { limit: 5 }, state: { lazy_load_members: true } } });
  const bot = await startClient(t, hs, '@bot:bot.example', 'pw', filter);
  t.ok(bot.getRoom(watched), 'the watched room is synced');
  t.equal(bot.getRoom(ignored), null, 'the other room is filtered out');

  const arrived = nextTimelineEvent(bot, isMessage('hello'));
  hs.sendMessage('@alice:bot.example', ignored, 'not for you');
  const eventId = hs.sendMessage('@alice:bot.example', watched, 'hello');
  const { event } = await arrived;
  t.equal(event.getId(), eventId);
  t.equal(event.getRoomId(), watched);
  t.equal(event.getSender(), '@alice:bot.example');
  t.equal(bot.getRoom(ignored), null);
});

t.test('federation delay: a 300 ms server, and a 600 ms round trip', async (t) => {
  const hs = await homeserver(t, { servers: { 'slow.example': { delayMs: 300 } } });
  hs.registerUser('@bot:bot.example', { password: 'pw' });
  hs.registerUser('@alice:slow.example', { password: 'pw' });
  const roomId = hs.createRoom('@alice:slow.example', { invite: ['@bot:bot.example'] });
  const bot = await startClient(t, hs, '@bot:bot.example', 'pw');
  // The invite itself travels 300 ms, so wait for it rather than joining blindly.
  await until('the invite to reach the bot', () => bot.getRoom(roomId)?.getMyMembership() === 'invite');
  await bot.joinRoom(roomId);
  const alice = await startClient(t, hs, '@alice:slow.example', 'pw');
  await until(
    "the bot's join to reach alice",
    () => alice.getRoom(roomId)?.getMember('@bot:bot.example')?.membership === 'join',
  );

  // One way: helper send from slow.example, seen by the bot ~300 ms after origin_server_ts.
  const received = nextTimelineEvent(bot, isMessage('ping 1'));
  const sentAt = Date.now();
  hs.sendMessage('@alice:slow.example', roomId, 'ping 1');
  const { event, at } = await received;
  // Bounds tell the send time from the delivery time 300 ms later (a loaded machine adds its own lag).
  t.ok(Math.abs(event.getTs() - sentAt) < 150, 'origin_server_ts is the send time');
  const delay = at - event.getTs();
  t.ok(delay >= 300 && delay < 600, `one-way delay ${delay} ms: the 300 ms once, not twice`);

  // Round trip through the SDK on both ends: alice pings, the bot pongs.
  bot.on(RoomEvent.Timeline, (ev) => {
    if (ev.getSender() === '@alice:slow.example' && ev.getContent()['body'] === 'ping 2')
      void bot.sendTextMessage(roomId, 'pong 2');
  });
  const pong = nextTimelineEvent(alice, isMessage('pong 2'));
  const start = Date.now();
  await alice.sendTextMessage(roomId, 'ping 2');
  const rtt = (await pong).at - start;
  t.ok(rtt >= 600 && rtt < 1200, `round trip ${rtt} ms: each way's delay once`);

  // Clock offset: origin_server_ts follows the sending server's clock.
  hs.setServer('slow.example', { clockOffsetMs: -5000 });
  const skewedId = hs.sendMessage('@alice:slow.example', roomId, 'skewed');
  const skewed = hs.events(roomId).find((e) => e.event_id === skewedId);
  t.ok(skewed && Math.abs(skewed.origin_server_ts - (Date.now() - 5000)) < 1000, 'origin_server_ts is 5 s behind');
});

t.test('transaction IDs make sends idempotent', async (t) => {
  const hs = await homeserver(t);
  const bot = hs.registerUser('@bot:bot.example', { password: 'pw' });
  const roomId = hs.createRoom(bot.userId);
  const path = `/rooms/${encodeURIComponent(roomId)}/send/m.room.message/txn-1`;
  const first = await api(hs, bot.accessToken, 'PUT', path, { msgtype: 'm.text', body: 'once' });
  const second = await api(hs, bot.accessToken, 'PUT', path, { msgtype: 'm.text', body: 'once' });
  t.equal(first.status, 200);
  t.equal(second.json['event_id'], first.json['event_id'], 'same event ID for the retry');
  t.equal(hs.events(roomId).filter((e) => e.type === 'm.room.message').length, 1, 'one event stored');
  t.equal(hs.countRequests({ method: 'PUT', path: '/send/' }), 2, 'two requests were made');
  const other = hs.registerUser('@bot:bot.example'); // another device: its own transaction scope
  const third = await api(hs, other.accessToken, 'PUT', path, { msgtype: 'm.text', body: 'once' });
  t.not(third.json['event_id'], first.json['event_id']);
  // Synapse 1.67 scopes transactions by access token, not device (seen in the harness's real ping room):
  // a second login with the same device_id keeps the first token valid and sends the same txnId anew.
  const relogin = await api(hs, bot.accessToken, 'POST', '/login', {
    type: 'm.login.password',
    identifier: { type: 'm.id.user', user: bot.userId },
    password: 'pw',
    device_id: bot.deviceId,
  });
  t.equal(relogin.json['device_id'], bot.deviceId, 'the same device');
  const sameDevice = await api(hs, String(relogin.json['access_token']), 'PUT', path, {
    msgtype: 'm.text',
    body: 'once',
  });
  t.not(sameDevice.json['event_id'], first.json['event_id'], 'another token of the same device: a new event');
  const firstAgain = await api(hs, bot.accessToken, 'PUT', path, { msgtype: 'm.text', body: 'once' });
  t.equal(firstAgain.json['event_id'], first.json['event_id'], 'the first token still works and still deduplicates');
  const seenByOtherToken = await api(
    hs,
    String(relogin.json['access_token']),
    'GET',
    `/rooms/${encodeURIComponent(roomId)}/event/${encodeURIComponent(String(first.json['event_id']))}`,
  );
  t.notOk(
    (seenByOtherToken.json['unsigned'] as Record<string, unknown>)['transaction_id'],
    'transaction_id only for the token that sent it',
  );
  const ev = await api(
    hs,
    bot.accessToken,
    'GET',
    `/rooms/${encodeURIComponent(roomId)}/event/${encodeURIComponent(String(first.json['event_id']))}`,
  );
  t.match(ev.json, { room_id: roomId, sender: bot.userId, unsigned: { transaction_id: 'txn-1' } });
  await api(hs, String(relogin.json['access_token']), 'POST', '/logout', {});
  const afterLogout = await api(hs, bot.accessToken, 'GET', '/account/whoami');
  t.equal(afterLogout.status, 401, "a logout ends the device and every token it has, as Synapse's does");
});

t.test('join by alias', async (t) => {
  const hs = await homeserver(t);
  hs.registerUser('@alice:example.org:8448');
  hs.registerUser('@bot:bot.example', { password: 'pw' });
  const roomId = hs.createRoom('@alice:example.org:8448', {
    preset: 'public_chat',
    room_alias_name: 'lobby',
    name: 'Lobby',
  });
  const bot = await startClient(t, hs, '@bot:bot.example', 'pw');
  t.same(await bot.getRoomIdForAlias('#lobby:example.org:8448'), { room_id: roomId, servers: ['example.org:8448'] });
  const room = await bot.joinRoom('#lobby:example.org:8448');
  t.equal(room.roomId, roomId);
  t.equal(hs.store.room(roomId).state.membership('@bot:bot.example'), 'join');
  hs.createRoom('@alice:example.org:8448', { room_alias_name: 'private' });
  await t.rejects(bot.joinRoom('#private:example.org:8448'), { httpStatus: 403 } as unknown as Error, 'invite-only');
  await t.rejects(bot.joinRoom('#nowhere:example.org:8448'), { httpStatus: 404 } as unknown as Error, 'unknown alias');
});

t.test('/messages pages backwards through history, every event once and in order', async (t) => {
  const hs = await homeserver(t);
  hs.registerUser('@bot:bot.example', { password: 'pw' });
  hs.registerUser('@alice:other.example');
  const roomId = hs.createRoom('@alice:other.example', { preset: 'public_chat' });
  const t0 = Date.parse('2024-01-01T00:00:00Z');
  hs.addHistory(
    roomId,
    Array.from({ length: 2000 }, (_, i) => ({ sender: '@alice:other.example', content: `m${i}`, ts: t0 + i * 1000 })),
  );
  const bot = await startClient(t, hs, '@bot:bot.example', 'pw');
  await bot.joinRoom(roomId, { viaServers: ['other.example'] });
  const bodies: string[] = [];
  let from: string | null = null;
  for (;;) {
    const res = await bot.createMessagesRequest(roomId, from, 100, Direction.Backward);
    for (const ev of res.chunk) if (ev.type === 'm.room.message') bodies.push(String(ev.content['body']));
    if (!res.end) break;
    from = res.end;
  }
  t.equal(bodies.length, 2000);
  t.same(
    bodies,
    Array.from({ length: 2000 }, (_, i) => `m${1999 - i}`),
    'newest first, no gaps or duplicates',
  );
  const first = hs.events(roomId).find((e) => e.content['body'] === 'm0');
  t.equal(first?.origin_server_ts, t0, 'imported timestamps are kept');
});

t.test('/messages pages through 50,000 events, newest first', async (t) => {
  const hs = await homeserver(t);
  const bot = hs.registerUser('@bot:bot.example');
  const roomId = hs.createRoom(bot.userId);
  const seeded = Date.now();
  hs.addHistory(
    roomId,
    Array.from({ length: 50_000 }, (_, i) => ({ sender: bot.userId, content: `h${i}`, ts: i })),
  );
  t.comment(`seeded in ${Date.now() - seeded} ms`);
  const started = Date.now();
  let count = 0;
  let previous = Infinity;
  let ordered = true;
  let from = '';
  for (;;) {
    const q = new URLSearchParams({ dir: 'b', limit: '1000', filter: JSON.stringify({ types: ['m.room.message'] }) });
    if (from) q.set('from', from);
    const { json } = await api(hs, bot.accessToken, 'GET', `/rooms/${encodeURIComponent(roomId)}/messages?${q}`);
    for (const ev of json['chunk'] as Array<{ origin_server_ts: number }>) {
      if (ev.origin_server_ts >= previous) ordered = false;
      previous = ev.origin_server_ts;
      count++;
    }
    if (typeof json['end'] !== 'string') break;
    from = json['end'];
  }
  const perSecond = Math.round(count / ((Date.now() - started) / 1000));
  t.equal(count, 50_000);
  t.ok(ordered, 'strictly descending');
  // How fast is printed, not asserted: a loaded machine decides it (test-homeserver speed matters only to the benches).
  t.comment(`${perSecond} events/s`);
});

t.test('room upgrade: predecessor and tombstone are visible', async (t) => {
  const hs = await homeserver(t);
  hs.registerUser('@bot:bot.example', { password: 'pw' });
  hs.registerUser('@alice:bot.example');
  const oldRoom = hs.createRoom('@alice:bot.example', { invite: ['@bot:bot.example'] });
  hs.join('@bot:bot.example', oldRoom);
  const bot = await startClient(t, hs, '@bot:bot.example', 'pw');
  const newRoom = hs.createRoom('@alice:bot.example', {
    invite: ['@bot:bot.example'],
    creation_content: { predecessor: { room_id: oldRoom } },
  });
  const tombstoned = nextTimelineEvent(bot, (ev) => ev.getType() === EventType.RoomTombstone);
  hs.setState('@alice:bot.example', oldRoom, 'm.room.tombstone', '', { body: 'moved', replacement_room: newRoom });
  await tombstoned;
  const tombstone = bot.getRoom(oldRoom)?.currentState.getStateEvents(EventType.RoomTombstone, '');
  t.equal(tombstone?.getContent()['replacement_room'], newRoom);
  await bot.joinRoom(newRoom);
  t.equal(bot.getRoom(newRoom)?.findPredecessor()?.roomId, oldRoom);
  t.same(hs.state(newRoom, 'm.room.create')?.['predecessor'], { room_id: oldRoom });
});

t.test(
  'joining by room ID is as strict as Synapse 1.67: through a server in the room, or with an invite',
  async (t) => {
    const hs = await homeserver(t, { servers: { 'fast.example': {} } });
    hs.registerUser('@bot:bot.example', { password: 'pw' });
    hs.registerUser('@carol:bot.example', { password: 'pw' });
    hs.registerUser('@alice:slow.example');
    const roomId = hs.createRoom('@alice:slow.example', { preset: 'public_chat' });
    const bot = await startClient(t, hs, '@bot:bot.example', 'pw');
    const refusal = (via?: string[]) =>
      bot.joinRoom(roomId, via ? { viaServers: via } : {}).then(
        () => undefined,
        (e: { httpStatus?: number; errcode?: string; data?: { error?: string } }) => ({
          status: e.httpStatus,
          errcode: e.errcode,
          error: e.data?.error,
        }),
      );
    t.same(
      await refusal(),
      {
        status: 404,
        errcode: 'M_UNKNOWN',
        error: "Can't join remote room because no servers that are in the room have been provided.",
      },
      "no via: room_member.py _remote_join's refusal",
    );
    t.same(
      await refusal(['bot.example']),
      {
        status: 404,
        errcode: 'M_UNKNOWN',
        error: "Can't join remote room because no servers that are in the room have been provided.",
      },
      'its own server is no help',
    );
    t.same(
      await refusal(['fast.example']),
      { status: 404, errcode: 'M_NOT_FOUND', error: `Could not find room_version for ${roomId}` },
      'a server not in the room answers 404, and that answer ends the join',
    );
    t.same(
      await refusal(['gone.example']),
      { status: 502, errcode: 'M_UNKNOWN', error: 'Failed to make_join via any server' },
      'an unreachable server is skipped',
    );
    t.same(
      await refusal(['gone.example', 'fast.example', 'slow.example']),
      { status: 404, errcode: 'M_NOT_FOUND', error: `Could not find room_version for ${roomId}` },
      'the first server that answers decides',
    );
    t.equal(
      (await bot.joinRoom(roomId, { viaServers: ['gone.example', 'slow.example'] })).roomId,
      roomId,
      'through a server in the room',
    );
    t.ok(
      hs
        .requests({ path: `/join/${encodeURIComponent(roomId)}` })
        .every((r) => r.search === '' || r.search.includes('server_name=')),
      'the SDK sends server_name',
    );

    const carol = await startClient(t, hs, '@carol:bot.example', 'pw');
    t.equal((await carol.joinRoom(roomId)).roomId, roomId, 'a server that has the room joins without via');

    hs.registerUser('@dave:fast.example', { password: 'pw' });
    const dave = await startClient(t, hs, '@dave:fast.example', 'pw');
    const invited = hs.createRoom('@alice:slow.example', { invite: ['@dave:fast.example'] });
    t.equal((await dave.joinRoom(invited)).roomId, invited, "an invite: through the inviter's server");
    const uninvited = hs.createRoom('@alice:slow.example', { preset: 'public_chat' });
    await t.rejects(
      dave.http.authedRequest(Method.Post, `/rooms/${encodeURIComponent(uninvited)}/join`, undefined, {}),
      { httpStatus: 404 } as unknown as Error,
      '/rooms/{id}/join passes no servers',
    );

    hs.leave('@alice:slow.example', uninvited);
    await t.rejects(
      dave.joinRoom(uninvited, { viaServers: ['slow.example'] }),
      { httpStatus: 404, data: { error: 'Not an active room on this server' } } as unknown as Error,
      'a room lives on the servers of its members: once they left, it is gone from theirs',
    );
  },
);

t.test('POST /rooms/{id}/upgrade: a new room only the upgrading server has, as Synapse 1.67 makes it', async (t) => {
  const hs = await homeserver(t);
  hs.registerUser('@alice:slow.example', { password: 'pw' });
  hs.registerUser('@bot:bot.example', { password: 'pw' });
  const oldRoom = hs.createRoom('@alice:slow.example', {
    preset: 'public_chat',
    room_alias_name: 'ping',
    name: 'Ping',
  });
  hs.join('@bot:bot.example', oldRoom, ['slow.example']);
  const alice = await startClient(t, hs, '@alice:slow.example', 'pw');
  const { replacement_room: newRoom } = await alice.upgradeRoom(oldRoom, '10');
  const tombstone = hs.events(oldRoom).find((e) => e.type === 'm.room.tombstone');
  t.same(tombstone?.content, { body: 'This room has been replaced', replacement_room: newRoom });
  t.same(hs.state(newRoom, 'm.room.create'), {
    room_version: '10',
    creator: '@alice:slow.example',
    predecessor: { room_id: oldRoom, event_id: tombstone?.event_id },
  });
  t.same(
    [hs.state(newRoom, 'm.room.join_rules'), hs.state(newRoom, 'm.room.name')],
    [{ join_rule: 'public' }, { name: 'Ping' }],
    'its state is copied',
  );
  t.same(hs.store.room(newRoom).state.servers(), ['slow.example'], 'only the upgrader is in it');
  t.match(hs.state(oldRoom, 'm.room.power_levels'), { events_default: 50, invite: 50 }, 'the old room is restricted');
  t.equal(hs.store.aliases.get('#ping:slow.example'), newRoom, "the upgrader's aliases move");
  t.same(hs.state(newRoom, 'm.room.canonical_alias'), { alias: '#ping:slow.example' });

  const bot = await startClient(t, hs, '@bot:bot.example', 'pw');
  await t.rejects(
    bot.joinRoom(newRoom),
    { httpStatus: 404 } as unknown as Error,
    "the bot's server was in the old room, not the new one",
  );
  t.equal(
    (await bot.joinRoom(newRoom, { viaServers: ['slow.example'] })).roomId,
    newRoom,
    "through the upgrader's server",
  );
});

t.test('429 with retry_after_ms is retried by the SDK', async (t) => {
  const hs = await homeserver(t);
  hs.registerUser('@bot:bot.example', { password: 'pw' });
  const bot = await startClient(t, hs, '@bot:bot.example', 'pw');
  const { room_id: roomId } = await bot.createRoom({});
  const limited = hs.inject(
    { kind: 'rateLimit', retryAfterMs: 250 },
    { path: '/send/', times: 2, userId: '@bot:bot.example' },
  );
  const started = Date.now();
  const { event_id } = await bot.sendTextMessage(roomId, 'eventually');
  t.ok(Date.now() - started >= 500, `waited ${Date.now() - started} ms as told`);
  t.equal(limited.hits, 2);
  t.equal(hs.countRequests({ method: 'PUT', path: '/send/' }), 3);
  t.same(
    hs
      .events(roomId)
      .filter((e) => e.type === 'm.room.message')
      .map((e) => e.event_id),
    [event_id],
  );
});

t.test('fault primitives: 5xx, dropped connections, stalled syncs', async (t) => {
  const hs = await homeserver(t);
  const bot = hs.registerUser('@bot:bot.example');
  hs.inject({ kind: 'error', status: 502 }, { path: '/account/whoami' });
  t.equal((await api(hs, bot.accessToken, 'GET', '/account/whoami')).status, 502);
  t.equal((await api(hs, bot.accessToken, 'GET', '/account/whoami')).status, 200, 'only the next request fails');
  hs.inject({ kind: 'disconnect' }, { path: /\/whoami$/ });
  await t.rejects(api(hs, bot.accessToken, 'GET', '/account/whoami'));
  const stall = hs.inject({ kind: 'stall' }, { path: '/sync', method: 'GET' });
  const started = Date.now();
  await t.rejects(
    fetch(`${hs.url}/_matrix/client/v3/sync`, {
      headers: { Authorization: `Bearer ${bot.accessToken}` },
      signal: AbortSignal.timeout(200),
    }),
  );
  t.ok(Date.now() - started >= 190, 'the sync hung until the client gave up');
  t.equal(stall.remaining, 0);
  t.equal((await api(hs, bot.accessToken, 'GET', '/sync?timeout=0')).status, 200);
});

t.test('a syncing client survives an outage and gets what was sent meanwhile', async (t) => {
  const hs = await homeserver(t);
  hs.registerUser('@bot:bot.example', { password: 'pw' });
  hs.registerUser('@alice:bot.example');
  const roomId = hs.createRoom('@alice:bot.example', { invite: ['@bot:bot.example'] });
  hs.join('@bot:bot.example', roomId);
  const bot = await startClient(t, hs, '@bot:bot.example', 'pw');
  const port = hs.port;
  const broken = new Promise<void>((resolve) => bot.on(ClientEvent.Sync, (s) => s !== SyncState.Syncing && resolve()));
  await hs.goDown();
  t.notOk(hs.isUp);
  hs.sendMessage('@alice:bot.example', roomId, 'while you were away');
  await broken; // the SDK noticed (RECONNECTING) and will poll /versions in 2-7 s
  await sleep(300);
  await hs.comeUp();
  t.equal(hs.port, port, 'same port after the outage');
  const { event } = await nextTimelineEvent(bot, isMessage('while you were away'), 20_000);
  t.equal(event.getRoomId(), roomId);
});

t.test('lazy loading in a room with 10,000 members', async (t) => {
  const hs = await homeserver(t);
  const seed = hs.registerUser('@bot:bot.example', { password: 'pw' });
  hs.registerUser('@alice:big.example');
  const roomId = hs.createRoom('@alice:big.example', { preset: 'public_chat' });
  const members = hs.addMembers(roomId, 10_000);
  hs.join('@bot:bot.example', roomId, ['big.example']); // outside the timeline below: its membership comes as state
  const sent = members.slice(0, 3).map((m) => hs.sendMessage(m, roomId, `hi from ${m}`));
  await delivered(hs, roomId, 'bot.example', sent);

  const filter = JSON.stringify({ room: { timeline: { limit: 3 }, state: { lazy_load_members: true } } });
  const started = Date.now();
  const res = await fetch(`${hs.url}/_matrix/client/v3/sync?filter=${encodeURIComponent(filter)}`, {
    headers: { Authorization: `Bearer ${seed.accessToken}` },
  });
  const text = await res.text();
  const elapsed = Date.now() - started;
  const body = JSON.parse(text) as {
    rooms: {
      join: Record<
        string,
        { state: { events: Array<{ type: string; state_key: string }> }; summary: Record<string, unknown> }
      >;
    };
  };
  const joined = body.rooms.join[roomId];
  const memberKeys = joined?.state.events
    .filter((e) => e.type === 'm.room.member')
    .map((e) => e.state_key)
    .sort();
  t.same(memberKeys, [...members.slice(0, 3), '@bot:bot.example'].sort(), 'only the senders and the user itself');
  t.equal(joined?.summary['m.joined_member_count'], 10_002);
  t.ok(text.length < 50_000, `${text.length} bytes`);
  t.comment(`answered in ${elapsed} ms`);

  const bot = await startClient(t, hs, '@bot:bot.example', 'pw');
  const room = bot.getRoom(roomId);
  t.equal(room?.getJoinedMemberCount(), 10_002);
  t.ok((room?.currentState.getMembers().length ?? Infinity) <= 10, 'the SDK holds only a handful of members');
});

t.test('raw /sync and /messages semantics', async (t) => {
  const hs = await homeserver(t, { servers: { 'far.example': { delayMs: 50 } } });
  const bot = hs.registerUser('@bot:bot.example');
  hs.registerUser('@carol:far.example');
  type Rooms = Record<
    'join' | 'invite' | 'leave',
    Record<string, Record<string, { events: Array<Record<string, unknown>>; limited?: boolean; prev_batch?: string }>>
  >;
  const sync = async (q: Record<string, string>): Promise<{ next_batch: string; rooms: Rooms }> =>
    (await api(hs, bot.accessToken, 'GET', `/sync?${new URLSearchParams(q)}`)).json as unknown as {
      next_batch: string;
      rooms: Rooms;
    };
  const messagesFilter = JSON.stringify({ room: { timeline: { limit: 10, types: ['m.room.message'] } } });

  // The invite lands 50 ms after it is sent: time from the send, not from
  // the long-poll, which starts only after the first sync has come back.
  const invitedAt = Date.now();
  const roomId = hs.createRoom('@carol:far.example', { invite: [bot.userId], name: 'Far' });
  const initial = await sync({});
  t.same(initial.rooms.invite, {}, 'the invite is still travelling');
  // A long-poll of 60 s: waking at the invite, not at the timeout, is the distinction (30 s spare for a loaded machine).
  const invited = await sync({ since: initial.next_batch, timeout: '60000' });
  const waited = Date.now() - invitedAt;
  t.ok(waited >= 45 && waited < 30_000, `the long-poll woke when the invite landed (${waited} ms after the send)`);
  const inviteState = invited.rooms.invite[roomId]?.['invite_state']?.events ?? [];
  t.match(inviteState, [{ type: 'm.room.create' }, { type: 'm.room.name', content: { name: 'Far' } }]);
  t.ok(inviteState.some((e) => e['type'] === 'm.room.member' && e['state_key'] === bot.userId));

  hs.join(bot.userId, roomId);
  const joined = await sync({ since: invited.next_batch, filter: messagesFilter });
  t.ok(joined.rooms.join[roomId], 'a fresh join comes with the room');
  const texts = Array.from({ length: 30 }, (_, i) => `t${i}`);
  const sent = texts.map((text) => hs.sendMessage('@carol:far.example', roomId, text));
  sent.push(hs.setState('@carol:far.example', roomId, 'm.room.topic', '', { topic: 'filtered out of the timeline' }));
  await delivered(hs, roomId, 'bot.example', sent); // each lands 50 ms after its own send time
  const burst = await sync({ since: joined.next_batch, filter: messagesFilter });
  const room = burst.rooms.join[roomId];
  t.same(
    room?.['timeline']?.events.map((e) => (e['content'] as { body: string }).body),
    texts.slice(20),
  );
  t.equal(room?.['timeline']?.limited, true);
  t.ok(
    room?.['state']?.events.some((e) => e['type'] === 'm.room.topic'),
    'state dropped by the timeline filter still arrives',
  );

  const q = new URLSearchParams({
    dir: 'b',
    limit: '100',
    from: room?.['timeline']?.prev_batch ?? '',
    filter: JSON.stringify({ types: ['m.room.message'] }),
  });
  const older = await api(hs, bot.accessToken, 'GET', `/rooms/${encodeURIComponent(roomId)}/messages?${q}`);
  t.same(
    (older.json['chunk'] as Array<{ content: { body: string } }>).map((e) => e.content.body),
    texts.slice(0, 20).reverse(),
  );
  t.notOk('end' in older.json, 'start of the room reached');
  const firstFive = await api(
    hs,
    bot.accessToken,
    'GET',
    `/rooms/${encodeURIComponent(roomId)}/messages?dir=f&limit=5`,
  );
  t.match(firstFive.json['chunk'], [
    { type: 'm.room.create' },
    { type: 'm.room.member' },
    { type: 'm.room.power_levels' },
  ]);
  t.type(firstFive.json['end'], 'string');

  await api(hs, bot.accessToken, 'POST', `/rooms/${encodeURIComponent(roomId)}/leave`, {});
  const left = await sync({ since: burst.next_batch });
  t.match(left.rooms.leave[roomId]?.['timeline']?.events.at(-1), {
    type: 'm.room.member',
    state_key: bot.userId,
    content: { membership: 'leave' },
  });
  // Delivered to the bot's server, which still takes the room's events: what it must not show the former member.
  await delivered(hs, roomId, 'bot.example', [hs.sendMessage('@carol:far.example', roomId, 'after you left')]);
  const after = await api(hs, bot.accessToken, 'GET', `/rooms/${encodeURIComponent(roomId)}/messages?dir=b&limit=1`);
  t.match(
    after.json['chunk'],
    [{ type: 'm.room.member', sender: bot.userId }],
    'a former member reads up to its leave',
  );
  t.equal(
    (
      await api(hs, bot.accessToken, 'PUT', `/rooms/${encodeURIComponent(roomId)}/send/m.room.message/x`, {
        body: 'no',
      })
    ).status,
    403,
  );
});

t.test('CLI: a separate homeserver process', async (t) => {
  const child = spawn(
    process.execPath,
    [
      'test/homeserver/main.ts',
      '--server',
      'slow.example=300',
      '--user',
      '@bot:bot.example=pw',
      '--token',
      '@bot:bot.example=fixed-token',
      '--admin-token',
      'adm',
    ],
    {
      stdio: ['ignore', 'pipe', 'inherit'],
    },
  );
  t.teardown(() => {
    child.kill('SIGTERM');
  });
  const [line] = (await once(createInterface({ input: child.stdout }), 'line')) as [string];
  const { url } = JSON.parse(line) as { url: string };
  const whoami = await fetch(`${url}/_matrix/client/v3/account/whoami`, {
    headers: { Authorization: 'Bearer fixed-token' },
  });
  t.match(await whoami.json(), { user_id: '@bot:bot.example' });
  const admin = await fetch(`${url}/_test/createRoom`, {
    method: 'POST',
    headers: { Authorization: 'Bearer adm' },
    body: JSON.stringify({ args: ['@bot:bot.example', { name: 'made over HTTP' }] }),
  });
  t.match(await admin.json(), { result: /^!/ });
  const exited = once(child, 'exit');
  child.kill('SIGTERM');
  t.same(await exited, [0, null], 'stops cleanly on SIGTERM');
});
