// The `pingboard` command as users run it: real processes, real databases
// (a PGlite data directory, and a throwaway PostgreSQL database).
import { spawn, spawnSync } from 'node:child_process';
import {
  createWriteStream,
  existsSync,
  mkdirSync,
  mkdtempSync,
  readdirSync,
  readFileSync,
  rmSync,
  writeFileSync,
} from 'node:fs';
import { createServer, type AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import path from 'node:path';
import t from 'tap';
import { openTestDatabase, testEngines, type Test } from './helpers/database.ts';
import {
  cleanEnv,
  escapeRegExp,
  MAIN,
  NODE,
  PROCESS_TIMEOUT_MS,
  ROOT,
  runPingboard,
  servePingboard,
  startPingboard,
  waitForExit,
  type Result,
  type Server,
} from './helpers/process.ts';
import { COMMANDS, parseCommandLine, UsageError } from '../src/cli/args.ts';
import { InputError } from '../src/errors.ts';

const ROOM = '!ping:maunium.net';
const TABLE =
  '|Rank|Hostname|Median MS|\n|:---:|:---:|:---:|\n|1|fairydust.space|376|\n|2|neko.dev|444.5|\n|3|slow.example|1500|\n';

const dir = mkdtempSync(path.join(tmpdir(), 'pingboard-cli-'));
t.teardown(() => rmSync(dir, { recursive: true, force: true }));

/** Runs `pingboard ARGS…` to completion. */
function pingboard(args: string[], env: Record<string, string>, timeoutMs = PROCESS_TIMEOUT_MS): Promise<Result> {
  return runPingboard(dir, args, env, timeoutMs);
}

/** `script` (util-linux) runs a command on a pseudo-terminal, as a person at a terminal would: stdout and stderr are the terminal. */
const SCRIPT = ['/usr/bin/script', '/bin/script'].find(existsSync);

/** Runs `pingboard ARGS…` on a terminal; its output, both streams as they appeared, is `stdout`. */
function pingboardOnTerminal(args: string[], env: Record<string, string>): Promise<Result> {
  const command = [NODE, MAIN, ...args].map((a) => `'${a.replaceAll("'", "'\\''")}'`).join(' ');
  const child = spawn(SCRIPT!, ['-qec', command, '/dev/null'], {
    cwd: dir,
    env: cleanEnv(env),
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  return waitForExit(child, 120_000);
}

/** The migrations' names, as they are applied: the files in migrations/. */
const MIGRATIONS = readdirSync(path.join(ROOT, 'migrations'))
  .filter((f) => f.endsWith('.ts'))
  .map((f) => f.slice(0, -3))
  .sort();

function serve(t: Test, env: Record<string, string>): Promise<Server> {
  return servePingboard(t, dir, env);
}

/** NDJSON samples measured a day ago, well inside the default seven-day window. */
function samplesFile(name: string, extraLines: string[] = []): string {
  const dayAgo = Date.now() - 86_400_000;
  const line = (id: string, server: string, delayMs: number, responder = '@echo:maunium.net', offsetMs = 0) =>
    JSON.stringify({
      room_id: ROOM,
      ping_event_id: id,
      pinger: `@user:${server}`,
      responder,
      delay_ms: delayMs,
      ping_ts: dayAgo + offsetMs,
    });
  const file = path.join(dir, name);
  writeFileSync(
    file,
    `${[
      line('$fd1', 'fairydust.space', 376),
      line('$nk1', 'neko.dev', 444, '@echo:maunium.net', 1000),
      line('$nk2', 'neko.dev', 445, '@bot:other.example', 2000),
      line('$sl1', 'slow.example', 1500, '@echo:maunium.net', 3000),
      line('$old', 'old.example', 100, '@echo:maunium.net', -30 * 86_400_000), // outside the window
      ...extraLines,
    ].join('\n')}\n`,
  );
  return file;
}

/** A week before the samples (measured a day ago, December 2026 or later) and long closed. */
const PAST_EMPTY_WEEK = '2026-W02';

/** A port nothing listens on, as the system hands them out. */
async function freePort(): Promise<number> {
  const server = createServer().listen(0, '127.0.0.1');
  await new Promise((resolve) => server.once('listening', resolve));
  const { port } = server.address() as AddressInfo;
  await new Promise((resolve) => server.close(resolve));
  return port;
}

const COUNTS = /^read (\d+), stored (\d+), duplicate (\d+), rejected (\d+)(, unreadable files (\d+))? in \d+\.\d s\n$/;

t.test('configuration and usage errors exit 2 with a message naming the problem', async (t) => {
  const env = { PINGBOARD_DATA_DIR: path.join(dir, 'unused') };
  // None of these opens a database, so they run side by side.
  const [badPort, badUrl, unknown, unknownOption, noFiles, badFormat, badLimit, hexDays, help] = await Promise.all([
    pingboard(['leaderboard'], { ...env, PINGBOARD_PORT: 'abc' }),
    pingboard(['migrate'], { DATABASE_URL: 'mysql://root:hunter2@db/pingboard' }),
    pingboard(['frobnicate'], env),
    pingboard(['leaderboard', '--colour'], env),
    pingboard(['import'], env),
    pingboard(['leaderboard', '--format', 'xml'], env),
    pingboard(['leaderboard', '--limit', '0'], env),
    pingboard(['leaderboard', '--days', '0x10'], env),
    pingboard(['help'], env),
  ]);
  t.equal(badPort.code, 2);
  t.equal(badPort.stderr, 'pingboard: PINGBOARD_PORT: expected an integer from 0 to 65535, got "abc"\n');
  t.equal(badPort.stdout, '');

  t.equal(badUrl.code, 2);
  t.match(badUrl.stderr, /^pingboard: DATABASE_URL: /);
  t.notMatch(badUrl.stderr, 'hunter2', 'no password in the message');

  t.equal(unknown.code, 2);
  t.match(unknown.stderr, /^pingboard: unknown command "frobnicate"\n\nUsage: pingboard /);

  t.equal(unknownOption.code, 2);
  t.match(
    unknownOption.stderr,
    /^pingboard: Unknown option '--colour'\n\nUsage: pingboard \[--config FILE\] leaderboard /,
    'the usage of the command it was given to',
  );

  t.equal(noFiles.code, 2);
  t.match(noFiles.stderr, /import needs at least one FILE[\s\S]*Usage:/);

  t.equal(badFormat.code, 2);
  t.match(badFormat.stderr, /^pingboard: --format: expected md or json, got "xml"\n$/);

  t.equal(badLimit.code, 2);
  t.match(badLimit.stderr, /--limit: expected a decimal integer from 1 to 1000/);
  t.equal(hexDays.code, 2, 'a number that Number() reads but is not written in decimal');
  t.equal(hexDays.stderr, 'pingboard: --days: expected a decimal integer from 1 to 90, got "0x10"\n');

  t.equal(help.code, 0);
  t.match(help.stdout, /^Usage: pingboard \[--config FILE\] COMMAND/);
  t.equal(existsSync(path.join(dir, 'unused')), false, 'no database was created for any of these');
});

t.test('help, --version and per-command help answer without a configuration or a database', async (t) => {
  // A configuration that would be refused: none of these reads it.
  const env = { PINGBOARD_DATA_DIR: path.join(dir, 'unused'), PINGBOARD_PORT: 'abc' };
  const names = Object.keys(COMMANDS).filter((name) => name !== 'help');
  const [version, help, ...perCommand] = await Promise.all([
    pingboard(['--version'], env),
    pingboard(['help', 'leaderboard'], env),
    ...names.map((name) => pingboard([name, '--help'], env)),
  ]);
  const { version: expected } = JSON.parse(readFileSync(path.join(ROOT, 'package.json'), 'utf8')) as {
    version: string;
  };
  t.same(version, { code: 0, signal: null, stdout: `pingboard ${expected}\n`, stderr: '' });
  t.equal(help.code, 0);
  t.match(help.stdout, /^Usage: pingboard \[--config FILE\] leaderboard \[--week W/);
  t.match(help.stdout, /--limit N +at most N rows/);
  t.match(help.stdout, /\n {2}3 {4}leaderboard: the table is empty/, 'the exit codes');
  for (const [i, name] of names.entries()) {
    t.equal(perCommand[i]!.code, 0, `${name} --help`);
    t.match(perCommand[i]!.stdout, new RegExp(`^Usage: pingboard \\[--config FILE\\] ${name}\\b`), `${name} --help`);
  }
  t.equal(existsSync(path.join(dir, 'unused')), false, 'no database was created');
});

/** Values no option may take, by what the option holds: numbers as Number() reads them, text that is not one line, runaway lengths. */
const HOSTILE_NUMBERS = [
  '1e400',
  '-1e400',
  'Infinity',
  'NaN',
  '-1',
  '0x10',
  '1e2',
  '1.5',
  ' 5',
  '+5',
  '5 ',
  '٣',
  '',
  '9'.repeat(400),
  '1_000',
];
const HOSTILE_TEXT = ['', ' ', 'x\ny', '\u202e', '\u001b[31m', '\ufeff', 'x'.repeat(5000)];

/** [arguments, the option the error must name] */
function hostileCommandLines(existingFile: string): [string[], string][] {
  const cases: [string[], string][] = [];
  for (const value of HOSTILE_NUMBERS) {
    cases.push(
      [['leaderboard', '--limit', value], '--limit'],
      [['leaderboard', '--days', value], '--days'],
      [['serve', '--port', value], '--port'],
    );
  }
  for (const value of [...HOSTILE_TEXT, '1001']) cases.push([['leaderboard', '--limit', value], '--limit']);
  for (const value of [
    ...HOSTILE_TEXT,
    '2026-W00',
    '2026-W54',
    '2025-W53',
    '2026-w47',
    ' 2026-W47',
    '2026-W47\n',
    '\u202e2026-W47',
    '0000-W01',
    '1e400-W01',
  ]) {
    cases.push(
      [['leaderboard', '--week', value], '--week'],
      [['refreeze', '--week', value, '--reason', 'r'], '--week'],
    );
  }
  for (const value of [
    ...HOSTILE_TEXT,
    'room',
    '!',
    '#a',
    '#:x.org',
    '@user:x.org',
    '#x:bad|server',
    '#\u202e:x.org',
    `!${'x'.repeat(300)}:x.org`,
  ]) {
    cases.push(
      [['leaderboard', '--room', value], '--room'],
      [['backfill', '--room', value], '--room'],
      [['refreeze', '--all', '--reason', 'r', '--room', value], '--room'],
    );
  }
  for (const value of [
    ...HOSTILE_TEXT,
    '0d',
    '3651d',
    '1y',
    '1e3d',
    '-7d',
    '7 d',
    '2026-02-31',
    '2999-01-01',
    '1900-01-01',
    'yesterday',
    '2026-10-01T12:00',
  ]) {
    cases.push([['backfill', '--since', value], '--since']);
  }
  for (const value of [
    ...HOSTILE_TEXT,
    'two\nlines',
    'esc\u001b]0;title\u0007',
    'looks \u202eharmless',
    'a\u2066b\u2069',
    'x'.repeat(501),
  ]) {
    cases.push([['refreeze', '--all', '--reason', value], '--reason']);
  }
  for (const value of [...HOSTILE_TEXT, 'MD', 'xml', 'json '])
    cases.push([['leaderboard', '--format', value], '--format']);
  for (const value of ['', 'x'.repeat(5000), path.join(dir, 'missing.ndjson'), dir, `${existingFile}\n`]) {
    cases.push([['import', existingFile, value], 'FILE']);
  }
  cases.push([['migrate', '--config', 'x'.repeat(5000)], '--config']);
  return cases;
}

t.test('hostile command lines: one line naming the option, exit 2, nothing opened', async (t) => {
  const dataDir = path.join(dir, 'hostile-data');
  const env = {
    PINGBOARD_DATA_DIR: dataDir,
    PINGBOARD_ROOMS: ROOM,
    PINGBOARD_HOMESERVER_URL: 'http://127.0.0.1:9',
    PINGBOARD_BOT_USER_ID: '@bot:x.org',
    PINGBOARD_BOT_ACCESS_TOKEN: 't',
  };
  const cases = hostileCommandLines(samplesFile('hostile.ndjson'));
  // Every case through the parser the command runs first; the message is what the command prints after "pingboard: ".
  for (const [args, option] of cases) {
    const label = JSON.stringify(args).slice(0, 120);
    try {
      parseCommandLine(args);
      t.fail(`${label}: accepted`);
    } catch (err) {
      t.type(err, InputError, label);
      t.equal((err as InputError).parameter, option, `${label}: names ${option}`);
      t.match((err as Error).message, new RegExp(`^${escapeRegExp(option)}: [^\n]+$`), `${label}: one line`);
      t.ok((err as Error).message.length < 300, `${label}: the value is not echoed whole`);
    }
  }
  // And the real command, a few at a time (the machine may be busy), for one hostile value of each option.
  const perOption = [...new Map(cases.map(([args, option]) => [option, args] as const)).entries()];
  const longest = cases
    .filter(([args]) => args.some((a) => a.length > 1000))
    .slice(0, 2)
    .map(([args, option]) => [option, args] as const);
  const spawned = [...perOption, ...longest];
  const results: Result[] = [];
  for (let i = 0; i < spawned.length; i += 3) {
    results.push(...(await Promise.all(spawned.slice(i, i + 3).map(([, args]) => pingboard(args, env)))));
  }
  for (const [i, [option, args]] of spawned.entries()) {
    const { code, stdout, stderr } = results[i]!;
    const label = JSON.stringify(args).slice(0, 120);
    t.equal(code, 2, label);
    t.match(
      stderr,
      new RegExp(`^pingboard: ${escapeRegExp(option)}: [^\n]+\n$`),
      `${label}: one line naming ${option}, no stack`,
    );
    t.ok(stderr.length < 400, `${label}: the value is not echoed whole`);
    t.equal(stdout, '', label);
  }
  t.equal(existsSync(dataDir), false, 'no database was opened for any of them');
});

t.test('option values no command line can carry are refused too', async (t) => {
  // exec() takes C strings: a NUL byte never arrives in argv, but the parser does not rely on that.
  for (const args of [
    ['import', 'a\0b'],
    ['leaderboard', '--room', '!a\0:x.org'],
    ['migrate', '--config', 'c\0.json'],
  ]) {
    t.throws(() => parseCommandLine(args), InputError, JSON.stringify(args));
    t.throws(() => parseCommandLine(args), { message: /contains a NUL byte/ });
  }
  const emptyDir = path.join(dir, 'a-directory');
  mkdirSync(emptyDir, { recursive: true });
  t.throws(() => parseCommandLine(['import', emptyDir]), {
    message: `FILE: ${JSON.stringify(emptyDir)} is not a file`,
  });
  t.throws(() => parseCommandLine(['leaderboard', 'extra']), UsageError);
  t.throws(() => parseCommandLine(['help', 'frobnicate']), UsageError);
});

t.test(
  'the embedded database (PGlite data directory)',
  { skip: !testEngines().includes('pglite') && 'PINGBOARD_TEST_ENGINES excludes pglite' },
  async (t) => {
    const dataDir = path.join(dir, 'pglite-data');
    const env = { PINGBOARD_DATA_DIR: dataDir };

    if (SCRIPT) {
      // On a terminal, each step that can take seconds says so, in human lines.
      const onTerminal = await pingboardOnTerminal(['migrate'], env);
      t.equal(onTerminal.code, 0, 'migrate on a terminal exits 0');
      const lines = onTerminal.stdout.replaceAll('\r', '').split('\n').filter(Boolean);
      const steps = lines.map((line) => /^\d\d:\d\d:\d\d\.\d{3}Z INFO {2}(.*)$/.exec(line)?.[1]);
      t.same(
        steps,
        [
          `opening the embedded database in ${dataDir}`,
          ...MIGRATIONS.map((m) => `applying migration ${m}`),
          `database ready engine=pglite location=${dataDir}`,
        ],
        'a line before opening the database and before each migration, none of them JSON',
      );
    }
    const migrate = await pingboard(['migrate'], env);
    t.equal(migrate.code, 0, 'migrate exits 0');
    t.equal(migrate.stdout, '');
    t.equal(migrate.stderr, '', 'not on a terminal: warnings only');
    t.ok(existsSync(path.join(dataDir, 'PG_VERSION')), 'the data directory was created');
    t.equal(existsSync(path.join(dataDir, 'pingboard.lock')), false, 'and the lock released');

    const noSamples = await pingboard(['leaderboard'], env);
    t.equal(noSamples.code, 1, 'no room and no samples: a failure, not a crash');
    t.equal(noSamples.stderr, 'pingboard: no room is configured and no samples are stored yet\n');
    const emptyRoom = await pingboard(['leaderboard', '--room', ROOM], { ...env, PINGBOARD_ROOMS: ROOM });
    t.equal(emptyRoom.code, 3, 'a configured room with no data: the empty table has its own exit code');
    t.match(
      emptyRoom.stderr,
      new RegExp(
        `^pingboard: the table is empty: no server is ranked in ${escapeRegExp(ROOM)} for \\S+ to \\S+ \\([^\\n]+\\)\\n$`,
      ),
    );
    t.equal(emptyRoom.stdout, '', 'no table to paste into a newsletter');
    const badWeekEmpty = await pingboard(['leaderboard', '--week', '2026-W99'], env);
    t.equal(badWeekEmpty.code, 2, 'a week that does not exist is a bad argument even before any sample is stored');
    t.match(badWeekEmpty.stderr, /^pingboard: --week: expected an ISO week such as 2026-W47, got "2026-W99"\n$/);

    const good = samplesFile('good.ndjson');
    const imported = await pingboard(['import', good], env);
    t.equal(imported.code, 0, 'import exits 0 when nothing was rejected');
    t.match(imported.stdout, COUNTS);
    t.match(imported.stdout, /^read 5, stored 5, duplicate 0, rejected 0 in /);
    t.equal(imported.stderr, '', 'nothing on stderr (no progress when it is not a terminal)');

    const mixed = samplesFile('mixed.ndjson', [
      '{"broken json',
      JSON.stringify({
        room_id: ROOM,
        ping_event_id: '$x',
        ping_server: 'evil|server',
        responder: 'a.example',
        delay_ms: 1,
        ping_ts: Date.now(),
      }),
    ]);
    const again = await pingboard(['import', mixed, good], env);
    t.equal(again.code, 1, 'import exits 1 when anything was rejected');
    t.match(again.stdout, /^read 12, stored 0, duplicate 10, rejected 2 in /);
    t.equal(again.stderr.split('\n').filter(Boolean).length, 2, 'one stderr line per rejection');
    t.match(again.stderr, new RegExp(`^${escapeRegExp(mixed)}:6: not valid JSON`, 'm'));
    t.match(
      again.stderr,
      new RegExp(`^${escapeRegExp(mixed)}:7: ping_server: not a valid server name: "evil\\|server"`, 'm'),
    );

    const table = await pingboard(['leaderboard'], env);
    t.equal(table.code, 0);
    t.equal(table.stdout, TABLE, 'the newsletter table, byte for byte');
    t.equal(table.stderr, '');

    const json = await pingboard(['leaderboard', '--format', 'json'], env);
    t.equal(json.code, 0);
    const board = JSON.parse(json.stdout) as {
      room: string;
      servers_ranked: number;
      window: { kind: string };
      rows: { rank: number; server: string; median_ms: number; pings: number; samples: number }[];
    };
    t.equal(board.room, ROOM);
    t.equal(board.servers_ranked, 3);
    t.equal(board.window.kind, 'rolling');
    t.same(
      board.rows.map((r) => [r.rank, r.server, r.median_ms, r.pings, r.samples]),
      [
        [1, 'fairydust.space', 376, 1, 1],
        [2, 'neko.dev', 444.5, 2, 2],
        [3, 'slow.example', 1500, 1, 1],
      ],
    );

    const emptyWeek = await pingboard(['leaderboard', '--week', PAST_EMPTY_WEEK, '--format', 'json'], env);
    t.equal(emptyWeek.code, 3, 'a past week with no data');
    t.match(
      emptyWeek.stderr,
      new RegExp(
        `^pingboard: the table is empty: no server is ranked in ${escapeRegExp(ROOM)} for week ${PAST_EMPTY_WEEK} \\(`,
      ),
    );
    t.equal(emptyWeek.stdout, '');

    const badWeek = await pingboard(['leaderboard', '--week', '2026-W99'], env);
    t.equal(badWeek.code, 2, 'a week that does not exist exits 2');
    t.match(badWeek.stderr, /^pingboard: --week: /);

    const configFile = path.join(dir, 'pingboard.json');
    writeFileSync(
      configFile,
      JSON.stringify({ data_dir: dataDir, rooms: [{ id: ROOM, disclaimer: 'From the file.' }] }),
    );
    const viaConfig = await pingboard(['--config', configFile, 'leaderboard', '--format', 'json'], {});
    t.equal(viaConfig.code, 0, '--config FILE');
    t.equal((JSON.parse(viaConfig.stdout) as { disclaimer: string }).disclaimer, 'From the file.');

    // While `serve` holds the data directory, a second process is refused.
    // The configured port is taken: only --port lets it start.
    const taken = createServer().listen(0, '127.0.0.1');
    t.teardown(() => taken.close());
    await new Promise((resolve) => taken.once('listening', resolve));
    const port = await freePort();
    const server = await servePingboard(
      t,
      dir,
      { ...env, PINGBOARD_PORT: String((taken.address() as AddressInfo).port) },
      [NODE, MAIN, 'serve', '--port', String(port)],
    );
    t.equal(server.url, `http://127.0.0.1:${port}`, 'serve --port N listens on N, whatever PINGBOARD_PORT says');
    // The commands that need only the database, and backfill, run in the service
    // (test/shared-data-dir.test.ts); probe --once, which would copy the service's probes, is refused with what to do.
    const locked = await pingboard(['probe', '--once'], {
      ...env,
      PINGBOARD_ROOMS: ROOM,
      PINGBOARD_PROBES:
        '[{"id":"m1","homeserver_url":"http://127.0.0.1:9","user_id":"@probe:example.org","password":"p"}]',
    });
    t.equal(locked.code, 2, 'a second process on the same data directory exits 2');
    t.match(
      locked.stderr,
      new RegExp(
        `^pingboard: the embedded database in ${escapeRegExp(dataDir)} is in use by process ${server.child.pid}`,
      ),
    );
    t.equal(locked.stdout, '');
    const through = await pingboard(['leaderboard'], env);
    t.equal(through.code, 0, 'leaderboard runs through the service');
    t.equal(through.stdout, TABLE, 'printing what it prints in its own process');

    const health = await fetch(`${server.url}/healthz`);
    t.equal(health.status, 200);
    t.match(await health.json(), { status: 'ok', database: { engine: 'pglite', ok: true } });
    const markdown = await fetch(`${server.url}/leaderboard.md`);
    t.equal(markdown.status, 200);
    t.equal(markdown.headers.get('content-type'), 'text/markdown; charset=utf-8');
    t.equal(await markdown.text(), table.stdout, 'GET /leaderboard.md serves what `pingboard leaderboard` printed');
    const limited = await fetch(`${server.url}/leaderboard.md?limit=2`);
    t.equal(await limited.text(), `${TABLE.split('\n').slice(0, 4).join('\n')}\n`);
    for (const format of ['md', 'json']) {
      const empty = await fetch(`${server.url}/leaderboard.${format}?week=${PAST_EMPTY_WEEK}`);
      t.equal(empty.status, 404, `/leaderboard.${format} of an empty table: 404`);
      t.match(
        await empty.json(),
        { error: 'Not Found', message: emptyWeek.stderr.slice('pingboard: '.length, -1) },
        'saying why, as the CLI does',
      );
    }
    const page = await (await fetch(`${server.url}/?week=${PAST_EMPTY_WEEK}`)).text();
    t.match(page, /closed, no ranked server/, 'a past empty week on the page is closed');
    t.notMatch(page, /not closed yet/);

    const stopped = await server.stop();
    t.equal(stopped.code, 0, 'serve exits 0 on SIGTERM');
    t.equal(stopped.signal, null);
    t.match(stopped.stdout, /"shutting down"/);
    t.match(stopped.stdout, /"msg":"stopped"/);
    const records = stopped.stdout
      .split('\n')
      .filter(Boolean)
      .map((line) => JSON.parse(line) as { msg: string });
    t.same(
      records.slice(0, 2).map((r) => r.msg),
      [`opening the embedded database in ${dataDir}`, 'database ready'],
      'not on a terminal, the log is JSON, progress included',
    );
    t.equal(existsSync(path.join(dataDir, 'pingboard.lock')), false, 'the lock is released');
    t.equal(existsSync(path.join(dataDir, 'pingboard.sock')), false, 'and the command socket removed');

    const after = await pingboard(['leaderboard'], env);
    t.equal(after.code, 0, 'the data directory is usable again once serve has stopped');
    t.equal(after.stdout, TABLE);

    // A lock left behind by a process that is gone does not lock anyone out.
    writeFileSync(path.join(dataDir, 'pingboard.lock'), '2147483646');
    const stale = await pingboard(['leaderboard'], env);
    t.equal(stale.code, 0, 'a stale lock is taken over');
    t.equal(stale.stdout, TABLE);
  },
);

t.test(
  'PostgreSQL: the CLI and a running server share the data',
  { skip: !testEngines().includes('postgres') && 'PINGBOARD_TEST_ENGINES excludes postgres' },
  async (t) => {
    const database = await openTestDatabase('postgres');
    t.teardown(() => database.destroy());
    const env = { DATABASE_URL: database.url!, PINGBOARD_DATA_DIR: path.join(dir, 'must-not-be-used') };

    t.equal((await pingboard(['migrate'], env)).code, 0, 'migrate exits 0 on an already migrated database');
    const server = await serve(t, env);
    const good = samplesFile('pg.ndjson');
    const imported = await pingboard(['import', good], env);
    t.equal(imported.code, 0, 'import while serve runs');
    t.match(imported.stdout, /^read 5, stored 5, duplicate 0, rejected 0 in /);

    const table = await pingboard(['leaderboard'], env);
    t.equal(table.code, 0);
    t.equal(table.stdout, TABLE);
    const markdown = await fetch(`${server.url}/leaderboard.md`);
    t.equal(markdown.headers.get('content-type'), 'text/markdown; charset=utf-8');
    t.equal(await markdown.text(), table.stdout, 'the server and the CLI print the same table from the same data');

    // PostgreSQL serves any number of processes: the option variants run side by side.
    const [limit, days, room, unknownRoom, bothWindows, missing] = await Promise.all([
      pingboard(['leaderboard', '--limit', '2'], env),
      pingboard(['leaderboard', '--days', '60'], env),
      pingboard(['leaderboard', '--room', ROOM], env),
      pingboard(['leaderboard', '--room', '!nowhere:example.org'], env),
      pingboard(['leaderboard', '--week', '2026-W47', '--days', '3'], env),
      pingboard(['import', path.join(dir, 'nope.ndjson'), good], env),
    ]);
    t.equal(limit.stdout, `${TABLE.split('\n').slice(0, 4).join('\n')}\n`, '--limit');
    t.match(days.stdout, /\|1\|old\.example\|100\|/, '--days widens the window');
    t.equal(room.stdout, TABLE, '--room');
    t.equal(unknownRoom.code, 1, 'an unknown room exits 1');
    t.match(unknownRoom.stderr, /unknown room !nowhere:example\.org/);
    t.equal(bothWindows.code, 2);
    t.equal(bothWindows.stderr, 'pingboard: --week: give either --week or --days, not both\n');
    t.equal(missing.code, 2, 'a file that does not exist is a bad argument');
    t.equal(missing.stderr, `pingboard: FILE: ${JSON.stringify(path.join(dir, 'nope.ndjson'))} does not exist\n`);
    t.equal(
      missing.stdout,
      '',
      'refused before anything is imported: the command can be run again as it is once fixed',
    );

    const cliJson = JSON.parse((await pingboard(['leaderboard', '--format', 'json'], env)).stdout) as Record<
      string,
      unknown
    >;
    const httpJson = (await (await fetch(`${server.url}/leaderboard.json`)).json()) as Record<string, unknown>;
    const withoutTimes = (board: Record<string, unknown>) => ({ ...board, generated_at: undefined, window: undefined });
    t.same(withoutTimes(cliJson), withoutTimes(httpJson), '/leaderboard.json and --format json agree (times aside)');

    const health = await fetch(`${server.url}/healthz`);
    t.equal(health.status, 200);
    t.match(await health.json(), { status: 'ok', database: { engine: 'postgres', ok: true } });
    t.notMatch(server.url, /must-not-be-used/);

    const stopped = await server.stop();
    t.equal(stopped.code, 0, 'serve exits 0 on SIGTERM');
    t.equal(existsSync(path.join(dir, 'must-not-be-used')), false, 'no PGlite directory when DATABASE_URL is set');
  },
);

t.test(
  'import stops cleanly on SIGTERM: what it read is stored, it says where, and a second run completes it',
  async (t) => {
    for (const engine of testEngines()) {
      const database = engine === 'postgres' ? await openTestDatabase('postgres') : undefined;
      t.teardown(() => database?.destroy());
      const env: Record<string, string> = database
        ? { DATABASE_URL: database.url! }
        : { PINGBOARD_DATA_DIR: path.join(dir, 'interrupted-data') };
      const total = 20_000;
      const now = Date.now();
      const lines = Array.from(
        { length: total },
        (_, i) =>
          `${JSON.stringify({
            room_id: ROOM,
            ping_event_id: `$${engine}${i}`,
            pinger: `@user:s${i % 50}.example`,
            responder: '@echo:maunium.net',
            delay_ms: 100 + (i % 500),
            ping_ts: now - 3_600_000 + i,
          })}\n`,
      );
      const whole = path.join(dir, `interrupted-${engine}.ndjson`);
      writeFileSync(whole, lines.join(''));
      // A named pipe: the test decides how much the import can read before the signal.
      const fifo = path.join(dir, `interrupted-${engine}.fifo`);
      t.equal(spawnSync('mkfifo', [fifo]).status, 0, 'mkfifo');
      const { child, exited } = startPingboard(dir, ['import', fifo], env);
      const writer = createWriteStream(fifo);
      writer.on('error', () => {}); // EPIPE once the import has closed its end
      // Opening the pipe waits for the import to open it; the write returns once it has read all but a pipe buffer of it.
      await new Promise((resolve) => writer.write(lines.slice(0, total / 2).join(''), resolve));
      const reported = new Promise<void>((resolve) => {
        let stderr = '';
        child.stderr!.on('data', (chunk: Buffer) => {
          stderr += chunk.toString();
          if (stderr.includes('interrupted after')) resolve();
        });
      });
      child.kill('SIGTERM');
      await reported;
      // Node's exit waits for a read still blocked on the pipe: a program writing into it goes on or ends; this one ends.
      writer.destroy();
      const stopped = await exited;
      t.equal(stopped.code, 130, `${engine}: interrupted, exit 130`);
      const counts = /^read (\d+), stored (\d+), duplicate 0, rejected 0 in \d+\.\d s\n$/.exec(stopped.stdout);
      t.ok(counts, `${engine}: the counts so far: ${stopped.stdout}`);
      const [read, stored] = [Number(counts?.[1]), Number(counts?.[2])];
      t.ok(read > 0 && read <= total / 2, `${engine}: stopped part way (${read} of ${total})`);
      t.equal(stored, read, `${engine}: every record read was stored, the batch in hand included`);
      t.equal(
        stopped.stderr,
        `interrupted after ${fifo}:${read}: every record up to there is read and stored; run the same import again to continue (what is stored is skipped as duplicate)\n`,
      );

      const rest = await pingboard(['import', whole], env);
      t.equal(rest.code, 0, `${engine}: the same import again completes`);
      t.match(
        rest.stdout,
        new RegExp(`^read ${total}, stored ${total - read}, duplicate ${read}, rejected 0 in `),
        `${engine}: nothing lost, nothing twice`,
      );
    }
  },
);
