// The hourly digests' invariant, held by the database: whatever statement
// changes samples (the application's writes, retention, or SQL typed by
// hand) drops the digests of exactly the hours it touched, including the
// hours of the other pongs of the same servers to the same pings. And reads
// never write: digests are built by the scheduler, after an import and after
// the bot's writes.
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { sql } from 'kysely';
import t from 'tap';
import { lockRoom } from '../src/db/locks.ts';
import { createLogger } from '../src/log.ts';
import { importFiles } from '../src/cli/import-files.ts';
import type { ImportCounts } from '../src/samples/import.ts';
import { deleteSamplesOfPing, recordSamples } from '../src/samples/repository.ts';
import { SampleWriter } from '../src/samples/writer.ts';
import { startJobs } from '../src/schedule/jobs.ts';
import { applyRetention } from '../src/schedule/retention.ts';
import { answeredBeforeQuery, FETCH_ROWS } from '../src/stats/digests.ts';
import { ROLLING_WEEK, Statistics } from '../src/stats/leaderboard.ts';
import { RoomRegistry } from '../src/stats/rooms.ts';
import { forEachEngine, type Test } from './helpers/database.ts';
import { ROOM, sample } from './helpers/samples.ts';
import { until } from './helpers/until.ts';

const HOUR = 3_600_000;
const NOW = new Date('2026-11-21T10:00:00Z');
const WEEKS = { timeZone: 'UTC', closeWeekday: 1, closeHour: 0, graceMinutes: 60 };
const FILTERS = { minDelayMs: 10, maxDelayMs: 600_000, minPings: 1 };
const ROLLING = { maxAgeSeconds: 7 * 86_400, minAgeSeconds: 0, capSpanToWeek: false };
const room = RoomRegistry.untracked(ROOM);
const at = (iso: string) => new Date(iso);
/** The closed hours of the week up to NOW, which the build digests. */
const WEEK_HOURS = Array.from({ length: 7 * 24 }, (_, i) =>
  new Date(NOW.getTime() - 7 * 86_400_000 + i * HOUR).toISOString().slice(0, 13),
);

const dir = mkdtempSync(path.join(tmpdir(), 'pingboard-digests-'));
t.teardown(() => rmSync(dir, { recursive: true, force: true }));

/** A ping of a.example at 08:30; b.example's two bots answer a ping either side of 10:00; the bot's own answer at 11:30. */
const a = sample({ pingServer: 'a.example', pingEventId: '$a', delayMs: 100, measuredAt: at('2026-11-20T08:30:00Z') });
const b1 = sample({
  pingServer: 'c.example',
  pingEventId: '$b',
  delayMs: 50,
  responder: '@echo:b.example',
  responderServer: 'b.example',
  measuredAt: at('2026-11-20T09:59:59.900Z'),
});
const b2 = { ...b1, delayMs: 20, responder: '@echo2:b.example', measuredAt: at('2026-11-20T10:00:00.100Z') };
const own = sample({
  pingServer: 'c.example',
  pingEventId: '$c',
  delayMs: 300,
  responder: '@pingboard:maunium.net',
  source: 'echo',
  measuredAt: at('2026-11-20T11:30:00Z'),
});

forEachEngine(t, (t, database) => {
  const { db } = database;
  const stats = new Statistics({ db, stats: FILTERS, weeks: WEEKS, cacheSeconds: 0, now: () => NOW });

  /** The hours of the week (as 2026-11-20T08) that have no digest. */
  const missing = async (): Promise<string[]> => {
    const rows = await db.selectFrom('hourly_digests').select('hour').where('room_id', '=', ROOM).execute();
    const have = new Set(rows.map((row) => row.hour.toISOString().slice(0, 13)));
    return WEEK_HOURS.filter((hour) => !have.has(hour));
  };
  const digested = async (t: Test) => {
    await stats.buildDigests([room]);
    t.same(await missing(), [], 'every hour digested');
  };
  const setUp = async (t: Test) => {
    await recordSamples(db, [a, b1, b2, own]);
    await digested(t);
  };

  t.test(
    "the application's writes drop the hours they touch, and the hours of the same server's other pongs to the same ping",
    async (t) => {
      await setUp(t);
      await recordSamples(db, [
        sample({ pingServer: 'a.example', delayMs: 90, measuredAt: at('2026-11-20T08:40:00Z') }),
      ]);
      t.same(await missing(), ['2026-11-20T08'], 'a new sample drops its hour');
      await digested(t);
      await recordSamples(db, [
        { ...b1, delayMs: 70, responder: '@echo3:b.example', measuredAt: at('2026-11-20T12:10:00Z') },
      ]);
      t.same(
        await missing(),
        ['2026-11-20T09', '2026-11-20T10', '2026-11-20T12'],
        "a third bot of b.example: its hour and those of its server's other pongs",
      );
      await digested(t);
      t.same(await recordSamples(db, [a]), { stored: 0, duplicate: 1 });
      t.same(await missing(), [], 'a duplicate drops nothing');
    },
  );

  t.test(
    "a pong read back stamps the bot's own sample and drops its hour; a probe's round trip drops nothing",
    async (t) => {
      await setUp(t);
      await recordSamples(db, [{ ...own, source: 'pong', measuredAt: at('2026-11-20T11:30:00.120Z') }]);
      t.same(await missing(), ['2026-11-20T11']);
      await digested(t);
      t.same(
        await recordSamples(db, [{ ...a, source: 'probe', rttMs: 80 }]),
        { stored: 1, duplicate: 0 },
        'the round trip is stored',
      );
      t.same(await missing(), [], 'digests hold no round trips');
    },
  );

  t.test('a stored digest cut short is refused with its size named, not read as what follows it', async (t) => {
    await setUp(t);
    await db
      .updateTable('hourly_digests')
      .set({ columns: sql<string>`left(columns, 8)` })
      .where('hour', '=', at('2026-11-20T08:00:00Z'))
      .execute();
    // Read by a process that did not build it (the one that did keeps what it stored).
    const reader = new Statistics({ db, stats: FILTERS, weeks: WEEKS, cacheSeconds: 0, now: () => NOW });
    await t.rejects(
      reader.rolling(room, ROLLING),
      /an hourly digest is cut short: 6 bytes, where it needs 8 \(samples: 1\)/,
    );
  });

  t.test('an earlier pong replacing a later one drops both hours; deleting a ping drops its hours', async (t) => {
    await setUp(t);
    await recordSamples(db, [{ ...b2, measuredAt: at('2026-11-20T09:59:59.950Z') }], { keepEarliestPong: true });
    t.same(await missing(), ['2026-11-20T09', '2026-11-20T10']);
    await digested(t);
    t.equal(await deleteSamplesOfPing(db, [ROOM], '$a'), 1);
    t.same(await missing(), ['2026-11-20T08']);
  });

  t.test('retention drops the hours before its cutoff, and the hour where a later pong now comes first', async (t) => {
    await setUp(t);
    // The cutoff is 2026-11-20T10:00: b.example's first pong (09:59:59.9) goes, its second (in the 10:00 hour) now counts.
    t.match(await applyRetention(db, NOW, 1), { samples: 2 });
    t.same(
      await missing(),
      WEEK_HOURS.filter((hour) => hour <= '2026-11-20T10'),
    );
  });

  t.test('statements that bypass the application drop the right digests too', async (t) => {
    await setUp(t);
    await sql`insert into samples (room_id, ping_event_id, ping_server, pinger, responder, responder_server, delay_ms, ping_ts, measured_at, source)
      values (${ROOM}, '$raw', 'raw.example', '@u:raw.example', '@echo:maunium.net', 'maunium.net', 40, '2026-11-20T12:29:59Z', '2026-11-20T12:30:00Z', 'pong')`.execute(
      db,
    );
    t.same(await missing(), ['2026-11-20T12'], 'an insert');
    await digested(t);
    await sql`update samples set delay_ms = delay_ms + 1 where ping_event_id = '$a'`.execute(db);
    t.same(await missing(), ['2026-11-20T08'], 'an update of a figure');
    await digested(t);
    await sql`update samples set measured_at = '2026-11-20T13:30:00Z' where ping_event_id = '$a'`.execute(db);
    t.same(await missing(), ['2026-11-20T08', '2026-11-20T13'], 'a sample moved to another hour: both');
    await digested(t);
    await sql`update samples set rtt_ms = 12, ping_ts = ping_ts - interval '1 ms' where ping_event_id = '$a'`.execute(
      db,
    );
    t.same(await missing(), [], 'an update of columns no digest holds');
    await sql`delete from samples where responder = '@echo:b.example'`.execute(db);
    t.same(
      await missing(),
      ['2026-11-20T09', '2026-11-20T10'],
      "a delete: its hour, and the hour of the server's other pong",
    );
    await digested(t);
    await sql`truncate samples`.execute(db);
    t.same(await missing(), WEEK_HOURS, 'a truncate drops every digest');
  });

  t.test('reads write nothing, and answer from the samples what they answer from the digests', async (t) => {
    await recordSamples(db, [
      a,
      b1,
      b2,
      own,
      sample({ pingServer: 'a.example', delayMs: 400, measuredAt: at('2026-11-14T12:00:00Z') }),
    ]);
    const fromSamples = await stats.rolling(room, ROLLING);
    const closedWeek = await stats.week(room, '2026-W46');
    t.same(await missing(), WEEK_HOURS, 'no digest built');
    t.same(await db.selectFrom('frozen_weeks').selectAll().execute(), [], 'no week frozen');
    t.equal(closedWeek.frozenAt, null);
    await digested(t);
    t.same(await stats.rolling(room, ROLLING), fromSamples, 'the same table from the digests');
    t.same(await stats.freezeDueWeeks([room]), [`${ROOM} 2026-W46`]);
    t.same((await stats.week(room, '2026-W46')).servers, closedWeek.servers, 'the week frozen as it was read');
  });

  t.test(
    "a read waits for no writer: it answers while a write holds the room's lock",
    {
      skip:
        database.engine !== 'postgres' &&
        'PGlite has one connection: every query waits for the transaction that holds it',
    },
    async (t) => {
      await recordSamples(db, [a, b1, b2, own]);
      let release!: () => void;
      const held = new Promise<void>((resolve) => (release = resolve));
      let locked!: () => void;
      const lockTaken = new Promise<void>((resolve) => (locked = resolve));
      const write = db.transaction().execute(async (tx) => {
        await lockRoom(tx, ROOM, 'exclusive');
        locked();
        await held;
      });
      await lockTaken;
      try {
        const board = await stats.rolling(room, ROLLING);
        t.same(
          board.servers.map((s) => [s.server, s.medianMs]),
          [
            ['a.example', 100],
            ['c.example', 175],
          ],
          'answered from the samples, none of its hours digested',
        );
      } finally {
        release();
        await write;
      }
      t.same(await missing(), WEEK_HOURS, 'and it stored nothing');
    },
  );

  t.test(
    'an import builds the digests of the week it stored and of the hour going on, so the first read finds them',
    async (t) => {
      // Three in whole hours before now, closed, and one in the hour going on (or, in an hour's first second, the
      // hour before, which holds no other).
      const hour = Math.floor(Date.now() / HOUR) * HOUR;
      const recent = Date.now() - 1_000;
      const file = path.join(dir, `${database.engine}.ndjson`);
      const record = (i: number, pingTs: number) =>
        JSON.stringify({
          room_id: ROOM,
          ping_event_id: `$import${i}`,
          pinger: '@alice:example.org',
          responder: '@echo:maunium.net',
          delay_ms: 100 + i,
          ping_ts: pingTs,
        });
      writeFileSync(
        file,
        [...[2, 3, 30].map((ago, i) => record(i, hour - ago * HOUR + 60_000)), record(3, recent - 103)].join('\n'),
      );
      const counts: ImportCounts = { read: 0, stored: 0, duplicate: 0, rejected: 0 };
      // On the real clock, as the import's digests are of the seven days before now.
      const importing = new Statistics({ db, stats: FILTERS, weeks: WEEKS, cacheSeconds: 0 });
      await importFiles(db, importing, [file], counts);
      t.equal(counts.stored, 4);
      const rows = await db
        .selectFrom('hourly_digests')
        .select(['hour', 'samples'])
        .where('samples', '>', 0)
        .orderBy('hour')
        .execute();
      t.same(
        rows.map((row) => [row.hour.getTime(), row.samples]),
        [...[30, 3, 2].map((ago) => hour - ago * HOUR), Math.floor(recent / HOUR) * HOUR].map((h) => [h, 1]),
        "each sample's hour digested, the one going on included",
      );
      const table = await importing.rolling(room, ROLLING_WEEK);
      t.equal(importing.digestsDecoded, 0, 'the first table of the importing process reads none of them back');
      const reader = new Statistics({ db, stats: FILTERS, weeks: WEEKS, cacheSeconds: 0 });
      const read = await reader.rolling(room, ROLLING_WEEK);
      t.ok(
        // On the real clock an hour may close in between, so not a count of the week's hours.
        reader.digestsDecoded > 0,
        `a process that did not build them reads them (${reader.digestsDecoded})`,
      );
      t.same(table.servers, read.servers, 'and both compute the same table');
      t.same(
        table.servers.map((s) => [s.server, s.samples]),
        [['example.org', 4]],
        'of the four samples imported',
      );
    },
  );

  t.test(
    'the pings of a room that came after the last ANALYZE are looked up by the primary key, not by scanning the room',
    async (t) => {
      await recordSamples(
        db,
        Array.from({ length: 300 }, (_, i) =>
          sample({ pingServer: 'a.example', delayMs: 100, measuredAt: new Date(NOW.getTime() - (i + 1) * 60_000) }),
        ),
      );
      await sql`analyze samples`.execute(db);
      // A room the planner's statistics know nothing of: as last analysed, it holds no row.
      const newRoom = '!new:example.org';
      const later = Array.from({ length: 2_000 }, (_, i) => ({
        ...sample({ pingServer: 'b.example', delayMs: 100, measuredAt: new Date(NOW.getTime() - (i + 1) * 1_000) }),
        roomId: newRoom,
      }));
      await recordSamples(db, later);
      const window = { from: new Date(NOW.getTime() - HOUR), to: NOW, toInclusive: false };
      const query = answeredBeforeQuery(
        newRoom,
        window,
        later.map((s) => s.pingEventId),
        // A table far larger than the pings, as after months of history: the look-ups are chosen.
        1e9,
      );
      const { rows } = await sql<Record<string, unknown>>`explain (format json) ${query}`.execute(db);
      const raw = Object.values(rows[0]!)[0];
      const scans: string[] = [];
      const walk = (node: Record<string, unknown>) => {
        if (node['Relation Name'] === 'samples') scans.push(`${node['Node Type']} ${node['Index Name'] ?? ''}`.trim());
        for (const child of (node['Plans'] as Record<string, unknown>[] | undefined) ?? []) walk(child);
      };
      walk((typeof raw === 'string' ? JSON.parse(raw) : raw)[0].Plan);
      t.same(scans, ['Index Scan samples_pkey'], 'each ping looked up in the primary key');
      const { rows: answered } = await query.execute(db);
      t.same(answered, [], 'none answered before the window (the statement runs)');
    },
  );

  t.test(
    'a build reading more rows than one fetch of its cursor keeps one figure per (ping, server) across fetches',
    async (t) => {
      // Pings of one server, each answered by 10 bots of 10 servers: 1,000 rows more than FETCH_ROWS.
      // A second bot of the first of those servers answers the first 100 pings three days later, so its
      // pongs come in a later fetch than the first ones: they are no figures.
      const PINGS = FETCH_ROWS / 10 + 100;
      const pings = Array.from({ length: PINGS }, (_, i) => ({
        id: `$many${i}`,
        at: new Date(at('2026-11-15T00:00:00Z').getTime() + i * 60_000),
      }));
      const answers = pings.flatMap((ping, i) =>
        Array.from({ length: 10 }, (_, bot) =>
          sample({
            pingServer: 'many.example',
            pingEventId: ping.id,
            responder: `@echo:bot${bot}.example`,
            responderServer: `bot${bot}.example`,
            delayMs: 100 + ((i * 10 + bot) % 7),
            measuredAt: new Date(ping.at.getTime() + bot),
          }),
        ),
      );
      const lateSecondBot = pings.slice(0, 100).map((ping) =>
        sample({
          pingServer: 'many.example',
          pingEventId: ping.id,
          responder: '@echo2:bot0.example',
          responderServer: 'bot0.example',
          delayMs: 900,
          measuredAt: new Date(ping.at.getTime() + 3 * 86_400_000),
        }),
      );
      await recordSamples(db, [...answers, ...lateSecondBot]);
      await digested(t);
      const stored = await db
        .selectFrom('hourly_digests')
        .select((eb) => eb.fn.sum<string>('samples').as('figures'))
        .where('room_id', '=', ROOM)
        .executeTakeFirstOrThrow();
      t.equal(
        Number(stored.figures),
        answers.length,
        "one figure per ping and server: the second bot's late pongs are none",
      );
      const delays = answers.map((s) => s.delayMs).sort((x, y) => x - y);
      const median = (delays[answers.length / 2 - 1]! + delays[answers.length / 2]!) / 2;
      t.same(
        (await stats.rolling(room, ROLLING)).servers.map((s) => [s.server, s.medianMs, s.pings]),
        [['many.example', median, PINGS]],
        'the table from those digests',
      );
    },
  );

  t.test("the bot's writes have the digests they dropped built again", async (t) => {
    await setUp(t);
    const jobs = startJobs(
      stats,
      new RoomRegistry([{ id: ROOM, disclaimer: '' }]),
      async () => [],
      createLogger('silent'),
    );
    t.teardown(() => jobs.stop());
    const writer = new SampleWriter({
      db,
      log: createLogger('silent'),
      capacity: 10,
      lingerMs: 0,
      onWritten: () => void jobs.buildDigestsSoon(),
    });
    writer.record(sample({ pingServer: 'late.example', delayMs: 70, measuredAt: at('2026-11-20T12:10:00Z') }));
    await writer.flushed();
    const hourTwelve = () =>
      db
        .selectFrom('hourly_digests')
        .select('samples')
        .where('hour', '=', at('2026-11-20T12:00:00Z'))
        .executeTakeFirst();
    await until('the dropped digest rebuilt with the new sample', async () => (await hourTwelve())?.samples === 1);
    t.same(await missing(), []);
  });
});
