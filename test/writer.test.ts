// The bounded sample queue against a PostgreSQL database that goes away and
// comes back. The database is a throwaway one on the shared server: it is made
// unreachable by refusing connections to it, never by stopping the server.
// Then how the queue groups its writes, on each engine.
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { sql } from 'kysely';
import pg from 'pg';
import t from 'tap';
import { createLogger } from '../src/log.ts';
import { ROOM_LOCKS } from '../src/db/locks.ts';
import { importFile, type ImportCounts } from '../src/samples/import.ts';
import { recordSamples, WRITE_BATCH_SIZE } from '../src/samples/repository.ts';
import { sampleToRecord } from '../src/samples/sample.ts';
import { lingerLeft, SampleWriter } from '../src/samples/writer.ts';
import { forEachEngine, openTestDatabase, setDatabaseReachable, testEngines } from './helpers/database.ts';
import { sample } from './helpers/samples.ts';
import { until } from './helpers/until.ts';

if (!testEngines().includes('postgres')) {
  t.test(
    'the database going away',
    { skip: 'tested on PostgreSQL only, and PINGBOARD_TEST_ENGINES leaves it out' },
    () => {},
  );
} else {
  t.test('samples recorded while the database is unreachable are written once it returns, each once', async (t) => {
    const database = await openTestDatabase('postgres');
    t.teardown(() => database.destroy());
    const writer = new SampleWriter({
      db: database.db,
      log: createLogger('silent'),
      capacity: 100,
      retryMs: 50,
      maxRetryMs: 200,
    });
    t.teardown(() => writer.stop());

    await setDatabaseReachable(database, false);
    const samples = Array.from({ length: 5 }, (_, i) => sample({ pingServer: `s${i}.example`, delayMs: 100 + i }));
    for (const s of samples) t.ok(writer.record(s));
    writer.record(samples[0]!);
    await until('a write to fail while the database is away', () => writer.counts.failedWrites >= 1, 60_000);
    t.equal(writer.counts.queued, 6, 'nothing was dropped');

    await setDatabaseReachable(database, true);
    await writer.flushed();
    t.hasStrict(writer.counts, { queued: 0, written: 5, duplicate: 1, dropped: 0 });
    const rows = await database.db.selectFrom('samples').select('ping_server').orderBy('ping_server').execute();
    t.same(
      rows.map((r) => r.ping_server),
      samples.map((s) => s.pingServer).sort(),
    );
  });

  t.test('a flush at shutdown against an unreachable database tries once and leaves nothing retrying', async (t) => {
    const database = await openTestDatabase('postgres');
    t.teardown(() => database.destroy());
    // A retry would wait ten minutes, and hold back the write of any sample recorded meanwhile.
    const writer = new SampleWriter({
      db: database.db,
      log: createLogger('silent'),
      capacity: 100,
      retryMs: 600_000,
      maxRetryMs: 600_000,
    });
    t.teardown(() => writer.stop());
    await setDatabaseReachable(database, false);
    writer.record(sample({ pingServer: 'late.example', delayMs: 100 }));
    await writer.flushNow();
    t.hasStrict(
      writer.counts,
      { failedWrites: 1, queued: 1 },
      'the write was tried, and what it held is counted as queued',
    );
    // With nothing waiting to retry, the next sample's write starts after its own linger and takes the first along.
    await setDatabaseReachable(database, true);
    writer.record(sample({ pingServer: 'next.example', delayMs: 100 }));
    await until('both samples written', () => writer.counts.written === 2, 60_000);
    t.equal(writer.counts.failedWrites, 1, 'no retry after the flush, with no stop() called');
  });

  t.test('a full queue refuses samples and counts them', async (t) => {
    const database = await openTestDatabase('postgres');
    t.teardown(() => database.destroy());
    const lines: string[] = [];
    const log = createLogger('error', { write: (line: string) => lines.push(line) } as never);
    const writer = new SampleWriter({ db: database.db, log, capacity: 3, retryMs: 50, maxRetryMs: 100 });
    t.teardown(() => writer.stop());
    await setDatabaseReachable(database, false);
    const accepted = Array.from({ length: 5 }, (_, i) =>
      writer.record(sample({ pingServer: `q${i}.example`, delayMs: 100 })),
    );
    t.same(accepted, [true, true, true, false, false]);
    t.equal(writer.counts.dropped, 2);
    t.equal(lines.filter((l) => l.includes('sample queue full')).length, 2, 'each refusal is logged');
    await setDatabaseReachable(database, true);
    await writer.flushed();
    t.equal(writer.counts.written, 3);
  });

  t.test('a batch that deadlocks with another writer is written again', async (t) => {
    const database = await openTestDatabase('postgres');
    t.teardown(() => database.destroy());
    const [first, second] = [
      sample({ pingServer: 'a.example', delayMs: 100, pingEventId: '$k1' }),
      sample({ pingServer: 'a.example', delayMs: 200, pingEventId: '$k2' }),
    ];
    // Another writer (not ours, so in the opposite key order) holds $k2 and then wants $k1, which the batch holds.
    const other = new pg.Client({ connectionString: database.url });
    await other.connect();
    t.teardown(() => other.end());
    const insert = (s: typeof first) =>
      other.query(
        `insert into samples (room_id, ping_event_id, ping_server, responder, responder_server, delay_ms, ping_ts, measured_at, source)
       values ($1, $2, $3, $4, $5, $6, $7, $8, 'pong') on conflict do nothing`,
        [s.roomId, s.pingEventId, s.pingServer, s.responder, s.responderServer, s.delayMs, s.pingTs, s.measuredAt],
      );
    await other.query('begin');
    await insert(second);
    const written = recordSamples(database.db, [second, first]);
    await until(
      'the batch to wait for the row the other writer holds',
      async () =>
        (
          await sql<{ waiting: number }>`select count(*)::int as waiting from pg_stat_activity
            where datname = current_database() and wait_event_type = 'Lock'`.execute(database.db)
        ).rows[0]!.waiting > 0,
      60_000,
    );
    // The batch waits first, so PostgreSQL ends it when it finds the deadlock; the other insert then goes through.
    await insert(first);
    await other.query('commit');
    t.same(
      await written,
      { stored: 0, duplicate: 2 },
      "written again after the deadlock: both samples were the other writer's",
    );
  });

  t.test('samples that come in while a write waits for the database get a write of their own after it', async (t) => {
    const database = await openTestDatabase('postgres');
    t.teardown(() => database.destroy());
    const holder = new pg.Client({ connectionString: database.url });
    await holder.connect();
    t.teardown(() => holder.end());
    const writer = new SampleWriter({ db: database.db, log: createLogger('silent'), capacity: 100, lingerMs: 50 });
    t.teardown(() => writer.stop());
    const first = sample({ pingServer: 'slow-write.example', delayMs: 100 });
    // Writes take the room's lock shared: holding it exclusively keeps the first write waiting.
    await holder.query('begin');
    await holder.query('select pg_advisory_xact_lock($1, hashtext($2))', [ROOM_LOCKS, first.roomId]);
    writer.record(first);
    await until(
      "the first write to wait for the room's lock",
      async () =>
        (
          await sql<{ waiting: number }>`select count(*)::int as waiting from pg_stat_activity
            where datname = current_database() and wait_event = 'advisory'`.execute(database.db)
        ).rows[0]!.waiting > 0,
      60_000,
    );
    writer.record(sample({ pingServer: 'meanwhile.example', delayMs: 100 }));
    await holder.query('commit');
    await writer.flushed();
    t.hasStrict(writer.counts, { written: 2, queued: 0 });
    const { rows } = await sql<{
      writes: number;
    }>`select count(distinct xmin::text)::int as writes from samples`.execute(database.db);
    t.equal(rows[0]!.writes, 2, 'the sample that came in meanwhile was not in the waiting write');
  });

  t.test('an import whose writes fail stops with the error and leaves its counts settled', async (t) => {
    const database = await openTestDatabase('postgres');
    t.teardown(async () => {
      await setDatabaseReachable(database, true);
      await database.destroy();
    });
    const dir = mkdtempSync(path.join(tmpdir(), 'pingboard-import-'));
    t.teardown(() => rmSync(dir, { recursive: true, force: true }));
    const file = path.join(dir, 'samples.ndjson');
    writeFileSync(
      file,
      Array.from({ length: 5 * WRITE_BATCH_SIZE }, (_, i) =>
        JSON.stringify(sampleToRecord(sample({ pingServer: `s${i % 50}.example`, delayMs: 100 + i }))),
      ).join('\n'),
    );
    await setDatabaseReachable(database, false);
    const counts: ImportCounts = { read: 0, stored: 0, duplicate: 0, rejected: 0 };
    await t.rejects(importFile(database.db, file, counts), 'the write failure ends the import');
    const after = { ...counts };
    // Closing the pool waits for every connection in use: no write of the import's can end after this.
    await database.db.destroy();
    t.same(counts, after, 'nothing changes the counts after the import has failed');
    t.equal(counts.stored, 0);
  });

  t.test('an import whose write fails reports once the writes in flight have ended, and counts them', async (t) => {
    const database = await openTestDatabase('postgres');
    t.teardown(() => database.destroy());
    // The first batch's write is slow, the second's fails at once: the import must not report while the first is still in flight.
    await sql`create function import_faults() returns trigger language plpgsql as $$
      begin
        if new.ping_server = 'slow.example' then perform pg_sleep(0.5); end if;
        if new.ping_server = 'poison.example' then raise exception 'poisoned sample'; end if;
        return new;
      end $$`.execute(database.db);
    await sql`create trigger import_faults before insert on samples for each row execute function import_faults()`.execute(
      database.db,
    );
    const dir = mkdtempSync(path.join(tmpdir(), 'pingboard-import-'));
    t.teardown(() => rmSync(dir, { recursive: true, force: true }));
    const file = path.join(dir, 'samples.ndjson');
    const serverOf = (i: number) =>
      i === 0 ? 'slow.example' : i === WRITE_BATCH_SIZE ? 'poison.example' : `s${i % 50}.example`;
    writeFileSync(
      file,
      Array.from({ length: 5 * WRITE_BATCH_SIZE }, (_, i) =>
        JSON.stringify(sampleToRecord(sample({ pingServer: serverOf(i), delayMs: 100 + i }))),
      ).join('\n'),
    );
    const counts: ImportCounts = { read: 0, stored: 0, duplicate: 0, rejected: 0 };
    await t.rejects(importFile(database.db, file, counts), /poisoned sample/);
    const after = { ...counts };
    const stored = Number(
      (await sql<{ n: string }>`select count(*) as n from samples`.execute(database.db)).rows[0]!.n,
    );
    t.ok(stored >= WRITE_BATCH_SIZE, `the slow first batch was written (${stored} rows)`);
    t.equal(counts.stored, stored, 'every write that succeeded is counted by the time the import reports');
    // Closing the pool waits for every connection in use: no write of the import's can end after this.
    await database.db.destroy();
    t.same(counts, after, 'nothing changes the counts after the import has failed');
  });
}

t.test(
  'what comes in during a write waits what is left of the interval since the write began: nothing once the write outlasted it',
  async (t) => {
    t.equal(lingerLeft(1000, 300), 700);
    t.equal(lingerLeft(1000, 1000), 0);
    t.equal(lingerLeft(1000, 2500), 0, 'written at once, not a whole interval after a slow write');
  },
);

forEachEngine(t, (t, database) => {
  /** How many transactions wrote the stored samples: rows written together share their xmin. */
  const writeTransactions = async () => {
    const { rows } = await sql<{
      writes: number;
    }>`select count(distinct xmin::text)::int as writes from samples`.execute(database.db);
    return rows[0]!.writes;
  };

  t.test('samples recorded while the first waits share one write', async (t) => {
    await database.db.deleteFrom('samples').execute();
    // Longer than the test: what ends the wait is the flush below.
    const writer = new SampleWriter({ db: database.db, log: createLogger('silent'), capacity: 100, lingerMs: 600_000 });
    t.teardown(() => writer.stop());
    for (let i = 0; i < 5; i++) {
      writer.record(sample({ pingServer: `burst${i}.example`, delayMs: 100 + i }));
      // A round trip to the database between samples, as pings arrive over the network.
      t.equal(await writeTransactions(), 0, `sample ${i + 1} waits`);
    }
    await writer.flushNow();
    t.hasStrict(writer.counts, { written: 5, queued: 0 });
    t.equal(await writeTransactions(), 1, 'the first sample waited for the others');
  });

  t.test('a sample recorded after a write has a write of its own, once its wait is over', async (t) => {
    await database.db.deleteFrom('samples').execute();
    const writer = new SampleWriter({ db: database.db, log: createLogger('silent'), capacity: 100, lingerMs: 10 });
    t.teardown(() => writer.stop());
    writer.record(sample({ pingServer: 'first.example', delayMs: 100 }));
    await writer.flushed();
    writer.record(sample({ pingServer: 'later.example', delayMs: 90 }));
    await writer.flushed();
    t.hasStrict(writer.counts, { written: 2, queued: 0 });
    t.equal(await writeTransactions(), 2);
  });

  t.test('flushing writes what lingers at once', async (t) => {
    await database.db.deleteFrom('samples').execute();
    const writer = new SampleWriter({ db: database.db, log: createLogger('silent'), capacity: 100, lingerMs: 600_000 });
    t.teardown(() => writer.stop());
    writer.record(sample({ pingServer: 'lingering.example', delayMs: 100 }));
    await writer.flushNow();
    t.hasStrict(writer.counts, { written: 1, queued: 0 });
    t.same(
      (await database.db.selectFrom('samples').select('ping_server').execute()).map((r) => r.ping_server),
      ['lingering.example'],
    );
  });
});
