// Several `serve` processes on one PostgreSQL, the bot's homeserver a process
// of its own: the leader is killed twice (SIGKILL) and frozen once (SIGSTOP)
// while a user pings without pause. Checked from the homeserver's own record:
// every ping answered exactly once, never by two instances at once; and the
// stored samples are the pings.
import t from 'tap';
import pg from 'pg';
import { loadConfig } from '../src/config.ts';
import { LEADER_LOCK } from '../src/leadership.ts';
import { createLogger } from '../src/log.ts';
import { start, type Service } from '../src/start.ts';
import { forEachEngine, openTestDatabase, testEngines, type Test, type TestDatabase } from './helpers/database.ts';
import { startHomeserverProcess, type HomeserverProcess } from './helpers/homeserver-process.ts';
import { ROOT, servePingboard, type Server } from './helpers/process.ts';
import { parsePrometheusStrict } from './helpers/prometheus.ts';
import { until } from './helpers/until.ts';

const BOT = '@pingboard:bot.example';
const BOT_TOKEN = 'bot-token';
const PINGER = '@alice:ping.example';
const ALIAS = '#instances:ping.example';
/** Generous: a failover on a loaded machine (the design's bound is a few seconds, see docs/instances.md). */
const TAKEOVER_TIMEOUT_MS = 60_000;

interface Health {
  instance?: { id: string; role: 'leader' | 'follower'; single: boolean };
  bot: { status: string };
}

interface StoredEvent {
  event_id: string;
  sender: string;
  type: string;
  content: { msgtype?: string; body?: string; pong?: { ping?: string } };
}

interface RequestRecord {
  method: string;
  path: string;
  status: number | undefined;
  userAgent: string | undefined;
}

async function health(server: Server): Promise<Health | undefined> {
  try {
    return (await (await fetch(`${server.url}/healthz`)).json()) as Health;
  } catch {
    return undefined;
  }
}

/** The one instance among `servers` that says it leads, once exactly one does (the others say they follow). */
async function leaderAmong(servers: readonly Server[], what: string): Promise<Server> {
  return until(
    what,
    async () => {
      const roles = await Promise.all(servers.map(async (s) => (await health(s))?.instance?.role));
      const leaders = servers.filter((_, i) => roles[i] === 'leader');
      return leaders.length === 1 && roles.every((r) => r === 'leader' || r === 'follower') ? leaders[0] : undefined;
    },
    TAKEOVER_TIMEOUT_MS,
  );
}

/** The service without bot or probes (the scheduled jobs are the leader's work then), in this process. */
async function startService(t: Test, database: TestDatabase, env: Record<string, string> = {}): Promise<Service> {
  const config = loadConfig({ ...(database.url ? { DATABASE_URL: database.url } : {}), PINGBOARD_PORT: '0', ...env });
  const service = await start(config, createLogger('silent'), { database });
  t.teardown(() => service.stop());
  return service;
}

async function roleOf(service: Service): Promise<{ health: Health['instance']; gauge: number | undefined }> {
  const health = ((await (await fetch(`${service.url}/healthz`)).json()) as Health).instance;
  const metrics = parsePrometheusStrict(await (await fetch(`${service.url}/metrics`)).text());
  return { health, gauge: metrics.get('pingboard_leader')?.samples[0]?.value };
}

forEachEngine(t, (t, database) => {
  t.test('a lone instance leads and says so', async (t) => {
    const service = await startService(t, database);
    const { health, gauge } = await roleOf(service);
    t.match(health, { id: service.leadership.instanceId, role: 'leader', single: database.engine === 'pglite' });
    t.equal(gauge, 1);
    t.ok(service.jobs, 'the leader runs the scheduled jobs');
  });

  if (database.engine !== 'postgres') return;
  t.test('with PINGBOARD_LEADER_LOCK=off, an instance leads without the lock, beside one that holds it', async (t) => {
    const locked = await startService(t, database);
    const alone = await startService(t, database, { PINGBOARD_LEADER_LOCK: 'off' });
    t.match(await roleOf(locked), { health: { role: 'leader', single: false }, gauge: 1 });
    t.match(await roleOf(alone), { health: { role: 'leader', single: true }, gauge: 1 });
  });

  t.test("a second instance follows, and takes over when the leader's lock session ends", async (t) => {
    const first = await startService(t, database);
    const second = await startService(t, database);
    t.match(await roleOf(second), { health: { role: 'follower', single: false }, gauge: 0 });
    t.equal(second.jobs, undefined, 'a follower runs no scheduled job');
    // Ended by the server, as a restart or an administrator would: the lock goes with the session.
    // pg_locks lists every database of the server: only this test's, not the leaders of whatever else runs there.
    const admin = new pg.Client({ connectionString: database.url });
    await admin.connect();
    t.teardown(() => admin.end());
    // Advisory locks are per database, but pg_locks lists the whole cluster's: without the database
    // this would also end the lock session of any other Pingboard on the same PostgreSQL.
    const { rowCount } = await admin.query(
      `select pg_terminate_backend(pid) from pg_locks
        where locktype = 'advisory' and objid = $1 and granted
          and database = (select oid from pg_database where datname = current_database())`,
      [LEADER_LOCK],
    );
    t.equal(rowCount, 1, 'one session holds the leader lock');
    await until('the old leader to step down', () => first.leadership.role === 'follower' && first.jobs === undefined);
    // Either may win the lock now: the old leader tries again like any follower.
    const leader = await until('one of them to lead again', () =>
      [first, second].find((s) => s.leadership.role === 'leader' && s.jobs !== undefined),
    );
    const follower = leader === first ? second : first;
    t.match(await roleOf(leader), { health: { role: 'leader' }, gauge: 1 });
    t.match(await roleOf(follower), { health: { role: 'follower' }, gauge: 0 });
    t.equal(follower.jobs, undefined);
  });
});

if (!testEngines().includes('postgres')) {
  // Instances share their state through PostgreSQL; PGlite is one process's database (docs/instances.md).
  t.pass('skipped: several instances need PostgreSQL, and PINGBOARD_TEST_ENGINES leaves it out');
} else {
  t.test('three instances: the leader killed twice and frozen once, every ping answered once', async (t: Test) => {
    const database = await openTestDatabase('postgres');
    t.teardown(() => database.destroy());
    const hs: HomeserverProcess = await startHomeserverProcess({
      tokens: { [BOT]: BOT_TOKEN, [PINGER]: 'alice-token' },
    });
    t.teardown(() => hs.stop());
    const roomId = await hs.call<string>('createRoom', PINGER, { room_alias_name: 'instances', preset: 'public_chat' });
    const env = {
      DATABASE_URL: database.url!,
      PINGBOARD_ROOMS: ALIAS,
      PINGBOARD_HOMESERVER_URL: hs.url,
      PINGBOARD_BOT_USER_ID: BOT,
      PINGBOARD_BOT_ACCESS_TOKEN: BOT_TOKEN,
      PINGBOARD_CACHE_SECONDS: '0',
      // One user pings without pause: no answer may be held back by the per-sender limit.
      PINGBOARD_ANSWERS_PER_MINUTE: '10000',
    };
    const serve = () => servePingboard(t, ROOT, env);
    const servers = await Promise.all([serve(), serve(), serve()]);
    const alive = new Set(servers);
    let leader = await leaderAmong([...alive], 'one leader among three');

    const pongs = async () =>
      (await hs.call<StoredEvent[]>('events', roomId)).filter(
        (e) => e.sender === BOT && e.content.pong?.ping !== undefined,
      );
    const pings: string[] = [];
    const marks: string[] = [];
    let pinging = true;
    const pinger = (async () => {
      for (let n = 0; pinging; n++) {
        pings.push(await hs.call<string>('sendMessage', PINGER, roomId, `!ping ${n}`));
        // Paced by the round trip of each send, plus a breath: a steady stream, not a flood.
        await new Promise((resolve) => setTimeout(resolve, 100));
      }
    })();
    /** Waits until the pongs reach `count`: the current leader is answering. */
    const answered = async (count: number, what: string) =>
      until(what, async () => (await pongs()).length >= count, TAKEOVER_TIMEOUT_MS);

    await answered(5, 'the first leader to answer pings');
    const idOf = async (server: Server) => (await health(server))!.instance!.id;
    const leaderIds = [await idOf(leader)];
    for (const [round, signal] of (['SIGKILL', 'SIGKILL', 'SIGSTOP'] as const).entries()) {
      // A new instance each round, so two are always there to lead after the leader is gone.
      if (round > 0) alive.add(await serve());
      const before = (await pongs()).length;
      if (signal === 'SIGKILL') {
        await leader.kill('SIGKILL');
      } else {
        leader.child.kill('SIGSTOP');
      }
      alive.delete(leader);
      marks.push(`ping ${pings.length} (${signal})`);
      const frozen = signal === 'SIGSTOP' ? leader : undefined;
      leader = await leaderAmong([...alive], `a new leader after ${signal} #${round + 1}`);
      leaderIds.push(await idOf(leader));
      await answered(before + 5, `the new leader (round ${round + 1}) to answer pings`);
      if (frozen) {
        frozen.child.kill('SIGCONT');
        // Its session ended while it was frozen: it must know it no longer leads, and follow.
        await until(
          'the thawed instance to follow',
          async () => (await health(frozen))?.instance?.role === 'follower',
          TAKEOVER_TIMEOUT_MS,
        );
        alive.add(frozen);
      }
    }
    pinging = false;
    await pinger;
    // Not a failure yet: the assertions below name what is missing, if something is.
    await until(
      'every ping to be answered',
      async () => new Set((await pongs()).map((e) => e.content.pong!.ping)).size >= pings.length,
      TAKEOVER_TIMEOUT_MS,
    ).catch(() => {});

    const answers = await pongs();
    const pinged = new Set(answers.map((e) => e.content.pong!.ping));
    t.same(
      pings.flatMap((p, i) => (pinged.has(p) ? [] : [i])),
      [],
      `no ping left unanswered (by number; the leader went at ${marks.join(', ')})`,
    );
    const byPing = new Map<string, number>();
    for (const pong of answers) byPing.set(pong.content.pong!.ping!, (byPing.get(pong.content.pong!.ping!) ?? 0) + 1);
    t.same([...byPing.keys()].sort(), [...pings].sort(), 'every ping answered, and nothing else');
    t.same(
      [...byPing.values()].filter((n) => n !== 1),
      [],
      'no ping answered twice',
    );

    // The request that created each pong is the first send with its transaction ID (the homeserver
    // handles requests one at a time, in order, and answers later ones with the same event).
    const sends = (await hs.call<RequestRecord[]>('requests', { method: 'PUT', path: '/send/m.room.message/' })).filter(
      (r) => r.status === 200,
    );
    const creators: string[] = [];
    const seen = new Set<string>();
    for (const send of sends) {
      const txn = send.path.slice(send.path.lastIndexOf('/') + 1);
      if (seen.has(txn)) continue;
      seen.add(txn);
      creators.push(send.userAgent ?? 'none');
    }
    t.equal(creators.length, pings.length, 'one creating send per ping');
    // Each leader answered some pings (the rounds wait for that) and none after the next took over.
    const runs = creators.filter((agent, i) => i === 0 || agent !== creators[i - 1]);
    t.same(
      runs,
      leaderIds.map((id) => `pingboard (instance ${id})`),
      'the answering instance changed only at each handover, to the new leader',
    );

    // A pong can be seen before its sample is written (writes are grouped): wait for them, then compare.
    const stored = async () =>
      (
        await database.db
          .selectFrom('samples')
          .select('ping_event_id')
          .distinct()
          .where('responder', '=', BOT)
          .execute()
      )
        .map((r) => r.ping_event_id)
        .sort();
    await until(
      'the samples of every ping to be written',
      async () => (await stored()).length >= pings.length,
      TAKEOVER_TIMEOUT_MS,
    ).catch(() => {});
    t.same(await stored(), [...pings].sort(), 'the stored samples are the pings');
  });
}
