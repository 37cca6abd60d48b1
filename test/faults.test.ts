// Faults with real processes: the service as `pingboard serve` runs it, on
// PostgreSQL, answering pings over real HTTP, while its database is stopped
// and started, its homeserver goes away and comes back, and it is stopped
// with SIGTERM or killed with SIGKILL in the middle of a burst of pings.
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import pg from 'pg';
import t from 'tap';
import { startTestHomeserver, type TestHomeserver } from './homeserver/index.ts';
import { ownClusterSkip, startCluster } from './helpers/cluster.ts';
import { openTestDatabase, testEngines, type Test } from './helpers/database.ts';
import { PROCESS_TIMEOUT_MS, servePingboard, type Server } from './helpers/process.ts';
import { until } from './helpers/until.ts';

const BOT = '@pingboard:bot.example';
const PINGERS = ['@alice:fast.example', '@bob:slow.example'];

const dir = mkdtempSync(path.join(tmpdir(), 'pingboard-faults-'));
t.teardown(() => rmSync(dir, { recursive: true, force: true }));

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

interface Room {
  readonly hs: TestHomeserver;
  readonly roomId: string;
}

async function pingRoom(t: Test): Promise<Room> {
  const hs = await startTestHomeserver({
    servers: { 'bot.example': { delayMs: 0 }, 'fast.example': { delayMs: 20 }, 'slow.example': { delayMs: 150 } },
  });
  t.teardown(() => hs.stop());
  hs.registerUser(BOT, { password: 'bot-password' });
  for (const user of PINGERS) hs.registerUser(user);
  const roomId = hs.createRoom(PINGERS[0]!, { room_alias_name: 'ping', preset: 'public_chat' });
  hs.join(PINGERS[1]!, roomId, ['fast.example']);
  return { hs, roomId };
}

function serveBot(t: Test, room: Room, databaseUrl: string): Promise<Server> {
  return servePingboard(t, dir, {
    DATABASE_URL: databaseUrl,
    PINGBOARD_ROOMS: '#ping:fast.example',
    PINGBOARD_HOMESERVER_URL: room.hs.url,
    PINGBOARD_BOT_USER_ID: BOT,
    PINGBOARD_BOT_PASSWORD: 'bot-password',
    PINGBOARD_ANSWERS_PER_MINUTE: '10000',
  });
}

/** Ping event ID → how many pongs the bot sent for it. */
function pongCounts({ hs, roomId }: Room): Map<string, number> {
  const counts = new Map<string, number>();
  for (const ev of hs.events(roomId)) {
    const ping = (ev.content as { pong?: { ping?: string } }).pong?.ping;
    if (ev.sender === BOT && ping) counts.set(ping, (counts.get(ping) ?? 0) + 1);
  }
  return counts;
}

let sequence = 0;
function sendPing(room: Room): string {
  sequence++;
  return room.hs.sendMessage(PINGERS[sequence % PINGERS.length]!, room.roomId, `!ping ${sequence}`);
}

/** Pings until one is answered: the first sync after a start is backlog, so the bot is live only then. */
async function untilLive(room: Room): Promise<void> {
  await until(
    'the bot to answer a ping',
    async () => {
      const id = sendPing(room);
      await sleep(400);
      return pongCounts(room).has(id);
    },
    PROCESS_TIMEOUT_MS,
  );
}

/** The pings with an echo sample (measured before `before`, when given). */
async function echoSamples(databaseUrl: string, before?: Date): Promise<Set<string>> {
  const client = new pg.Client({ connectionString: databaseUrl });
  await client.connect();
  try {
    const { rows } = await client.query<{ ping_event_id: string }>(
      "select ping_event_id from samples where source = 'echo' and measured_at < coalesce($1::timestamptz, 'infinity')",
      [before ?? null],
    );
    return new Set(rows.map((r) => r.ping_event_id));
  } finally {
    await client.end();
  }
}

/** The service's count of samples stored, from /metrics. */
async function samplesWritten(url: string): Promise<number> {
  const text = await (await fetch(`${url}/metrics`)).text();
  const line = /^pingboard_samples_written_total (\d+)$/m.exec(text);
  if (!line) throw new Error('no pingboard_samples_written_total in /metrics');
  return Number(line[1]);
}

const postgres = testEngines().includes('postgres');

t.test(
  'PostgreSQL stopped and started while pings flow: every sample arrives, none twice',
  {
    skip: ownClusterSkip(),
  },
  async (t) => {
    const cluster = await startCluster();
    t.teardown(() => cluster.destroy());
    const room = await pingRoom(t);
    const server = await serveBot(t, room, cluster.url);
    await untilLive(room);

    const sent: string[] = [];
    const pingFor = async (ms: number) => {
      for (const end = Date.now() + ms; Date.now() < end; ) {
        sent.push(sendPing(room));
        await sleep(100);
      }
    };
    await pingFor(1000);
    cluster.stop();
    // The check made before the stop answers for a second at most (HEALTH_CHECK_FRESH_MS).
    await until(
      '/healthz to report the database away',
      async () => (await fetch(`${server.url}/healthz`)).status === 503,
    );
    await pingFor(2000);
    cluster.start();
    await pingFor(1000);

    // The bot backs off while the database is away: recovery takes seconds.
    await until('every ping to be answered', () => sent.every((id) => pongCounts(room).has(id)), 30_000);
    const samples = await until(
      'every sample to be written',
      async () => {
        const stored = await echoSamples(cluster.url);
        return sent.every((id) => stored.has(id)) ? stored : undefined;
      },
      30_000,
    );
    t.ok(
      sent.every((id) => samples.has(id)),
      `all ${sent.length} samples arrived, including those measured while the database was down`,
    );
    t.same(
      [...pongCounts(room).values()].filter((n) => n > 1),
      [],
      'no ping got two pongs',
    );
    await until(
      '/healthz to report the database back',
      async () => (await fetch(`${server.url}/healthz`)).status === 200,
    );
    t.equal((await server.stop()).code, 0);
  },
);

t.test(
  'the homeserver goes away and comes back: the bot resumes and answers none of the backlog',
  { skip: !postgres },
  async (t) => {
    const database = await openTestDatabase('postgres');
    t.teardown(() => database.destroy());
    const room = await pingRoom(t);
    const server = await serveBot(t, room, database.url!);
    await untilLive(room);

    await room.hs.goDown();
    const backlog = [sendPing(room), sendPing(room), sendPing(room)];
    await sleep(2000);
    await room.hs.comeUp();
    await untilLive(room);
    const live = [sendPing(room), sendPing(room)];
    await until(
      'the pings after the outage to be answered',
      () => live.every((id) => pongCounts(room).has(id)),
      30_000,
    );
    t.same(
      backlog.filter((id) => pongCounts(room).has(id)),
      [],
      'pings sent during the outage are not answered',
    );
    const samples = await until(
      'the live samples',
      async () => {
        const stored = await echoSamples(database.url!);
        return live.every((id) => stored.has(id)) ? stored : undefined;
      },
      30_000,
    );
    t.same(
      backlog.filter((id) => samples.has(id)),
      [],
      'nor recorded',
    );
    t.equal((await server.stop()).code, 0);
  },
);

/** A burst of pings, and the moment a few of them have been answered. */
async function burst(room: Room, count: number, answeredBefore: number): Promise<string[]> {
  const ids: string[] = [];
  for (let i = 0; i < count; i++) {
    ids.push(sendPing(room));
    if (i % 5 === 4) await sleep(10);
  }
  await until(
    'part of the burst to be answered',
    () => ids.filter((id) => pongCounts(room).has(id)).length >= answeredBefore,
    30_000,
  );
  return ids;
}

t.test(
  'SIGTERM during a burst: what was measured is written, every measured ping answered, nothing answered twice after a restart',
  { skip: !postgres },
  async (t) => {
    const database = await openTestDatabase('postgres');
    t.teardown(() => database.destroy());
    const room = await pingRoom(t);
    const server = await serveBot(t, room, database.url!);
    await untilLive(room);

    const ids = await burst(room, 60, 5);
    // Three pongs held up on their way out: SIGTERM arrives while they are being sent.
    // A stop that did not wait for them would exit at once and they would never arrive.
    const SEND_DELAY_MS = 1500;
    room.hs.inject({ kind: 'delay', ms: SEND_DELAY_MS }, { path: '/send/', userId: BOT, times: 3 });
    ids.push(sendPing(room), sendPing(room), sendPing(room));
    const delayed = () => room.hs.requests({ path: '/send/', userId: BOT }).filter((r) => r.fault === 'delay');
    await until('the held pongs to be on their way', () => delayed().length === 3, 30_000);
    // Which pings they answer: the transaction ID is derived from the ping's event ID.
    const held = delayed().map((r) => Buffer.from(/pingboard-pong-([^/?]+)/.exec(r.path)![1]!, 'base64url').toString());
    const stopping = Date.now();
    const stopped = await server.stop();
    t.ok(
      Date.now() - stopping >= SEND_DELAY_MS - 500,
      `the stop waited for the pongs being sent (${Date.now() - stopping} ms)`,
    );
    t.ok(
      held.every((id) => pongCounts(room).has(id)),
      'and they were sent',
    );
    t.equal(stopped.code, 0, 'exits 0');
    t.match(stopped.stdout, /"msg":"stopped"/);
    const answered = ids.filter((id) => pongCounts(room).has(id));
    const samples = await echoSamples(database.url!);
    const measured = ids.filter((id) => samples.has(id));
    t.ok(answered.length >= 5, `${answered.length} of ${ids.length} pings answered before the stop`);
    t.same(
      answered.filter((id) => !samples.has(id)),
      [],
      'every answered ping has its sample',
    );
    t.same(
      measured.filter((id) => !answered.includes(id)),
      [],
      'every measured ping got its pong before the process exited',
    );

    const restarted = await serveBot(t, room, database.url!);
    await untilLive(room);
    t.same(
      [...pongCounts(room).values()].filter((n) => n > 1),
      [],
      'no ping is answered twice after the restart',
    );
    t.same(
      ids.filter((id) => !answered.includes(id) && pongCounts(room).has(id)),
      [],
      'the rest of the burst is backlog: not answered',
    );
    t.equal((await restarted.stop()).code, 0);
  },
);

t.test(
  'SIGKILL during a burst: after a restart no ping has two pongs and every sample reported stored survived',
  { skip: !postgres },
  async (t) => {
    const database = await openTestDatabase('postgres');
    t.teardown(() => database.destroy());
    const room = await pingRoom(t);
    const server = await serveBot(t, room, database.url!);
    await untilLive(room);

    // Killed once 30 are answered and the writer has stored some: what it had stored must survive.
    const ids = await burst(room, 60, 30);
    await until('a sample of the burst to be stored', async () => (await samplesWritten(server.url)) > 0, 30_000);
    const storedBeforeKill = await samplesWritten(server.url);
    const killed = await server.kill('SIGKILL');
    const killedAt = new Date();
    t.equal(killed.signal, 'SIGKILL');
    const answered = ids.filter((id) => pongCounts(room).has(id));

    const restarted = await serveBot(t, room, database.url!);
    await untilLive(room);
    await sleep(500);
    t.same(
      [...pongCounts(room).values()].filter((n) => n > 1),
      [],
      'no ping has two pongs',
    );
    t.same(
      ids.filter((id) => !answered.includes(id) && pongCounts(room).has(id)),
      [],
      'pings left unanswered at the kill are backlog after the restart',
    );
    const samples = await echoSamples(database.url!);
    // What dies with the process is what the writer had not yet reported
    // stored: samples lingering for a shared write, or in a write not yet
    // committed. (A sample is recorded before its pong is sent, so stored
    // samples may include pings whose pong the kill cut off.)
    // Counted among those measured before the kill: the restart's own samples cannot make up for a lost one.
    const survived = await echoSamples(database.url!, killedAt);
    t.ok(
      survived.size >= storedBeforeKill,
      `every sample reported stored survived the kill (${survived.size} of ${storedBeforeKill})`,
    );
    t.comment(
      `answered pings whose sample was lost with the process: ${answered.filter((id) => !samples.has(id)).length} of ${answered.length}`,
    );
    t.equal((await restarted.stop()).code, 0);
  },
);

t.test('no token or password reaches the log, even at trace level through faults', { skip: !postgres }, async (t) => {
  const database = await openTestDatabase('postgres');
  t.teardown(() => database.destroy());
  const room = await pingRoom(t);
  const botToken = 'syt-bot-S3cret-token';
  room.hs.registerUser(BOT, { accessToken: botToken });
  // Trust authentication ignores the password, so it can be any: it must still never be printed.
  const url = new URL(database.url!);
  url.password = 'db-S3cret-password';
  const server = await servePingboard(t, dir, {
    DATABASE_URL: url.toString(),
    PINGBOARD_LOG_LEVEL: 'trace',
    PINGBOARD_ROOMS: '#ping:fast.example',
    PINGBOARD_HOMESERVER_URL: room.hs.url,
    PINGBOARD_BOT_USER_ID: BOT,
    PINGBOARD_BOT_ACCESS_TOKEN: botToken,
  });
  await untilLive(room);
  room.hs.inject({ kind: 'rateLimit', retryAfterMs: 200 }, { path: '/send/', times: 2 });
  room.hs.inject({ kind: 'error', status: 502 }, { path: '/sync', times: 2 });
  const id = sendPing(room);
  await until('the ping to be answered through the faults', () => pongCounts(room).has(id), 30_000);
  await fetch(`${server.url}/healthz`, { headers: { authorization: 'Bearer op-S3cret-token' } });
  await fetch(`${server.url}/leaderboard.md?access_token=${botToken}`);
  const { stdout, stderr } = await server.stop();
  const log = stdout + stderr;
  t.ok(log.split('\n').length > 50, 'trace logging was on');
  t.match(log, /leaderboard\.md\?access_token=\[redacted\]/, 'a token in a request URL is censored');
  for (const secret of [botToken, 'db-S3cret-password', 'op-S3cret-token'])
    t.notOk(log.includes(secret), `${secret} is not in the log`);
});
