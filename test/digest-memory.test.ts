// The hourly digests a process keeps decoded in memory (DecodedDigests): a
// table computed with them is the table computed by a process that has none,
// however the samples changed since they were read: a sample added, deleted
// by retention, a server excluded by the operator, or samples imported by
// another process, whose digest build stores the same hours again. And the
// kept digests are used: a table computed again reads none from the database,
// and the digests a process built it never reads back.
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import t from 'tap';
import { excludeServer, includeServer } from '../src/stats/exclusions.ts';
import { recordSamples } from '../src/samples/repository.ts';
import { applyRetention } from '../src/schedule/retention.ts';
import { Statistics } from '../src/stats/leaderboard.ts';
import { RoomRegistry } from '../src/stats/rooms.ts';
import { forEachEngine, type Test } from './helpers/database.ts';
import { runPingboard } from './helpers/process.ts';
import { ROOM, sample } from './helpers/samples.ts';

const HOUR = 3_600_000;
// Near the real time: the import command builds the digests of the seven days before its own clock.
const NOW = new Date(Math.floor(Date.now() / HOUR) * HOUR + HOUR / 2);
const hoursAgo = (hours: number) => new Date(NOW.getTime() - hours * HOUR);
const WEEKS = { timeZone: 'UTC', closeWeekday: 1, closeHour: 0, graceMinutes: 60 };
const FILTERS = { minDelayMs: 10, maxDelayMs: 600_000, minPings: 1 };
const ROLLING = { maxAgeSeconds: 7 * 86_400, minAgeSeconds: 0, capSpanToWeek: false };
const room = RoomRegistry.untracked(ROOM);

const dir = mkdtempSync(path.join(tmpdir(), 'pingboard-digest-memory-'));
t.teardown(() => rmSync(dir, { recursive: true, force: true }));

forEachEngine(t, (t, database) => {
  const { db } = database;
  const statistics = () => new Statistics({ db, stats: FILTERS, weeks: WEEKS, cacheSeconds: 0, now: () => NOW });

  /** The rolling week as a process with no digest in memory computes it. */
  const fromScratch = async () => (await statistics().rolling(room, ROLLING)).servers;
  const storedDigests = async () =>
    Number(
      (
        await db
          .selectFrom('hourly_digests')
          .select((eb) => eb.fn.countAll<string>().as('n'))
          .where('room_id', '=', ROOM)
          .executeTakeFirstOrThrow()
      ).n,
    );

  const recordWeek = () =>
    recordSamples(db, [
      sample({ pingServer: 'a.example', delayMs: 100, measuredAt: hoursAgo(100) }),
      sample({ pingServer: 'a.example', delayMs: 140, measuredAt: hoursAgo(5) }),
      sample({ pingServer: 'b.example', delayMs: 300, measuredAt: hoursAgo(50) }),
      sample({ pingServer: 'c.example', delayMs: 50, measuredAt: hoursAgo(3) }),
    ]);

  /** A week of samples, every hour digested by another process, and a Statistics that has read them all. */
  const setUp = async (t: Test) => {
    await recordWeek();
    await statistics().buildDigests([room]);
    const stats = statistics();
    const digests = await storedDigests();
    t.ok(digests >= 7 * 24 - 1, `the week's closed hours digested (${digests})`);
    const first = await stats.rolling(room, ROLLING);
    t.equal(stats.digestsDecoded, digests, 'the first table read every digest');
    t.same(first.servers, await fromScratch(), 'the same table as a process with no digest in memory');
    return stats;
  };

  const serversOf = async (stats: Statistics) =>
    (await stats.rolling(room, ROLLING)).servers.map((s) => [s.server, s.medianMs, s.samples]);

  t.test('the digests a process built are in its first table without being read back', async (t) => {
    await recordWeek();
    const stats = statistics();
    await stats.buildDigests([room]);
    t.ok((await storedDigests()) >= 7 * 24 - 1, "the week's closed hours digested");
    t.same((await stats.rolling(room, ROLLING)).servers, await fromScratch());
    t.equal(stats.digestsDecoded, 0, 'no digest read from the database');
    await recordSamples(db, [sample({ pingServer: 'b.example', delayMs: 500, measuredAt: hoursAgo(50) })]);
    await stats.buildDigests([room]);
    t.same(await serversOf(stats), [
      ['c.example', 50, 1],
      ['a.example', 120, 2],
      ['b.example', 400, 2],
    ]);
    t.equal(stats.digestsDecoded, 0, 'the hour built again kept as it was stored, not read');
    // Stored again by another process: the kept one is no longer the stored generation.
    await recordSamples(db, [sample({ pingServer: 'c.example', delayMs: 70, measuredAt: hoursAgo(50) })]);
    await statistics().buildDigests([room]);
    t.same(await serversOf(stats), [
      ['c.example', 60, 2],
      ['a.example', 120, 2],
      ['b.example', 400, 2],
    ]);
    t.same((await stats.rolling(room, ROLLING)).servers, await fromScratch());
    t.equal(stats.digestsDecoded, 1, 'the hour another process stored again read, and only it');
  });

  t.test('a process told not to keep what it builds reads it back', async (t) => {
    await recordWeek();
    const oneShot = new Statistics({
      db,
      stats: FILTERS,
      weeks: WEEKS,
      cacheSeconds: 0,
      now: () => NOW,
      keepBuiltDigests: false,
    });
    await oneShot.buildDigests([room]);
    t.same((await oneShot.rolling(room, ROLLING)).servers, await fromScratch());
    t.equal(oneShot.digestsDecoded, await storedDigests(), 'every digest read from the database');
  });

  t.test('a table computed again reads no digest from the database', async (t) => {
    const stats = await setUp(t);
    const decoded = stats.digestsDecoded;
    const again = await stats.rolling(room, ROLLING);
    t.equal(stats.digestsDecoded, decoded, 'every digest came from memory');
    t.same(again.servers, await fromScratch());
  });

  t.test(
    'a sample added: its hour from the samples until another process stores it again, then that one digest read',
    async (t) => {
      const stats = await setUp(t);
      const decoded = stats.digestsDecoded;
      await recordSamples(db, [sample({ pingServer: 'b.example', delayMs: 500, measuredAt: hoursAgo(50) })]);
      t.same(await serversOf(stats), [
        ['c.example', 50, 1],
        ['a.example', 120, 2],
        ['b.example', 400, 2],
      ]);
      t.same((await stats.rolling(room, ROLLING)).servers, await fromScratch());
      t.equal(stats.digestsDecoded, decoded, 'the dropped hour came from the samples');
      await statistics().buildDigests([room]);
      t.same((await stats.rolling(room, ROLLING)).servers, await fromScratch());
      t.equal(stats.digestsDecoded, decoded + 1, 'the hour stored again read, and only it');
    },
  );

  t.test('samples deleted by retention are gone from the table', async (t) => {
    const stats = await setUp(t);
    // Four days: the sample of 100 hours ago goes.
    t.match(await applyRetention(db, NOW, 4), { samples: 1 });
    t.same(await serversOf(stats), [
      ['c.example', 50, 1],
      ['a.example', 140, 1],
      ['b.example', 300, 1],
    ]);
    t.same((await stats.rolling(room, ROLLING)).servers, await fromScratch());
  });

  t.test('a server excluded by the operator leaves the table, and comes back when included', async (t) => {
    const stats = await setUp(t);
    const decoded = stats.digestsDecoded;
    await excludeServer(db, ROOM, { server: 'b.example', reason: 'test', excludedBy: '@op:example.org' });
    t.same(await serversOf(stats), [
      ['c.example', 50, 1],
      ['a.example', 120, 2],
    ]);
    t.same((await stats.rolling(room, ROLLING)).servers, await fromScratch());
    t.ok(await includeServer(db, ROOM, 'b.example'));
    t.same(await serversOf(stats), [
      ['c.example', 50, 1],
      ['a.example', 120, 2],
      ['b.example', 300, 1],
    ]);
    t.equal(stats.digestsDecoded, decoded, 'an exclusion changes no digest');
  });

  t.test(
    'samples imported by another process, which stores the same hours again, are in the next table',
    {
      skip:
        database.engine !== 'postgres' &&
        'an embedded database belongs to one process: no other process can write to it while this one has it open',
    },
    async (t) => {
      const stats = await setUp(t);
      const decoded = stats.digestsDecoded;
      const file = path.join(dir, 'import.ndjson');
      // Into the hour of b.example's sample, which this process holds decoded.
      writeFileSync(
        file,
        `${JSON.stringify({
          room_id: ROOM,
          ping_event_id: '$imported',
          pinger: '@alice:b.example',
          responder: '@echo:maunium.net',
          delay_ms: 500,
          ping_ts: hoursAgo(50).getTime() + 1000,
        })}\n`,
      );
      const imported = await runPingboard(dir, ['import', file], { DATABASE_URL: database.url! });
      t.equal(imported.code, 0, imported.stderr);
      t.match(imported.stdout, /stored 1,/);
      const hour = await db
        .selectFrom('hourly_digests')
        .select('samples')
        .where('room_id', '=', ROOM)
        .where('hour', '=', hoursAgo(50.5))
        .executeTakeFirst();
      t.equal(hour?.samples, 2, 'the import stored the hour again, with its sample');
      t.same(await serversOf(stats), [
        ['c.example', 50, 1],
        ['a.example', 120, 2],
        ['b.example', 400, 2],
      ]);
      t.same((await stats.rolling(room, ROLLING)).servers, await fromScratch());
      t.equal(
        stats.digestsDecoded,
        decoded + 2,
        'read: the hour the import stored again and the hour going on, which it built too; no other',
      );
    },
  );
});
