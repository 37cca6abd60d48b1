// The quick start in its order: `serve` on the embedded database, then the
// one-shot commands in another process, which run through the service (the
// data directory's socket) with the output and exit codes they have in a
// process of their own. Real processes, a real PGlite data directory; the
// backfill reads the project's test homeserver over real HTTP.
import { spawnSync, type ChildProcess } from 'node:child_process';
import { createWriteStream, existsSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { connect } from 'node:net';
import { tmpdir } from 'node:os';
import path from 'node:path';
import t from 'tap';
import { buildPong } from '../src/matrix/pong.ts';
import type { Test } from './helpers/database.ts';
import { escapeRegExp, ROOT, runPingboard, servePingboard, startPingboard, type Result } from './helpers/process.ts';
import { until } from './helpers/until.ts';
import { startTestHomeserver } from './homeserver/index.ts';

const ROOM = '!ping:maunium.net';
const TABLE =
  '|Rank|Hostname|Median MS|\n|:---:|:---:|:---:|\n|1|fairydust.space|376|\n|2|neko.dev|444.5|\n|3|slow.example|1500|\n';

const dir = mkdtempSync(path.join(tmpdir(), 'pingboard-shared-'));
t.teardown(() => rmSync(dir, { recursive: true, force: true }));
const dataDir = path.join(dir, 'data');
const env = { PINGBOARD_DATA_DIR: dataDir, PINGBOARD_ROOMS: ROOM };

function pingboard(args: string[]): Promise<Result> {
  return runPingboard(dir, args, env);
}

function sample(id: string, server: string, delayMs: number, pingTs: number, responder = '@echo:maunium.net') {
  return JSON.stringify({
    room_id: ROOM,
    ping_event_id: id,
    pinger: `@user:${server}`,
    responder,
    delay_ms: delayMs,
    ping_ts: pingTs,
  });
}

/** `lines` as a file in the test's directory (where the commands run), by its relative name. */
function file(name: string, lines: readonly string[]): string {
  writeFileSync(path.join(dir, name), `${lines.join('\n')}\n`);
  return name;
}

const dayAgo = Date.now() - 86_400_000;
const GOOD = [
  sample('$fd1', 'fairydust.space', 376, dayAgo),
  sample('$nk1', 'neko.dev', 444, dayAgo + 1000),
  sample('$nk2', 'neko.dev', 445, dayAgo + 2000, '@bot:other.example'),
  sample('$sl1', 'slow.example', 1500, dayAgo + 3000),
];

/** `total` samples in the last hour, one line each: enough that an import is stopped part way. */
function manySamples(prefix: string, total: number): string[] {
  const now = Date.now();
  return Array.from({ length: total }, (_, i) =>
    sample(`$${prefix}${i}`, `s${i % 50}.example`, 100 + (i % 500), now - 3_600_000 + i),
  );
}

/** Resolves once `stream` has carried `text`. */
function seen(stream: NodeJS.ReadableStream, text: string): Promise<void> {
  return new Promise((resolve) => {
    let buffered = '';
    stream.on('data', (chunk: Buffer | string) => {
      buffered += chunk.toString();
      if (buffered.includes(text)) resolve();
    });
  });
}

/**
 * Starts `import FIFO` and feeds it the first half of `lines`: the import is
 * then running, with what it has read stored or being stored, and waiting for more.
 */
async function importPartWay(
  t: Test,
  name: string,
  lines: readonly string[],
): Promise<{ child: ChildProcess; exited: Promise<Result>; fifo: string; close(): void }> {
  const fifo = `${name}.fifo`;
  t.equal(spawnSync('mkfifo', [path.join(dir, fifo)]).status, 0, 'mkfifo');
  const { child, exited } = startPingboard(dir, ['import', fifo], env);
  const writer = createWriteStream(path.join(dir, fifo));
  writer.on('error', () => {}); // EPIPE once the import has closed its end
  // Opening the pipe waits for the import to open it; the write returns once it has read all but a pipe buffer of it.
  await new Promise((resolve) => writer.write(`${lines.slice(0, lines.length / 2).join('\n')}\n`, resolve));
  return { child, exited, fifo, close: () => writer.destroy() };
}

const COUNTS = /^read (\d+), stored (\d+), duplicate (\d+), rejected 0 in \d+\.\d s\n$/;

t.test('with serve running on ./data, the one-shot commands run through it', async (t) => {
  // The service tells on standard error if anything asks for matrix-js-sdk: with no bot, nothing should.
  const server = await servePingboard(t, dir, {
    ...env,
    NODE_OPTIONS: `--import=${path.join(ROOT, 'test', 'fixtures', 'record-sdk-loads.ts')}`,
  });
  t.ok(existsSync(path.join(dataDir, 'pingboard.sock')), 'serve listens for commands in its data directory');

  const good = file('good.ndjson', GOOD);
  const imported = await pingboard(['import', good]);
  t.equal(imported.code, 0, 'import while serve runs, by a name relative to the caller');
  t.match(imported.stdout, /^read 4, stored 4, duplicate 0, rejected 0 in \d+\.\d s\n$/);
  t.equal(imported.stderr, '', 'nothing on stderr (no progress when it is not a terminal)');

  const table = await pingboard(['leaderboard']);
  t.equal(table.code, 0);
  t.equal(table.stdout, TABLE, 'the newsletter table, byte for byte');
  const page = await (await fetch(`${server.url}/leaderboard.md`)).text();
  t.equal(page, TABLE, 'the service shows the import at once, not when its cached table expires');

  const json = await pingboard(['leaderboard', '--format', 'json', '--limit', '2']);
  t.equal(json.code, 0);
  t.same(
    (JSON.parse(json.stdout) as { rows: { server: string }[] }).rows.map((r) => r.server),
    ['fairydust.space', 'neko.dev'],
    '--format json --limit 2',
  );

  const mixed = file('mixed.ndjson', [...GOOD, '{"broken json']);
  const rejected = await pingboard(['import', mixed]);
  t.equal(rejected.code, 1, 'a rejected record exits 1');
  t.match(rejected.stdout, /^read 5, stored 0, duplicate 4, rejected 1 in /);
  t.match(
    rejected.stderr,
    new RegExp(`^${escapeRegExp(mixed)}:5: not valid JSON`),
    'naming the file as the caller gave it',
  );

  const empty = await pingboard(['leaderboard', '--week', '2026-W02']);
  t.equal(empty.code, 3, 'an empty table exits 3');
  t.match(empty.stderr, /^pingboard: the table is empty: no server is ranked in /);
  t.equal(empty.stdout, '');

  const unknownRoom = await pingboard(['leaderboard', '--room', '!nowhere:example.org']);
  t.equal(unknownRoom.code, 1, 'an unknown room exits 1');
  t.equal(unknownRoom.stderr, 'pingboard: unknown room !nowhere:example.org\n');

  const refrozen = await pingboard(['refreeze', '--all', '--reason', 'rules changed']);
  t.equal(refrozen.code, 0, 'refreeze');
  t.equal(refrozen.stdout, `${ROOM}: no frozen weeks\n`);

  const migrated = await pingboard(['migrate']);
  t.equal(migrated.code, 0, 'migrate: the service applied every migration when it started');

  const missing = await pingboard(['import', 'nope.ndjson']);
  t.equal(missing.code, 2, 'a file that does not exist is refused before anything is imported');
  t.equal(missing.stderr, 'pingboard: FILE: "nope.ndjson" does not exist\n');

  // Whoever connects gets an answer, not a hang: a line that is no request is refused.
  const stranger = connect(path.join(dataDir, 'pingboard.sock'));
  stranger.end('hello\n');
  let answer = '';
  for await (const chunk of stranger) answer += String(chunk);
  t.equal(answer, '{"stderr":"pingboard: not a command request\\n"}\n{"exit":2}\n');

  // The service's settings are the run's: a bot in the caller's environment does not lend serve one.
  const noBot = await runPingboard(dir, ['backfill', '--room', '#ping:slow.example'], {
    ...env,
    PINGBOARD_HOMESERVER_URL: 'http://127.0.0.1:9',
    PINGBOARD_BOT_USER_ID: '@pingboard:bot.example',
    PINGBOARD_BOT_ACCESS_TOKEN: 'secret-token',
  });
  t.equal(noBot.code, 2, 'backfill through a serve with no bot exits 2, as on its own');
  t.match(noBot.stderr, /^pingboard: PINGBOARD_HOMESERVER_URL: backfill reads the rooms through the bot's account/);
  t.notMatch(noBot.stderr, 'secret-token');

  const stopped = await server.stop();
  t.equal(stopped.code, 0);
  t.match(stopped.stderr, /^recording matrix-js-sdk imports\n/, 'the hook that tells of SDK imports was loaded');
  t.notMatch(stopped.stderr, /loads/, 'refusing the backfill loaded no matrix-js-sdk (20 MB) into the service');
  t.equal(existsSync(path.join(dataDir, 'pingboard.sock')), false, 'the socket is removed when serve stops');
});

t.test('Ctrl-C stops an import running through the service as it stops one in its own process', async (t) => {
  const server = await servePingboard(t, dir, env);
  const lines = manySamples('ctrlc', 20_000);
  const whole = file('ctrlc.ndjson', lines);
  const running = await importPartWay(t, 'ctrlc', lines);
  const reported = seen(running.child.stderr!, 'interrupted after');
  running.child.kill('SIGINT');
  await reported;
  running.close();
  const stopped = await running.exited;
  t.equal(stopped.code, 130, 'exit 130');
  const counts = COUNTS.exec(stopped.stdout);
  t.ok(counts, `the counts so far: ${stopped.stdout}`);
  const [read, stored] = [Number(counts?.[1]), Number(counts?.[2])];
  t.ok(read > 0 && read <= lines.length / 2, `stopped part way (${read} of ${lines.length})`);
  t.equal(stored, read, 'every record read was stored');
  t.equal(
    stopped.stderr,
    `interrupted after ${running.fifo}:${read}: every record up to there is read and stored; run the same import again to continue (what is stored is skipped as duplicate)\n`,
  );

  const rest = await pingboard(['import', whole]);
  t.equal(rest.code, 0, 'the same import again completes');
  t.match(
    rest.stdout,
    new RegExp(`^read ${lines.length}, stored ${lines.length - read}, duplicate ${read}, rejected 0 `),
  );
  t.equal((await server.stop()).code, 0);
});

t.test('serve stopping (SIGTERM) during an import: the import stops cleanly and says where', async (t) => {
  const server = await servePingboard(t, dir, env);
  const lines = manySamples('sigterm', 20_000);
  const whole = file('sigterm.ndjson', lines);
  const running = await importPartWay(t, 'sigterm', lines);
  const reported = seen(running.child.stderr!, 'interrupted after');
  const serverStopped = server.stop();
  await reported;
  running.close();
  const stopped = await running.exited;
  t.equal(stopped.code, 130, 'the import exits 130, as on its own Ctrl-C');
  const counts = COUNTS.exec(stopped.stdout);
  t.ok(counts, `the counts so far: ${stopped.stdout}`);
  const read = Number(counts?.[1]);
  t.equal(Number(counts?.[2]), read, 'every record read was stored');
  t.equal((await serverStopped).code, 0, 'serve exits 0 once the import has stopped');

  // No service now: the command opens the database itself, and completes the import.
  const rest = await pingboard(['import', whole]);
  t.equal(rest.code, 0);
  t.match(
    rest.stdout,
    new RegExp(`^read ${lines.length}, stored ${lines.length - read}, duplicate ${read}, rejected 0 `),
  );
});

t.test('serve killed during an import: a clear error, nothing stored lost, the re-run completes it', async (t) => {
  const server = await servePingboard(t, dir, env);
  const lines = manySamples('killed', 20_000);
  const whole = file('killed.ndjson', lines);
  const started = seen(server.child.stdout!, 'running import for the command line');
  const running = await importPartWay(t, 'killed', lines);
  await started;
  await server.kill('SIGKILL');
  running.close();
  const failed = await running.exited;
  t.equal(failed.code, 1, 'the import exits 1');
  t.match(
    failed.stderr,
    new RegExp(
      `pingboard: the service \\(process ${server.child.pid}\\) stopped before the command finished; what it stored is kept: run the same command again`,
    ),
  );
  t.ok(existsSync(path.join(dataDir, 'pingboard.sock')), 'the killed service left its socket behind');

  // Its lock and socket are nobody's: the command runs in its own process.
  const rest = await pingboard(['import', whole]);
  t.equal(rest.code, 0, `the same import again completes: ${rest.stderr}`);
  const counts = COUNTS.exec(rest.stdout);
  t.ok(counts, rest.stdout);
  t.equal(Number(counts?.[1]), lines.length, 'every record read');
  t.equal(Number(counts?.[2]) + Number(counts?.[3]), lines.length, 'each stored once: now, or before the kill');
  const again = await pingboard(['import', whole]);
  t.match(
    again.stdout,
    new RegExp(`^read ${lines.length}, stored 0, duplicate ${lines.length}, rejected 0 `),
    'idempotent',
  );

  // A new service takes the socket over, and the command line uses it.
  const next = await servePingboard(t, dir, env);
  const table = await pingboard(['leaderboard', '--days', '1', '--limit', '1']);
  t.equal(table.code, 0, 'leaderboard through the new service');
  t.match(table.stdout, /^\|Rank\|Hostname\|Median MS\|\n\|:---:\|:---:\|:---:\|\n\|1\|/);
  t.notMatch(table.stderr, new RegExp(escapeRegExp('in use')));
  t.equal((await next.stop()).code, 0);
});

const BOT = '@pingboard:bot.example';
const BOT_PASSWORD = 'bot-password';
const ALIAS = '#ping:slow.example';
/** Each pinger's server and the delay its pongs report: the table the backfill makes. */
const PINGERS = [
  ['@alice:slow.example', 300],
  ['@bob:medium.example', 200],
  ['@carol:fast.example', 100],
] as const;
const BACKFILLED_TABLE =
  '|Rank|Hostname|Median MS|\n|:---:|:---:|:---:|\n|1|fast.example|100|\n|2|medium.example|200|\n|3|slow.example|300|\n';
const SUMMARY =
  /^scanned (\d+) events in 1 rooms?, pongs (\d+), stored (\d+), duplicate (\d+), malformed 0, reached [\d-]+ [\d:]+ UTC in \d+\.\d s\n$/;

t.test(
  'backfill runs through serve with its bot: Ctrl-C or serve stopping stops it, the next run completes it, a re-run adds nothing',
  async (t) => {
    const hs = await startTestHomeserver({ servers: { 'bot.example': { delayMs: 0 } } });
    t.teardown(() => hs.stop());
    hs.registerUser(BOT, { password: BOT_PASSWORD });
    for (const [user] of PINGERS) hs.registerUser(user);
    hs.registerUser('@echo:maunium.net');
    const room = hs.createRoom(PINGERS[0][0], { preset: 'public_chat', room_alias_name: 'ping' });
    // Several pages of history (up to 1,000 events a page) over the last two days: a ping and its pong each.
    const pings = 3000;
    const startMs = Date.now() - 2 * 86_400_000;
    hs.addHistory(
      room,
      Array.from({ length: pings }, (_, c) => {
        const [pinger, delayMs] = PINGERS[c % PINGERS.length]!;
        const ts = startMs + c * 50_000;
        const pong = buildPong({ roomId: room, pingEventId: `$ping-${c}`, pinger, text: '', delayMs });
        return [
          { sender: pinger, content: '!ping', ts },
          { sender: '@echo:maunium.net', content: pong as unknown as Record<string, unknown>, ts: ts + delayMs },
        ];
      }).flat(),
    );
    const withBot = {
      ...env,
      PINGBOARD_HOMESERVER_URL: hs.url,
      PINGBOARD_BOT_USER_ID: BOT,
      PINGBOARD_BOT_PASSWORD: BOT_PASSWORD,
    };
    const server = await servePingboard(t, dir, withBot);
    // The caller needs no bot of its own: the service's settings are the run's.
    const args = ['backfill', '--room', ALIAS, '--since', '7d'];
    const messages = () => hs.countRequests({ path: `/rooms/${encodeURIComponent(room)}/messages` });

    // Ctrl-C once a page is read and the next is on its way (slowed, so the run is still reading).
    hs.inject({ kind: 'delay', ms: 200 }, { path: '/messages', times: 1000 });
    const running = startPingboard(dir, args, env);
    await until('the backfill reading its second page', () => messages() >= 2, 120_000);
    running.child.kill('SIGINT');
    const interrupted = await running.exited;
    hs.clearFaults();
    t.equal(interrupted.code, 130, `exit 130: ${interrupted.stderr}`);
    t.equal(interrupted.stderr, 'interrupted: the next run continues where this one stopped\n');
    const first = SUMMARY.exec(interrupted.stdout);
    t.ok(first, `the counts so far: ${interrupted.stdout}`);
    const storedFirst = Number(first?.[3]);
    t.ok(storedFirst < pings, `stopped part way (${storedFirst} of ${pings} pongs stored)`);

    // The running service knows the room by its alias, and shows what was stored, at once.
    const boardPath = `/leaderboard.md?room=${encodeURIComponent(ALIAS)}&days=7`;
    const partial = await (await fetch(`${server.url}${boardPath}`)).text();
    t.equal(partial, BACKFILLED_TABLE, "what the interrupted run stored is on the running service's page");

    // serve stopping (SIGTERM) stops the run as Ctrl-C does, and says so.
    hs.inject({ kind: 'delay', ms: 200 }, { path: '/messages', times: 1000 });
    hs.clearRequestLog();
    const cut = startPingboard(dir, args, env);
    await until('the backfill reading its second page', () => messages() >= 2, 120_000);
    t.equal((await server.stop()).code, 0, 'serve exits 0 once the backfill has stopped');
    const cutShort = await cut.exited;
    hs.clearFaults();
    t.equal(cutShort.code, 130, `exit 130: ${cutShort.stderr}`);
    t.equal(cutShort.stderr, 'interrupted: the next run continues where this one stopped\n');
    const middle = SUMMARY.exec(cutShort.stdout);
    t.ok(middle, `the counts so far: ${cutShort.stdout}`);
    const storedBefore = storedFirst + Number(middle?.[3]);
    t.ok(storedBefore < pings, `still part way (${storedBefore} of ${pings} pongs stored)`);

    const next = await servePingboard(t, dir, withBot);
    const rest = await runPingboard(dir, args, env);
    t.equal(rest.code, 0, `the next run completes it: ${rest.stderr}`);
    const second = SUMMARY.exec(rest.stdout);
    t.ok(second, rest.stdout);
    t.ok(Number(second?.[1]) < 2 * pings, 'continued, not started over');
    t.equal(storedBefore + Number(second?.[3]), pings, 'every pong stored once over the three runs');

    const page = await (await fetch(`${next.url}${boardPath}`)).text();
    t.equal(page, BACKFILLED_TABLE, "and what the completing run stored on the next service's");

    const again = await runPingboard(dir, args, env);
    t.equal(again.code, 0);
    t.match(again.stdout, SUMMARY);
    t.match(again.stdout, /, stored 0, /, 'a re-run stores nothing new');
    t.equal((await next.stop()).code, 0);
  },
);
