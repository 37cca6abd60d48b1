// A new embedded data directory is created by a process of its own (its
// initdb memory goes with it): the command that asked for it, and the service
// and commands after it, read the directory it made; a creating process that
// fails ends the command with one line naming the setting. Real processes, a
// real PGlite data directory.
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import t from 'tap';
import { escapeRegExp, runPingboard, servePingboard } from './helpers/process.ts';

const ROOM = '!ping:maunium.net';
const dir = mkdtempSync(path.join(tmpdir(), 'pingboard-embedded-'));
t.teardown(() => rmSync(dir, { recursive: true, force: true }));

t.test('a new data directory is created, then read by serve and by a command', async (t) => {
  const dataDir = path.join(dir, 'data');
  const env = { PINGBOARD_DATA_DIR: dataDir, PINGBOARD_ROOMS: ROOM };
  const pingTs = Date.now() - 3_600_000;
  const samples = ['fairydust.space', 'neko.dev'].map((server, i) =>
    JSON.stringify({
      room_id: ROOM,
      ping_event_id: `$e${i}`,
      pinger: `@user:${server}`,
      responder: '@echo:maunium.net',
      delay_ms: 300 + i * 100,
      ping_ts: pingTs + i,
    }),
  );
  writeFileSync(path.join(dir, 'week.ndjson'), `${samples.join('\n')}\n`);

  const imported = await runPingboard(dir, ['import', 'week.ndjson'], env);
  t.equal(imported.code, 0, imported.stderr);
  t.ok(existsSync(path.join(dataDir, 'PG_VERSION')), 'the directory holds a database');
  // initdb writes the shared buffers it ran with: the default 128 MB would have weighed on the creating process.
  t.match(
    readFileSync(path.join(dataDir, 'postgresql.conf'), 'utf8'),
    /^shared_buffers = 16MB\b/m,
    'initdb ran with the small shared buffers',
  );

  const server = await servePingboard(t, dir, env);
  const page = await (await fetch(`${server.url}/leaderboard.md`)).text();
  t.match(page, /\|1\|fairydust\.space\|300\|\n\|2\|neko\.dev\|400\|/, 'serve reads what the import stored');
  t.equal((await server.stop()).code, 0);

  const table = await runPingboard(dir, ['leaderboard'], env);
  t.equal(table.code, 0, table.stderr);
  t.equal(table.stdout, page, 'a command in a process of its own reads it too');
});

t.test('a creating process that fails ends the command with one line naming the setting', async (t) => {
  // Files where initdb makes its directories: PGlite's file system refuses them.
  const dataDir = path.join(dir, 'blocked');
  mkdirSync(dataDir);
  for (const name of ['base', 'global']) writeFileSync(path.join(dataDir, name), '');
  const result = await runPingboard(dir, ['leaderboard'], { PINGBOARD_DATA_DIR: dataDir, PINGBOARD_ROOMS: ROOM });
  t.not(result.code, 0);
  t.match(
    result.stderr,
    new RegExp(
      `^pingboard: PINGBOARD_DATA_DIR: cannot create the embedded database in ${escapeRegExp(dataDir)}: the process creating it exited with code 1 \\(.+\\)\\n$`,
    ),
  );
  t.notOk(existsSync(path.join(dataDir, 'pingboard.lock')), 'the directory is left unlocked');
});
