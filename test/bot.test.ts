// The echo bot end to end: the service as `pingboard serve` starts it, the
// real matrix-js-sdk, and the project's test homeserver over real HTTP.
import { subscribe, unsubscribe } from 'node:diagnostics_channel';
import { Method, RoomEvent } from 'matrix-js-sdk';
import t from 'tap';
import { createLogger } from '../src/log.ts';
import { createAccountClient } from '../src/matrix/client.ts';
import { buildPong, type PongContent } from '../src/matrix/pong.ts';
import { loadConfig } from '../src/config.ts';
import { start, type Service } from '../src/start.ts';
import { loadKnownRooms } from '../src/stats/rooms.ts';
import { startTestHomeserver, type TestHomeserver } from './homeserver/index.ts';
import {
  forEachEngine,
  openTestDatabase,
  setDatabaseReachable,
  testEngines,
  type Test,
  type TestDatabase,
} from './helpers/database.ts';
import { startBotService, TEST_BOT, TEST_BOT_PASSWORD } from './helpers/service.ts';
import { until } from './helpers/until.ts';

const BOT = TEST_BOT;
const ALIAS = '#ping:slow.example';

interface World {
  hs: TestHomeserver;
  roomId: string;
  service: Service;
}

async function startWorld(t: Test, database: TestDatabase, env: Record<string, string> = {}): Promise<World> {
  const hs = await startTestHomeserver({
    servers: {
      'bot.example': { delayMs: 0 },
      'slow.example': { delayMs: 300 },
      'medium.example': { delayMs: 150 },
      'fast.example': { delayMs: 40 },
    },
  });
  t.teardown(() => hs.stop());
  hs.registerUser(BOT, { password: TEST_BOT_PASSWORD });
  for (const user of ['@alice:slow.example', '@bob:medium.example', '@carol:fast.example', '@echo2:other-bot.example'])
    hs.registerUser(user);
  const roomId = hs.createRoom('@alice:slow.example', { room_alias_name: 'ping', preset: 'public_chat' });
  for (const user of ['@bob:medium.example', '@carol:fast.example', '@echo2:other-bot.example'])
    hs.join(user, roomId, ['slow.example']);
  const service = await startBotService(t, hs, database, ALIAS, env);
  return { hs, roomId, service };
}

/** The pings the bot answered, in the order of its pongs. */
function answeredPings(hs: TestHomeserver, roomId: string): string[] {
  return hs
    .events(roomId)
    .filter(
      (e) => e.sender === BOT && e.type === 'm.room.message' && (e.content as { pong?: unknown }).pong !== undefined,
    )
    .map((e) => (e.content as { pong: { ping: string } }).pong.ping);
}

/** Resolves once every one of `eventIds` has reached the bot's server (their senders' delays are injected). */
function deliveredToBot(hs: TestHomeserver, roomId: string, eventIds: readonly string[]) {
  return until("the events to reach the bot's server", () =>
    eventIds.every((id) => hs.deliveries(roomId, 'bot.example')[id] !== undefined),
  );
}

function pongTo(hs: TestHomeserver, pingId: string) {
  return hs.nextEvent((ev) => ev.sender === BOT && (ev.content as { pong?: { ping?: string } }).pong?.ping === pingId);
}

forEachEngine(t, (t, database) => {
  t.test('pings from three servers get echo-format pongs, accurate samples and the right ranking', async (t) => {
    const { hs, roomId, service } = await startWorld(t, database);
    // Delays 260 ms or more apart, so a loaded machine's lag (300 ms seen at load 33) cannot reorder the ranking.
    hs.setServer('slow.example', { delayMs: 700 });
    hs.setServer('medium.example', { delayMs: 300 });
    const pings: [string, string, number][] = [
      ['@alice:slow.example', '!ping hello <b>world</b> & more words here', 700],
      ['@bob:medium.example', '!ping', 300],
      ['@carol:fast.example', '!ping   ', 40],
    ];
    for (const [user, body, delay] of pings) {
      const pingId = hs.sendMessage(user, roomId, body);
      const pong = await pongTo(hs, pingId);
      const content = pong.content as unknown as PongContent;
      const ms = content.pong.ms as number;
      // Never less than the injected delay; at most 250 ms more on a loaded machine.
      t.ok(ms >= delay && ms < delay + 250, `${user}: delay ${ms} ms is the injected ${delay} ms`);
      const server = user.slice(user.indexOf(':') + 1);
      t.same(content['m.relates_to'], { rel_type: 'xyz.maubot.pong', event_id: pingId, from: server, ms });
      t.same(content.pong, { ms, from: server, ping: pingId });
      t.equal(content.msgtype, 'm.notice');
      t.equal(content.format, 'org.matrix.custom.html');
      if (user === '@alice:slow.example') {
        t.equal(content.body, `${user}: Pong! (ping "hello <b>world</b> &" took ${ms} ms to arrive)`);
        t.equal(
          content.formatted_body,
          `<a href='https://matrix.to/#/${user}'>${user}</a>: Pong! (<a href='https://matrix.to/#/${roomId}/${pingId}'>ping</a> "hello &lt;b&gt;world&lt;/b&gt; &amp;" took ${ms} ms to arrive)`,
        );
      } else {
        t.equal(content.body, `${user}: Pong! (ping took ${ms} ms to arrive)`);
      }
    }
    await service.writer!.flushed();
    const samples = await database.db.selectFrom('samples').selectAll().orderBy('delay_ms').execute();
    t.same(
      samples.map((s) => [s.ping_server, s.source, s.responder]),
      [
        ['fast.example', 'echo', BOT],
        ['medium.example', 'echo', BOT],
        ['slow.example', 'echo', BOT],
      ],
    );
    const md = await service.app.inject('/leaderboard.md');
    t.match(md.body, /\|1\|fast\.example\|\d+\|\n\|2\|medium\.example\|\d+\|\n\|3\|slow\.example\|\d+\|\n$/);
  });

  t.test("a ping in a thread is answered in that thread, as the echo bot's framework does", async (t) => {
    const { hs, roomId, service } = await startWorld(t, database);
    const root = hs.sendMessage('@bob:medium.example', roomId, 'who is fast today?');
    const pingId = hs.sendMessage('@carol:fast.example', roomId, {
      msgtype: 'm.text',
      body: '!ping from the thread',
      'm.relates_to': { rel_type: 'm.thread', event_id: root },
    });
    const pong = await pongTo(hs, pingId);
    const content = pong.content as unknown as PongContent;
    // maubot's respond (mautrix's set_thread_parent) changes the relation's type and event, and keeps echo's from and ms.
    t.equal(
      JSON.stringify(content['m.relates_to']),
      JSON.stringify({
        rel_type: 'm.thread',
        event_id: root,
        is_falling_back: true,
        'm.in_reply_to': { event_id: pingId },
        from: 'fast.example',
        ms: content.pong.ms,
      }),
    );
    t.same(
      Object.keys(content),
      ['msgtype', 'body', 'm.relates_to', 'format', 'formatted_body', 'pong'],
      "the keys in the order echo's framework writes them",
    );
    t.same(content.pong, { ms: content.pong.ms, from: 'fast.example', ping: pingId }, 'the figures stay in pong');
    t.ok(
      typeof content.pong.ms === 'number' && content.pong.ms >= 40 && content.pong.ms < 1000,
      `the delay is fast.example's (${content.pong.ms} ms)`,
    );
    t.equal(content.body, `@carol:fast.example: Pong! (ping "from the thread" took ${content.pong.ms} ms to arrive)`);
    await service.writer!.flushed();
    t.same(await database.db.selectFrom('samples').select(['ping_event_id', 'ping_server']).execute(), [
      { ping_event_id: pingId, ping_server: 'fast.example' },
    ]);

    const echoId = hs.sendMessage('@carol:fast.example', roomId, {
      msgtype: 'm.text',
      body: '!echo in the thread',
      'm.relates_to': { rel_type: 'm.thread', event_id: root },
    });
    const echo = await hs.nextEvent(
      (ev) => ev.sender === BOT && (ev.content as { body?: string }).body === 'in the thread',
    );
    t.same(
      echo.content,
      {
        msgtype: 'm.notice',
        body: 'in the thread',
        'm.relates_to': {
          rel_type: 'm.thread',
          event_id: root,
          is_falling_back: true,
          'm.in_reply_to': { event_id: echoId },
        },
      },
      '!echo is answered in the thread too',
    );
  });

  t.test(
    "another echo bot's pongs are recorded and pooled; malformed pongs and notices are not answered",
    async (t) => {
      const { hs, roomId, service } = await startWorld(t, database);
      const pingId = hs.sendMessage('@carol:fast.example', roomId, '!ping');
      await pongTo(hs, pingId);
      hs.sendMessage('@echo2:other-bot.example', roomId, {
        msgtype: 'm.notice',
        body: '@carol:fast.example: Pong! (ping took 77 ms to arrive)',
        pong: { ms: 77, from: 'fast.example', ping: pingId },
        'm.relates_to': { rel_type: 'm.thread', event_id: pingId },
      });
      hs.sendMessage('@echo2:other-bot.example', roomId, {
        msgtype: 'm.notice',
        body: '@carol:fast.example: Pong! (ping took 5 ms to arrive)',
        pong: { ms: 'five', from: 'fast.example', ping: pingId },
      });
      hs.sendMessage('@echo2:other-bot.example', roomId, { msgtype: 'm.notice', body: '!ping' });
      await until("the other bot's pong", async () => {
        await service.writer!.flushed();
        return (
          (await database.db.selectFrom('samples').selectAll().where('source', '=', 'pong').execute()).length === 1 ||
          undefined
        );
      });
      const rows = await database.db.selectFrom('samples').selectAll().orderBy('source').execute();
      t.same(
        rows.map((r) => [r.source, r.responder, r.responder_server, r.ping_event_id]),
        [
          ['echo', BOT, 'bot.example', pingId],
          ['pong', '@echo2:other-bot.example', 'other-bot.example', pingId],
        ],
      );
      t.equal(rows[1]!.delay_ms, 77);
      t.equal(service.bot!.counts.pongsRejected, 1);
      const json = (await service.app.inject('/leaderboard.json')).json();
      t.equal(json.rows[0].samples, 2, 'both responders pooled');
      t.equal(json.rows[0].pings, 1);
      // Sent after the notices, so answered after anything they could have caused.
      const marker = hs.sendMessage('@carol:fast.example', roomId, '!ping marker');
      await pongTo(hs, marker);
      t.same(answeredPings(hs, roomId), [pingId, marker], 'the bot answered neither the notices nor its own pong');
    },
  );

  t.test('a flood is limited to the configured answers per minute', async (t) => {
    const { hs, roomId, service } = await startWorld(t, database, { PINGBOARD_ANSWERS_PER_MINUTE: '3' });
    const ids = Array.from({ length: 6 }, (_, i) => hs.sendMessage('@carol:fast.example', roomId, `!ping ${i}`));
    await until(
      'the limit to apply',
      () => service.bot!.counts.pingsAnswered + service.bot!.counts.pingsRateLimited === 6 || undefined,
    );
    t.equal(service.bot!.counts.pingsAnswered, 3);
    t.equal(service.bot!.counts.pingsRateLimited, 3);
    const answered = answeredPings(hs, roomId);
    t.same(answered, ids.slice(0, 3));
  });

  t.test('backlog pings are not answered after a restart, which resumes without a duplicate pong', async (t) => {
    const { hs, roomId, service } = await startWorld(t, database);
    const first = hs.sendMessage('@carol:fast.example', roomId, '!ping before');
    await pongTo(hs, first);
    await service.stop();
    const missed = hs.sendMessage('@carol:fast.example', roomId, '!ping while down');
    const otherPong = hs.sendMessage('@echo2:other-bot.example', roomId, {
      msgtype: 'm.notice',
      body: `@carol:fast.example: Pong! (ping took 55 ms to arrive)`,
      pong: { ms: 55, from: 'fast.example', ping: missed },
    });
    // Before the restart's first sync, so that it is backlog there.
    await deliveredToBot(hs, roomId, [missed, otherPong]);
    const restarted = await startBotService(t, hs, database, ALIAS);
    const after = hs.sendMessage('@carol:fast.example', roomId, '!ping after');
    await pongTo(hs, after);
    await restarted.writer!.flushed();
    const pongs = answeredPings(hs, roomId);
    t.same(pongs, [first, after], 'the missed ping got no late answer and the first none twice');
    const rows = await database.db
      .selectFrom('samples')
      .select(['ping_event_id', 'source'])
      .orderBy('recorded_at')
      .execute();
    t.ok(
      rows.some((r) => r.ping_event_id === missed && r.source === 'pong'),
      "the other bot's pong in the backlog is recorded",
    );
    t.notOk(
      rows.some((r) => r.ping_event_id === missed && r.source === 'echo'),
      'no echo sample for the backlog ping',
    );
    t.equal(hs.countRequests({ path: '/login' }), 1, 'the token from the first password login was kept');
    const resumed = hs.requests({ path: '/sync' }).filter((r) => r.userId === BOT);
    t.ok(resumed.length > 2);
  });

  t.test('a 429 storm on sends and syncs is waited out: every ping gets exactly one pong', async (t) => {
    const { hs, roomId, service } = await startWorld(t, database);
    const sends = hs.inject({ kind: 'rateLimit', retryAfterMs: 150 }, { path: '/send/', times: 4 });
    const syncs = hs.inject({ kind: 'rateLimit', retryAfterMs: 100 }, { path: '/sync', userId: BOT, times: 2 });
    const ids = [
      hs.sendMessage('@carol:fast.example', roomId, '!ping a'),
      hs.sendMessage('@bob:medium.example', roomId, '!ping b'),
    ];
    await until('both pongs', () => ids.every((id) => answeredPings(hs, roomId).includes(id)) || undefined, 20_000);
    t.ok(sends.hits >= 1, 'sends were rate limited');
    t.ok(syncs.hits >= 1, 'syncs were rate limited');
    // Every attempt of both sends has ended: no retry can post a pong after this.
    await until('both sends to end', () => service.bot!.counts.pingsAnswered + service.bot!.counts.sendFailures === 2);
    t.same(answeredPings(hs, roomId).sort(), [...ids].sort(), 'one pong per ping despite retries');
    await service.writer!.flushed();
    t.equal((await database.db.selectFrom('samples').selectAll().execute()).length, 2);
  });

  t.test(
    'a pong send is retried after a 5xx and a dropped connection, never posted twice; a refused one is counted, not retried',
    async (t) => {
      const { hs, roomId, service } = await startWorld(t, database);
      const failing = hs.inject({ kind: 'error', status: 502 }, { path: '/send/', userId: BOT });
      const dropped = hs.inject({ kind: 'disconnect' }, { path: '/send/', userId: BOT });
      const retried = hs.sendMessage('@carol:fast.example', roomId, '!ping retried');
      await pongTo(hs, retried);
      t.equal(failing.hits + dropped.hits, 2, 'both failures hit the pong and it still got through');
      const attempts = hs.requests({ path: '/send/', userId: BOT }).map((r) => r.path);
      t.equal(attempts.length, 3);
      t.equal(new Set(attempts).size, 1, 'every attempt carried the same transaction ID');
      const refused = hs.inject(
        { kind: 'error', status: 403, errcode: 'M_FORBIDDEN', error: 'You may not post' },
        { path: '/send/', userId: BOT, times: Infinity },
      );
      t.teardown(() => refused.cancel());
      const unanswered = hs.sendMessage('@bob:medium.example', roomId, '!ping refused');
      // Counted once the send has given up: a retry would have come before.
      await until('the refusal', () => service.bot!.counts.sendFailures === 1 || undefined);
      t.equal(refused.hits, 1, 'a refusal is not retried');
      t.same(answeredPings(hs, roomId), [retried], 'one pong, for the ping whose send got through');
      await service.writer!.flushed();
      const rows = await database.db.selectFrom('samples').select('ping_event_id').execute();
      t.same(
        rows.map((r) => r.ping_event_id).sort(),
        [retried, unanswered].sort(),
        'a measurement stands whether or not its pong got through',
      );
    },
  );

  t.test('a pong is written to its connection before the SDK processes the sync that brought the ping', async (t) => {
    const { hs, roomId, service } = await startWorld(t, database);
    const bot = service.bot!;
    // Opens the connection the next pong reuses: a new one would have to wait for its connect.
    await pongTo(hs, hs.sendMessage('@carol:fast.example', roomId, '!ping warm-up'));
    /** Pongs written so far, as the bot tells its metrics. */
    const pongsWritten = () =>
      Number(/\npingboard_pong_overhead_seconds_count\{until="written"\} (\d+)\n/.exec(service.metrics.render({}))![1]);
    let pingId: string | undefined;
    const writtenWhenEmitted: number[] = [];
    bot.client.on(RoomEvent.Timeline, (event) => {
      if (event.getId() === pingId) writtenWhenEmitted.push(pongsWritten());
    });
    const before = pongsWritten();
    pingId = hs.sendMessage('@bob:medium.example', roomId, '!ping measured');
    await pongTo(hs, pingId);
    t.same(writtenWhenEmitted, [before + 1], 'when the SDK emitted the ping, its pong had been written');
  });

  t.test(
    "a pong older than the retention in a quiet room's first sync is not recorded, and counted; a recent one is",
    async (t) => {
      const hs = await startTestHomeserver({ servers: { 'bot.example': { delayMs: 0 } } });
      t.teardown(() => hs.stop());
      hs.registerUser(BOT, { password: TEST_BOT_PASSWORD });
      hs.registerUser('@alice:slow.example');
      const roomId = hs.createRoom('@alice:slow.example', { room_alias_name: 'ping', preset: 'public_chat' });
      const day = 86_400_000;
      const pong = (ping: string, ts: number) => ({
        sender: '@echo2:other-bot.example',
        ts: ts + 200,
        content: buildPong({
          roomId,
          pingEventId: ping,
          pinger: '@alice:slow.example',
          text: '',
          delayMs: 200,
        }) as unknown as Record<string, unknown>,
      });
      const oldTs = Date.now() - 10 * day;
      const recentTs = Date.now() - day;
      hs.addHistory(roomId, [
        { sender: '@alice:slow.example', content: { msgtype: 'm.text', body: '!ping' }, ts: oldTs },
        pong('$old-ping', oldTs),
        { sender: '@alice:slow.example', content: { msgtype: 'm.text', body: '!ping' }, ts: recentTs },
        pong('$recent-ping', recentTs),
      ]);
      const service = await startBotService(t, hs, database, ALIAS, { PINGBOARD_RETENTION_DAYS: '7' });
      await until(
        'both pongs to be handled',
        () => service.writer!.counts.expired + service.writer!.counts.written >= 2 || undefined,
      );
      t.hasStrict(service.writer!.counts, { written: 1, expired: 1, dropped: 0 });
      const rows = await database.db.selectFrom('samples').select('ping_event_id').execute();
      t.same(
        rows.map((r) => r.ping_event_id),
        ['$recent-ping'],
        'only the pong the retention keeps',
      );
      t.match((await service.app.inject('/metrics')).body, /\npingboard_samples_expired_total 1\n/);
    },
  );

  t.test('a homeserver outage is survived: pings sent meanwhile are backlog, later ones are answered', async (t) => {
    const { hs, roomId, service } = await startWorld(t, database);
    hs.goDown();
    const _during = hs.sendMessage('@carol:fast.example', roomId, '!ping during the outage');
    await until(
      'the bot to notice',
      () => ['RECONNECTING', 'ERROR'].includes(service.bot!.client.getSyncState() ?? '') || undefined,
    );
    // In the bot's backlog when it comes back.
    await deliveredToBot(hs, roomId, [_during]);
    hs.comeUp();
    service.bot!.client.retryImmediately();
    await until('the bot to sync again', () => service.bot!.client.getSyncState() === 'SYNCING' || undefined, 30_000);
    const after = hs.sendMessage('@carol:fast.example', roomId, '!ping after');
    await pongTo(hs, after);
    t.same(answeredPings(hs, roomId), [after], 'the ping from the outage was not answered late');
    t.ok(service.bot!.counts.pingsSkippedBacklog >= 1);
  });

  t.test(
    'a tombstone moves the bot to the replacement room; statistics include both rooms, in a service without a bot too',
    async (t) => {
      const { hs, roomId, service } = await startWorld(t, database);
      const old = hs.sendMessage('@carol:fast.example', roomId, '!ping old room');
      await pongTo(hs, old);
      // A service without a bot on the same database (a second web front, say), running all along.
      await until(
        "the bot to store the alias's room",
        async () => (await loadKnownRooms(database.db)).some((r) => r.reference === ALIAS) || undefined,
      );
      const front = await start(
        loadConfig({
          ...(database.url ? { DATABASE_URL: database.url } : {}),
          PINGBOARD_PORT: '0',
          PINGBOARD_ROOMS: `${ALIAS},!elsewhere:example.org`,
          PINGBOARD_CACHE_SECONDS: '0',
        }),
        createLogger('silent'),
        { database },
      );
      t.teardown(() => front.stop());
      t.equal(front.bot, undefined);
      await service.writer!.flushed();
      const before = (await front.app.inject('/leaderboard.json')).json();
      t.match(before, { room: roomId }, 'the alias, listed first, is the default room: the bot stored its ID');
      t.same(before.room_ids, [roomId]);

      const newRoom = hs.createRoom('@alice:slow.example', {
        preset: 'public_chat',
        creation_content: { predecessor: { room_id: roomId } },
      });
      for (const user of ['@bob:medium.example', '@carol:fast.example']) hs.join(user, newRoom, ['slow.example']);
      hs.setState('@alice:slow.example', roomId, 'm.room.tombstone', '', {
        body: 'upgraded',
        replacement_room: newRoom,
      });
      await until('the bot to join the new room', () => service.bot!.watchedRooms().includes(newRoom) || undefined);
      await until(
        'the bot to sync the new room',
        () => ['PREPARED', 'SYNCING'].includes(service.bot!.client.getSyncState() ?? '') || undefined,
      );
      // Sent once the bot watches the room: live, whether it comes in the restarted loop's catch-up or after.
      const fresh = hs.sendMessage('@bob:medium.example', newRoom, '!ping new room');
      const pong = await pongTo(hs, fresh);
      t.equal(pong.room_id, newRoom);
      await service.writer!.flushed();
      const json = (await service.app.inject('/leaderboard.json')).json();
      t.same(
        json.rows.map((r: { server: string }) => r.server).sort(),
        ['fast.example', 'medium.example'],
        'samples of both rooms',
      );
      t.same(json.room_ids, [roomId, newRoom]);

      // The front learns the upgrade at its next scheduled run, once the bot has stored it.
      await until(
        'the bot to store the lineage',
        async () => (await loadKnownRooms(database.db)).some((r) => r.roomIds.includes(newRoom)) || undefined,
      );
      await front.learnRooms();
      const fromFront = (await front.app.inject('/leaderboard.json')).json();
      t.match(fromFront, { room: roomId, room_ids: [roomId, newRoom] }, 'with the lineage the bot followed');
      t.same(fromFront.rows.map((r: { server: string }) => r.server).sort(), ['fast.example', 'medium.example']);
      t.match((await front.app.inject(`/leaderboard.json?room=${encodeURIComponent(ALIAS)}`)).json(), { room: roomId });
      t.match(
        (await front.app.inject(`/leaderboard.json?room=${encodeURIComponent(newRoom)}`)).json(),
        { room: roomId },
        'the replacement room finds it too',
      );
    },
  );

  t.test(
    'pings in the catch-up sync after the bot restarts its sync for an upgrade are answered, unless sent before it watched their room',
    async (t) => {
      const { hs, roomId, service } = await startWorld(t, database);
      await pongTo(hs, hs.sendMessage('@carol:fast.example', roomId, '!ping warm-up'));
      const newRoom = hs.createRoom('@alice:slow.example', {
        preset: 'public_chat',
        creation_content: { predecessor: { room_id: roomId } },
      });
      for (const user of ['@bob:medium.example', '@carol:fast.example']) hs.join(user, newRoom, ['slow.example']);
      const beforeJoin = hs.sendMessage('@bob:medium.example', newRoom, '!ping before the bot came');
      // Holds the restarted sync loop at its filter, so what is sent meanwhile comes in its first (catch-up) sync.
      const held = hs.inject({ kind: 'delay', ms: 1000 }, { path: '/filter', userId: BOT, times: 1 });
      // A ping and a command that come in the same sync as the tombstone: the loop restarts while that sync is being processed.
      const withTombstone = hs.sendMessage('@alice:slow.example', roomId, '!ping with the tombstone');
      hs.sendMessage('@alice:slow.example', roomId, '!echo with the tombstone');
      hs.setState('@alice:slow.example', roomId, 'm.room.tombstone', '', {
        body: 'upgraded',
        replacement_room: newRoom,
      });
      await until('the restarted sync to reach its filter', () => held.hits === 1 || undefined);
      const inOld = hs.sendMessage('@carol:fast.example', roomId, '!ping during the restart, old room');
      const inNew = hs.sendMessage('@bob:medium.example', newRoom, '!ping during the restart, new room');
      hs.sendMessage('@carol:fast.example', roomId, '!echo during the restart');
      const echoed = hs.nextEvent(
        (ev) => ev.sender === BOT && (ev.content as { body?: string }).body === 'during the restart',
      );
      const [oldPong, newPong] = await Promise.all([
        pongTo(hs, inOld),
        pongTo(hs, inNew),
        echoed.then(() => t.pass('!echo is answered from the catch-up sync too')),
      ]);
      t.equal(oldPong.room_id, roomId);
      t.equal(newPong.room_id, newRoom);
      t.ok((newPong.content as { pong: { ms: number } }).pong.ms < 1500, 'measured from the catch-up sync');
      // Every ping and command here came in the catch-up sync or before it: all judged by now. Their sends end.
      await until(
        'the four pongs and two echoes sent',
        () =>
          service.bot!.counts.pingsAnswered === 4 &&
          hs.requests({ method: 'PUT', path: '/send/', userId: BOT }).length === 6,
      );
      t.notOk(
        answeredPings(hs, newRoom).includes(beforeJoin),
        'a ping sent before the bot watched its room is backlog',
      );
      t.equal(service.bot!.counts.pingsSkippedBacklog, 1);
      t.ok(
        hs
          .events(roomId)
          .some((e) => e.sender === BOT && (e.content as { pong?: { ping?: string } }).pong?.ping === withTombstone),
        'the ping with the tombstone is answered',
      );
      t.equal(
        service.bot!.counts.pingsAnswered,
        4,
        'no ping is answered again: the catch-up starts after the latest response received',
      );
      t.equal(
        hs.requests({ method: 'PUT', path: '/send/', userId: BOT }).length,
        6,
        'four pongs and two echoes, each sent once',
      );
    },
  );

  t.test(
    'a room upgraded by its admin on another server: the bot joins the replacement through the servers that have it',
    async (t) => {
      const { hs, roomId, service } = await startWorld(t, database);
      await pongTo(hs, hs.sendMessage('@carol:fast.example', roomId, '!ping warm-up'));
      // As Synapse upgrades: a new room that only the admin's server is in; the members follow on their own.
      const newRoom = hs.upgradeRoom('@alice:slow.example', roomId);
      hs.join('@carol:fast.example', newRoom, ['slow.example']);
      await until('the bot to join the replacement', () => service.bot!.watchedRooms().includes(newRoom) || undefined);
      const joins = hs.requests({ method: 'POST', path: `/join/${encodeURIComponent(newRoom)}`, userId: BOT });
      t.same(
        joins.map((r) => r.status),
        [200],
        'joined at the first try',
      );
      const [first, ...others] = new URLSearchParams(joins[0]!.search).getAll('server_name');
      t.equal(first, 'slow.example', "through the tombstone sender's server first");
      t.ok(
        others.length === 2 && others.every((s) => ['medium.example', 'fast.example', 'other-bot.example'].includes(s)),
        `then the old room's members' servers (${others})`,
      );
      await until(
        'the bot to sync the new room',
        () => ['PREPARED', 'SYNCING'].includes(service.bot!.client.getSyncState() ?? '') || undefined,
      );
      const ping = hs.sendMessage('@carol:fast.example', newRoom, '!ping after the upgrade');
      t.equal((await pongTo(hs, ping)).room_id, newRoom, 'a ping in the new room is answered');
      t.match((await service.app.inject('/healthz')).json(), { status: 'ok', rooms: { not_followed: [] } });
    },
  );

  t.test(
    'a replacement the bot cannot join yet: retried with backoff, reported meanwhile, followed once it can; a stop ends the retries',
    async (t) => {
      const { hs, roomId, service } = await startWorld(t, database);
      await pongTo(hs, hs.sendMessage('@carol:fast.example', roomId, '!ping warm-up'));
      // The join fails as Synapse's does when the server asked is not in the room (yet).
      const refused = hs.inject(
        { kind: 'error', status: 404, errcode: 'M_NOT_FOUND', error: 'Not an active room on this server' },
        { method: 'POST', path: '/join/', userId: BOT, times: Infinity },
      );
      const newRoom = hs.upgradeRoom('@alice:slow.example', roomId);
      const health = await until('the health check to report the replacement', async () => {
        const body = (await service.app.inject('/healthz')).json();
        return body.rooms.not_followed.some((r: { attempts: number }) => r.attempts >= 2) && body;
      });
      t.match(
        health,
        {
          status: 'degraded',
          database: { ok: true },
          rooms: { not_followed: [{ room: ALIAS, room_id: newRoom, reason: 'upgrade', last_failure: 'M_NOT_FOUND' }] },
        },
        "which room, why, and the error code, without the error's text",
      );
      t.notMatch(JSON.stringify(health), 'Not an active room');
      t.match((await service.app.inject('/metrics')).body, /\npingboard_rooms_not_followed 1\n/);
      // Meanwhile the bot answers where it is (the admin can still write in the old room).
      const meanwhile = hs.sendMessage('@alice:slow.example', roomId, '!ping meanwhile');
      await pongTo(hs, meanwhile);

      refused.cancel();
      await until(
        'the bot to join the replacement',
        () => service.bot!.watchedRooms().includes(newRoom) || undefined,
        30_000,
      );
      t.ok(refused.hits >= 2, `retried (${refused.hits} refusals, then joined)`);
      await until(
        'the bot to sync the new room',
        () => ['PREPARED', 'SYNCING'].includes(service.bot!.client.getSyncState() ?? '') || undefined,
      );
      const ping = hs.sendMessage('@alice:slow.example', newRoom, '!ping in the new room');
      t.equal((await pongTo(hs, ping)).room_id, newRoom);
      t.match((await service.app.inject('/healthz')).json(), { status: 'ok', rooms: { not_followed: [] } });
      t.match((await service.app.inject('/metrics')).body, /\npingboard_rooms_not_followed 0\n/);

      // A stop ends a retry in progress.
      const again = hs.upgradeRoom('@alice:slow.example', newRoom);
      hs.inject(
        { kind: 'error', status: 404, errcode: 'M_NOT_FOUND' },
        { method: 'POST', path: `/join/${encodeURIComponent(again)}`, userId: BOT, times: Infinity },
      );
      await until(
        'the retry to start',
        () => service.bot!.notFollowed().some((r) => r.roomId === again && r.attempts >= 1) || undefined,
      );
      await service.bot!.stop();
      t.same(service.bot!.notFollowed(), [], 'no retry is left running');
    },
  );

  t.test(
    'a configured room ID on another server, upgraded while the bot was away: joined through its server, then its replacement',
    async (t) => {
      const hs = await startTestHomeserver({
        servers: { 'bot.example': { delayMs: 0 }, 'slow.example': { delayMs: 50 } },
      });
      t.teardown(() => hs.stop());
      hs.registerUser(BOT, { password: TEST_BOT_PASSWORD });
      hs.registerUser('@alice:slow.example');
      const oldRoom = hs.createRoom('@alice:slow.example', { preset: 'public_chat' });
      const newRoom = hs.upgradeRoom('@alice:slow.example', oldRoom);
      const service = await startBotService(t, hs, database, oldRoom);
      t.same(service.bot!.watchedRooms(), [oldRoom, newRoom]);
      t.same(
        hs
          .requests({ method: 'POST', path: '/join/', userId: BOT })
          .map((r) => [decodeURIComponent(r.path.slice(r.path.lastIndexOf('/') + 1)), r.status]),
        [
          [oldRoom, 200],
          [newRoom, 200],
        ],
        'each joined at the first try',
      );
      const ping = hs.sendMessage('@alice:slow.example', newRoom, '!ping');
      t.equal((await pongTo(hs, ping)).room_id, newRoom);
      await until(
        'the lineage to be stored',
        async () =>
          (await loadKnownRooms(database.db)).some((r) => r.roomIds.join() === [oldRoom, newRoom].join()) || undefined,
      );
    },
  );

  t.test(
    'samples measured while the database is down arrive after it returns',
    {
      skip:
        database.engine === 'pglite' ? 'an embedded database cannot become unreachable; tested on PostgreSQL' : false,
    },
    async (t) => {
      // With the leader lock, a database out of reach stops the bot (docs/instances.md): a lone instance turns it off.
      const { hs, roomId, service } = await startWorld(t, database, { PINGBOARD_LEADER_LOCK: 'off' });
      await setDatabaseReachable(database, false);
      t.teardown(() => setDatabaseReachable(database, true));
      const ping = hs.sendMessage('@carol:fast.example', roomId, '!ping db down');
      const pong = await pongTo(hs, ping);
      // The sample, and the pong read back for its time.
      await until(
        'both waiting in the queue after a failed write',
        () => (service.writer!.counts.failedWrites > 0 && service.writer!.counts.queued === 2) || undefined,
      );
      await setDatabaseReachable(database, true);
      await service.writer!.flushed();
      const rows = await database.db.selectFrom('samples').select(['ping_event_id', 'source', 'pong_ts']).execute();
      t.same(rows, [{ ping_event_id: ping, source: 'echo', pong_ts: new Date(pong.origin_server_ts) }]);
    },
  );

  t.test('!echo repeats the text; edits and pings with a longer command are not answered', async (t) => {
    const { hs, roomId } = await startWorld(t, database);
    hs.sendMessage('@carol:fast.example', roomId, '!pingpong');
    const original = hs.sendMessage('@carol:fast.example', roomId, 'hello');
    hs.sendMessage('@carol:fast.example', roomId, {
      msgtype: 'm.text',
      body: '* !ping',
      'm.new_content': { msgtype: 'm.text', body: '!ping' },
      'm.relates_to': { rel_type: 'm.replace', event_id: original },
    });
    hs.sendMessage('@carol:fast.example', roomId, '!echo say this back');
    const echo = await hs.nextEvent((ev) => ev.sender === BOT && ev.type === 'm.room.message');
    t.same(echo.content, { msgtype: 'm.notice', body: 'say this back' });
    // Sent once the echo is in: answered after anything the messages before could have caused.
    const marker = await pongTo(hs, hs.sendMessage('@carol:fast.example', roomId, '!ping marker'));
    t.same(
      hs
        .events(roomId)
        .filter((e) => e.sender === BOT && e.type === 'm.room.message')
        .map((e) => (e.content as { body: string }).body),
      ['say this back', marker.content['body']],
      'only the echo was answered, then the marker',
    );
  });

  t.test('an invite to a configured room the bot could not join is accepted; other invites are not', async (t) => {
    const hs = await startTestHomeserver({
      servers: { 'bot.example': { delayMs: 0 }, 'fast.example': { delayMs: 20 } },
    });
    t.teardown(() => hs.stop());
    hs.registerUser(BOT, { password: TEST_BOT_PASSWORD });
    hs.registerUser('@carol:fast.example');
    const privateRoom = hs.createRoom('@carol:fast.example', { preset: 'private_chat' });
    const otherRoom = hs.createRoom('@carol:fast.example', { preset: 'private_chat' });
    const service = await startBotService(t, hs, database, privateRoom);
    t.same(service.bot!.watchedRooms(), [], 'not joined without an invite');
    hs.invite('@carol:fast.example', otherRoom, BOT);
    hs.invite('@carol:fast.example', privateRoom, BOT);
    await until(
      'the bot to join the configured room',
      () => service.bot!.watchedRooms().includes(privateRoom) || undefined,
    );
    await until(
      'the bot to sync again',
      () => ['PREPARED', 'SYNCING'].includes(service.bot!.client.getSyncState() ?? '') || undefined,
    );
    const ping = hs.sendMessage('@carol:fast.example', privateRoom, '!ping');
    await pongTo(hs, ping);
    t.notOk(
      hs
        .events(otherRoom)
        .some(
          (e) =>
            e.sender === BOT &&
            e.type === 'm.room.member' &&
            (e.content as { membership?: string }).membership === 'join',
        ),
      'the other invite was left alone',
    );
  });

  t.test(
    'two invites in one sync restart the sync one after the other, and the bot answers in both rooms',
    async (t) => {
      const hs = await startTestHomeserver({
        servers: { 'bot.example': { delayMs: 0 }, 'fast.example': { delayMs: 20 } },
      });
      t.teardown(() => hs.stop());
      hs.registerUser(BOT, { password: TEST_BOT_PASSWORD });
      hs.registerUser('@carol:fast.example');
      const rooms = [
        hs.createRoom('@carol:fast.example', { preset: 'private_chat' }),
        hs.createRoom('@carol:fast.example', { preset: 'private_chat' }),
      ];
      const service = await startBotService(t, hs, database, rooms.join(','));
      for (const room of rooms) hs.invite('@carol:fast.example', room, BOT);
      await until(
        'the bot to watch both rooms',
        () => rooms.every((r) => service.bot!.watchedRooms().includes(r)) || undefined,
      );
      await until(
        'the bot to sync again',
        () => ['PREPARED', 'SYNCING'].includes(service.bot!.client.getSyncState() ?? '') || undefined,
      );
      for (const room of rooms) await pongTo(hs, hs.sendMessage('@carol:fast.example', room, '!ping'));
      const since = hs.requests({ path: '/sync', userId: BOT }).map((r) => new URLSearchParams(r.search).get('since'));
      t.equal(
        since.filter((token) => token === null).length,
        1,
        'only the very first sync starts from nothing: restarts carry on from the latest position',
      );
    },
  );

  t.test(
    'words with a newline in their quoted 20 characters: answered as echo answers, recorded only when the aggregator counts the pong',
    async (t) => {
      const { hs, roomId, service } = await startWorld(t, database);
      const hidden = hs.sendMessage('@carol:fast.example', roomId, '!ping two\nlines');
      const counted = hs.sendMessage('@carol:fast.example', roomId, '!ping twenty characters then\na newline');
      const hiddenPong = (await pongTo(hs, hidden)).content as { body: string; pong: { ms: number } };
      t.equal(
        hiddenPong.body,
        `@carol:fast.example: Pong! (ping "two\nlines" took ${hiddenPong.pong.ms} ms to arrive)`,
        "echo's pong, which its aggregator does not read",
      );
      const countedPong = (await pongTo(hs, counted)).content as { body: string; pong: { ms: number } };
      t.equal(
        countedPong.body,
        `@carol:fast.example: Pong! (ping "twenty characters th" took ${countedPong.pong.ms} ms to arrive)`,
      );
      await until('both pongs read back', () => service.bot!.counts.pingsAnswered === 2 || undefined);
      await service.writer!.flushed();
      const rows = await database.db.selectFrom('samples').select(['ping_event_id', 'source']).execute();
      t.same(rows, [{ ping_event_id: counted, source: 'echo' }], 'a sample for the pong the aggregator counts only');
    },
  );

  t.test(
    'replies with the quoted fallback are pings, as echo reads them; a tab or a newline after the command is no ping, nor no echo',
    async (t) => {
      const { hs, roomId } = await startWorld(t, database);
      const question = hs.sendMessage('@alice:slow.example', roomId, 'who is <fast>?');
      const reply = hs.sendMessage('@carol:fast.example', roomId, {
        msgtype: 'm.text',
        body: '> <@alice:slow.example> who is <fast>?\n\n!ping  me & "you"',
        format: 'org.matrix.custom.html',
        formatted_body: `<mx-reply><blockquote><a href="https://matrix.to/#/${roomId}/${question}">In reply to</a> who is &lt;fast&gt;?</blockquote></mx-reply>!ping  me &amp; "you"`,
        'm.relates_to': { 'm.in_reply_to': { event_id: question } },
      });
      const ignored = ['!ping\twords', '!ping\nwords', '!ping\u00a0words', '!echo\tthis'].map((body) =>
        hs.sendMessage('@carol:fast.example', roomId, body),
      );
      const echoed = hs.sendMessage('@carol:fast.example', roomId, '!echo  this  ');
      const last = hs.sendMessage('@carol:fast.example', roomId, '!ping last');
      const content = (await pongTo(hs, reply)).content as unknown as PongContent;
      const ms = content.pong.ms as number;
      t.equal(
        content.body,
        `@carol:fast.example: Pong! (ping "me & "you"" took ${ms} ms to arrive)`,
        'the words after the fallback, stripped',
      );
      t.equal(
        JSON.stringify(content['m.relates_to']),
        JSON.stringify({ rel_type: 'xyz.maubot.pong', event_id: reply, from: 'fast.example', ms }),
        'a plain pong: echo does not answer a reply as one',
      );
      await pongTo(hs, last);
      const echo = await until('the echo', () =>
        hs.events(roomId).find((e) => e.sender === BOT && (e.content as { body?: string }).body === 'this'),
      );
      t.same(echo.content, { msgtype: 'm.notice', body: 'this' }, 'the words of !echo, stripped');
      t.same(answeredPings(hs, roomId), [reply, last], 'only the reply and the last ping');
      t.equal(
        hs.events(roomId).filter((e) => e.sender === BOT).length,
        4,
        `the bot's join, two pongs and one echo: nothing for ${ignored.length} other commands`,
      );
      t.ok(
        hs.events(roomId).findIndex((e) => e.event_id === echoed) >
          hs.events(roomId).findIndex((e) => e.event_id === ignored.at(-1)),
        'sent after the ignored ones',
      );
    },
  );

  t.test(
    "the pong's origin_server_ts is read back, stored with the bot's sample, and is what stats.raw.json windows and reports",
    async (t) => {
      const { hs, roomId, service } = await startWorld(t, database);
      // The bot's homeserver stamps events an hour behind: the pong's time is not the measurement's.
      hs.setServer('bot.example', { clockOffsetMs: -3_600_000 });
      const ping = hs.sendMessage('@carol:fast.example', roomId, '!ping stamped');
      const pong = await pongTo(hs, ping);
      await until("the pong's time stored", async () => {
        await service.writer!.flushed();
        return (
          (
            await database.db
              .selectFrom('samples')
              .select('pong_ts')
              .where('ping_event_id', '=', ping)
              .executeTakeFirst()
          )?.pong_ts ?? undefined
        );
      });
      const row = await database.db
        .selectFrom('samples')
        .selectAll()
        .where('ping_event_id', '=', ping)
        .executeTakeFirstOrThrow();
      t.equal(row.source, 'echo');
      t.equal(row.pong_ts!.getTime(), pong.origin_server_ts, "the pong event's origin_server_ts");
      t.ok(row.measured_at.getTime() - pong.origin_server_ts > 3_000_000, 'the measurement keeps its own time');
      const raw = (await service.app.inject(`/rooms/${encodeURIComponent(roomId)}/stats.raw.json`)).json();
      t.same(raw, [
        {
          room_id: roomId,
          ping_id: ping,
          pong_server: 'bot.example',
          ping_server: 'fast.example',
          receive_diff: row.delay_ms,
          pong_timestamp: pong.origin_server_ts,
        },
      ]);
      const lastHalfHour = (
        await service.app.inject(`/rooms/${encodeURIComponent(roomId)}/stats.raw.json?max_age=1800`)
      ).json();
      t.same(lastHalfHour, [], 'a pong stamped an hour ago is outside the last half hour, as for the aggregator');
      t.same(
        Object.keys(
          (await service.app.inject(`/rooms/${encodeURIComponent(roomId)}/stats.json?max_age=1800`)).json().pings,
        ),
        [],
        'in stats.json too',
      );
    },
  );

  t.test('ten pings sent at once by one sender are all answered with the default limit', async (t) => {
    const { hs, roomId, service } = await startWorld(t, database);
    const ids = Array.from({ length: 10 }, (_, i) => hs.sendMessage('@carol:fast.example', roomId, `!ping ${i}`));
    await until(
      'every ping handled',
      () => service.bot!.counts.pingsAnswered + service.bot!.counts.pingsRateLimited === 10 || undefined,
    );
    t.equal(service.bot!.counts.pingsRateLimited, 0);
    t.same(answeredPings(hs, roomId).sort(), [...ids].sort());
  });

  t.test('an event a sync lists twice is one ping: counted once as backlog, answered once when live', async (t) => {
    const { hs, roomId, service } = await startWorld(t, database);
    await service.stop();
    const missed = hs.sendMessage('@carol:fast.example', roomId, '!ping while down');
    const repeated = hs.inject({ kind: 'repeatTimeline' }, { path: '/sync', userId: BOT, times: Infinity });
    t.teardown(() => repeated.cancel());
    const restarted = await startBotService(t, hs, database, ALIAS);
    t.ok(repeated.hits > 0, 'the syncs list their events twice');
    t.equal(restarted.bot!.counts.pingsSkippedBacklog, 1, 'the backlog ping counted once');
    const live = hs.sendMessage('@carol:fast.example', roomId, '!ping live');
    await pongTo(hs, live);
    // The homeserver shows the pong before the send's answer reaches the bot, which counts it then.
    await until("the send's answer", () => restarted.bot!.counts.pingsAnswered > 0 || undefined);
    await restarted.writer!.flushed();
    t.equal(restarted.bot!.counts.pingsAnswered, 1, 'answered once');
    t.same(answeredPings(hs, roomId), [live]);
    t.notOk(answeredPings(hs, roomId).includes(missed));
  });
});

t.test('a sync response has arrived when its last byte is read, not when fetch hands its body over', async (t) => {
  const hs = await startTestHomeserver({ servers: { 'bot.example': { delayMs: 0 } } });
  t.teardown(() => hs.stop());
  const { accessToken } = hs.registerUser(BOT);
  const database = await openTestDatabase(testEngines()[0]!);
  t.teardown(() => database.destroy());
  const { client, clock } = await createAccountClient(
    { homeserverUrl: hs.url, userId: BOT, accessToken, password: undefined },
    database.db,
    createLogger('silent'),
  );
  // Subscribed after the client's module: holds the event loop between the last byte and the body's delivery.
  let lastByte = 0;
  const hold = () => {
    lastByte = performance.now();
    while (performance.now() - lastByte < 30);
  };
  subscribe('undici:request:trailers', hold);
  t.teardown(() => unsubscribe('undici:request:trailers', hold));
  await client.http.authedRequest(Method.Get, '/sync', { timeout: '0' });
  t.ok(lastByte > 0, 'the response was read');
  t.ok(
    clock.arrivedAtMono > 0 && clock.arrivedAtMono <= lastByte,
    `stamped at the last byte, not ${(performance.now() - lastByte).toFixed(1)} ms later`,
  );
  t.ok(Math.abs(clock.arrivedAtMs - Date.now()) < 1000, 'and on the wall clock');
});
