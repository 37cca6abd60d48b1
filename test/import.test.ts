// File import (src/samples/import.ts) into a real database, on both engines.
import { getEventListeners } from 'node:events';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import t from 'tap';
import { importCommand, type CommandData } from '../src/cli/commands.ts';
import { loadConfig } from '../src/config.ts';
import { createStatistics } from '../src/open.ts';
import { importFile, MAX_RECORD_LENGTH, type ImportCounts, type Rejection } from '../src/samples/import.ts';
import { recordSamples } from '../src/samples/repository.ts';
import { applyRetention } from '../src/schedule/retention.ts';
import { loadKnownRooms, RoomRegistry } from '../src/stats/rooms.ts';
import { forEachEngine, type TestDatabase } from './helpers/database.ts';
import { escapeRegExp, runPingboard } from './helpers/process.ts';
import { capturedStream } from './helpers/streams.ts';
import { sample } from './helpers/samples.ts';

const dir = mkdtempSync(path.join(tmpdir(), 'pingboard-import-'));
t.teardown(() => rmSync(dir, { recursive: true, force: true }));

const ROOM = '!ping:maunium.net';
const PING_TS = Date.UTC(2026, 10, 20, 10, 0, 0);

function write(name: string, content: string): string {
  const file = path.join(dir, name);
  writeFileSync(file, content);
  return file;
}

/** A Pingboard NDJSON record; overrides replace fields, `undefined` removes one. */
function record(overrides: Record<string, unknown> = {}): string {
  const base: Record<string, unknown> = {
    room_id: ROOM,
    ping_event_id: '$a',
    pinger: '@alice:example.org',
    responder: '@echo:maunium.net',
    delay_ms: 376,
    ping_ts: PING_TS,
  };
  for (const [key, value] of Object.entries(overrides)) {
    if (value === undefined) delete base[key];
    else base[key] = value;
  }
  return JSON.stringify(base);
}

/** A row of pingstat's stats.raw.json. */
function pingstatRow(i: number, overrides: Record<string, unknown> = {}) {
  return {
    room_id: ROOM,
    ping_id: `$ps${i}`,
    pong_server: i % 2 === 0 ? 'maunium.net' : 'other.example:8448',
    ping_server: `s${i % 7}.example`,
    receive_diff: 100 + i,
    pong_timestamp: PING_TS + i * 1000,
    ...overrides,
  };
}

async function run(database: TestDatabase, file: string, retention?: { days: number; now: Date }) {
  const counts: ImportCounts = { read: 0, stored: 0, duplicate: 0, rejected: 0 };
  const rejections: Rejection[] = [];
  let progress = 0;
  await importFile(database.db, file, counts, {
    onRejected: (r) => rejections.push(r),
    onProgress: () => progress++,
    retention,
  });
  return { counts, rejections, progress };
}

async function countRows(database: TestDatabase): Promise<number> {
  const row = await database.db
    .selectFrom('samples')
    .select((eb) => eb.fn.countAll<number>().as('n'))
    .executeTakeFirstOrThrow();
  return Number(row.n);
}

/** [line, message pattern] of every rejection, for a compact comparison. */
function rejectedLines(rejections: readonly Rejection[]): number[] {
  return rejections.map((r) => r.line);
}

forEachEngine(t, async (t, database) => {
  t.test('NDJSON: good, duplicate, blank and broken lines', async (t) => {
    const lines = [
      /* 1 */ record({ ping_event_id: '$good1' }),
      /* 2 */ `${record({ ping_event_id: '$good2', pinger: undefined, ping_server: 'example.org:8448', responder: '@echo:bots.example', delay_ms: -5 })}\r`,
      /* 3 */ '',
      /* 4 */ record({ ping_event_id: '$good1' }),
      /* 5 */ '{"room_id": "!ping:maunium.net", "ping_event_id": ',
      /* 6 */ record({ ping_event_id: '$noresponder', responder: undefined }),
      /* 7 */ record({ ping_event_id: '$evil', pinger: undefined, ping_server: 'evil|server' }),
      /* 8 */ record({ ping_event_id: '$string', delay_ms: '376' }),
      /* 9 */ record({ ping_event_id: '$fraction', delay_ms: 376.5 }),
      /* 10 */ record({ ping_event_id: '$seconds', ping_ts: Math.floor(PING_TS / 1000) }),
      /* 11 */ '   \t',
      /* 12 */ '42',
      /* 13 */ JSON.stringify(pingstatRow(13)),
      /* 14 */ record({
        ping_event_id: '$iso',
        ping_ts: '2026-11-20T10:00:00.000Z',
        measured_at: '2026-11-20T10:00:01.500Z',
        delay_ms: 1500,
        source: 'echo',
        comment: 'ünïcødé 😀',
      }),
      /* 15 */ record({ ping_event_id: '$mismatch', ping_server: 'other.org' }),
      /* 16 */ record({ ping_event_id: '$probe', source: 'probe', rtt_ms: 812.25, delay_ms: 400 }),
      /* 17 */ record({ ping_event_id: '$rtt', rtt_ms: 5 }),
      /* 18 */ record({ ping_event_id: 'no-dollar' }),
      /* 19 */ record({ ping_event_id: '$aged', source: 'echo', ping_age_ms: 12 }),
      /* 20 */ record({ ping_event_id: '$agedPong', ping_age_ms: 12 }),
      /* 21 */ record({ ping_event_id: '$agedBadly', source: 'echo', ping_age_ms: -1 }),
      /* 22 */ record({ ping_event_id: '$last' }), // no newline at the end of the file
    ];
    const file = write('mixed.ndjson', lines.join('\n'));
    const { counts, rejections, progress } = await run(database, file);
    t.same(counts, { read: 20, stored: 7, duplicate: 1, rejected: 12 }, 'blank lines are not records');
    t.equal(counts.read, counts.stored + counts.duplicate + counts.rejected, 'every record is accounted for');
    t.ok(progress >= 1, 'progress is reported');
    t.same(
      rejectedLines(rejections),
      [5, 6, 7, 8, 9, 10, 12, 15, 17, 18, 20, 21],
      'each rejection with its line number',
    );
    t.ok(
      rejections.every((r) => r.file === file),
      'and its file',
    );
    const byLine = new Map(rejections.map((r) => [r.line, r.error]));
    t.match(byLine.get(5), /^not valid JSON/);
    t.match(byLine.get(6), /^responder: expected a user ID or server name, got nothing/);
    t.match(byLine.get(7), /^ping_server: not a valid server name: "evil\|server"/);
    t.match(byLine.get(8), /^delay_ms: expected an integer number of milliseconds, got "376"/);
    t.match(byLine.get(9), /^delay_ms: expected an integer number of milliseconds, got 376\.5/);
    t.match(byLine.get(10), /^ping_ts: expected milliseconds since 1970 or an ISO 8601 time between 2014 and 2100/);
    t.match(byLine.get(12), /^expected a JSON object, got 42/);
    t.match(byLine.get(15), /^ping_server: other\.org is not the server of pinger @alice:example\.org/);
    t.match(byLine.get(17), /^rtt_ms: /);
    t.match(byLine.get(18), /^ping_event_id: not an event ID/);
    t.match(
      byLine.get(20),
      /^ping_age_ms: expected a non-negative integer number of milliseconds on echo samples only, got 12/,
    );
    t.match(byLine.get(21), /^ping_age_ms: expected .*, got -1/);

    const rows = await database.db.selectFrom('samples').selectAll().orderBy('ping_event_id').execute();
    t.same(
      rows.map((r) => r.ping_event_id),
      ['$aged', '$good1', '$good2', '$iso', '$last', '$probe', '$ps13'],
    );
    const get = (id: string) => rows.find((r) => r.ping_event_id === id)!;
    t.match(
      get('$good1'),
      {
        room_id: ROOM,
        ping_server: 'example.org',
        pinger: '@alice:example.org',
        responder: '@echo:maunium.net',
        responder_server: 'maunium.net',
        delay_ms: 376,
        source: 'pong',
        rtt_ms: null,
      },
      'ping_server and responder_server derived from the user IDs; source defaults to pong',
    );
    t.same(get('$good1').ping_ts, new Date(PING_TS));
    t.same(get('$good1').measured_at, new Date(PING_TS + 376), 'measured_at defaults to ping_ts + delay_ms');
    t.match(
      get('$good2'),
      { ping_server: 'example.org:8448', pinger: null, responder_server: 'bots.example', delay_ms: -5 },
      'negative delays are kept; the CR of a CRLF line is ignored',
    );
    t.same(get('$iso').measured_at, new Date('2026-11-20T10:00:01.500Z'));
    t.equal(get('$iso').source, 'echo');
    t.match(get('$probe'), { source: 'probe', rtt_ms: 812.25 });
    t.match(get('$aged'), { source: 'echo', ping_age_ms: 12 }, "an echo sample keeps its ping's age");
    t.equal(get('$good1').ping_age_ms, null, 'none given: null');
    t.match(
      get('$ps13'),
      {
        source: 'pong',
        responder: 'other.example:8448',
        responder_server: 'other.example:8448',
        pinger: null,
        delay_ms: 113,
      },
      'a pingstat row in an NDJSON file',
    );

    const again = await run(database, file);
    t.same(
      again.counts,
      { read: 20, stored: 0, duplicate: 8, rejected: 12 },
      'importing the same file again stores nothing new',
    );
    t.equal(await countRows(database), 7);
  });

  t.test('counts accumulate across files; empty files', async (t) => {
    const counts: ImportCounts = { read: 0, stored: 0, duplicate: 0, rejected: 0 };
    await importFile(database.db, write('one.ndjson', `${record({ ping_event_id: '$x1' })}\n`), counts);
    await importFile(
      database.db,
      write('two.ndjson', `${record({ ping_event_id: '$x2' })}\n${record({ ping_event_id: '$x1' })}\n`),
      counts,
    );
    t.same(counts, { read: 3, stored: 2, duplicate: 1, rejected: 0 });
    t.same(
      (await run(database, write('empty.ndjson', ''))).counts,
      { read: 0, stored: 0, duplicate: 0, rejected: 0 },
      'an empty file',
    );
    t.same(
      (await run(database, write('blank.ndjson', '\n\n  \n'))).counts,
      { read: 0, stored: 0, duplicate: 0, rejected: 0 },
      'only blank lines',
    );
    t.same(
      (await run(database, write('empty-array.json', '[]\n'))).counts,
      { read: 0, stored: 0, duplicate: 0, rejected: 0 },
      'an empty array',
    );
    await t.rejects(
      run(database, path.join(dir, 'does-not-exist.ndjson')),
      { code: 'ENOENT' },
      'a missing file is an error for the caller',
    );
  });

  t.test(
    'a sample older than the retention is rejected, with why, not stored to be deleted at the next clean-up',
    async (t) => {
      const DAY = 86_400_000;
      const now = new Date(PING_TS + 10 * DAY);
      const retention = { days: 30, now };
      const at = (ms: number) => new Date(ms).toISOString();
      const file = write(
        'ages.ndjson',
        [
          /* 1 */ record({ ping_event_id: '$recent' }),
          /* 2 */ record({
            ping_event_id: '$edge',
            ping_ts: at(now.getTime() - 30 * DAY),
            measured_at: at(now.getTime() - 30 * DAY),
          }),
          /* 3 */ record({
            ping_event_id: '$old',
            ping_ts: at(now.getTime() - 30 * DAY - 1000),
            measured_at: at(now.getTime() - 30 * DAY - 1),
          }),
          /* 4 */ JSON.stringify(pingstatRow(4, { pong_timestamp: now.getTime() - 400 * DAY })),
          /* 5 */ record({ ping_event_id: '$older', ping_ts: '2015-01-01T00:00:00Z' }),
        ].join('\n'),
      );
      const { counts, rejections } = await run(database, file, retention);
      t.same(counts, { read: 5, stored: 2, duplicate: 0, rejected: 3 });
      t.same(rejectedLines(rejections), [3, 4, 5]);
      t.match(
        rejections[0]!.error,
        /^measured_at: 2026-10-31T09:59:59\.999Z is older than the 30 days kept \(PINGBOARD_RETENTION_DAYS: from 2026-10-31T10:00:00\.000Z\); the daily clean-up would delete it$/,
      );
      t.same(
        (await applyRetention(database.db, now, retention.days)).samples,
        0,
        'the clean-up deletes nothing of what the import reported stored',
      );
      t.same(
        (await database.db.selectFrom('samples').select('ping_event_id').orderBy('ping_event_id').execute()).map(
          (r) => r.ping_event_id,
        ),
        ['$edge', '$recent'],
      );
      t.same(
        (await run(database, file)).counts,
        { read: 5, stored: 3, duplicate: 2, rejected: 0 },
        'without a retention (a caller that has none) every age is stored',
      );
    },
  );

  t.test('pingboard import applies PINGBOARD_RETENTION_DAYS', async (t) => {
    const now = Date.now();
    const file = write(
      'cli-ages.ndjson',
      [
        record({ ping_event_id: '$cli-recent', ping_ts: now - 86_400_000 }),
        record({ ping_event_id: '$cli-old', ping_ts: now - 8 * 86_400_000 }),
      ].join('\n'),
    );
    const env = {
      ...(database.url ? { DATABASE_URL: database.url } : { PINGBOARD_DATA_DIR: path.join(dir, 'cli-pglite') }),
      PINGBOARD_RETENTION_DAYS: '7',
    };
    const result = await runPingboard(dir, ['import', file], env);
    t.equal(result.code, 1, 'a rejected record makes it exit 1');
    t.match(result.stdout, /^read 2, stored 1, duplicate 0, rejected 1 in /);
    t.match(
      result.stderr,
      new RegExp(
        `^${escapeRegExp(file)}:2: measured_at: .* is older than the 7 days kept \\(PINGBOARD_RETENTION_DAYS: from `,
      ),
    );
  });

  t.test('a UTF-8 byte order mark does not cost the first record', async (t) => {
    const ndjson = await run(
      database,
      write('bom.ndjson', `\uFEFF${record({ ping_event_id: '$bom1' })}\n${record({ ping_event_id: '$bom2' })}\n`),
    );
    t.same(ndjson.counts, { read: 2, stored: 2, duplicate: 0, rejected: 0 }, 'NDJSON');
    t.same(ndjson.rejections, []);
    const array = await run(database, write('bom.json', `\uFEFF${JSON.stringify([pingstatRow(1), pingstatRow(2)])}`));
    t.same(array.counts, { read: 2, stored: 2, duplicate: 0, rejected: 0 }, 'a pingstat dump');
  });

  t.test('a pingstat stats.raw.json dump, one line and pretty-printed', async (t) => {
    const rows: unknown[] = [
      pingstatRow(1),
      pingstatRow(2),
      pingstatRow(3, { ping_server: 'evil|server' }),
      pingstatRow(4, { receive_diff: -20 }),
      pingstatRow(5),
    ];
    const oneLine = write('stats.raw.json', JSON.stringify(rows));
    const first = await run(database, oneLine);
    t.same(first.counts, { read: 5, stored: 4, duplicate: 0, rejected: 1 });
    t.same(
      first.rejections.map((r) => [r.file, r.line]),
      [[oneLine, 1]],
    );
    t.match(first.rejections[0]!.error, /^ping_server: not a valid server name: "evil\|server"/);

    const stored = await database.db.selectFrom('samples').selectAll().orderBy('ping_event_id').execute();
    t.same(
      stored.map((r) => r.ping_event_id),
      ['$ps1', '$ps2', '$ps4', '$ps5'],
    );
    for (const row of stored) {
      const i = Number(row.ping_event_id.slice(3));
      const source = pingstatRow(i, i === 4 ? { receive_diff: -20 } : {});
      t.match(
        row,
        {
          room_id: ROOM,
          ping_server: source.ping_server,
          pinger: null,
          responder: source.pong_server,
          responder_server: source.pong_server,
          delay_ms: source.receive_diff,
          source: 'pong',
          rtt_ms: null,
        },
        `${row.ping_event_id}: responder = pong_server, source pong`,
      );
      t.same(row.measured_at, new Date(source.pong_timestamp), `${row.ping_event_id}: measured_at = pong_timestamp`);
      t.same(
        row.ping_ts,
        new Date(source.pong_timestamp - source.receive_diff),
        `${row.ping_event_id}: ping_ts = pong_timestamp - receive_diff`,
      );
    }

    // JSON.stringify(rows, null, 2): "[", then 8 lines per row ("{", six fields, "},"), then "]".
    const pretty = write('stats.pretty.json', `${JSON.stringify(rows, null, 2)}\n`);
    const second = await run(database, pretty);
    t.same(second.counts, { read: 5, stored: 0, duplicate: 4, rejected: 1 }, 'the same rows again are duplicates');
    t.same(
      second.rejections.map((r) => [r.file, r.line]),
      [[pretty, 2 + 2 * 8]],
      'the bad element is reported on the line where it starts (18)',
    );

    // Leading whitespace, elements split over lines, strings holding brackets, commas and quotes.
    const tricky = write(
      'tricky.json',
      [
        '  ',
        '[',
        `  ${JSON.stringify(pingstatRow(10, { ping_id: '$br[a,c]{k}"q"\\NULL' }))}`,
        '  ,',
        '  {"room_id": "!ping:maunium.net", "ping_id": "$split",',
        '   "pong_server": "maunium.net", "ping_server": "a.example",',
        '   "receive_diff": 50, "pong_timestamp": 1795168800000}',
        '  , {"receive_diff": "fast"}',
        '  , [1, 2]',
        ']',
        '',
      ].join('\n'),
    );
    const third = await run(database, tricky);
    t.same(third.counts, { read: 4, stored: 2, duplicate: 0, rejected: 2 });
    t.same(
      third.rejections.map((r) => r.line),
      [8, 9],
    );
    t.match(third.rejections[0]!.error, /^pong_server: /);
    t.match(third.rejections[1]!.error, /^expected a JSON object, got \[1,2\]/);
    const split = await database.db
      .selectFrom('samples')
      .selectAll()
      .where('ping_event_id', '=', '$split')
      .executeTakeFirstOrThrow();
    t.same(split.ping_ts, new Date(1795168800000 - 50));
    t.ok(
      await database.db
        .selectFrom('samples')
        .select('ping_event_id')
        .where('ping_event_id', '=', '$br[a,c]{k}"q"\\NULL')
        .executeTakeFirst(),
      'brackets, commas, quotes and backslashes inside strings do not split elements',
    );
  });

  t.test(
    "a pingstat row and the same pong read from its bot's account are one sample, whichever came first",
    async (t) => {
      // Read live (or by backfill) first: @echo:maunium.net's pong to $ps2, and another server's bot's.
      const live = write(
        'live.ndjson',
        [
          record({ ping_event_id: '$ps2', responder: '@echo:maunium.net', delay_ms: 102 }),
          record({ ping_event_id: '$ps2', responder: '@bot:elsewhere.example', delay_ms: 150 }),
        ].join('\n'),
      );
      t.same((await run(database, live)).counts, { read: 2, stored: 2, duplicate: 0, rejected: 0 });
      // pingstat recorded maunium.net's pong to $ps2 and $ps4.
      const dump = write('overlap.raw.json', JSON.stringify([pingstatRow(2), pingstatRow(4)]));
      t.same(
        (await run(database, dump)).counts,
        { read: 2, stored: 1, duplicate: 1, rejected: 0 },
        'the row of a pong already stored by account is a duplicate',
      );
      // Then the account's pong to $ps4, read after the import: the pingstat row stands.
      const later = write(
        'later.ndjson',
        record({ ping_event_id: '$ps4', responder: '@echo:maunium.net', delay_ms: 104 }),
      );
      t.same((await run(database, later)).counts, { read: 1, stored: 0, duplicate: 1, rejected: 0 });
      const rows = await database.db
        .selectFrom('samples')
        .select(['ping_event_id', 'responder'])
        .orderBy('ping_event_id')
        .orderBy('responder')
        .execute();
      t.same(
        rows.map((r) => [r.ping_event_id, r.responder]),
        [
          ['$ps2', '@bot:elsewhere.example'],
          ['$ps2', '@echo:maunium.net'],
          ['$ps4', 'maunium.net'],
        ],
      );
    },
  );

  t.test('the two forms of one pong are one sample in the same batch and from writers side by side', async (t) => {
    const pair = (i: number) => {
      const account = sample({ pingServer: 'a.example', pingEventId: `$pair${i}`, delayMs: 100 + i });
      return [{ ...account, responder: 'maunium.net', pinger: null }, account] as const;
    };
    const [byServer, byAccount] = pair(0);
    t.same(
      await recordSamples(database.db, [byServer, byAccount, pair(1)[1]]),
      { stored: 2, duplicate: 1 },
      'in one batch one form stands',
    );
    t.same(
      (await database.db.selectFrom('samples').select('responder').where('ping_event_id', '=', '$pair0').execute()).map(
        (r) => r.responder,
      ),
      ['@echo:maunium.net'],
      "the account's, whatever the order",
    );
    // Side by side: a pingstat import and the bot's writer, each storing one form of the same pongs.
    const pairs = Array.from({ length: 20 }, (_, i) => pair(i + 2));
    const results = await Promise.all(
      pairs.flatMap(([server, account]) => [
        recordSamples(database.db, [server]),
        recordSamples(database.db, [account]),
      ]),
    );
    t.equal(
      results.reduce((n, r) => n + r.stored, 0),
      pairs.length,
      'one stored of each pair',
    );
    const rows = await database.db
      .selectFrom('samples')
      .select('ping_event_id')
      .where('ping_event_id', 'like', '$pair%')
      .execute();
    t.equal(rows.length, 2 + pairs.length);
    t.equal(new Set(rows.map((r) => r.ping_event_id)).size, rows.length, 'no ping has both forms');
  });

  t.test('a batch of several rooms checks the two forms in each room that holds pingstat rows', async (t) => {
    // An insert skips the check of an account's pong where its rooms hold no pingstat row; this batch's
    // rooms hold one between them, in either room of the pair.
    const account = (roomId: string, ping: string) =>
      sample({ roomId, pingServer: 'a.example', pingEventId: ping, delayMs: 120 });
    for (const [rows, plain] of [
      // Rooms are locked and listed in name order: the pingstat row's room comes first, then second.
      ['!a-rows:a.example', '!b-plain:a.example'],
      ['!d-rows:a.example', '!c-plain:a.example'],
    ] as const) {
      t.same(
        await recordSamples(database.db, [{ ...account(rows, '$formed'), responder: 'maunium.net', pinger: null }]),
        { stored: 1, duplicate: 0 },
        `${rows} holds a pingstat row`,
      );
      t.same(
        await recordSamples(database.db, [account(plain, '$formed'), account(rows, '$formed')]),
        { stored: 1, duplicate: 1 },
        `beside ${plain}, the account's form of ${rows}'s pingstat row is a duplicate`,
      );
      t.same(
        (
          await database.db
            .selectFrom('samples')
            .select(['room_id', 'responder'])
            .where('ping_event_id', '=', '$formed')
            .where('room_id', 'in', [rows, plain])
            .orderBy('room_id')
            .execute()
        ).map((r) => [r.room_id, r.responder]),
        [
          [plain, '@echo:maunium.net'],
          [rows, 'maunium.net'],
        ].sort(([a], [b]) => a!.localeCompare(b!)),
      );
    }
  });

  t.test('a row whose responder names another server than its own is one form in every room alike', async (t) => {
    // Records were not checked for this before: a server name as responder, another as its server.
    const inconsistent = (roomId: string) => ({
      room_id: roomId,
      ping_event_id: '$mixed',
      ping_server: 'a.example',
      pinger: null,
      responder: 'maunium.net',
      responder_server: 'other.example',
      delay_ms: 90,
      ping_ts: new Date(Date.UTC(2026, 10, 18, 12)),
      measured_at: new Date(Date.UTC(2026, 10, 18, 12, 0, 0, 90)),
      source: 'pong' as const,
    });
    const [quiet, withRows] = ['!quiet:a.example', '!with-rows:a.example'];
    await database.db
      .insertInto('samples')
      .values([inconsistent(quiet), inconsistent(withRows)])
      .execute();
    t.same(
      await recordSamples(database.db, [
        {
          ...sample({ roomId: withRows, pingServer: 'a.example', delayMs: 80 }),
          responder: 'maunium.net',
          pinger: null,
        },
      ]),
      { stored: 1, duplicate: 0 },
      `${withRows} also holds a pingstat row`,
    );
    const account = (roomId: string) => sample({ roomId, pingEventId: '$mixed', pingServer: 'a.example', delayMs: 95 });
    t.same(
      [await recordSamples(database.db, [account(quiet)]), await recordSamples(database.db, [account(withRows)])],
      [
        { stored: 1, duplicate: 0 },
        { stored: 1, duplicate: 0 },
      ],
      "the account's pong is stored beside it, whether its room's pingstat rows are looked up or not",
    );
  });

  t.test(
    "a pong read back lends its time to the bot's own sample of the ping, once; other forms of a pong do not",
    async (t) => {
      const bot = '@pingboard:bot.example';
      const measured = new Date(Date.UTC(2026, 10, 20, 12));
      const pongAt = (ms: number) => new Date(measured.getTime() + ms);
      const answer = (ping: string) =>
        sample({
          pingServer: 'a.example',
          pingEventId: ping,
          delayMs: 100,
          responder: bot,
          responderServer: 'bot.example',
          source: 'echo',
          measuredAt: measured,
        });
      const readBack = (ping: string, ms: number, source: 'pong' | 'probe' = 'pong') =>
        sample({
          pingServer: 'a.example',
          pingEventId: ping,
          delayMs: 100,
          responder: bot,
          responderServer: 'bot.example',
          pinger: null,
          source,
          measuredAt: pongAt(ms),
          rttMs: source === 'probe' ? 250 : null,
        });
      const pongTimes = async () =>
        Object.fromEntries(
          (
            await database.db
              .selectFrom('samples')
              .select(['ping_event_id', 'responder', 'pong_ts', 'source', 'measured_at'])
              .where('ping_event_id', 'like', '$own%')
              .execute()
          ).map((r) => [
            `${r.ping_event_id} ${r.responder}`,
            [
              r.source,
              r.measured_at.getTime() - measured.getTime(),
              r.pong_ts && r.pong_ts.getTime() - measured.getTime(),
            ],
          ]),
        );

      // In one batch (the writer's) and in a later one; then a second reading of a pong, a probe's, and forms that are not the bot's pong.
      t.same(await recordSamples(database.db, [answer('$own1'), readBack('$own1', 40), answer('$own2')]), {
        stored: 2,
        duplicate: 1,
      });
      t.same(
        await recordSamples(database.db, [
          readBack('$own2', 60),
          readBack('$own1', 90),
          answer('$own3'),
          answer('$own4'),
        ]),
        { stored: 2, duplicate: 2 },
      );
      t.same(
        await recordSamples(database.db, [readBack('$own3', 70, 'probe')]),
        { stored: 1, duplicate: 0 },
        "a probe's reading adds its round trip, as before",
      );
      t.same(
        await recordSamples(database.db, [
          { ...readBack('$own4', 80), responder: 'bot.example' },
          readBack('$own5', 30),
        ]),
        { stored: 1, duplicate: 1 },
      );
      t.same(
        await pongTimes(),
        {
          '$own1 @pingboard:bot.example': ['echo', 0, 40],
          '$own2 @pingboard:bot.example': ['echo', 0, 60],
          '$own3 @pingboard:bot.example': ['probe', 0, 70],
          '$own4 @pingboard:bot.example': ['echo', 0, null],
          '$own5 @pingboard:bot.example': ['pong', 30, null],
        },
        "the first reading's time, kept; a pingstat row (its server only) cannot say whose pong it was; a pong with no answer stored is a sample of its own",
      );
    },
  );

  t.test('a broken JSON array is reported', async (t) => {
    const rows = [pingstatRow(1), pingstatRow(2)];
    const text = JSON.stringify(rows, null, 2);
    const truncated = write('truncated.json', text.slice(0, text.length - 40));
    const cut = await run(database, truncated);
    t.same(
      cut.counts,
      { read: 1, stored: 1, duplicate: 0, rejected: 1 },
      'the complete elements are stored, the truncation is one rejection',
    );
    t.equal(cut.rejections.length, 1);
    t.match(cut.rejections[0], {
      file: truncated,
      line: text.slice(0, text.length - 40).split('\n').length,
      error: /not closed \(is the file truncated\?\)/,
    });

    const trailing = await run(database, write('trailing.json', `${JSON.stringify([pingstatRow(3)])}\n{"more": 1}\n`));
    t.match(trailing.counts, { read: 1, stored: 1, rejected: 1 });
    t.match(trailing.rejections[0], { line: 2, error: /unexpected text after the closing \]/ });

    const hole = await run(
      database,
      write('hole.json', `[\n${JSON.stringify(pingstatRow(4))},\n,\n${JSON.stringify(pingstatRow(5))}]`),
    );
    t.match(hole.rejections[0], { line: 3, error: /empty array element/ });
    t.equal(hole.counts.stored, 1, 'what came before the hole is stored');

    const cutInString = await run(database, write('cut-in-string.json', '[{"room_id": "!ping:maun'));
    t.same(cutInString.counts, { read: 0, stored: 0, duplicate: 0, rejected: 1 });
    t.match(cutInString.rejections[0]!.error, /not closed/);
  });

  t.test("a responder_server that is not the responder's, and a measurement past 2100, are refused", async (t) => {
    const file = write(
      'mismatch.ndjson',
      [
        record({ ping_event_id: '$other', responder_server: 'elsewhere.example' }),
        record({ ping_event_id: '$late', ping_ts: '2099-12-31T23:59:59.000Z', delay_ms: 2 ** 31 - 1 }),
        record({ ping_event_id: '$ok', responder_server: 'maunium.net' }),
        record({ ping_event_id: '$byname', responder: 'bots.example', responder_server: 'bots.example' }),
      ].join('\n'),
    );
    const imported = await run(database, file);
    t.same(imported.counts, { read: 4, stored: 2, duplicate: 0, rejected: 2 });
    t.same(
      imported.rejections.map((r) => [r.line, r.error]),
      [
        [1, 'responder_server: elsewhere.example is not the server of responder @echo:maunium.net'],
        [2, 'measured_at: ping_ts + delay_ms is past 2100 (2100-01-25T20:31:22.647Z)'],
      ],
    );
  });

  t.test(
    'a deeply nested line and a huge line are one rejected record each; every valid line around them is stored',
    async (t) => {
      const valid = (from: number, n: number) =>
        Array.from({ length: n }, (_, i) => record({ ping_event_id: `$v${from + i}`, ping_ts: PING_TS + from + i }));
      const deep = 20_000;
      const lines = [
        ...valid(0, 3000),
        /* 3001 */ '['.repeat(deep) + ']'.repeat(deep),
        /* 3002 */ record({ ping_event_id: '$deepfield', room_id: 'DEEP' }).replace(
          '"DEEP"',
          '['.repeat(deep) + ']'.repeat(deep),
        ),
        ...valid(3000, 3000),
        /* 6003 */ `{"room_id": "${'x'.repeat(30 * 1024 * 1024)}"}`,
        ...valid(6000, 2),
      ];
      const file = write('hostile.ndjson', lines.join('\n'));
      lines.length = 0;
      const imported = await run(database, file);
      t.same(imported.counts, { read: 6005, stored: 6002, duplicate: 0, rejected: 3 });
      t.same(
        imported.rejections.map((r) => [r.line, r.error]),
        [
          [3001, 'expected a JSON object, got an array nested too deeply to show'],
          [3002, 'room_id: expected a room ID, got an array nested too deeply to show'],
          [6003, `longer than ${MAX_RECORD_LENGTH} characters (a sample takes a few hundred): skipped unread`],
        ],
      );
      t.equal(await countRows(database), 6002, 'every valid line stored');

      // The same in a pingstat dump: an element too long is skipped, the array read on.
      const dump = write(
        'hostile.raw.json',
        `[${JSON.stringify(pingstatRow(1))},\n{"room_id": "${'y'.repeat(2 * MAX_RECORD_LENGTH)}", "a": [[[]]]},\n${JSON.stringify(pingstatRow(2))}]`,
      );
      const fromDump = await run(database, dump);
      t.same(fromDump.counts, { read: 3, stored: 2, duplicate: 0, rejected: 1 });
      t.same(
        fromDump.rejections.map((r) => r.line),
        [2],
      );
      t.match(fromDump.rejections[0]?.error, /^longer than 65536 characters/);
    },
  );

  t.test('large files import fully', async (t) => {
    const LINES = 20_000;
    const bad = new Set([1, 777, 12_345, 19_999]);
    const lines: string[] = [];
    for (let i = 1; i <= LINES; i++) {
      lines.push(
        bad.has(i)
          ? record({ ping_event_id: `$big${i}`, delay_ms: 'slow' })
          : // Multi-byte characters make chunk boundaries fall inside characters too.
            record({
              ping_event_id: `$big${i}`,
              pinger: `@user${i % 500}:s${i % 97}.example`,
              delay_ms: 10 + (i % 5000),
              ping_ts: PING_TS + i,
              note: 'äöü€😀'.repeat(i % 4),
            }),
      );
    }
    const ndjson = write('big.ndjson', `${lines.join('\n')}\n`);
    const big = await run(database, ndjson);
    t.same(big.counts, { read: LINES, stored: LINES - bad.size, duplicate: 0, rejected: bad.size });
    t.same(rejectedLines(big.rejections), [...bad], 'line numbers stay right across chunks');
    t.equal(await countRows(database), LINES - bad.size);
    const sum = await database.db
      .selectFrom('samples')
      .select((eb) => eb.fn.sum<number>('delay_ms').as('total'))
      .executeTakeFirstOrThrow();
    let expected = 0;
    for (let i = 1; i <= LINES; i++) if (!bad.has(i)) expected += 10 + (i % 5000);
    t.equal(Number(sum.total), expected, 'every value arrived intact');

    // The same rows as a pretty-printed pingstat dump of several MiB: elements straddle the 1 MiB read chunks.
    const ROWS = 20_000;
    const rows: unknown[] = [];
    for (let i = 1; i <= ROWS; i++)
      rows.push(pingstatRow(100_000 + i, i === 15_000 ? { pong_timestamp: 'yesterday' } : {}));
    const dump = write('big.raw.json', JSON.stringify(rows, null, 2));
    const imported = await run(database, dump);
    t.same(imported.counts, { read: ROWS, stored: ROWS - 1, duplicate: 0, rejected: 1 });
    t.same(rejectedLines(imported.rejections), [2 + (15_000 - 1) * 8], "the bad element's line, deep in the file");
    t.equal(await countRows(database), LINES - bad.size + ROWS - 1);
  });

  t.test('an import listens for its stop only while it reads: nothing of it stays with the signal', async (t) => {
    // A service's signal lives as long as the service: whatever an import leaves listening on it (and
    // whatever that listener reaches: once, every record read) stays in the service's memory for good.
    const lines = Array.from({ length: 5000 }, (_, i) => record({ ping_event_id: `$listened${i}` }));
    const file = write('listened.ndjson', `${lines.join('\n')}\n`);
    const signal = new AbortController().signal;
    const counts: ImportCounts = { read: 0, stored: 0, duplicate: 0, rejected: 0 };
    const listening: number[] = [];
    await importFile(database.db, file, counts, {
      signal,
      onProgress: () => listening.push(getEventListeners(signal, 'abort').length),
    });
    t.same(counts, { read: 5000, stored: 5000, duplicate: 0, rejected: 0 });
    t.ok(listening.length > 0 && listening.every((n) => n <= 1), `at most one listener while it reads: ${listening}`);
    t.equal(getEventListeners(signal, 'abort').length, 0, 'none once it is done');
  });

  t.test('a character cut by the end of a read chunk arrives whole', async (t) => {
    // Files are read 1 MiB at a time. Each record here is refused, its error quoting its value of three-byte
    // characters; a blank first line (skipped) puts the end of the first chunk inside one of them.
    const CHUNK = 1 << 20;
    const value = '€'.repeat(30);
    const lines = Array.from({ length: 8000 }, (_, i) =>
      record({ ping_event_id: `$cut${String(i).padStart(5, '0')}`, delay_ms: value }),
    );
    const lineBytes = Buffer.byteLength(lines[0]!) + 1;
    // The chunk's last byte is the first of the fifth €.
    const fifth = Buffer.from(lines[0]!).indexOf(Buffer.from(value)) + 4 * 3;
    const blank = (CHUNK - 1 - fifth) % lineBytes || lineBytes;
    const content = `${' '.repeat(blank - 1)}\n${lines.join('\n')}\n`;
    const bytes = Buffer.from(content);
    t.same([bytes[CHUNK - 1], bytes[CHUNK]], [0xe2, 0x82], 'the first chunk ends inside a €');
    const cut = await run(database, write('cut.ndjson', content));
    t.same(cut.counts, { read: lines.length, stored: 0, duplicate: 0, rejected: lines.length });
    t.equal(
      cut.rejections.filter((r) => r.error.includes(JSON.stringify(value))).length,
      lines.length,
      'every refusal quotes its value whole',
    );
  });
  t.test("on a terminal, the import's line says when it goes on to build the week's digests", async (t) => {
    const config = loadConfig({});
    const file = write(
      'finishing.ndjson',
      `${record({ ping_event_id: '$finish1', ping_ts: Date.now() - 3_600_000 })}\n${record({ ping_event_id: '$finish2', ping_ts: Date.now() - 3_600_000 })}\n`,
    );
    for (const isTTY of [true, false]) {
      const statistics = createStatistics(config, database, { keepBuiltDigests: false });
      const data: CommandData = {
        database,
        statistics,
        rooms: new RoomRegistry(config.rooms, await loadKnownRooms(database.db)),
        clockOffsetThresholdMs: config.probes.clockOffsetThresholdMs,
      };
      const stdout = capturedStream(false);
      const stderr = capturedStream(isTTY);
      const out = { stdout: stdout.stream, stderr: stderr.stream };
      // What the terminal showed when the digests began to be built.
      let shownAtBuild: string | undefined;
      const build = statistics.buildDigests.bind(statistics);
      statistics.buildDigests = (...args) => {
        shownAtBuild = stderr.text();
        return build(...args);
      };
      const code = await importCommand(config, data, { files: [file], signal: new AbortController().signal }, out);
      t.equal(code, 0);
      t.not(shownAtBuild, undefined, 'the digests were built');
      if (isTTY) {
        t.match(
          shownAtBuild,
          /\r\x1b\[K2 read, \d stored, \d duplicate, 0 rejected \([\d,]+\/s\); building the week's digests for the leaderboard…$/,
          'the last thing shown before the digests are built says they are',
        );
        t.match(
          stderr.text().slice(shownAtBuild!.length),
          /^\r\x1b\[K2 read, \d stored, \d duplicate, 0 rejected \([\d,]+\/s\)\n$/,
          'then the line is written over with the final counts',
        );
      } else t.equal(stderr.text(), '', 'nothing but the summary when not on a terminal');
      t.match(stdout.text(), /^read 2, stored \d, duplicate \d, rejected 0 in \d+\.\d s\n$/);
    }
  });
});
