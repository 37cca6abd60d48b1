// PostgreSQL connections are kept while they idle: a new one costs a table
// 50-80 ms (opened, then a new backend filling its caches), which every
// request after a quiet spell paid when idle connections were closed.
import { setTimeout as sleep } from 'node:timers/promises';
import { sql } from 'kysely';
import t from 'tap';
import { openTestDatabase, testEngines } from './helpers/database.ts';

/** node-postgres closes a connection idle this long unless told to keep it. */
const NODE_POSTGRES_IDLE_TIMEOUT_MS = 10_000;

t.test(
  "connections left idle past node-postgres's idle timeout serve the next statements",
  { skip: testEngines().includes('postgres') ? false : 'PostgreSQL only: PGlite has no connections' },
  async (t) => {
    const database = await openTestDatabase('postgres');
    t.teardown(() => database.destroy());
    /** The backends of `count` transactions open at once: each on a connection of its own. */
    const backendsAtOnce = async (count: number) => {
      let arrived = 0;
      let allArrived!: () => void;
      const together = new Promise<void>((resolve) => {
        allArrived = resolve;
      });
      const pids = await Promise.all(
        Array.from({ length: count }, () =>
          database.db.transaction().execute(async (tx) => {
            const { rows } = await sql<{ pid: number }>`select pg_backend_pid() as pid`.execute(tx);
            if (++arrived === count) allArrived();
            await together;
            return rows[0]!.pid;
          }),
        ),
      );
      return pids.sort((a, b) => a - b);
    };
    const before = await backendsAtOnce(3);
    t.equal(new Set(before).size, 3, 'three connections');
    // The pool's idle timers were set as the transactions ended, before this one: they fire first.
    await sleep(NODE_POSTGRES_IDLE_TIMEOUT_MS + 500);
    t.same(await backendsAtOnce(3), before, 'the same three backends, still open');
  },
);
