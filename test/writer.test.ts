// The bounded sample queue against a PostgreSQL database that goes away and
// comes back. The database is a throwaway one on the shared server: it is made
// unreachable by refusing connections to it, never by stopping the server.
import t from 'tap';
import { createLogger } from '../src/log.ts';
import { SampleWriter } from '../src/samples/writer.ts';
import { openTestDatabase, setDatabaseReachable, testEngines } from './helpers/database.ts';
import { sample } from './helpers/samples.ts';

if (!testEngines().includes('postgres')) {
  t.test('the database going away', { skip: 'tested on PostgreSQL only, and PINGBOARD_TEST_ENGINES leaves it out' }, () => {});
} else {
  t.test('samples recorded while the database is unreachable are written once it returns, each once', async (t) => {
    const database = await openTestDatabase('postgres');
    t.teardown(() => database.destroy());
    const writer = new SampleWriter({ db: database.db, log: createLogger('silent'), capacity: 100, retryMs: 50, maxRetryMs: 200 });
    t.teardown(() => writer.stop());

    await setDatabaseReachable(database, false);
    const samples = Array.from({ length: 5 }, (_, i) => sample({ pingServer: `s${i}.example`, delayMs: 100 + i }));
    for (const s of samples) t.ok(writer.record(s));
    writer.record(samples[0]!);
    await new Promise((resolve) => setTimeout(resolve, 400));
    t.ok(writer.counts.failedWrites >= 1, 'writes failed while the database was away');
    t.equal(writer.counts.queued, 6, 'nothing was dropped');

    await setDatabaseReachable(database, true);
    await writer.flushed();
    t.hasStrict(writer.counts, { queued: 0, written: 5, duplicate: 1, dropped: 0 });
    const rows = await database.db.selectFrom('samples').select('ping_server').orderBy('ping_server').execute();
    t.same(rows.map((r) => r.ping_server), samples.map((s) => s.pingServer).sort());
  });

  t.test('a full queue refuses samples and counts them', async (t) => {
    const database = await openTestDatabase('postgres');
    t.teardown(() => database.destroy());
    const lines: string[] = [];
    const log = createLogger('error', { write: (line: string) => lines.push(line) } as never);
    const writer = new SampleWriter({ db: database.db, log, capacity: 3, retryMs: 50, maxRetryMs: 100 });
    t.teardown(() => writer.stop());
    await setDatabaseReachable(database, false);
    const accepted = Array.from({ length: 5 }, (_, i) => writer.record(sample({ pingServer: `q${i}.example`, delayMs: 100 })));
    t.same(accepted, [true, true, true, false, false]);
    t.equal(writer.counts.dropped, 2);
    t.equal(lines.filter((l) => l.includes('sample queue full')).length, 2, 'each refusal is logged');
    await setDatabaseReachable(database, true);
    await writer.flushed();
    t.equal(writer.counts.written, 3);
  });
}
