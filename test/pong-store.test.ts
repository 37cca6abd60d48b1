// The pongs kept in memory for the aggregator-compatible routes: the answers
// computed from them are the database's own (pingstat-data.ts, which
// pingstat-routes.test.ts holds to pingstat's rules) for any window, and
// stay so through every kind of change of the samples, by this process or
// another, while only the hours that changed are read again.
import { readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import t from 'tap';
import { sql } from 'kysely';
import { openDatabase, type Db } from '../src/db/database.ts';
import { recordSamples } from '../src/samples/repository.ts';
import type { Sample } from '../src/samples/sample.ts';
import { eachRawRowsPage, pingstatGroups } from '../src/stats/pingstat-data.ts';
import { PingstatSummaries } from '../src/stats/pingstat-summaries.ts';
import { SPILLED_MEMBER_MIN_BYTES, summarisePingstat, type PingstatSummary } from '../src/stats/pingstat-summary.ts';
import { pingstatJsonParts } from '../src/render/pingstat.ts';
import { PINGSTAT_WEEK_MS, pingstatWindow, type PingstatAges } from '../src/stats/pingstat-window.ts';
import {
  compareCodePoints,
  narrowed,
  parsePongHour,
  PongDictionary,
  rawRowsFromHours,
} from '../src/stats/pong-hours.ts';
import { keptSpan, PongStore, type PongSnapshot } from '../src/stats/pong-store.ts';
import { random } from '../bench/dataset.ts';
import { isFileRange, SPILL_MIN_BYTES, SpillDirectory, type FileRange } from '../src/spill.ts';
import { forEachEngine, type Test } from './helpers/database.ts';

const NOW = new Date('2026-11-21T00:30:00Z');
const HOUR = 3_600_000;
const OLD_ROOM = '!old:example.org';
const ROOM = '!ping:example.org';
const LINEAGE = [OLD_ROOM, ROOM];
const FILTER = { minDelayMs: 10, maxDelayMs: 600_000 };
const EXCLUDED = ['hs3.example'];

function pong(
  roomId: string,
  ping: string,
  pingServer: string,
  responder: string,
  delayMs: number,
  at: number,
): Sample {
  return {
    roomId,
    pingEventId: ping,
    pingServer,
    pinger: `@u:${pingServer}`,
    responder,
    responderServer: responder.slice(responder.indexOf(':') + 1),
    delayMs,
    pingTs: new Date(at - delayMs),
    measuredAt: new Date(at),
    source: 'pong',
    rttMs: null,
  };
}

/** Eight days of pongs in two rooms of a lineage: equal times, several accounts of a server, delays the filter drops, IDs JSON escapes. */
function dataset(seed: number, pings: number, prefix = 'p'): Sample[] {
  const rand = random(seed);
  const responders = ['@echo:r1.example', '@a:r2.example', '@b:r2.example', '@echo:r3.example:8448'];
  const samples: Sample[] = [];
  for (let i = 0; i < pings; i++) {
    const id = i % 97 === 0 ? `$${prefix}"\\${i}\u2028é` : `$${prefix}${i}`;
    const server = `hs${Math.floor(rand() ** 2 * 12)}.example`;
    const at = NOW.getTime() - Math.floor(rand() * 8 * 24 * HOUR);
    const roomId = rand() < 0.2 ? OLD_ROOM : ROOM;
    for (const responder of responders) {
      if (rand() < 0.3) continue;
      const delay = rand() < 0.05 ? 5 : rand() < 0.02 ? -40 : Math.round(50 + rand() * 900);
      samples.push(pong(roomId, id, server, responder, delay, rand() < 0.15 ? at : at + Math.max(delay, 0)));
    }
  }
  // At one time the IDs decide, in UTF-8 byte order (PostgreSQL's "C"), where UTF-16 units would put the emoji first.
  const tie = NOW.getTime() - 3 * HOUR;
  samples.push(
    pong(ROOM, `$${prefix}\u{1f600}`, 'hs1.example', '@echo:r1.example', 300, tie),
    pong(ROOM, `$${prefix}\uff01`, 'hs1.example', '@echo:r1.example', 301, tie),
    pong(ROOM, `$${prefix}\uff01`, 'hs1.example', '@a:r2.example', 302, tie),
    pong(ROOM, `$${prefix}\uff01`, 'hs1.example', '@\u{1f600}:r2.example', 303, tie),
  );
  return samples;
}

/** stats.json's text of a summary. */
const statsJson = (summary: PingstatSummary) => bytesOf(pingstatJsonParts(summary)).toString();

async function rawFromDatabase(db: Db, window: ReturnType<typeof pingstatWindow>): Promise<string> {
  const rows: string[] = [];
  await eachRawRowsPage(db, LINEAGE, ROOM, window, (page) => rows.push(...page));
  return rows.join(',');
}

/** An answer's pieces joined, a spilled range read from its file. */
function bytesOf(pieces: Iterable<string | Buffer | FileRange>): Buffer {
  return Buffer.concat(
    [...pieces].map((p) =>
      isFileRange(p) ? readFileSync(p.file.path).subarray(p.start, p.end) : typeof p === 'string' ? Buffer.from(p) : p,
    ),
  );
}

const AGES: readonly PingstatAges[] = [
  {},
  { max_age: '86400' },
  { max_age: '604800', min_age: '86400' },
  { max_age: '7200', min_age: '3600' },
  { max_age: '-1' },
];

/**
 * Every window of AGES answered from the store as the database answers it
 * (the figures through `figures`, which keeps those of unchanged servers
 * from one call to the next); the snapshot of the default week.
 */
async function expectDatabaseAnswers(
  t: Test,
  db: Db,
  store: PongStore,
  label: string,
  figures = new PingstatSummaries(),
  now = NOW,
  spill?: SpillDirectory,
): Promise<PongSnapshot> {
  let week: PongSnapshot | undefined;
  for (const ages of AGES) {
    const window = pingstatWindow(now, ages, PINGSTAT_WEEK_MS);
    const snapshot = await store.snapshot(db, LINEAGE, window, now);
    if (snapshot === undefined) throw new Error(`${label}: the window ${JSON.stringify(ages)} is not kept`);
    week ??= snapshot;
    t.equal(
      statsJson(figures.summary(JSON.stringify(ages), snapshot, window, FILTER, EXCLUDED, 'D')),
      statsJson(summarisePingstat(await pingstatGroups(db, LINEAGE, window, FILTER, EXCLUDED), 'D')),
      `${label}: stats ${JSON.stringify(ages)}`,
    );
    // With no budget for kept bytes (first, so that hours not kept yet are written for this answer alone), then with one.
    const unkept = bytesOf(rawRowsFromHours(snapshot.hours, snapshot.dictionary, window, ROOM, undefined, 0));
    const raw = bytesOf(rawRowsFromHours(snapshot.hours, snapshot.dictionary, window, ROOM, spill)).toString();
    t.equal(raw, await rawFromDatabase(db, window), `${label}: raw rows ${JSON.stringify(ages)}`);
    t.equal(unkept.toString(), raw, `${label}: raw rows ${JSON.stringify(ages)}, written again for the answer`);
  }
  return week!;
}

const hex = (text: string) => [...text].map((c) => c.codePointAt(0)!.toString(16)).join(' ');

t.test('names compare by code point, as PostgreSQL\'s "C" compares UTF-8 bytes', async (t) => {
  const names = ['a', 'b', 'ab', '', '\uff01', '\u{1f600}', '\ud7ff', '\ue000', '\u{10ffff}', 'é', 'e\u0301', '\u2028'];
  for (const a of names)
    for (const b of names)
      t.equal(
        Math.sign(compareCodePoints(a, b)),
        Math.sign(Buffer.compare(Buffer.from(a), Buffer.from(b))),
        // Code points in hex: a raw U+2028 would break the TAP line.
        `[${hex(a)}] and [${hex(b)}]`,
      );
});

t.test("the dictionary numbers each ping's text once and keeps it as the answers print it", async (t) => {
  const dictionary = new PongDictionary();
  // Enough pings to outgrow its first table and buffers several times over.
  const texts = Array.from({ length: 5000 }, (_, n) => JSON.stringify(`$${n.toString(36).padStart(43, '-')}`));
  const odd = ['"$é:example.org"', '"$a\\"b"', '"$\\u00e9\\/x"', '"$🏓"', '"$"'];
  const numbers = [...texts, ...odd].map((text) => dictionary.ping(text));
  t.same(numbers, [...numbers.keys()], 'numbered in the order first met');
  t.equal(dictionary.pings, texts.length + odd.length);
  t.same(
    [...texts, ...odd].map((text) => dictionary.ping(text)),
    numbers,
    'the same text, again: the same number',
  );
  t.equal(dictionary.pings, texts.length + odd.length, 'nothing added by asking again');
  t.equal(dictionary.ping('"$\\u00e9/x"'), dictionary.ping('"$é/x"'), 'an escaped character is the character');
  t.equal(dictionary.pingText(texts.length + 2), '"$é/x"', 'kept as JSON.stringify writes it, not as it was escaped');
  t.equal(dictionary.pingText(3), texts[3], 'its text back');
  const { bytes, pingBytes } = dictionary;
  const last = texts.length + 3;
  t.equal(bytes.toString('utf8', pingBytes[2 * last], pingBytes[2 * last + 1]), '"$🏓"', 'its bytes in UTF-8');
  t.not(dictionary.ping('"$🏓x"'), last, 'a text that begins as another is another');
  t.not(dictionary.ping(`${texts[7]!.slice(0, -2)}"`), 7, 'and one that is shorter');
});

t.test("an hour's rows are read as times within the hour, and a row of another hour is refused", async (t) => {
  const hour = Date.UTC(2026, 10, 20, 8);
  const line = (micros: number) => `${micros},120,0,"$p${micros}","a.example","r.example","@echo:r.example"`;
  const lastMicro = hour * 1000 + 3_600_000_000 - 1;
  const read = parsePongHour(hour, 2, `${line(lastMicro)}\n${line(hour * 1000)}\n`, new PongDictionary());
  t.same([...read.pongMicros], [0, 3_599_999_999], 'from the start of the hour to its last microsecond, in order');
  for (const outside of [hour * 1000 - 1, hour * 1000 + 3_600_000_000])
    t.throws(
      () => parsePongHour(hour, 1, `${line(outside)}\n`, new PongDictionary()),
      /hour 2026-11-20T08:00:00.000Z: a row of another hour/,
      `${outside - hour * 1000} µs from its start`,
    );
});

t.test("an hour's numbers are kept as narrow as its largest needs, and read back the same", async (t) => {
  for (const [largest, Column] of [
    [127, Int8Array],
    [128, Int16Array],
    [32_767, Int16Array],
    [32_768, Int32Array],
  ] as const) {
    const column = narrowed(Int32Array.of(0, largest, 5));
    t.type(column, Column, `largest ${largest}`);
    t.same([...column], [0, largest, 5], `largest ${largest}: the same numbers`);
  }
  // The hour's servers numbered past 127 by names read before it: its columns widen to hold them.
  const dictionary = new PongDictionary();
  for (let n = 0; n < 200; n++) dictionary.name(`"s${n}.example"`);
  const hour = Date.UTC(2026, 10, 20, 8);
  const read = parsePongHour(
    hour,
    2,
    `${hour * 1000},120,0,"$a","late.example","s3.example","@echo:s3.example"\n${hour * 1000 + 1},130,0,"$b","s7.example","s3.example","@echo:s3.example"\n`,
    dictionary,
  );
  t.type(read.pingServer, Int16Array);
  t.same(
    [...read.pingServer].map((n) => dictionary.names[n]),
    ['late.example', 's7.example'],
    'ping servers',
  );
  t.type(read.responderServer, Int8Array);
  t.same([...read.room, ...read.serverRows], [0, 0, 0, 1], 'one room; each server its row');
});

forEachEngine(t, (t, database) => {
  const { db } = database;

  t.test('the kept hours answer as the database does, through every change of the samples', async (t) => {
    await recordSamples(db, dataset(3, 1200));
    const store = new PongStore();
    // One for the whole test: its figures of unchanged servers are kept from one change to the next.
    const figures = new PingstatSummaries();
    const first = await expectDatabaseAnswers(t, db, store, 'first read', figures);
    t.ok(first.hours.length > 150, 'a week of hours is kept');
    t.ok(first.hours.reduce((n, hour) => n + hour.delay.length, 0) > 2000, 'with thousands of rows');

    // New pongs in one hour: only that hour is read again.
    const hourStart = Math.floor((NOW.getTime() - 5 * HOUR) / HOUR) * HOUR;
    await recordSamples(db, [
      pong(ROOM, '$new1', 'hs1.example', '@echo:r1.example', 321, hourStart + 10),
      pong(ROOM, '$new1', 'hs1.example', '@a:r2.example', 222, hourStart + 10),
    ]);
    const afterInsert = await expectDatabaseAnswers(t, db, store, 'after an insert', figures);
    const changed = afterInsert.hours.filter((hour) => !first.hours.includes(hour)).map((hour) => hour.hour);
    t.same(changed, [hourStart], 'only the changed hour was read again');
    // The figures of every ping server but the new pongs' are those computed before: the same objects.
    const week = pingstatWindow(NOW, {}, PINGSTAT_WEEK_MS);
    const before = figures.summary(JSON.stringify({}), first, week, FILTER, EXCLUDED, 'D');
    const after = figures.summary(JSON.stringify({}), afterInsert, week, FILTER, EXCLUDED, 'D');
    const computedAgain = after.servers.filter((server) => !before.servers.includes(server)).map((s) => s.server);
    t.same(computedAgain, ['hs1.example'], "only the new pongs' ping server was computed again");

    // The bot learns its pong's time: the row moves to another hour.
    await db
      .updateTable('samples')
      .set({ pong_ts: new Date(NOW.getTime() - 20 * HOUR) })
      .where('ping_event_id', '=', '$new1')
      .where('responder', '=', '@echo:r1.example')
      .execute();
    const afterUpdate = await expectDatabaseAnswers(t, db, store, 'after a pong time moved it', figures);
    t.equal(
      afterUpdate.hours.filter((hour) => !afterInsert.hours.includes(hour)).length,
      2,
      'the hour it left and the hour it joined were read again',
    );

    // A probe's round trip changes nothing the routes read.
    await db.updateTable('samples').set({ rtt_ms: 5 }).where('ping_event_id', '=', '$new1').execute();
    const afterRtt = await store.snapshot(db, LINEAGE, pingstatWindow(NOW, {}, PINGSTAT_WEEK_MS), NOW);
    t.same(
      afterRtt!.hours.filter((hour) => !afterUpdate.hours.includes(hour)),
      [],
      'nothing read again after an update of another column',
    );

    // Every sample of an hour deleted (retention, an operator in psql).
    const emptied = afterUpdate.hours[40]!.hour;
    await db
      .deleteFrom('samples')
      .where(sql<boolean>`coalesce(pong_ts, measured_at) >= ${new Date(emptied)}`)
      .where(sql<boolean>`coalesce(pong_ts, measured_at) < ${new Date(emptied + HOUR)}`)
      .execute();
    const afterDelete = await expectDatabaseAnswers(t, db, store, 'after an hour was emptied', figures);
    t.notOk(
      afterDelete.hours.some((hour) => hour.hour === emptied),
      'the emptied hour is no longer kept',
    );
    const readBefore = store.hoursRead;
    await store.snapshot(db, LINEAGE, pingstatWindow(NOW, {}, PINGSTAT_WEEK_MS), NOW);
    t.equal(store.hoursRead, readBefore, 'nor read again while its version stays');

    await sql`truncate samples`.execute(db);
    const afterTruncate = await expectDatabaseAnswers(t, db, store, 'after a truncate', figures);
    t.same(afterTruncate.hours, [], 'nothing is kept of a truncated table');

    await recordSamples(db, dataset(4, 300));
    await expectDatabaseAnswers(t, db, store, 'after new samples in the truncated table', figures);

    // Time passes: the window's start cuts the oldest hour's rows, here two of hs2's three, then all.
    const weekAgo = NOW.getTime() - Number(PINGSTAT_WEEK_MS);
    await recordSamples(db, [
      pong(ROOM, '$edge1', 'hs2.example', '@echo:r1.example', 401, weekAgo + 5 * 60_000),
      pong(ROOM, '$edge2', 'hs2.example', '@echo:r1.example', 402, weekAgo + 15 * 60_000),
      pong(ROOM, '$edge3', 'hs2.example', '@echo:r1.example', 403, weekAgo + 25 * 60_000),
    ]);
    for (const minutes of [7, 23, 61])
      await expectDatabaseAnswers(
        t,
        db,
        store,
        `${minutes} minutes later`,
        figures,
        new Date(NOW.getTime() + minutes * 60_000),
      );
  });

  t.test('figures kept for several windows within a byte budget, the least recently asked dropped', async (t) => {
    await recordSamples(db, dataset(11, 300));
    const store = new PongStore();
    const week = pingstatWindow(NOW, {}, PINGSTAT_WEEK_MS);
    const day = pingstatWindow(NOW, { max_age: '86400' }, PINGSTAT_WEEK_MS);
    const snapshot = (await store.snapshot(db, LINEAGE, week, NOW))!;
    const summaryOf = (figures: PingstatSummaries, window: typeof week, key: string) =>
      figures.summary(key, snapshot, window, FILTER, EXCLUDED, 'D');
    // Room for one window's figures only: asking for the day drops the week's.
    const small = new PingstatSummaries(undefined, 1);
    const first = summaryOf(small, week, 'week');
    summaryOf(small, day, 'day');
    const again = summaryOf(small, week, 'week');
    t.notOk(
      again.servers.some((server) => first.servers.includes(server)),
      "the week's figures were dropped and computed again",
    );
    t.equal(statsJson(again), statsJson(first), 'the same answer');
    // With room for both, the week's are kept.
    const roomy = new PingstatSummaries();
    const kept = summaryOf(roomy, week, 'week');
    summaryOf(roomy, day, 'day');
    const keptAgain = summaryOf(roomy, week, 'week');
    t.ok(
      keptAgain.servers.length > 0 && keptAgain.servers.every((server, i) => server === kept.servers[i]),
      'kept: the same figures objects',
    );
  });

  t.test('a write by another process shows', async (t) => {
    if (database.url === undefined) {
      t.pass('skipped on PGlite: no other process can open its database while this one holds it');
      return;
    }
    await recordSamples(db, dataset(5, 400));
    const store = new PongStore();
    await expectDatabaseAnswers(t, db, store, 'first read');
    const other = await openDatabase({ url: database.url, dataDir: '' });
    t.teardown(() => other.destroy());
    await recordSamples(other.db, dataset(6, 50, 'other'));
    await other.db.deleteFrom('samples').where('ping_server', '=', 'hs0.example').execute();
    await expectDatabaseAnswers(t, db, store, "after the other process's writes");
  });

  t.test('hours kept in files of a spill directory answer as the database does', async (t) => {
    await recordSamples(db, dataset(8, 600));
    const errors: unknown[] = [];
    const spill = new SpillDirectory(tmpdir(), 1 << 30, (err) => errors.push(err), 0);
    t.teardown(() => spill.close());
    const store = new PongStore();
    const week = await expectDatabaseAnswers(t, db, store, 'spilled', undefined, NOW, spill);
    const window = pingstatWindow(NOW, {}, 0n);
    const pieces = [...rawRowsFromHours(week.hours, week.dictionary, window, ROOM, spill)];
    t.ok(pieces.length > 1 && pieces.every(isFileRange), 'every piece is a range of a file');
    t.ok(spill.bytes > 0, 'counted');

    // A file removed behind the service's back (a cleaner of temporary files): a client's read of it fails
    // and marks it (shared-body.ts); the next answer writes that hour to a new file.
    const gone = (pieces[0] as FileRange).file;
    rmSync(gone.path);
    gone.lost();
    const again = [...rawRowsFromHours(week.hours, week.dictionary, window, ROOM, spill)];
    t.not((again[0] as FileRange).file, gone, 'a new file');
    t.equal(bytesOf(again).toString(), await rawFromDatabase(db, window), 'the same rows');

    // Found gone while the directory takes no more: kept in memory instead, not written for every answer.
    const noRoom = new SpillDirectory(tmpdir(), 1, (err) => errors.push(err), 0);
    t.teardown(() => noRoom.close());
    (again[0] as FileRange).file.lost();
    const inMemoryNow = [...rawRowsFromHours(week.hours, week.dictionary, window, ROOM, noRoom)];
    const keptNow = [...rawRowsFromHours(week.hours, week.dictionary, window, ROOM, noRoom)];
    t.ok(
      !isFileRange(inMemoryNow[0]) && inMemoryNow.slice(1).every(isFileRange),
      'that hour in memory, the others still in their files',
    );
    t.equal((keptNow[0] as Buffer).buffer, (inMemoryNow[0] as Buffer).buffer, 'and kept: the same bytes the next time');
    t.equal(bytesOf(keptNow).toString(), await rawFromDatabase(db, window), 'the same rows');

    // Past its budget, or where it cannot write, an hour stays in memory: the answer is the same.
    const full = new SpillDirectory(tmpdir(), 1, (err) => errors.push(err), 0);
    t.teardown(() => full.close());
    const elsewhere = new PongStore();
    const snapshot = (await elsewhere.snapshot(db, LINEAGE, window, NOW))!;
    const inMemory = [...rawRowsFromHours(snapshot.hours, snapshot.dictionary, window, ROOM, full)];
    t.ok(
      inMemory.every((p) => !isFileRange(p)),
      'past the budget: in memory',
    );
    t.equal(bytesOf(inMemory).toString(), await rawFromDatabase(db, window), 'the same rows');
    t.same(errors, [], 'a full budget is no error');
    const small = new SpillDirectory(tmpdir(), 1 << 30, (err) => errors.push(err));
    t.teardown(() => small.close());
    const hours = (await new PongStore().snapshot(db, LINEAGE, window, NOW))!;
    const smallHours = [...rawRowsFromHours(hours.hours, hours.dictionary, window, ROOM, small)];
    t.ok(
      smallHours.every((p) => !isFileRange(p)),
      `hours of less than ${SPILL_MIN_BYTES} bytes each: in memory, by default`,
    );
    // Its directory removed, it is made again; in its place a file, which no write gets past: memory.
    const removed = new SpillDirectory(tmpdir(), 1 << 30, (err) => errors.push(err), 0);
    t.teardown(() => removed.close());
    rmSync(removed.path, { recursive: true });
    const afresh = (await new PongStore().snapshot(db, LINEAGE, window, NOW))!;
    const remade = [...rawRowsFromHours(afresh.hours, afresh.dictionary, window, ROOM, removed)];
    t.ok(remade.every(isFileRange), 'a directory removed is made again');
    t.equal(bytesOf(remade).toString(), await rawFromDatabase(db, window), 'the same rows');
    const blocked = new SpillDirectory(tmpdir(), 1 << 30, (err) => errors.push(err), 0);
    t.teardown(() => rmSync(blocked.path, { force: true }));
    rmSync(blocked.path, { recursive: true });
    writeFileSync(blocked.path, 'not a directory');
    const fresh = (await new PongStore().snapshot(db, LINEAGE, window, NOW))!;
    const kept = [...rawRowsFromHours(fresh.hours, fresh.dictionary, window, ROOM, blocked)];
    t.ok(
      kept.every((p) => !isFileRange(p)),
      'no directory to write in: in memory',
    );
    t.equal(bytesOf(kept).toString(), await rawFromDatabase(db, window), 'the same rows');
    t.equal(errors.length, 1, 'reported once, not for every hour');
    t.match(errors[0], { code: 'ENOTDIR' });
  });

  t.test(
    'large stats.json members kept in one file answer the same, and those whose file went are computed again',
    async (t) => {
      // About 2,300 pings from the busiest server, 900 from the next: members of tens of kB.
      await recordSamples(db, dataset(9, 8000));
      const errors: unknown[] = [];
      const spill = new SpillDirectory(tmpdir(), 1 << 30, (err) => errors.push(err), 0);
      t.teardown(() => spill.close());
      const figures = new PingstatSummaries(spill);
      const window = pingstatWindow(NOW, {}, PINGSTAT_WEEK_MS);
      const snapshot = (await new PongStore().snapshot(db, LINEAGE, window, NOW))!;
      const expected = statsJson(summarisePingstat(await pingstatGroups(db, LINEAGE, window, FILTER, EXCLUDED), 'D'));
      const summary = figures.summary('week', snapshot, window, FILTER, EXCLUDED, 'D');
      // Written at once, not when stats.json first asks: the lists they are written from are dropped then.
      t.ok(spill.bytes >= 2 * SPILLED_MEMBER_MIN_BYTES, 'the large members are in the file before stats.json asks');
      const parts = [...pingstatJsonParts(summary)];
      const spilled = parts.filter(isFileRange);
      const inMemory = parts.filter(Buffer.isBuffer);
      t.ok(
        spilled.length > 1 && inMemory.length > 0,
        `${spilled.length} members in files, ${inMemory.length} in memory`,
      );
      t.ok(
        spilled.every((p) => p.end - p.start >= SPILLED_MEMBER_MIN_BYTES) &&
          inMemory.every((p) => p.length < SPILLED_MEMBER_MIN_BYTES),
        `in files from ${SPILLED_MEMBER_MIN_BYTES} bytes`,
      );
      t.equal(bytesOf(parts).toString(), expected, 'the same answer');

      t.ok(
        spilled.every((p) => p.file === spilled[0]!.file),
        'in one file, one after another',
      );

      // The file removed behind the service's back (found by a client's read, shared-body.ts): those servers'
      // figures are computed again, into a new file; the others' members are the same bytes.
      const { file } = spilled[0]!;
      rmSync(file.path);
      file.lost();
      const again = [...pingstatJsonParts(figures.summary('week', snapshot, window, FILTER, EXCLUDED, 'D'))];
      const files = new Set(again.filter(isFileRange).map((p) => p.file));
      t.ok(files.size === 1 && !files.has(file), 'a new file in its place');
      t.equal(again.filter(isFileRange).length, spilled.length, 'every member that was in it');
      t.ok(
        again.filter(Buffer.isBuffer).every((p, i) => p === inMemory[i]),
        'the members in memory are not written again',
      );
      t.equal(bytesOf(again).toString(), expected, 'the same answer');
      t.same(errors, []);
    },
  );

  t.test('pongs from more servers than a ping has bits for (32) answer as the database does', async (t) => {
    const samples: Sample[] = [];
    for (let i = 0; i < 40; i++)
      for (let k = 0; k < 40; k++)
        samples.push(
          pong(
            i % 3 === 0 ? OLD_ROOM : ROOM,
            `$many${i}`,
            `hs${i % 5}.example`,
            `@echo:r${(k * 7 + i) % 40}.example`,
            100 + ((i * 41 + k * 13) % 400),
            NOW.getTime() - (i + 1) * HOUR - k * 1000,
          ),
        );
    // A second pong from some of those servers to the same ping: only the first of each counts.
    for (let i = 0; i < 40; i += 4)
      samples.push(
        pong(ROOM, `$many${i}`, `hs${i % 5}.example`, `@other:r${i % 40}.example`, 50, NOW.getTime() - HOUR),
      );
    await recordSamples(db, samples);
    await expectDatabaseAnswers(t, db, new PongStore(), 'forty pong servers');
  });

  t.test('windows before the kept span, and lineages too large to keep, are left to the database', async (t) => {
    await recordSamples(db, dataset(7, 200));
    const store = new PongStore({ maxRows: 100 });
    const week = pingstatWindow(NOW, {}, PINGSTAT_WEEK_MS);
    t.equal(week.start.getTime() >= keptSpan(NOW).from, true, "pingstat's default week is within the kept span");
    t.equal(await store.snapshot(db, LINEAGE, week, NOW), undefined, 'a lineage past the row limit is not kept');
    const roomy = new PongStore();
    const older = pingstatWindow(NOW, { max_age: String(8 * 86_400) }, 0n);
    t.equal(await roomy.snapshot(db, LINEAGE, older, NOW), undefined, 'a window reaching before the span is not');
    t.not(await roomy.snapshot(db, LINEAGE, week, NOW), undefined, 'the week is');
    const ahead = pingstatWindow(NOW, { max_age: '3600', min_age: String(-3 * 3600) }, 0n);
    t.equal(await roomy.snapshot(db, LINEAGE, ahead, NOW), undefined, 'a window reaching past the next hour is not');
  });

  t.test('pongs stamped centuries ahead are left to the database and change nothing kept', async (t) => {
    await recordSamples(db, dataset(9, 200));
    const store = new PongStore();
    const before = await expectDatabaseAnswers(t, db, store, 'first read');
    // A server's clock far ahead, written past the application's checks (psql, another version).
    for (const at of ['5000-01-01T00:00:00.001Z', '10000-01-01T00:00:00Z'])
      await sql`insert into samples (room_id, ping_event_id, ping_server, responder, responder_server, delay_ms, ping_ts, measured_at, source)
        values (${ROOM}, ${`$ahead-${at}`}, 'hs1.example', '@echo:r1.example', 'r1.example', 300, ${NOW}, ${at}::timestamptz, 'pong')`.execute(
        db,
      );
    const after = await expectDatabaseAnswers(t, db, store, 'after pongs stamped centuries ahead');
    t.same(
      after.hours.map((hour) => hour.hour),
      before.hours.map((hour) => hour.hour),
      'no hour past the span is kept',
    );
  });

  t.test('long IDs (the dictionary outgrows its first buffer) and more lineages than are kept', async (t) => {
    // 64 kB of encoded IDs fill the dictionary's first buffer: about 1,100 of these.
    await recordSamples(db, dataset(10, 1500, `p${'x'.repeat(60)}`));
    const store = new PongStore();
    const first = await expectDatabaseAnswers(t, db, store, 'first read');
    t.ok(first.dictionary.bytes.length > 64 * 1024, 'the dictionary grew');
    const week = pingstatWindow(NOW, {}, PINGSTAT_WEEK_MS);
    for (const other of ['!a:example.org', '!b:example.org', '!c:example.org', '!d:example.org'])
      await store.snapshot(db, [other], week, NOW);
    const again = await expectDatabaseAnswers(t, db, store, 'after four other lineages');
    t.notOk(
      again.hours.some((hour) => first.hours.includes(hour)),
      'the least recently asked lineage was dropped and read again',
    );
  });

  t.test('a dictionary numbering many pings no longer kept is made again, and answers the same', async (t) => {
    await recordSamples(db, dataset(8, 300));
    const store = new PongStore({ sparePings: 10 });
    // One for the test: figures numbered in the dropped dictionary must not be reused.
    const figures = new PingstatSummaries();
    const first = await expectDatabaseAnswers(t, db, store, 'first read', figures);
    // The pings of every other server are gone: their numbers stay in the dictionary.
    await db.deleteFrom('samples').where('ping_server', '!=', 'hs0.example').execute();
    const after = await expectDatabaseAnswers(t, db, store, 'after most pings were deleted', figures);
    t.ok(after.dictionary !== first.dictionary, 'a new dictionary');
    t.ok(
      after.dictionary.pings <= after.hours.reduce((n, hour) => n + hour.delay.length, 0),
      'with only the pings kept',
    );
  });
});
