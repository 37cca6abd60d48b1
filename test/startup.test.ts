// Starting and stopping the service as people do: through npm, and with
// settings that cannot work (a missing or unreachable database, a port in
// use, a data directory that cannot be made).
import { existsSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import path from 'node:path';
import t from 'tap';
import { ADMIN_URL, openTestDatabase, testEngines } from './helpers/database.ts';
import {
  escapeRegExp,
  PROCESS_TIMEOUT_MS,
  ROOT,
  runPingboard,
  servePingboard,
  startPingboard,
  type Result,
} from './helpers/process.ts';

const dir = mkdtempSync(path.join(tmpdir(), 'pingboard-startup-'));
t.teardown(() => rmSync(dir, { recursive: true, force: true }));

function pingboard(args: string[], env: Record<string, string>, timeoutMs = PROCESS_TIMEOUT_MS): Promise<Result> {
  return runPingboard(dir, args, env, timeoutMs);
}

t.test(
  '`npm start` and `npm run pingboard`, as the README runs them, pass SIGTERM and SIGINT on: the server shuts down and frees its port',
  {
    skip: !testEngines().includes('pglite') && 'PINGBOARD_TEST_ENGINES excludes pglite',
  },
  async (t) => {
    for (const [signal, command] of [
      ['SIGTERM', ['npm', 'start']],
      ['SIGINT', ['npm', 'run', 'pingboard', '--', 'serve']],
    ] as const) {
      const dataDir = path.join(dir, `npm-${signal}`);
      const server = await servePingboard(t, ROOT, { PINGBOARD_DATA_DIR: dataDir }, command);
      t.equal((await fetch(`${server.url}/healthz`)).status, 200, 'it serves');
      const stopped = await server.kill(signal);
      t.equal(stopped.code, 0, `npm exits 0 after ${signal}`);
      t.match(stopped.stdout, /"msg":"stopped"/, 'the server shut down in order');
      t.equal(existsSync(path.join(dataDir, 'pingboard.lock')), false, 'the data directory is released');
      await t.rejects(fetch(`${server.url}/healthz`), 'the port is free: nothing answers on it');
    }
  },
);

t.test(
  'a service with no Matrix account loads no matrix-js-sdk (20 MB); with a bot, the SDK finds its log methods first',
  async (t) => {
    const RECORD_SDK_LOADS = `--import=${path.join(ROOT, 'test', 'fixtures', 'record-sdk-loads.ts')}`;
    const env = { PINGBOARD_DATA_DIR: 'memory://', NODE_OPTIONS: RECORD_SDK_LOADS };
    const server = await servePingboard(t, dir, env);
    t.equal((await fetch(`${server.url}/leaderboard.md`)).status, 404, 'it serves (an empty board)');
    const served = await server.stop();
    t.equal(served.code, 0);
    t.match(served.stderr, /^recording matrix-js-sdk imports\n/, 'the hook that tells of SDK imports was loaded');
    t.notMatch(served.stderr, /loads/, 'nothing asked for the SDK');

    // A bot whose homeserver does not answer: what matters is the order its modules load in.
    const { child, exited } = startPingboard(dir, ['serve'], {
      ...env,
      PINGBOARD_PORT: '0',
      PINGBOARD_HOMESERVER_URL: 'http://127.0.0.1:9',
      PINGBOARD_BOT_USER_ID: '@pingboard:example.org',
      PINGBOARD_BOT_ACCESS_TOKEN: 'token',
      PINGBOARD_ROOMS: '!ping:example.org',
    });
    let loads = '';
    await new Promise<void>((resolve) => {
      child.stderr!.on('data', (chunk: Buffer) => {
        loads += chunk.toString();
        if (loads.includes('loads matrix-js-sdk')) resolve();
      });
      void exited.then(() => resolve(), resolve);
    });
    child.kill('SIGKILL');
    await exited.catch(() => {});
    t.match(
      loads,
      /^recording matrix-js-sdk imports\nloads [^\n]*sdk-internals\.ts\n(.*\n)*loads matrix-js-sdk\n/,
      'sdk-internals.ts before the SDK',
    );
  },
);

t.test('start and connection errors: one line naming the setting and the cause, exit 2', async (t) => {
  const oneLine = (result: Result, pattern: RegExp, what: string) => {
    t.equal(result.code, 2, `${what}: exit 2`);
    t.match(result.stderr, pattern, what);
    t.equal(result.stderr.split('\n').length, 2, `${what}: one line, no stack`);
  };
  const occupied = createServer();
  await new Promise<void>((resolve) => occupied.listen(0, '127.0.0.1', resolve));
  t.teardown(() => new Promise((resolve) => occupied.close(resolve)));
  const port = (occupied.address() as { port: number }).port;
  const notADirectory = path.join(dir, 'a-file');
  writeFileSync(notADirectory, '');
  // import checks its files before opening the database: this one exists, so the database is what fails.
  const emptyFile = path.join(dir, 'empty.ndjson');
  writeFileSync(emptyFile, '');
  const missingDatabase = new URL(ADMIN_URL);
  missingDatabase.pathname = '/pingboard_no_such_database';
  const postgres = testEngines().includes('postgres');

  const [unreachable, noDirectory, portTaken, missing, serveMissing] = await Promise.all([
    pingboard(['leaderboard'], { DATABASE_URL: 'postgres://postgres@127.0.0.1:1/pingboard' }),
    pingboard(['migrate'], { PINGBOARD_DATA_DIR: path.join(notADirectory, 'data') }),
    pingboard(['serve'], { PINGBOARD_DATA_DIR: path.join(dir, 'port-taken'), PINGBOARD_PORT: String(port) }),
    postgres ? pingboard(['import', emptyFile], { DATABASE_URL: missingDatabase.toString() }) : undefined,
    // serve waits for a database that is not up yet; one that answers "no such database" is a setting to fix.
    postgres ? pingboard(['serve'], { DATABASE_URL: missingDatabase.toString(), PINGBOARD_PORT: '0' }) : undefined,
  ]);
  oneLine(
    unreachable,
    /^pingboard: DATABASE_URL: cannot reach PostgreSQL at 127\.0\.0\.1:1: connect ECONNREFUSED 127\.0\.0\.1:1\n$/,
    'an unreachable database, from a one-shot command',
  );
  oneLine(
    noDirectory,
    new RegExp(
      `^pingboard: PINGBOARD_DATA_DIR: cannot use ${escapeRegExp(path.join(notADirectory, 'data'))} for the embedded database: ENOTDIR: not a directory`,
    ),
    'a data directory that cannot be made',
  );
  oneLine(
    portTaken,
    new RegExp(`^pingboard: PINGBOARD_PORT: 127\\.0\\.0\\.1:${port} is already in use by another process\n$`),
    'a port in use',
  );
  t.equal(existsSync(path.join(dir, 'port-taken', 'pingboard.lock')), false, 'the data directory is released');
  // The database open, then a setting that fails: the database is closed (a pool's connections, kept while
  // idle, would keep the process alive; PGlite's data directory would stay locked).
  const spillFails = /^pingboard: PINGBOARD_SPILL_DIR: cannot make a directory in .*a-file\/spill \(ENOTDIR\)\n$/;
  const badSpill = { PINGBOARD_PORT: '0', PINGBOARD_SPILL_DIR: path.join(notADirectory, 'spill') };
  if (testEngines().includes('pglite')) {
    const dataDir = path.join(dir, 'spill-fails');
    oneLine(
      await pingboard(['serve'], { ...badSpill, PINGBOARD_DATA_DIR: dataDir }),
      spillFails,
      'a spill directory that cannot be made, on PGlite',
    );
    t.equal(existsSync(path.join(dataDir, 'pingboard.lock')), false, 'the data directory is released');
  }
  if (postgres) {
    const database = await openTestDatabase('postgres');
    t.teardown(() => database.destroy());
    oneLine(
      await pingboard(['serve'], { ...badSpill, DATABASE_URL: database.url! }),
      spillFails,
      'a spill directory that cannot be made, on PostgreSQL',
    );
  }
  if (missing && serveMissing) {
    for (const [result, what] of [
      [missing, 'import'],
      [serveMissing, 'serve'],
    ] as const) {
      oneLine(
        result,
        /^pingboard: DATABASE_URL: database "pingboard_no_such_database" does not exist \(PostgreSQL at 127\.0\.0\.1:5432\)\n$/,
        `a database that does not exist (${what})`,
      );
    }
  }
});
