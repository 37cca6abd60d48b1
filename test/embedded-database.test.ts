// A new embedded data directory is a copy of one database made once, by a
// process of its own (its initdb memory goes with it): the command that asked
// for it, and the service and commands after it, read the copy; where no
// template can be kept, a process of its own makes the directory in place; a
// failure ends the command with one line naming the setting. Real processes,
// real PGlite data directories.
import {
  existsSync,
  mkdirSync,
  mkdtempSync,
  readdirSync,
  readFileSync,
  rmSync,
  statSync,
  utimesSync,
  writeFileSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import t from 'tap';
import { createDataDir, DEFAULT_TEMPLATE_ROOT, pgliteTemplate } from '../src/db/create-pglite.ts';
import { escapeRegExp, runPingboard, servePingboard } from './helpers/process.ts';

const ROOM = '!ping:maunium.net';
const dir = mkdtempSync(path.join(tmpdir(), 'pingboard-embedded-'));
t.teardown(() => rmSync(dir, { recursive: true, force: true }));

/** initdb's system identifier (the first field of pg_control): each initdb draws its own, a copy keeps it. */
const systemIdentifier = (dataDir: string) =>
  readFileSync(path.join(dataDir, 'global', 'pg_control'))
    .subarray(0, 8)
    .toString('hex');

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
    /^shared_buffers = 8MB\b/m,
    'initdb ran with the small shared buffers',
  );
  const template = await pgliteTemplate(DEFAULT_TEMPLATE_ROOT);
  t.ok(template, 'the template is kept in the install');
  t.equal(systemIdentifier(dataDir), systemIdentifier(template!), 'the directory is a copy of the template');

  const server = await servePingboard(t, dir, env);
  const page = await (await fetch(`${server.url}/leaderboard.md`)).text();
  t.match(page, /\|1\|fairydust\.space\|300\|\n\|2\|neko\.dev\|400\|/, 'serve reads what the import stored');
  t.equal((await server.stop()).code, 0);

  const table = await runPingboard(dir, ['leaderboard'], env);
  t.equal(table.code, 0, table.stderr);
  t.equal(table.stdout, page, 'a command in a process of its own reads it too');
});

/** A data directory with files where a database has directories: neither a copy nor initdb can make one there. */
function blockedDataDir(name: string): string {
  const dataDir = path.join(dir, name);
  mkdirSync(dataDir);
  for (const file of ['base', 'global']) writeFileSync(path.join(dataDir, file), '');
  return dataDir;
}

t.test('a copy that fails ends the command with one line naming the setting', async (t) => {
  const dataDir = blockedDataDir('blocked');
  const result = await runPingboard(dir, ['leaderboard'], { PINGBOARD_DATA_DIR: dataDir, PINGBOARD_ROOMS: ROOM });
  t.not(result.code, 0);
  t.match(
    result.stderr,
    new RegExp(
      `^pingboard: PINGBOARD_DATA_DIR: cannot create the embedded database in ${escapeRegExp(dataDir)}: [^\\n]+\\n$`,
    ),
  );
  t.notOk(existsSync(path.join(dataDir, 'PG_VERSION')), 'nothing says the directory holds a database');
  t.notOk(existsSync(path.join(dataDir, 'pingboard.lock')), 'the directory is left unlocked');
});

t.test('one template is kept, however many new directories ask for it at once', async (t) => {
  const root = path.join(dir, 'templates');
  const dataDirs = ['one', 'two', 'three'].map((name) => path.join(dir, `copy-${name}`));
  await Promise.all(dataDirs.map((dataDir) => createDataDir(dataDir, root)));
  const kept = readdirSync(root);
  t.equal(kept.length, 1, `one template, no half-made one left: ${kept.join(', ')}`);
  const template = path.join(root, kept[0]!);
  t.match(kept[0], /^pglite-\d+\.\d+\.\d+-shared-buffers-8MB$/, 'named by the PGlite and the settings that made it');
  for (const dataDir of dataDirs) {
    t.ok(existsSync(path.join(dataDir, 'PG_VERSION')), `${path.basename(dataDir)} holds a database`);
    t.equal(systemIdentifier(dataDir), systemIdentifier(template), `${path.basename(dataDir)} is a copy of it`);
  }
  t.equal(await pgliteTemplate(root), template, 'asked again, the same one is kept');
  t.equal(statSync(template).mode & 0o777, 0o755, "readable by the service's user, not only the install's");
});

t.test("making a template sweeps other versions' and abandoned ones, not one being made now", async (t) => {
  const current = path.basename((await pgliteTemplate(path.join(dir, 'templates')))!);
  const root = path.join(dir, 'swept');
  const entries = {
    older: 'pglite-0.0.1-shared-buffers-8MB',
    abandoned: `${current}.building-killed`,
    inProgress: `${current}.building-making`,
    unrelated: 'other-cache',
  };
  for (const name of Object.values(entries)) mkdirSync(path.join(root, name, 'base'), { recursive: true });
  const longAgo = new Date(Date.now() - 2 * 3_600_000);
  utimesSync(path.join(root, entries.abandoned), longAgo, longAgo);
  t.equal(await pgliteTemplate(root), path.join(root, current));
  t.same(readdirSync(root).sort(), [current, entries.inProgress, entries.unrelated].sort(), 'only those swept');
});

t.test('where no template can be kept, a process of its own makes the directory in place', async (t) => {
  // A regular file where the template's folder would be: the install cannot be written to.
  const root = path.join(dir, 'read-only-install');
  writeFileSync(root, '');
  t.equal(await pgliteTemplate(root), undefined, 'no template');

  const dataDir = path.join(dir, 'in-place');
  await createDataDir(dataDir, root);
  t.ok(existsSync(path.join(dataDir, 'PG_VERSION')), 'the directory holds a database');
  t.not(systemIdentifier(dataDir), systemIdentifier(path.join(dir, 'copy-one')), 'made by an initdb of its own');

  const blocked = blockedDataDir('blocked-in-place');
  await t.rejects(createDataDir(blocked, root), {
    name: 'StartupError',
    message: new RegExp(
      `^PINGBOARD_DATA_DIR: cannot create the embedded database in ${escapeRegExp(blocked)}: the process creating it exited with code 1 \\(.+\\)$`,
    ),
  });
});
