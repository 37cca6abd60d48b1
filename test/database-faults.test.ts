// The database failing under a running service, as real processes: a
// PostgreSQL cluster of the test's own hung with SIGSTOP, or not up yet
// when `serve` starts.
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import t from 'tap';
import { ownClusterSkip, startCluster } from './helpers/cluster.ts';
import { PROCESS_TIMEOUT_MS, servePingboard, startPingboard } from './helpers/process.ts';
import { until } from './helpers/until.ts';

const dir = mkdtempSync(path.join(tmpdir(), 'pingboard-database-faults-'));
t.teardown(() => rmSync(dir, { recursive: true, force: true }));

// Only PostgreSQL can hang this way: PGlite runs inside the service's own
// process, with no connection to wait on, so there is nothing to stop apart from it.
t.test(
  'PostgreSQL hangs (SIGSTOP): every route a quick 503 with Retry-After, /healthz within a second, and back when it resumes',
  {
    skip: ownClusterSkip(),
  },
  async (t) => {
    const cluster = await startCluster();
    t.teardown(() => cluster.destroy());
    const ROOM = '!hung:example.org';
    const server = await servePingboard(t, dir, {
      DATABASE_URL: cluster.url,
      PINGBOARD_ROOMS: ROOM,
      PINGBOARD_CACHE_SECONDS: '0',
      // Shorter than the defaults (5 s and 3 s), so the bound below holds on a busy machine.
      PINGBOARD_DB_QUERY_TIMEOUT_MS: '3000',
      PINGBOARD_DB_CONNECT_TIMEOUT_MS: '2000',
    });
    const routes = [
      '/',
      '/leaderboard.md',
      '/leaderboard.json',
      '/api/v1/weeks',
      '/api/v1/servers/example.org',
      '/servers/example.org',
      `/rooms/${encodeURIComponent(ROOM)}/stats.json`,
      `/rooms/${encodeURIComponent(ROOM)}/stats.raw.json`,
    ];
    // Open connections first: a hung server answers none of their queries.
    for (const route of routes) t.ok((await fetch(server.url + route)).status < 500, `${route} answers before`);

    cluster.signal('SIGSTOP');
    t.teardown(() => cluster.signal('SIGCONT'));
    const timed = async (route: string) => {
      const started = performance.now();
      const res = await fetch(server.url + route, { signal: AbortSignal.timeout(30_000) });
      return { route, res, body: await res.text(), ms: performance.now() - started };
    };
    // Twice the pool's ten connections, so some requests also wait for a connection.
    const answers = await Promise.all([...routes, ...routes, ...routes].map(timed));
    // A check made before the hang answers for a second (HEALTH_CHECK_FRESH_MS); the next one times out.
    const health = await until(
      '/healthz to report the database hung',
      async () => {
        const answer = await timed('/healthz');
        return answer.res.status === 503 ? answer : undefined;
      },
      30_000,
    );
    // A 503 at all is the timeout at work: without one, these would wait for the thaw (the 30 s abort above).
    // How quickly is the bench's and the load's business, not an assertion here: the times are printed.
    for (const { route, res, ms } of answers) {
      t.equal(res.status, 503, `${route}: 503`);
      t.equal(res.headers.get('retry-after'), '5', `${route}: Retry-After`);
      t.comment(`${route} answered in ${Math.round(ms)} ms`);
    }
    t.equal(health.res.status, 503, '/healthz: 503');
    t.comment(`/healthz answered in ${Math.round(health.ms)} ms`);
    t.match(JSON.parse(health.body), {
      status: 'unavailable',
      database: { engine: 'postgres', ok: false, status: 'unavailable', code: 'timeout' },
    });
    t.notMatch(health.body, new URL(cluster.url).port, "a code, not the error's text with the address");

    cluster.signal('SIGCONT');
    // The room has no data: its table answers 404 once the database answers.
    await until(
      'the routes to answer again',
      async () => (await fetch(`${server.url}/leaderboard.md`)).status === 404,
      30_000,
    );
    await until(
      '/healthz to report the database back',
      async () => (await timed('/healthz')).res.status === 200,
      30_000,
    );
    for (const route of routes) t.ok((await fetch(server.url + route)).status < 500, `${route} answers after`);
    const stopped = await server.stop();
    t.equal(stopped.code, 0, 'stops cleanly after');
  },
);

t.test(
  'serve waits for a database that is not up yet, saying so, and starts once it is',
  {
    skip: ownClusterSkip(),
  },
  async (t) => {
    const cluster = await startCluster();
    t.teardown(() => cluster.destroy());
    cluster.stop();
    const { child, exited } = startPingboard(dir, ['serve'], {
      DATABASE_URL: cluster.url,
      PINGBOARD_PORT: '0',
      PINGBOARD_LOG_LEVEL: 'info',
    });
    t.teardown(() => {
      if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
    });
    let stdout = '';
    child.stdout!.on('data', (chunk: string) => {
      stdout += chunk;
    });
    await until(
      'a log line saying serve waits for the database',
      () => stdout.includes('"the database is not reachable yet; waiting for it"'),
      PROCESS_TIMEOUT_MS,
    );
    t.match(stdout, /"reason":"DATABASE_URL: cannot reach PostgreSQL at 127\.0\.0\.1:\d+: connect ECONNREFUSED/);
    t.equal(child.exitCode, null, 'still running');
    cluster.start();
    await until('serve to start', () => stdout.includes('"pingboard started"'), 90_000);
    const url = (
      JSON.parse(stdout.split('\n').find((line) => line.includes('"pingboard started"'))!) as { url: string }
    ).url;
    t.equal((await fetch(`${url}/healthz`)).status, 200);
    child.kill('SIGTERM');
    t.equal((await exited).code, 0);
  },
);
