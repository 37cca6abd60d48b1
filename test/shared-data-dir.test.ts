// The quick start in its order: `serve` on the embedded database, then the
// one-shot commands in another process, which run through the service (the
// data directory's socket) with the output and exit codes they have in a
// process of their own. Real processes, a real PGlite data directory.
import { spawnSync, type ChildProcess } from 'node:child_process';
import { createWriteStream, existsSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { connect } from 'node:net';
import { tmpdir } from 'node:os';
import path from 'node:path';
import t from 'tap';
import type { Test } from './helpers/database.ts';
import { escapeRegExp, runPingboard, servePingboard, startPingboard, type Result } from './helpers/process.ts';

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
  const server = await servePingboard(t, dir, env);
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

  const stopped = await server.stop();
  t.equal(stopped.code, 0);
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
