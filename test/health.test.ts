// /healthz says what is wrong: the database (as a stable code, never the
// error's text), the bot's sync, the probes, the newest sample. The bot and
// the probes run against the project's test homeserver with the real
// matrix-js-sdk; the database failures are real connections that fail.
import { once } from 'node:events';
import { createServer, type Socket } from 'node:net';
import type { AddressInfo } from 'node:net';
import t from 'tap';
import { openDatabase, type Database } from '../src/db/database.ts';
import { buildApp } from '../src/http/app.ts';
import { HEALTH_CHECK_FRESH_MS, sharedCheck, STALE_SYNC_SECONDS } from '../src/http/routes/health.ts';
import { createLogger } from '../src/log.ts';
import { Statistics } from '../src/stats/leaderboard.ts';
import { RoomRegistry } from '../src/stats/rooms.ts';
import type { Service } from '../src/start.ts';
import { startTestHomeserver, type TestHomeserver } from './homeserver/index.ts';
import { forEachEngine, openTestDatabase, testEngines, type Test, type TestDatabase } from './helpers/database.ts';
import { startBotService, TEST_BOT, TEST_BOT_PASSWORD } from './helpers/service.ts';
import { until } from './helpers/until.ts';

const ALIAS = '#ping:slow.example';
const PROBE = '@probe-p1:fast.example';

interface World {
  hs: TestHomeserver;
  roomId: string;
  service: Service;
}

/** The service with its bot, and with a probe (on fast.example, ticked by the test) when asked. */
async function startWorld(t: Test, database: TestDatabase, withProbe = false): Promise<World> {
  const hs = await startTestHomeserver({
    servers: { 'bot.example': { delayMs: 0 }, 'slow.example': { delayMs: 20 }, 'fast.example': { delayMs: 10 } },
  });
  t.teardown(() => hs.stop());
  hs.registerUser(TEST_BOT, { password: TEST_BOT_PASSWORD });
  hs.registerUser('@alice:slow.example');
  hs.registerUser(PROBE, { accessToken: 'token-p1' });
  const roomId = hs.createRoom('@alice:slow.example', { room_alias_name: 'ping', preset: 'public_chat' });
  const service = await startBotService(
    t,
    hs,
    database,
    ALIAS,
    withProbe
      ? {
          PINGBOARD_PROBES: JSON.stringify([
            { id: 'p1', homeserver_url: hs.url, user_id: PROBE, access_token: 'token-p1' },
          ]),
          PINGBOARD_PROBE_SCHEDULE: '0 0 1 1 *',
          PINGBOARD_PROBE_JITTER_SECONDS: '0',
          PINGBOARD_PROBE_RESPONDERS: TEST_BOT,
        }
      : {},
  );
  return { hs, roomId, service };
}

const health = async (service: Service) => {
  const res = await service.app.inject('/healthz');
  return { code: res.statusCode, body: res.json(), text: res.body };
};

function pongTo(hs: TestHomeserver, pingId: string) {
  return hs.nextEvent(
    (ev) => ev.sender === TEST_BOT && (ev.content as { pong?: { ping?: string } }).pong?.ping === pingId,
  );
}

forEachEngine(t, (t, database) => {
  t.test(
    "the bot's sync failing makes the service degraded, with the count and without the error's text; a sample gives the newest sample's age",
    async (t) => {
      const { hs, roomId, service } = await startWorld(t, database);
      const first = await until("the bot's sync to count as ok", async () => {
        const h = await health(service);
        return h.body.bot.status === 'ok' && h;
      });
      t.equal(first.code, 200);
      t.match(first.body, {
        status: 'ok',
        database: { engine: database.engine, ok: true, status: 'ok' },
        bot: { status: 'ok', consecutive_sync_failures: 0, last_sync_age_seconds: Number },
        rooms: { not_followed: [] },
        probes: { status: 'disabled', accounts: [] },
        last_sample_age_seconds: null,
      });
      t.notOk('code' in first.body.database, 'no failure code while it answers');

      await pongTo(hs, hs.sendMessage('@alice:slow.example', roomId, '!ping'));
      const sampled = await until('health to report the sample', async () => {
        const h = await health(service);
        return h.body.last_sample_age_seconds !== null && h;
      });
      t.ok(
        sampled.body.last_sample_age_seconds >= 0,
        `the newest sample is ${sampled.body.last_sample_age_seconds} s old`,
      );

      const failing = hs.inject(
        { kind: 'error', status: 502, errcode: 'M_UNKNOWN', error: 'upstream 10.9.8.7:8448 exploded' },
        { path: '/sync', userId: TEST_BOT, times: Infinity },
      );
      const degraded = await until(
        'health to report the failing sync',
        async () => {
          const h = await health(service);
          return h.body.bot.consecutive_sync_failures >= 2 && h;
        },
        60_000,
      );
      t.equal(degraded.code, 200, 'degraded still answers 200: the service serves');
      t.match(degraded.body, {
        status: 'degraded',
        database: { ok: true },
        bot: { status: 'failing', last_sync_age_seconds: Number },
      });
      // The bot's own count, which may have grown since: the sync is still failing.
      const reported = degraded.body.bot.consecutive_sync_failures;
      t.ok(
        reported >= 2 && reported <= service.bot!.counts.consecutiveSyncFailures,
        `the bot's own count (${reported})`,
      );
      // The status alone, not as digits inside a number: the database's latency once read 0.7095029999909457 ms.
      t.notMatch(degraded.text, /exploded|10\.9\.8\.7|M_UNKNOWN|(?<![\d.])502(?![\d.])/, 'nothing of the error itself');

      failing.cancel();
      service.bot!.client.retryImmediately();
      const recovered = await until(
        'health to recover',
        async () => {
          const h = await health(service);
          return h.body.status === 'ok' && h;
        },
        60_000,
      );
      t.match(recovered.body, { bot: { status: 'ok', consecutive_sync_failures: 0 } });
    },
  );

  t.test(
    "probes: each one's latest success and the pings it lost since; failing after three in a row, ok at the next answer",
    async (t) => {
      const { hs, service } = await startWorld(t, database, true);
      t.match(
        (await health(service)).body.probes,
        {
          status: 'ok',
          accounts: [
            { id: 'p1', status: 'starting', last_outcome: null, consecutive_losses: 0, last_success_age_seconds: null },
          ],
        },
        'before its first ping',
      );
      t.equal((await service.probes!.tick())[0]?.outcome, 'answered');
      t.match((await health(service)).body, {
        status: 'ok',
        probes: {
          status: 'ok',
          accounts: [
            {
              id: 'p1',
              status: 'ok',
              last_outcome: 'answered',
              consecutive_losses: 0,
              last_success_age_seconds: Number,
            },
          ],
        },
      });

      const refused = hs.inject(
        { kind: 'error', status: 403, errcode: 'M_FORBIDDEN', error: 'You may not post' },
        { method: 'PUT', path: '/send/', userId: PROBE, times: Infinity },
      );
      for (let i = 1; i <= 3; i++) {
        t.equal((await service.probes!.tick())[0]?.outcome, 'send_failed');
        const { code, body, text } = await health(service);
        t.equal(code, 200);
        t.match(
          body,
          {
            status: i < 3 ? 'ok' : 'degraded',
            probes: {
              status: i < 3 ? 'ok' : 'failing',
              accounts: [
                {
                  status: i < 3 ? 'ok' : 'failing',
                  last_outcome: 'send_failed',
                  consecutive_losses: i,
                  last_success_age_seconds: Number,
                },
              ],
            },
          },
          `after ${i} unanswered`,
        );
        t.notMatch(text, /may not post|M_FORBIDDEN/);
      }
      refused.cancel();
      t.equal((await service.probes!.tick())[0]?.outcome, 'answered');
      t.match((await health(service)).body, {
        status: 'ok',
        probes: { status: 'ok', accounts: [{ status: 'ok', consecutive_losses: 0 }] },
      });
    },
  );
});

/** A PostgreSQL URL that fails as `kind` says: nothing listening, or a server that accepts and never answers. */
async function failingPostgres(t: Test, kind: 'refused' | 'hung'): Promise<string> {
  if (kind === 'refused') return 'postgres://pingboard:pw@127.0.0.1:1/nothing';
  const sockets = new Set<Socket>();
  const server = createServer((socket) => void sockets.add(socket)).listen(0, '127.0.0.1');
  await once(server, 'listening');
  t.teardown(() => {
    for (const socket of sockets) socket.destroy();
    server.close();
  });
  return `postgres://pingboard:pw@127.0.0.1:${(server.address() as AddressInfo).port}/hung`;
}

for (const [kind, code] of [
  ['refused', 'unreachable'],
  ['hung', 'timeout'],
] as const) {
  t.test(
    `a database that is ${kind}: 503, a stable code, and no error text, host or port (the log has them)`,
    async (t) => {
      const url = await failingPostgres(t, kind);
      const database = await openDatabase({ url, dataDir: '' });
      t.teardown(() => database.destroy());
      const lines: { msg: string; err?: { message: string }; code?: string }[] = [];
      const log = createLogger('warn', { write: (line: string) => void lines.push(JSON.parse(line)) });
      const statistics = new Statistics({
        db: database.db,
        stats: { minDelayMs: 10, maxDelayMs: 600_000, minPings: 1 },
        weeks: { timeZone: 'UTC', closeWeekday: 1, closeHour: 0, graceMinutes: 60 },
        cacheSeconds: 60,
      });
      const app = await buildApp({ database, statistics, rooms: new RoomRegistry([]), cacheSeconds: 60 }, log);
      t.teardown(() => app.close());
      const res = await app.inject('/healthz');
      t.equal(res.statusCode, 503);
      t.match(res.json(), {
        status: 'unavailable',
        database: { engine: 'postgres', ok: false, status: 'unavailable', code },
        bot: { status: 'disabled' },
        probes: { status: 'disabled' },
      });
      const port = new URL(url).port;
      t.notMatch(
        res.body,
        new RegExp(`127\\.0\\.0\\.1|:${port}\\b|ECONNREFUSED|pingboard|nothing|hung|within|timeout expired|Connection`),
        'nothing of the error, the host, the port or the user',
      );
      t.match(
        lines.find((l) => l.msg === 'health check: database unavailable'),
        { code, err: { message: String } },
        'the log has the error',
      );
    },
  );
}

t.test(
  'a flood of /healthz asks the database once: requests share a check, and a later one makes a new check',
  async (t) => {
    const database = await openTestDatabase(testEngines()[0]!);
    t.teardown(() => database.destroy());
    let pings = 0;
    // The real database, its health pings counted.
    const counted: Database = {
      ...database,
      ping: (timeoutMs) => {
        pings++;
        return database.ping(timeoutMs);
      },
    };
    const statistics = new Statistics({
      db: database.db,
      stats: { minDelayMs: 10, maxDelayMs: 600_000, minPings: 1 },
      weeks: { timeZone: 'UTC', closeWeekday: 1, closeHour: 0, graceMinutes: 60 },
      cacheSeconds: 60,
    });
    const app = await buildApp({ database: counted, statistics, rooms: new RoomRegistry([]), cacheSeconds: 60 });
    t.teardown(() => app.close());
    const ask = async () => {
      const res = await app.inject('/healthz');
      t.equal(res.statusCode, 200);
      return res.json().database as { latency_ms: number; check_age_ms: number };
    };
    const started = performance.now();
    const flood = await Promise.all(Array.from({ length: 50 }, ask));
    // One check a second at most, joined while it runs: one for the flood unless a busy machine spread it
    // over more than a second (the injected-clock test below pins the times).
    const allowed = 1 + Math.floor((performance.now() - started) / HEALTH_CHECK_FRESH_MS);
    t.ok(pings >= 1 && pings <= allowed, `50 requests at once: ${pings} check(s), at most ${allowed}`);
    t.same(new Set(flood.map((d) => d.latency_ms)).size, pings, 'every answer gives one of those checks');
    const afterFlood = pings;
    await until('a request after the check went stale to make a new one', async () => {
      await ask();
      return pings > afterFlood;
    });
    t.equal(pings, afterFlood + 1, 'one new check');
  },
);

t.test(
  "a shared check is joined while it runs, however long, and taken while fresh, with its age; one that throws isn't kept",
  async (t) => {
    let clock = 0;
    const runs: { resolve: (value: { n: number }) => void; reject: (err: Error) => void }[] = [];
    const check = sharedCheck(
      () => new Promise<{ n: number }>((resolve, reject) => runs.push({ resolve, reject })),
      1000,
      () => clock,
    );
    const first = [check(), check()];
    clock = 1500;
    first.push(check());
    t.equal(runs.length, 1, 'three requests, one check: the third joins it past its second');
    runs[0]!.resolve({ n: 1 });
    t.same(
      (await Promise.all(first)).map((r) => [r.n, r.check_age_ms]),
      [
        [1, 1500],
        [1, 1500],
        [1, 1500],
      ],
      'each gives that check and its age',
    );
    clock = 1600;
    const second = check();
    t.equal(runs.length, 2, 'done and older than its second: a new check');
    runs[1]!.resolve({ n: 2 });
    t.same(await second, { n: 2, check_age_ms: 0 });
    clock = 2599;
    t.same(await check(), { n: 2, check_age_ms: 999 }, 'fresh: taken, with its age');
    t.equal(runs.length, 2);
    clock = 2600;
    const failing = check();
    t.equal(runs.length, 3, 'a second old: a new check');
    runs[2]!.reject(new Error('down'));
    await t.rejects(failing, /down/);
    const after = check();
    t.equal(runs.length, 4, 'a check that threw is not kept');
    runs[3]!.resolve({ n: 4 });
    t.same(await after, { n: 4, check_age_ms: 0 });
  },
);

t.test(
  'a sync that hangs, with no failure to count: failing once its latest success is older than the long poll could take',
  async (t) => {
    const database = await openTestDatabase(testEngines()[0]!);
    t.teardown(() => database.destroy());
    const statistics = new Statistics({
      db: database.db,
      stats: { minDelayMs: 10, maxDelayMs: 600_000, minPings: 1 },
      weeks: { timeZone: 'UTC', closeWeekday: 1, closeHour: 0, graceMinutes: 60 },
      cacheSeconds: 60,
    });
    const counts = { lastSyncAtMs: 0, consecutiveSyncFailures: 0 };
    const app = await buildApp({
      database,
      statistics,
      rooms: new RoomRegistry([]),
      cacheSeconds: 60,
      health: { bot: () => ({ counts, notFollowed: () => [] }) },
    });
    t.teardown(() => app.close());
    const bot = async () => (await app.inject('/healthz')).json();
    t.match(
      await bot(),
      { status: 'ok', bot: { status: 'starting', consecutive_sync_failures: 0, last_sync_age_seconds: null } },
      'before the first sync',
    );
    counts.lastSyncAtMs = Date.now() - (STALE_SYNC_SECONDS - 10) * 1000;
    t.match(await bot(), { status: 'ok', bot: { status: 'ok' } });
    counts.lastSyncAtMs = Date.now() - (STALE_SYNC_SECONDS + 10) * 1000;
    const stale = await bot();
    t.match(stale, { status: 'degraded', bot: { status: 'failing', consecutive_sync_failures: 0 } });
    t.ok(
      stale.bot.last_sync_age_seconds >= STALE_SYNC_SECONDS + 10,
      `the age says why (${stale.bot.last_sync_age_seconds} s)`,
    );
  },
);
