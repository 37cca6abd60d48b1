// DATABASE_READ_URL against a real streaming replica: a throwaway primary
// cluster and a hot standby made from it with pg_basebackup -R, each a
// PostgreSQL of its own. Samples are written through the primary; once the
// standby has replayed them (its replay LSN past the primary's WAL position:
// an event, not a wait), a service reading the standby answers exactly as
// one reading the primary. A standby that hangs or goes away makes the reads
// a quick 503 and /healthz say so, while the instance keeps its primary.
import t from 'tap';
import { sql } from 'kysely';
import { loadConfig } from '../src/config.ts';
import { openDatabase, type Database } from '../src/db/database.ts';
import { isDatabaseUnavailable } from '../src/http/app.ts';
import { createLogger } from '../src/log.ts';
import { recordSamples } from '../src/samples/repository.ts';
import { start, type Service } from '../src/start.ts';
import { ownClusterSkip, startCluster, type Cluster } from './helpers/cluster.ts';
import { ROOM, sample } from './helpers/samples.ts';
import type { Test } from './helpers/database.ts';
import { until } from './helpers/until.ts';

t.setTimeout(300_000);

/** Both services' clock: the day after the samples (test/helpers/samples.ts), so every answer is the same at any time. */
const NOW = new Date(Date.UTC(2026, 10, 19, 12, 0, 0));
/** Safety net for waits on a loaded machine, not a measure. */
const WAIT_MS = 60_000;

const ROUTES = [
  '/leaderboard.md',
  '/leaderboard.json',
  '/leaderboard.md?days=30&limit=3',
  '/api/v1/weeks',
  '/api/v1/servers/a.example',
  `/rooms/${encodeURIComponent(ROOM)}/stats.json`,
  `/rooms/${encodeURIComponent(ROOM)}/stats.raw.json`,
  '/',
  '/servers/a.example',
];

interface Answer {
  readonly status: number;
  readonly type: string | null;
  readonly body: string;
}

async function answer(service: Service, route: string): Promise<Answer> {
  const res = await fetch(service.url + route, { signal: AbortSignal.timeout(WAIT_MS) });
  return { status: res.status, type: res.headers.get('content-type'), body: await res.text() };
}

async function answers(service: Service): Promise<Record<string, Answer>> {
  return Object.fromEntries(await Promise.all(ROUTES.map(async (route) => [route, await answer(service, route)])));
}

interface ReadDatabaseHealth {
  ok: boolean;
  status: string;
  code?: string;
  standby: boolean | null;
  replay_lag_seconds: number | null;
}

async function health(service: Service): Promise<{ status: number; body: Record<string, unknown> }> {
  const res = await fetch(`${service.url}/healthz`, { signal: AbortSignal.timeout(WAIT_MS) });
  return { status: res.status, body: (await res.json()) as Record<string, unknown> };
}

/**
 * /healthz once it reports the read replica unavailable: the check made
 * before the replica went away answers for a second at most (HEALTH_CHECK_FRESH_MS).
 */
function healthOnceReplicaDown(service: Service, what: string) {
  return until(
    `/healthz to report the standby ${what}`,
    async () => {
      const answer = await health(service);
      return (answer.body['read_database'] as ReadDatabaseHealth).ok ? undefined : answer;
    },
    WAIT_MS,
  );
}

/** Samples of a few servers, spread over the hours before NOW. */
function samples(servers: readonly string[], perServer: number, hoursBefore: number) {
  return servers.flatMap((server, s) =>
    Array.from({ length: perServer }, (_, i) =>
      sample({
        pingServer: server,
        delayMs: 100 + 37 * s + ((i * 53) % 400),
        measuredAt: new Date(NOW.getTime() - (hoursBefore + i) * 3_600_000 - s * 1000),
      }),
    ),
  );
}

/** Resolves once the standby has replayed everything the primary has written so far. */
async function replayed(primary: Database, standby: Database): Promise<void> {
  const { rows } = await sql<{ lsn: string }>`select pg_current_wal_lsn()::text as lsn`.execute(primary.db);
  const target = rows[0]!.lsn;
  await until(
    `the standby to replay up to ${target}`,
    async () => {
      const result = await sql<{ done: boolean }>`select pg_last_wal_replay_lsn() >= ${target}::pg_lsn as done`.execute(
        standby.db,
      );
      return result.rows[0]!.done;
    },
    WAIT_MS,
  );
}

function startService(t: Test, env: Record<string, string>): Promise<Service> {
  const config = loadConfig({
    PINGBOARD_PORT: '0',
    PINGBOARD_ROOMS: ROOM,
    PINGBOARD_CACHE_SECONDS: '0',
    // Short, so the hung standby below is a 503 soon: the safety net is the test's.
    PINGBOARD_DB_QUERY_TIMEOUT_MS: '2000',
    PINGBOARD_DB_CONNECT_TIMEOUT_MS: '1000',
    ...env,
  });
  return start(config, createLogger('silent'), { now: () => NOW }).then((service) => {
    t.teardown(() => service.stop());
    return service;
  });
}

t.test(
  'a service reading a streaming replica (DATABASE_READ_URL) answers as one reading the primary',
  { skip: ownClusterSkip() },
  async (t) => {
    const primaryCluster = await startCluster();
    t.teardown(() => primaryCluster.destroy());
    const standbyCluster: Cluster = await primaryCluster.startStandby();
    // Before its primary (teardowns run in reverse): a standby outliving it would retry forever.
    t.teardown(() => standbyCluster.destroy());
    const primary = await openDatabase({ url: primaryCluster.url, dataDir: '' });
    t.teardown(() => primary.destroy());
    const standby = await openDatabase({ url: standbyCluster.url, dataDir: '' });
    t.teardown(() => standby.destroy());

    // Each migrates the primary (the second finds nothing to do); the reader reads the standby.
    const readsPrimary = await startService(t, { DATABASE_URL: primaryCluster.url });
    const readsReplica = await startService(t, {
      DATABASE_URL: primaryCluster.url,
      DATABASE_READ_URL: standbyCluster.url,
    });

    await recordSamples(primary.db, samples(['a.example', 'b.example', 'c.example', 'd.example'], 30, 1));
    await replayed(primary, standby);
    const expected = await answers(readsPrimary);
    for (const route of ROUTES) t.equal(expected[route]!.status, 200, `${route}: the primary answers with data`);
    t.match(expected['/leaderboard.md']!.body, /a\.example/, 'with the servers written');
    t.strictSame(await answers(readsReplica), expected, 'the same answers from the replica, route by route');

    const replicaHealth = await health(readsReplica);
    t.equal(replicaHealth.status, 200);
    t.match(replicaHealth.body, {
      status: 'ok',
      database: { ok: true },
      read_database: { ok: true, status: 'ok', standby: true, replay_lag_seconds: 0 },
    });
    t.notOk('read_database' in (await health(readsPrimary)).body, 'no read_database without DATABASE_READ_URL');

    t.test('a standby behind its primary answers what it has replayed, and says how far behind it is', async (t) => {
      await sql`select pg_wal_replay_pause()`.execute(standby.db);
      t.teardown(() => sql`select pg_wal_replay_resume()`.execute(standby.db));
      await recordSamples(primary.db, samples(['late.example'], 10, 2));
      const { rows } = await sql<{ lsn: string }>`select pg_current_wal_lsn()::text as lsn`.execute(primary.db);
      await until(
        'the standby to receive the new samples (not replay them: it is paused)',
        async () =>
          (
            await sql<{
              received: boolean;
            }>`select pg_last_wal_receive_lsn() >= ${rows[0]!.lsn}::pg_lsn as received`.execute(standby.db)
          ).rows[0]!.received,
        WAIT_MS,
      );
      t.match((await answer(readsPrimary, '/leaderboard.md')).body, /late\.example/, 'the primary has them');
      t.equal(
        (await answer(readsReplica, '/leaderboard.md')).body,
        expected['/leaderboard.md']!.body,
        'the replica answers what it had',
      );
      // The check made before the pause answers for a second at most (HEALTH_CHECK_FRESH_MS).
      const lagging = await until(
        '/healthz to count the lag',
        async () => {
          const replica = (await health(readsReplica)).body['read_database'] as ReadDatabaseHealth;
          return replica.replay_lag_seconds !== 0 ? replica : undefined;
        },
        WAIT_MS,
      );
      t.equal(lagging.ok, true, 'a lagging standby is still up');
      t.ok(lagging.replay_lag_seconds! > 0, `its lag is counted (${lagging.replay_lag_seconds} s)`);

      await sql`select pg_wal_replay_resume()`.execute(standby.db);
      await replayed(primary, standby);
      t.strictSame(await answers(readsReplica), await answers(readsPrimary), 'caught up: the same answers again');
    });

    t.test(
      'a hung standby (SIGSTOP): the reads are a 503 with Retry-After, /healthz says which database',
      async (t) => {
        standbyCluster.signal('SIGSTOP');
        t.teardown(() => standbyCluster.signal('SIGCONT'));
        for (const route of ['/leaderboard.md', '/leaderboard.json', `/rooms/${encodeURIComponent(ROOM)}/stats.json`]) {
          const started = performance.now();
          const res = await fetch(readsReplica.url + route, { signal: AbortSignal.timeout(WAIT_MS) });
          const ms = Math.round(performance.now() - started);
          t.equal(res.status, 503, `${route}: 503 (in ${ms} ms; the query timeout is 2000 ms)`);
          t.equal(res.headers.get('retry-after'), '5', `${route}: Retry-After`);
        }
        const hung = await healthOnceReplicaDown(readsReplica, 'hung');
        t.equal(hung.status, 200, '/healthz: 200, the instance still writes and leads');
        t.match(hung.body, {
          status: 'degraded',
          database: { ok: true, status: 'ok' },
          read_database: { ok: false, status: 'unavailable', code: 'timeout', standby: null, replay_lag_seconds: null },
        });
        t.notMatch(JSON.stringify(hung.body), new URL(standbyCluster.url).port, 'a code, not the address');
        t.equal((await answer(readsPrimary, '/leaderboard.md')).status, 200, 'an instance reading the primary answers');

        standbyCluster.signal('SIGCONT');
        await until(
          'the reads to answer again',
          async () => (await answer(readsReplica, '/leaderboard.md')).status === 200,
          WAIT_MS,
        );
        t.match(
          await until(
            '/healthz to report the standby back',
            async () => {
              const { body } = await health(readsReplica);
              return body['status'] === 'ok' ? body : undefined;
            },
            WAIT_MS,
          ),
          { status: 'ok', read_database: { ok: true } },
          'healthy again',
        );
      },
    );

    t.test('a standby that is gone: a 503, and /healthz says it is unreachable', async (t) => {
      standbyCluster.stop();
      t.teardown(() => standbyCluster.start());
      const res = await fetch(`${readsReplica.url}/leaderboard.md`, { signal: AbortSignal.timeout(WAIT_MS) });
      t.equal(res.status, 503);
      t.match(await res.json(), { error: 'Service Unavailable', message: /the database is unavailable/ });
      const gone = await healthOnceReplicaDown(readsReplica, 'gone');
      t.equal(gone.status, 200);
      t.match(gone.body, { status: 'degraded', read_database: { ok: false, code: 'unreachable' } });
    });
  },
);

t.test(
  "the reader's connection is read-only: a write is refused even on a primary",
  { skip: ownClusterSkip() },
  async (t) => {
    const cluster = await startCluster();
    t.teardown(() => cluster.destroy());
    const reader = await openDatabase({ url: cluster.url, dataDir: '', readOnly: true });
    t.teardown(() => reader.destroy());
    await t.rejects(sql`create table written (id int)`.execute(reader.db), { code: '25006' });
    t.match(await reader.replication(5000), { standby: false, replayLagSeconds: null }, 'a primary, no lag');
  },
);

t.test(
  "a read the standby cancels to replay its primary's change (a recovery conflict) is a 503 to retry, not a 500",
  { skip: ownClusterSkip() },
  async (t) => {
    const primaryCluster = await startCluster();
    t.teardown(() => primaryCluster.destroy());
    // 0: the standby cancels a conflicting read at once instead of delaying its replay.
    const standbyCluster = await primaryCluster.startStandby({ max_standby_streaming_delay: '0' });
    t.teardown(() => standbyCluster.destroy());
    const primary = await openDatabase({ url: primaryCluster.url, dataDir: '' });
    t.teardown(() => primary.destroy());
    const standby = await openDatabase({ url: standbyCluster.url, dataDir: '' });
    t.teardown(() => standby.destroy());
    await sql`create table conflict_probe (id int)`.execute(primary.db);
    await sql`insert into conflict_probe values (1)`.execute(primary.db);
    await replayed(primary, standby);

    // A read holding the table on the standby while the primary drops it.
    const read = sql`select pg_sleep(60) from conflict_probe`.execute(standby.db).then(
      () => undefined,
      (err: unknown) => err,
    );
    await until(
      'the read to hold the table on the standby',
      async () =>
        (
          await sql<{ n: number }>`select count(*)::int as n from pg_locks l join pg_class c on c.oid = l.relation
            where c.relname = 'conflict_probe' and l.granted`.execute(standby.db)
        ).rows[0]!.n > 0,
      WAIT_MS,
    );
    await sql`drop table conflict_probe`.execute(primary.db);
    const err = await read;
    t.match(err, { code: '40001', message: /conflict with recovery/ }, 'PostgreSQL cancels the read');
    t.ok(isDatabaseUnavailable(err), 'which the routes answer with a 503 and Retry-After');
  },
);
