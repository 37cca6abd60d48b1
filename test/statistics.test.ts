// Statistics on a real database (PGlite and PostgreSQL): figures, filters,
// ranks, windows and frozen weeks.
import { sql } from 'kysely';
import pg from 'pg';
import t from 'tap';
import type { WeekConfig } from '../src/config.ts';
import { deleteSamplesBefore, recordSamples } from '../src/samples/repository.ts';
import { ascending, figuresOfSorted } from '../src/stats/figures.ts';
import { listFrozenWeeks } from '../src/stats/frozen-weeks.ts';
import { DecodedDigests, windowColumns } from '../src/stats/digests.ts';
import { Statistics } from '../src/stats/leaderboard.ts';
import { RoomRegistry } from '../src/stats/rooms.ts';
import { rollingWindow } from '../src/stats/windows.ts';
import { forEachEngine } from './helpers/database.ts';
import { ROOM, sample } from './helpers/samples.ts';

const UTC_WEEKS: WeekConfig = { timeZone: 'UTC', closeWeekday: 1, closeHour: 0, graceMinutes: 60 };
const FILTERS = { minDelayMs: 10, maxDelayMs: 600_000, minPings: 1 };
const room = RoomRegistry.untracked(ROOM);
const ROLLING = { maxAgeSeconds: 7 * 86_400, minAgeSeconds: 0, capSpanToWeek: false };

function at(iso: string): Date {
  return new Date(iso);
}

forEachEngine(t, (t, database) => {
  const db = database.db;
  const statisticsAt = (now: string, weeks: WeekConfig = UTC_WEEKS, minPings = 1) =>
    new Statistics({ db, stats: { ...FILTERS, minPings }, weeks, cacheSeconds: 0, now: () => at(now) });
  /** The rolling week once the scheduler's build has run: its closed hours from their digests. */
  const digestedRolling = async (stats: Statistics) => {
    await stats.buildDigests([room]);
    return stats.rolling(room, ROLLING);
  };
  /** The same when another process built the digests: `stats` reads them from the database. */
  const readRolling = async (stats: Statistics) => {
    const builder = new Statistics({
      db,
      stats: stats.filters,
      weeks: stats.weekConfig,
      cacheSeconds: 0,
      now: () => stats.now(),
    });
    await builder.buildDigests([room]);
    return stats.rolling(room, ROLLING);
  };
  /** Both ways a process comes by a digest: built by itself (kept as stored) or read. */
  const digestPaths = [
    ['built by the process', digestedRolling],
    ['read from the database', readRolling],
  ] as const;
  const digestCount = async () =>
    Number(
      (
        await db
          .selectFrom('hourly_digests')
          .select((eb) => eb.fn.countAll().as('n'))
          .executeTakeFirstOrThrow()
      ).n,
    );

  t.test(
    'median of an even count averages the two middle values; figures match an in-process computation',
    async (t) => {
      const delays = [500, 100, 389, 444, 445, 2000];
      await recordSamples(
        db,
        delays.map((delayMs) => sample({ pingServer: 'neko.dev', delayMs, measuredAt: at('2026-11-20T10:00:00Z') })),
      );
      const board = await statisticsAt('2026-11-21T00:00:00Z').rolling(room, ROLLING);
      t.equal(board.servers.length, 1);
      const row = board.servers[0]!;
      t.equal(row.medianMs, 444.5);
      const expected = figuresOfSorted([...delays].sort(ascending));
      t.equal(row.meanMs, expected.meanMs);
      t.ok(Math.abs(row.gmeanMs - expected.gmeanMs) < 1e-9, 'geometric mean');
      t.ok(Math.abs(row.p90Ms - expected.p90Ms) < 1e-9, 'p90 by linear interpolation');
      t.equal(row.minMs, 100);
      t.equal(row.maxMs, 2000);
      t.equal(row.pings, 6);
      t.equal(row.samples, 6);
    },
  );

  t.test('samples outside min/max delay are left out, both bounds inclusive', async (t) => {
    const measuredAt = at('2026-11-20T10:00:00Z');
    await recordSamples(
      db,
      [-50, 9, 10, 600_000, 600_001].map((delayMs) => sample({ pingServer: 'edge.example', delayMs, measuredAt })),
    );
    const [row] = (await statisticsAt('2026-11-21T00:00:00Z').rolling(room, ROLLING)).servers;
    t.equal(row?.samples, 2);
    t.equal(row?.minMs, 10);
    t.equal(row?.maxMs, 600_000);
  });

  t.test('responders are pooled per ping server and reported each on their own', async (t) => {
    const measuredAt = at('2026-11-20T10:00:00Z');
    await recordSamples(db, [
      sample({
        pingServer: 'a.example',
        pingEventId: '$p1',
        delayMs: 100,
        measuredAt,
        responder: '@echo:one.example',
        responderServer: 'one.example',
      }),
      sample({
        pingServer: 'a.example',
        pingEventId: '$p1',
        delayMs: 300,
        measuredAt,
        responder: '@echo:two.example',
        responderServer: 'two.example',
      }),
      sample({
        pingServer: 'a.example',
        pingEventId: '$p2',
        delayMs: 200,
        measuredAt,
        responder: '@echo:one.example',
        responderServer: 'one.example',
      }),
    ]);
    const [row] = (await statisticsAt('2026-11-21T00:00:00Z').rolling(room, ROLLING)).servers;
    t.equal(row?.pings, 2, 'distinct pings');
    t.equal(row?.samples, 3, 'one sample per responder');
    t.equal(row?.medianMs, 200);
    t.same(
      row?.responders.map((r) => [r.server, r.medianMs, r.pings]),
      [
        ['one.example', 150, 2],
        ['two.example', 300, 1],
      ],
    );
  });

  t.test('equal medians share a rank, the next rank skips, ties are listed by name', async (t) => {
    const measuredAt = at('2026-11-20T10:00:00Z');
    await recordSamples(db, [
      sample({ pingServer: 'zeta.example', delayMs: 200, measuredAt }),
      sample({ pingServer: 'alpha.example', delayMs: 200, measuredAt }),
      sample({ pingServer: 'fast.example', delayMs: 100, measuredAt }),
      sample({ pingServer: 'slow.example', delayMs: 900, measuredAt }),
    ]);
    const board = await statisticsAt('2026-11-21T00:00:00Z').rolling(room, ROLLING);
    t.same(
      board.servers.map((s) => [s.rank, s.server]),
      [
        [1, 'fast.example'],
        [2, 'alpha.example'],
        [2, 'zeta.example'],
        [4, 'slow.example'],
      ],
    );
  });

  t.test('a minimum number of pings leaves out servers with fewer', async (t) => {
    const measuredAt = at('2026-11-20T10:00:00Z');
    await recordSamples(db, [
      sample({ pingServer: 'once.example', delayMs: 50, measuredAt }),
      sample({ pingServer: 'twice.example', delayMs: 300, measuredAt }),
      sample({ pingServer: 'twice.example', delayMs: 310, measuredAt }),
    ]);
    const board = await statisticsAt('2026-11-21T00:00:00Z', UTC_WEEKS, 2).rolling(room, ROLLING);
    t.same(
      board.servers.map((s) => [s.rank, s.server]),
      [[1, 'twice.example']],
    );
  });

  t.test('the rolling window includes both ends; max_age/min_age move it', async (t) => {
    const now = '2026-11-21T00:00:00Z';
    await recordSamples(db, [
      sample({ pingServer: 'edge-start.example', delayMs: 100, measuredAt: at('2026-11-14T00:00:00Z') }),
      sample({ pingServer: 'too-old.example', delayMs: 100, measuredAt: at('2026-11-13T23:59:59.999Z') }),
      sample({ pingServer: 'edge-end.example', delayMs: 100, measuredAt: at(now) }),
      sample({ pingServer: 'yesterday.example', delayMs: 100, measuredAt: at('2026-11-20T00:00:00Z') }),
    ]);
    const stats = statisticsAt(now);
    const week = await stats.rolling(room, ROLLING);
    t.same(week.servers.map((s) => s.server).sort(), ['edge-end.example', 'edge-start.example', 'yesterday.example']);
    const olderDay = await stats.rolling(room, {
      maxAgeSeconds: 2 * 86_400,
      minAgeSeconds: 86_400,
      capSpanToWeek: true,
    });
    t.same(
      olderDay.servers.map((s) => s.server),
      ['yesterday.example'],
    );
  });

  t.test('calendar weeks: boundaries in a non-UTC zone with a Friday 10:00 close', async (t) => {
    const berlin: WeekConfig = { timeZone: 'Europe/Berlin', closeWeekday: 5, closeHour: 10, graceMinutes: 60 };
    // 2026-W47 closes on Friday 2026-11-20 at 10:00 Berlin time, 09:00 UTC.
    await recordSamples(db, [
      sample({ pingServer: 'before-start.example', delayMs: 100, measuredAt: at('2026-11-13T08:59:59.999Z') }),
      sample({ pingServer: 'at-start.example', delayMs: 100, measuredAt: at('2026-11-13T09:00:00Z') }),
      sample({ pingServer: 'before-close.example', delayMs: 100, measuredAt: at('2026-11-20T08:59:59.999Z') }),
      sample({ pingServer: 'at-close.example', delayMs: 100, measuredAt: at('2026-11-20T09:00:00Z') }),
    ]);
    const board = await statisticsAt('2026-11-20T09:30:00Z', berlin).week(room, '2026-W47');
    t.equal(board.frozenAt, null, 'still in the grace period: computed live');
    t.same(board.servers.map((s) => s.server).sort(), ['at-start.example', 'before-close.example']);
    t.equal(board.window.start.toISOString(), '2026-11-13T09:00:00.000Z');
    t.equal(board.window.end.toISOString(), '2026-11-20T09:00:00.000Z');
  });

  t.test('calendar weeks across a daylight-saving change keep seven local days', async (t) => {
    const berlin: WeekConfig = { timeZone: 'Europe/Berlin', closeWeekday: 1, closeHour: 0, graceMinutes: 0 };
    // 2026-W43 (Mon 19 Oct to Mon 26 Oct, local) contains the switch back to CET on 25 Oct.
    await recordSamples(db, [
      sample({ pingServer: 'last-minute.example', delayMs: 100, measuredAt: at('2026-10-25T22:59:59Z') }),
      sample({ pingServer: 'next-week.example', delayMs: 100, measuredAt: at('2026-10-25T23:00:00Z') }),
    ]);
    const board = await statisticsAt('2026-11-21T00:00:00Z', berlin).week(room, '2026-W43');
    t.equal(board.window.end.getTime() - board.window.start.getTime(), 169 * 3_600_000);
    t.same(
      board.servers.map((s) => s.server),
      ['last-minute.example'],
    );
  });

  t.test('a closed week is frozen once and never changes, even when older samples arrive', async (t) => {
    await recordSamples(db, [
      sample({ pingServer: 'steady.example', delayMs: 300, measuredAt: at('2026-11-10T12:00:00Z') }),
      sample({ pingServer: 'steady.example', delayMs: 500, measuredAt: at('2026-11-11T12:00:00Z') }),
    ]);
    const stats = statisticsAt('2026-11-21T00:00:00Z');
    const beforeFreeze = await stats.week(room, '2026-W46');
    t.equal(beforeFreeze.frozenAt, null, 'a closed week the scheduler has not frozen yet is computed live');
    t.same(await listFrozenWeeks(db, ROOM), [], 'reading it stored nothing');
    t.same(await stats.freezeDueWeeks([room]), [`${ROOM} 2026-W46`], 'the scheduler freezes it');
    const first = await stats.week(room, '2026-W46');
    t.not(first.frozenAt, null);
    t.same(first.servers, beforeFreeze.servers, 'the table read before the freeze is the one frozen');
    t.equal(first.servers[0]?.medianMs, 400);

    await recordSamples(db, [
      sample({ pingServer: 'steady.example', delayMs: 5000, measuredAt: at('2026-11-12T12:00:00Z') }),
      sample({ pingServer: 'latecomer.example', delayMs: 50, measuredAt: at('2026-11-12T12:00:00Z') }),
    ]);
    // A new Statistics has no in-memory cache: the frozen table comes from the database.
    const again = await statisticsAt('2026-11-22T00:00:00Z').week(room, '2026-W46');
    t.same(again.servers, first.servers, 'the frozen table is unchanged');
    t.equal(again.frozenAt?.getTime(), first.frozenAt?.getTime());
    const stored = await db
      .selectFrom('samples')
      .select('ping_event_id')
      .where('room_id', '=', ROOM)
      .where('measured_at', '>=', again.window.start)
      .where('measured_at', '<=', again.window.end)
      .execute();
    t.equal(stored.length, 4, 'the late samples are stored, just not in the frozen table');
    const live = await statisticsAt('2026-11-22T00:00:00Z').rolling(room, {
      maxAgeSeconds: 14 * 86_400,
      minAgeSeconds: 0,
      capSpanToWeek: false,
    });
    t.same(
      live.servers.map((s) => s.server),
      ['latecomer.example', 'steady.example'],
      'live tables do see them',
    );
    t.equal(live.servers[1]?.medianMs, 500);
  });

  t.test('a week is not frozen before its grace period ends, nor when it has no samples', async (t) => {
    await recordSamples(db, [
      sample({ pingServer: 'late.example', delayMs: 300, measuredAt: at('2026-11-22T23:00:00Z') }),
    ]);
    const inGrace = await statisticsAt('2026-11-23T00:30:00Z').week(room, '2026-W47');
    t.equal(inGrace.frozenAt, null);
    const empty = await statisticsAt('2026-11-23T02:00:00Z').week(room, '2026-W40');
    t.equal(empty.frozenAt, null);
    t.same(empty.servers, []);
    t.same(await listFrozenWeeks(db, ROOM), []);
    await t.rejects(
      statisticsAt('2026-11-23T02:00:00Z').week(room, '2026-W49'),
      { name: 'InputError', parameter: 'week' },
      'a week that has not started',
    );
    await t.rejects(statisticsAt('2026-11-23T02:00:00Z').week(room, '2026-W54'), {
      name: 'InputError',
      parameter: 'week',
    });
  });

  t.test('freezeDueWeeks freezes the last closed week of each room once', async (t) => {
    await recordSamples(db, [
      sample({ pingServer: 'a.example', delayMs: 300, measuredAt: at('2026-11-18T12:00:00Z') }),
    ]);
    const stats = statisticsAt('2026-11-23T01:00:00Z');
    t.same(await stats.freezeDueWeeks([room]), [`${ROOM} 2026-W47`]);
    t.same(await stats.freezeDueWeeks([room]), [], 'already frozen');
    const weeks = await listFrozenWeeks(db, ROOM);
    t.same(
      weeks.map((w) => [w.week, w.servers]),
      [['2026-W47', 1]],
    );
  });

  /** hist.example pings once in each of 2026-W45, W46 and W47, at 100, 200 and 300 ms. */
  const recordWeeklyHistory = () =>
    recordSamples(db, [
      sample({ pingServer: 'hist.example', delayMs: 100, measuredAt: at('2026-11-04T12:00:00Z') }),
      sample({ pingServer: 'hist.example', delayMs: 200, measuredAt: at('2026-11-11T12:00:00Z') }),
      sample({ pingServer: 'hist.example', delayMs: 300, measuredAt: at('2026-11-18T12:00:00Z') }),
    ]);

  t.test("a server's weekly history uses frozen figures where frozen, live ones elsewhere", async (t) => {
    await recordWeeklyHistory();
    const stats = statisticsAt('2026-11-19T00:00:00Z');
    await stats.freeze(room, '2026-W46');
    const weeks = await stats.serverWeeks(room, 'hist.example', 4);
    t.same(
      weeks.map((w) => [w.week, w.frozen, w.rank, w.medianMs]),
      [
        ['2026-W44', false, null, null],
        ['2026-W45', false, null, 100],
        ['2026-W46', true, 1, 200],
        ['2026-W47', false, null, 300],
      ],
    );
  });
  t.test('writers side by side and digest builds in between lose no sample and count none twice', async (t) => {
    // Ten closed hours; every batch overlaps the next, so pairs of concurrent writers race on the same keys.
    const all = Array.from({ length: 2400 }, (_, i) =>
      sample({
        pingServer: `s${i % 7}.example`,
        pingEventId: `$race${Math.floor(i / 2)}`,
        delayMs: 20 + ((i * 7919) % 3000),
        responder: `@echo:r${i % 2}.example`,
        responderServer: `r${i % 2}.example`,
        measuredAt: new Date(Date.UTC(2026, 10, 20, 0) + (i % 10) * 3_600_000 + i),
      }),
    );
    const batches = Array.from({ length: 8 }, (_, b) => all.slice(b * 300, b * 300 + 450));
    const written = await Promise.all(
      batches.map(async (batch) => {
        const stored = await recordSamples(db, batch);
        // A build of its own, while the other writers still run.
        await statisticsAt('2026-11-21T00:00:00Z').buildDigests([room]);
        return stored;
      }),
    );
    const stats = statisticsAt('2026-11-21T00:00:00Z');
    t.equal(
      written.reduce((sum, w) => sum + w.stored, 0),
      all.length,
      'each sample stored exactly once',
    );
    await stats.buildDigests([room]);
    t.equal(await digestCount(), 7 * 24, 'every closed hour of the week read from its digest');
    const board = await stats.rolling(room, ROLLING);
    for (const server of board.servers) {
      const own = all
        .filter((s) => s.pingServer === server.server)
        .map((s) => s.delayMs)
        .sort(ascending);
      t.same(
        [server.samples, server.medianMs, server.p90Ms],
        [own.length, figuresOfSorted(own).medianMs, figuresOfSorted(own).p90Ms],
        `${server.server} from every sample`,
      );
    }
    t.equal(board.servers.length, 7);
  });
  t.test("one process's tables of two rooms, asked in turn, are each room's own", async (t) => {
    const other = RoomRegistry.untracked('!other:example.org');
    const hours = ['08', '09', '10', '11', '12'];
    await recordSamples(db, [
      // The first room: many servers, answered by two responders.
      ...hours.flatMap((hour, h) =>
        Array.from({ length: 40 }, (_, i) =>
          sample({
            pingServer: `big${i}.example`,
            delayMs: 100 + ((i * 37 + h * 11) % 400),
            measuredAt: at(`2026-11-20T${hour}:${String(i).padStart(2, '0')}:00Z`),
            ...(i % 3 === 0 ? { responder: '@echo:other.example', responderServer: 'other.example' } : {}),
          }),
        ),
      ),
      // The second: two servers of its own and one the first room has too, another responder.
      ...hours.flatMap((hour, h) =>
        ['small.example', 'tiny.example', 'big1.example'].map((pingServer, i) =>
          sample({
            roomId: other.id,
            pingServer,
            delayMs: 200 + 50 * i + h,
            measuredAt: at(`2026-11-20T${hour}:30:0${i}Z`),
            responder: '@echo:third.example',
            responderServer: 'third.example',
          }),
        ),
      ),
    ]);
    const now = '2026-11-20T12:45:00Z';
    const shared = statisticsAt(now);
    await shared.buildDigests([room, other]);
    const fresh = async (which: typeof room) => (await statisticsAt(now).rolling(which, ROLLING)).servers;
    const expected = new Map([
      [room, await fresh(room)],
      [other, await fresh(other)],
    ]);
    t.equal(expected.get(room)!.length, 40);
    t.same(
      expected
        .get(other)!
        .map((s) => `${s.server} ${s.responders.map((r) => r.server).join()}`)
        .sort(),
      ['big1.example third.example', 'small.example third.example', 'tiny.example third.example'],
      'only its own servers and responder',
    );
    for (const which of [room, other, room, other, other, room])
      t.same((await shared.rolling(which, ROLLING)).servers, expected.get(which), which.id);
    // What keeps them apart: one process's kept digests name each room's servers in that room's dictionary.
    const memory = new DecodedDigests();
    const window = rollingWindow(at(now), ROLLING);
    const namesIn = async (which: typeof room) =>
      new Set((await windowColumns(db, memory, which.roomIds, window, at(now))).flatMap((chunk) => chunk.servers));
    t.equal((await namesIn(room)).size, 40);
    t.same([...(await namesIn(other))].sort(), ['big1.example', 'small.example', 'tiny.example']);
  });

  for (const [path, rolling] of digestPaths)
    t.test(
      `server_names emptied and filled again by hand: a process that named digests names the new ones anew (${path})`,
      async (t) => {
        await recordSamples(db, [
          sample({ pingServer: 'a.example', delayMs: 100, measuredAt: at('2026-11-20T10:00:00Z') }),
          sample({ pingServer: 'b.example', delayMs: 200, measuredAt: at('2026-11-20T10:00:00Z') }),
        ]);
        const stats = statisticsAt('2026-11-21T00:00:00Z');
        const before = (await rolling(stats)).servers;
        t.same(
          before.map((row) => [row.server, row.medianMs]),
          [
            ['a.example', 100],
            ['b.example', 200],
          ],
        );
        const idsBy = async () =>
          new Map(
            (await sql<{ name: string; id: number }>`select name, id from server_names`.execute(db)).rows.map((r) => [
              r.name,
              r.id,
            ]),
          );
        const old = await idsBy();
        // Numbered again from 1 in the reverse order: each id the process knows now names another server.
        await sql`truncate hourly_digests`.execute(db);
        await sql`truncate server_names restart identity`.execute(db);
        await sql`insert into server_names (name) select unnest(${[...old.keys()].sort().reverse()}::text[])`.execute(
          db,
        );
        const renumbered = await idsBy();
        t.not(renumbered.get('a.example'), old.get('a.example'), 'a.example has another id');
        const nameNowAt = (id: number | undefined) => [...renumbered].find(([, at]) => at === id)?.[0];
        t.not(nameNowAt(old.get('a.example')), 'a.example', "a.example's old id names another server now");
        const decoded = stats.digestsDecoded;
        t.same((await rolling(stats)).servers, before, 'the same table, named by the new ids');
        t.equal(
          stats.digestsDecoded > decoded,
          rolling === readRolling,
          'digests read only where another process built them',
        );
      },
    );

  t.test('server_names_epoch refuses a second row, which would fail every read of the digests', async (t) => {
    await recordSamples(db, [
      sample({ pingServer: 'a.example', delayMs: 100, measuredAt: at('2026-11-20T10:00:00Z') }),
    ]);
    const stats = statisticsAt('2026-11-21T00:00:00Z');
    const before = await digestedRolling(stats);
    await t.rejects(
      sql`insert into server_names_epoch (epoch) values (1)`.execute(db),
      /server_names_epoch_one_row/,
      'a second row is refused, naming the index',
    );
    t.same(await digestedRolling(statisticsAt('2026-11-21T00:00:00Z')), before, 'a new process reads the digests');
  });

  for (const [path, rolling] of digestPaths)
    t.test(
      `a server renamed in server_names by a transaction still open when digests are read: the names are read again once it commits (${path})`,
      { skip: database.engine === 'postgres' ? false : 'PostgreSQL only: two sessions at once' },
      async (t) => {
        const hour = (h: number) => at(`2026-11-20T${String(h).padStart(2, '0')}:30:00Z`);
        await recordSamples(db, [sample({ pingServer: 'a.example', delayMs: 100, measuredAt: hour(10) })]);
        const stats = statisticsAt('2026-11-21T00:00:00Z');
        await rolling(stats);
        const renaming = new pg.Client({ connectionString: database.url });
        await renaming.connect();
        t.teardown(() => renaming.end());
        await renaming.query('begin');
        await renaming.query(`update server_names set name = 'z.example' where name = 'a.example'`);
        // Read while the rename is open: a digest of another hour, stored meanwhile, is named.
        await recordSamples(db, [sample({ pingServer: 'c.example', delayMs: 300, measuredAt: hour(11) })]);
        await rolling(stats);
        await renaming.query('commit');
        // A pong of the renamed server: its digest names the id a.example had.
        await recordSamples(db, [sample({ pingServer: 'z.example', delayMs: 500, measuredAt: hour(12) })]);
        const after = (await rolling(stats)).servers.map((row) => [row.server, row.samples]);
        t.same(
          after.find(([server]) => server === 'z.example'),
          ['z.example', 1],
          'the new digest names its server by the committed name',
        );
        t.same(
          after.find(([server]) => server === 'a.example'),
          ['a.example', 1],
          'the digest named before the rename keeps its name',
        );
      },
    );

  t.test('rebuilding digests numbers no server name twice and uses up no id', async (t) => {
    await recordSamples(
      db,
      ['a.example', 'b.example', 'c.example'].map((pingServer, i) =>
        sample({ pingServer, delayMs: 100 + i, measuredAt: at('2026-11-20T10:00:00Z') }),
      ),
    );
    const stats = statisticsAt('2026-11-21T00:00:00Z');
    const before = (await stats.rolling(room, ROLLING)).servers;
    for (let i = 0; i < 3; i++) {
      await db.deleteFrom('hourly_digests').execute();
      await stats.buildDigests([room]);
      t.same((await stats.rolling(room, ROLLING)).servers, before, `rebuild ${i + 1}: the same table`);
    }
    await recordSamples(db, [
      sample({ pingServer: 'd.example', delayMs: 100, measuredAt: at('2026-11-20T11:00:00Z') }),
    ]);
    await stats.buildDigests([room]);
    const { rows } = await sql<{ name: string; id: number }>`select name, id from server_names order by id`.execute(db);
    t.same(
      rows.map((r) => r.name).sort(),
      ['a.example', 'b.example', 'c.example', 'd.example', 'maunium.net'],
      'each name once',
    );
    t.same(
      rows.map((r) => r.id),
      [1, 2, 3, 4, 5],
      'the rebuilds used up no id: the new name came next',
    );
  });
  t.test(
    'of two pongs of one responder to one ping, the earlier is kept even when it is recorded second',
    async (t) => {
      const later = sample({
        pingServer: 'pong.example',
        pingEventId: '$twice',
        delayMs: 900,
        measuredAt: at('2026-11-20T10:00:00.900Z'),
      });
      const earlier = { ...later, delayMs: 300, measuredAt: at('2026-11-20T10:00:00.300Z') };
      await recordSamples(db, [later]);
      const stats = statisticsAt('2026-11-21T00:00:00Z');
      t.equal((await digestedRolling(stats)).servers[0]?.medianMs, 900, 'the later pong, digested');
      t.same(
        await recordSamples(db, [earlier], { keepEarliestPong: true }),
        { stored: 0, duplicate: 1 },
        'a replacement counts as a duplicate',
      );
      const rows = await db
        .selectFrom('samples')
        .select(['delay_ms', 'measured_at'])
        .where('ping_event_id', '=', '$twice')
        .execute();
      t.same(rows, [{ delay_ms: 300, measured_at: earlier.measuredAt }], 'the earlier pong replaced it');
      t.equal((await digestedRolling(stats)).servers[0]?.medianMs, 300, 'and its hour was digested again');
      await recordSamples(db, [later], { keepEarliestPong: true });
      t.same(
        (await db.selectFrom('samples').select('delay_ms').where('ping_event_id', '=', '$twice').execute()).map(
          (r) => r.delay_ms,
        ),
        [300],
        'a later one does not replace it',
      );
    },
  );

  /** Two bots of b.example answer one ping of b.example: @echo at 10:59:59.950 (50 ms), @echo2 in the next hour (20 ms). */
  const firstPong = sample({
    pingServer: 'b.example',
    pingEventId: '$across',
    delayMs: 50,
    responder: '@echo:b.example',
    responderServer: 'b.example',
    measuredAt: at('2026-11-20T10:59:59.950Z'),
  });
  const secondPong = {
    ...firstPong,
    delayMs: 20,
    responder: '@echo2:b.example',
    measuredAt: at('2026-11-20T11:00:00.050Z'),
  };

  t.test(
    "a server's second bot whose pong lands in the next hour is not counted, from digests or from raw samples",
    async (t) => {
      await recordSamples(db, [firstPong, secondPong]);
      const raw = (await statisticsAt('2026-11-21T00:00:00Z').rolling(room, ROLLING)).servers;
      t.same(
        raw.map((s) => [s.server, s.medianMs, s.pings, s.samples]),
        [['b.example', 50, 1, 1]],
        'both hours from the samples',
      );
      const digested = (await digestedRolling(statisticsAt('2026-11-21T00:00:00Z'))).servers;
      t.equal(await digestCount(), 7 * 24, "the last seven days' hours are digested");
      t.same(digested, raw, 'both hours from their digests');
      await db.deleteFrom('hourly_digests').where('hour', '>=', at('2026-11-20T11:00:00Z')).execute();
      const current = (await statisticsAt('2026-11-20T11:30:00Z').rolling(room, ROLLING)).servers;
      t.same(
        current.map((s) => [s.server, s.medianMs, s.samples]),
        [['b.example', 50, 1]],
        'the current hour from samples, the one before from its digest',
      );
      const fromTheSecond = (
        await statisticsAt('2026-11-20T11:30:00Z').rolling(room, {
          maxAgeSeconds: 1800,
          minAgeSeconds: 0,
          capSpanToWeek: false,
        })
      ).servers;
      t.same(
        fromTheSecond,
        [],
        "a window holding only the second pong holds no figure: the first pong is the server's, outside it",
      );
    },
  );

  /** Sets a stored digest's measured times by hand (the figures they belong to stay as they are). */
  const setMeasuredOffsets = async (hour: string, offsets: (samples: number) => string | null) => {
    const { samples } = await db
      .selectFrom('hourly_digests')
      .select('samples')
      .where('hour', '=', at(hour))
      .executeTakeFirstOrThrow();
    await db
      .updateTable('hourly_digests')
      .set({ measured_offsets: offsets(samples) })
      .where('hour', '=', at(hour))
      .execute();
  };
  /** Times that put every figure of its hour a millisecond before the hour began. */
  const allBeforeTheHour = (samples: number) => Buffer.alloc(4 * samples, 0xff).toString('base64');
  const byServer = (board: { servers: readonly { server: string; samples: number; medianMs: number }[] }) =>
    board.servers.map((s) => [s.server, s.samples, s.medianMs]);
  /** A pong to a ping of a.example with this delay, measured at `iso` (its ping's ID given where a test moves it). */
  const pongOfA = (delayMs: number, iso: string, pingEventId?: string) =>
    sample({ pingServer: 'a.example', delayMs, measuredAt: at(iso), ...(pingEventId ? { pingEventId } : {}) });

  t.test(
    'the hour a rolling week begins in partway is taken from its digest, with the same figures as from the samples',
    async (t) => {
      // The week begins at 2026-11-14T00:20:00.500Z, partway through the hour of 00:00.
      const now = '2026-11-21T00:20:00.500Z';
      const start = (ms: number) => new Date(Date.parse('2026-11-14T00:20:00.500Z') + ms);
      await recordSamples(db, [
        sample({ pingServer: 'a.example', delayMs: 100, measuredAt: start(-600_000) }),
        sample({ pingServer: 'a.example', delayMs: 150, measuredAt: start(-1) }),
        sample({ pingServer: 'a.example', delayMs: 200, measuredAt: start(0) }),
        sample({ pingServer: 'a.example', delayMs: 300, measuredAt: start(600_000) }),
        // Their times are moved by a fraction of a millisecond below: one just before the start, one just after.
        sample({ pingServer: 'a.example', pingEventId: '$justBefore', delayMs: 400, measuredAt: start(0) }),
        sample({ pingServer: 'a.example', pingEventId: '$justAfter', delayMs: 500, measuredAt: start(0) }),
        // A ping whose server b.example answered before the week began, then again (another bot) within it.
        sample({
          pingServer: 'c.example',
          pingEventId: '$answeredBefore',
          delayMs: 40,
          responder: '@echo:b.example',
          responderServer: 'b.example',
          measuredAt: start(-300_000),
        }),
        sample({
          pingServer: 'c.example',
          pingEventId: '$answeredBefore',
          delayMs: 900,
          responder: '@echo2:b.example',
          responderServer: 'b.example',
          measuredAt: start(300_000),
        }),
        sample({ pingServer: 'c.example', delayMs: 60, measuredAt: at('2026-11-17T12:00:00Z') }),
        // The current hour: from the samples whatever the digests.
        sample({ pingServer: 'a.example', delayMs: 700, measuredAt: at('2026-11-21T00:10:00Z') }),
      ]);
      await sql`update samples set measured_at = measured_at - interval '0.001 ms' where ping_event_id = '$justBefore'`.execute(
        db,
      );
      await sql`update samples set measured_at = measured_at + interval '0.001 ms' where ping_event_id = '$justAfter'`.execute(
        db,
      );
      const fromSamples = await statisticsAt(now).rolling(room, ROLLING);
      t.same(
        byServer(fromSamples),
        [
          ['c.example', 1, 60],
          ['a.example', 4, 400],
        ],
        'from the samples: the pongs from the start on (to the microsecond), less the one whose server answered before',
      );
      t.equal(await digestCount(), 0, 'no digest yet');
      const stats = statisticsAt(now);
      t.same(await digestedRolling(stats), fromSamples, 'from the digests: the same table');
      t.equal(await digestCount(), 7 * 24, 'the 167 hours wholly inside the week and the one it begins in partway');
      t.same(await readRolling(statisticsAt(now)), fromSamples, 'the same table in a process that reads the digests');

      await setMeasuredOffsets('2026-11-14T00:00:00Z', allBeforeTheHour);
      t.same(
        byServer(await stats.rolling(room, ROLLING)),
        [
          ['c.example', 1, 60],
          ['a.example', 1, 700],
        ],
        'the figures of the first hour are those its digest puts after the start (its times changed by hand: none)',
      );
      await setMeasuredOffsets('2026-11-14T00:00:00Z', () => null);
      t.same(
        await stats.rolling(room, ROLLING),
        fromSamples,
        'a digest stored without times: that hour from the samples',
      );
      await setMeasuredOffsets('2026-11-14T00:00:00Z', () => 'AAAA');
      await t.rejects(
        stats.rolling(room, ROLLING),
        /an hourly digest's measured times are 3 bytes, where its 7 figures need 28/,
        'times that are not one per figure are refused, naming what is wrong',
      );
      // A row whose count no longer matches the figures this process keeps for its generation (changed by hand).
      await db
        .updateTable('hourly_digests')
        .set((eb) => ({ samples: eb('samples', '+', 1) }))
        .where('hour', '=', at('2026-11-14T00:00:00Z'))
        .execute();
      await setMeasuredOffsets('2026-11-14T00:00:00Z', allBeforeTheHour);
      await t.rejects(
        stats.rolling(room, ROLLING),
        /an hourly digest holds 7 figures, where its row says 8/,
        "kept figures that are not the row's are refused, not filtered by times of another length",
      );
    },
  );

  t.test(
    'a calendar week ending partway through a closed hour takes that hour from its digest, up to the end',
    async (t) => {
      // In Asia/Kolkata (UTC+5:30) 2026-W47 ends at 2026-11-22T18:30Z, partway through the hour of 18:00.
      const weeks: WeekConfig = { timeZone: 'Asia/Kolkata', closeWeekday: 1, closeHour: 0, graceMinutes: 60 };
      const now = '2026-11-23T12:00:00Z';
      await recordSamples(db, [
        pongOfA(100, '2026-11-22T18:10:00Z'),
        pongOfA(200, '2026-11-22T18:29:59.999Z'),
        pongOfA(900, '2026-11-22T18:30:00Z'),
        pongOfA(300, '2026-11-22T10:00:00Z'),
        // Moved below to a microsecond before the end.
        pongOfA(250, '2026-11-22T18:30:00Z', '$justBeforeEnd'),
      ]);
      await sql`update samples set measured_at = measured_at - interval '0.001 ms' where ping_event_id = '$justBeforeEnd'`.execute(
        db,
      );
      const fromSamples = await statisticsAt(now, weeks).week(room, '2026-W47');
      t.same(
        byServer(fromSamples),
        [['a.example', 4, 225]],
        'from the samples: up to the end (to the microsecond), which is excluded',
      );
      const stats = statisticsAt(now, weeks);
      await stats.buildDigests([room]);
      t.same(await stats.week(room, '2026-W47'), fromSamples, 'from the digests: the same table');
      await setMeasuredOffsets('2026-11-22T18:00:00Z', allBeforeTheHour);
      t.same(
        byServer(await stats.week(room, '2026-W47')),
        [['a.example', 1, 300]],
        "the last hour's figures are those its digest puts before the end (its times changed by hand: none)",
      );
    },
  );

  t.test(
    "a digest's times go with its figures: replaced without them, they are cleared, and the build stores them again",
    async (t) => {
      await recordSamples(db, [
        sample({ pingServer: 'a.example', delayMs: 100, measuredAt: at('2026-11-20T10:10:00Z') }),
      ]);
      const stats = statisticsAt('2026-11-21T00:20:00Z');
      await stats.buildDigests([room]);
      const timesOf = async () =>
        (
          await db
            .selectFrom('hourly_digests')
            .select('measured_offsets')
            .where('hour', '=', at('2026-11-20T10:00:00Z'))
            .executeTakeFirstOrThrow()
        ).measured_offsets;
      t.ok(await timesOf(), 'built with its times');
      // What a build of the version before does to a digest stored meanwhile: new figures, the times untouched.
      await db
        .updateTable('hourly_digests')
        .set({ columns: '' })
        .where('hour', '=', at('2026-11-20T10:00:00Z'))
        .execute();
      t.equal(await timesOf(), null, 'figures replaced without their times: the times are cleared');
      t.equal(await stats.buildDigests([room]), 1, 'the build counts a digest without times as missing');
      t.ok(await timesOf(), 'and stores it again with them');
      t.same(byServer(await stats.rolling(room, ROLLING)), [['a.example', 1, 100]], 'the table as before');
    },
  );

  t.test(
    "a bot's own answer measured before an hour ends but stamped after it counts in the hour it was measured in",
    async (t) => {
      await recordSamples(db, [
        sample({
          pingServer: 'a.example',
          pingEventId: '$stamped',
          delayMs: 300,
          responder: '@pingboard:b.example',
          responderServer: 'b.example',
          source: 'echo',
          measuredAt: at('2026-11-20T10:59:59.900Z'),
        }),
        // Another ping's pong, measured once the hour had ended but stamped before the bot's answer.
        sample({ pingServer: 'c.example', delayMs: 50, measuredAt: at('2026-11-20T11:00:00.100Z') }),
      ]);
      await sql`update samples set pong_ts = '2026-11-20T11:00:00.500Z' where ping_event_id = '$stamped'`.execute(db);
      // A window that ends at 11:00, computed when the digests of 10:00 and 11:00 are built by one run.
      const window = { maxAgeSeconds: 86_400, minAgeSeconds: 5_400, capSpanToWeek: false };
      const fromSamples = await statisticsAt('2026-11-20T12:30:00Z').rolling(room, window);
      t.same(byServer(fromSamples), [['a.example', 1, 300]], 'from the samples: the answer measured before the end');
      const stats = statisticsAt('2026-11-20T12:30:00Z');
      await stats.buildDigests([room]);
      t.same(await stats.rolling(room, window), fromSamples, 'from the digests: the same, the answer in its own hour');
    },
  );

  t.test(
    "an import's build digests the hour going on, which the table reads from it until that hour's next sample",
    async (t) => {
      const now = '2026-11-21T00:40:00Z';
      await recordSamples(db, [
        sample({ pingServer: 'a.example', delayMs: 100, measuredAt: at('2026-11-20T10:00:00Z') }),
        sample({ pingServer: 'a.example', delayMs: 700, measuredAt: at('2026-11-21T00:10:00Z') }),
        sample({ pingServer: 'c.example', delayMs: 300, measuredAt: at('2026-11-21T00:30:00Z') }),
      ]);
      const fromSamples = await statisticsAt(now).rolling(room, ROLLING);
      t.same(
        byServer(fromSamples),
        [
          ['c.example', 1, 300],
          ['a.example', 2, 400],
        ],
        'from the samples',
      );
      const stats = statisticsAt(now);
      t.equal(
        await stats.buildDigests([room], { currentHour: true }),
        7 * 24 + 1,
        "the week's hours and the one going on",
      );
      t.same(await stats.rolling(room, ROLLING), fromSamples, 'the same table with the hour going on from its digest');
      t.same(await readRolling(statisticsAt(now)), fromSamples, 'and in a process that reads the digests');
      await setMeasuredOffsets('2026-11-21T00:00:00Z', allBeforeTheHour);
      t.same(
        byServer(await stats.rolling(room, ROLLING)),
        [['a.example', 1, 100]],
        'the hour going on is what its digest says (its times changed by hand: none of its figures in it)',
      );
      await recordSamples(db, [
        sample({ pingServer: 'c.example', delayMs: 400, measuredAt: at('2026-11-21T00:35:00Z') }),
      ]);
      t.equal(
        await db
          .selectFrom('hourly_digests')
          .select('hour')
          .where('hour', '=', at('2026-11-21T00:00:00Z'))
          .executeTakeFirst(),
        undefined,
        "the hour's next sample drops its digest",
      );
      const afterNext = [
        ['c.example', 2, 350],
        ['a.example', 2, 400],
      ];
      t.same(byServer(await stats.rolling(room, ROLLING)), afterNext, 'which the table then reads from the samples');
      t.equal(await stats.buildDigests([room]), 0, "the scheduler's build leaves the hour going on to the samples");
      t.same(byServer(await stats.rolling(room, ROLLING)), afterNext, 'the same table after it');
    },
  );

  t.test(
    "a window's included end takes its hour from the digest, unless a figure was measured in the end's millisecond",
    async (t) => {
      // Ends at 11:45:00.000, included, partway through the closed hour of 11:00.
      const window = { maxAgeSeconds: 86_400, minAgeSeconds: 2_700, capSpanToWeek: false };
      const now = '2026-11-20T12:30:00Z';
      await recordSamples(db, [
        pongOfA(50, '2026-11-20T10:00:00Z'),
        pongOfA(100, '2026-11-20T11:10:00Z'),
        pongOfA(200, '2026-11-20T11:44:59.999Z'),
        pongOfA(800, '2026-11-20T11:50:00Z'),
        pongOfA(300, '2026-11-20T11:45:00Z', '$atEnd'),
        // Moved below to half a millisecond past the end: in the end's millisecond, yet after it.
        pongOfA(900, '2026-11-20T11:45:00Z', '$pastEnd'),
      ]);
      await sql`update samples set measured_at = measured_at + interval '0.5 ms' where ping_event_id = '$pastEnd'`.execute(
        db,
      );
      const fromSamples = await statisticsAt(now).rolling(room, window);
      t.same(byServer(fromSamples), [['a.example', 4, 150]], 'from the samples: up to the end, which is included');
      const stats = statisticsAt(now);
      await stats.buildDigests([room]);
      t.same(
        await stats.rolling(room, window),
        fromSamples,
        "from the digests: the same (the end's hour from its samples)",
      );
      await db.deleteFrom('samples').where('ping_event_id', 'in', ['$atEnd', '$pastEnd']).execute();
      await stats.buildDigests([room]);
      const digested = await stats.rolling(room, window);
      t.same(byServer(digested), [['a.example', 3, 100]], 'without the pongs of that millisecond');
      await setMeasuredOffsets('2026-11-20T11:00:00Z', allBeforeTheHour);
      t.same(
        byServer(await stats.rolling(room, window)),
        [['a.example', 1, 50]],
        "the end's hour from its digest once no figure is in the end's millisecond (its times changed by hand: none)",
      );
    },
  );

  t.test(
    "a server's earlier pong stored after its later one takes its place in an hour already digested",
    async (t) => {
      await recordSamples(db, [secondPong]);
      const stats = statisticsAt('2026-11-21T00:00:00Z');
      t.equal((await digestedRolling(stats)).servers[0]?.medianMs, 20, 'the later pong alone, digested');
      await recordSamples(db, [firstPong]);
      t.same(
        (await digestedRolling(stats)).servers.map((s) => [s.medianMs, s.samples]),
        [[50, 1]],
        'the earlier pong counts, the digested later one no more',
      );
    },
  );

  t.test(
    "when retention deletes a server's first pong to a ping, its next pong counts in its own hour's digest",
    async (t) => {
      await recordSamples(db, [firstPong, secondPong]);
      const stats = statisticsAt('2026-11-21T00:00:00Z');
      t.equal((await digestedRolling(stats)).servers[0]?.medianMs, 50, 'both hours digested');
      t.equal(await deleteSamplesBefore(db, at('2026-11-20T11:00:00Z')), 1);
      t.same(
        (await digestedRolling(stats)).servers.map((s) => [s.medianMs, s.samples]),
        [[20, 1]],
        'the pong left counts',
      );
    },
  );

  t.test("the bot's own answer counts by its pong's time, not by when it measured the ping", async (t) => {
    // The bot measured at 10:30:00.000 and its pong was stamped at .120; the other bot of its server ponged at .060.
    const own = sample({
      pingServer: 'a.example',
      pingEventId: '$own',
      delayMs: 300,
      responder: '@pingboard:b.example',
      responderServer: 'b.example',
      source: 'echo',
      measuredAt: at('2026-11-20T10:30:00.000Z'),
    });
    const other = {
      ...own,
      delayMs: 200,
      responder: '@echo:b.example',
      source: 'pong' as const,
      measuredAt: at('2026-11-20T10:30:00.060Z'),
    };
    await recordSamples(db, [own, other]);
    const stats = statisticsAt('2026-11-21T00:00:00Z');
    t.equal(
      (await digestedRolling(stats)).servers[0]?.medianMs,
      300,
      "before its pong time is known, the bot's answer is the earlier",
    );
    // The bot reads its own pong back: the same key, stamped at .120.
    await recordSamples(db, [{ ...own, source: 'pong', measuredAt: at('2026-11-20T10:30:00.120Z') }]);
    t.same(
      (await digestedRolling(stats)).servers.map((s) => [s.medianMs, s.samples]),
      [[200, 1]],
      'the other bot ponged first, as the aggregator saw it; the digest was rebuilt',
    );
  });

  t.test("a frozen week counts each server's first pong to a ping", async (t) => {
    await recordSamples(db, [
      firstPong,
      secondPong,
      {
        ...secondPong,
        pingEventId: '$other',
        delayMs: 70,
        responder: '@echo:b.example',
        measuredAt: at('2026-11-19T08:00:00Z'),
      },
    ]);
    const stats = statisticsAt('2026-11-24T00:00:00Z');
    const live = await stats.week(room, '2026-W47');
    await stats.freezeDueWeeks([room]);
    const week = await stats.week(room, '2026-W47');
    t.not(week.frozenAt, null);
    t.same(week.servers, live.servers, 'as computed before the freeze');
    t.same(
      week.servers.map((s) => [s.server, s.medianMs, s.pings, s.samples]),
      [['b.example', 60, 2, 2]],
    );
    const stored = await statisticsAt('2026-11-25T00:00:00Z').week(room, '2026-W47');
    t.same(stored.servers, week.servers, 'as stored');
  });

  t.test("a server's weekly history puts live figures on the right week when earlier weeks are frozen", async (t) => {
    await recordWeeklyHistory();
    const stats = statisticsAt('2026-11-19T00:00:00Z');
    await stats.freeze(room, '2026-W45');
    await stats.freeze(room, '2026-W46');
    const weeks = await stats.serverWeeks(room, 'hist.example', 3);
    t.same(
      weeks.map((w) => [w.week, w.frozen, w.medianMs]),
      [
        ['2026-W45', true, 100],
        ['2026-W46', true, 200],
        ['2026-W47', false, 300],
      ],
    );
  });
});
