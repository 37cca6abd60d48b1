// Test databases on both engines. Every test file gets its own database per
// engine (a fresh PostgreSQL database, an in-memory PGlite), migrated with the
// real migrations; `forEachEngine` runs the same tests against each.
//
// PINGBOARD_TEST_ENGINES (default "pglite,postgres") picks the engines;
// PINGBOARD_TEST_POSTGRES_URL (default postgres://postgres@127.0.0.1:5432/postgres)
// is the server on which throwaway databases are created.
import { randomBytes } from 'node:crypto';
import type { Test as TapTest, TestOpts } from 'tap';
import type { BuiltPlugins } from '@tapjs/test';
import pg from 'pg';
import { sql } from 'kysely';
import { migrateToLatest, openDatabase, type Database, type Engine } from '../../src/db/database.ts';

export type Test = TapTest<BuiltPlugins, TestOpts> & BuiltPlugins;

export const ADMIN_URL = process.env['PINGBOARD_TEST_POSTGRES_URL'] ?? 'postgres://postgres@127.0.0.1:5432/postgres';

export function testEngines(): Engine[] {
  const raw = process.env['PINGBOARD_TEST_ENGINES'] ?? 'pglite,postgres';
  return raw
    .split(',')
    .map((e) => e.trim())
    .filter((e): e is Engine => e === 'pglite' || e === 'postgres');
}

export interface TestDatabase extends Database {
  /** The URL of the throwaway PostgreSQL database (undefined on PGlite). */
  readonly url: string | undefined;
}

/** A fresh, migrated database on `engine`; destroy() also drops it. */
export async function openTestDatabase(engine: Engine): Promise<TestDatabase> {
  if (engine === 'pglite') {
    const database = await openDatabase({ url: undefined, dataDir: 'memory://' });
    await migrateToLatest(database.db);
    return { ...database, url: undefined };
  }
  const name = `pingboard_test_${process.pid}_${randomBytes(4).toString('hex')}`;
  const admin = new pg.Client({ connectionString: ADMIN_URL });
  try {
    await admin.connect();
  } catch (err) {
    throw new Error(
      `PostgreSQL is not reachable at ${ADMIN_URL} (${(err as Error).message}). ` +
        'Start it (see README) or run only the embedded engine with PINGBOARD_TEST_ENGINES=pglite.',
    );
  }
  await admin.query(`create database ${name}`);
  await admin.end();
  const url = new URL(ADMIN_URL);
  url.pathname = `/${name}`;
  const database = await openDatabase({ url: url.toString(), dataDir: '' });
  await migrateToLatest(database.db);
  return {
    ...database,
    url: url.toString(),
    destroy: async () => {
      await database.destroy();
      const cleanup = new pg.Client({ connectionString: ADMIN_URL });
      await cleanup.connect();
      await cleanup.query(`drop database if exists ${name} with (force)`);
      await cleanup.end();
    },
  };
}

/** Empties every table, so tests sharing one database start clean. */
export async function truncateAll(database: Database): Promise<void> {
  await sql`truncate samples, frozen_weeks, frozen_week_history, server_exclusions, bot_state, hourly_digests, server_names, probe_pings, one_way_samples, tracked_rooms restart identity`.execute(
    database.db,
  );
}

/**
 * Runs `fn` once per engine, each in its own subtest named after the engine,
 * with a database that is emptied before each of its subtests.
 */
export function forEachEngine(tap: Test, fn: (t: Test, database: TestDatabase) => void | Promise<void>): void {
  for (const engine of testEngines()) {
    tap.test(engine, async (t) => {
      const database = await openTestDatabase(engine);
      t.teardown(() => database.destroy());
      t.beforeEach(() => truncateAll(database));
      await fn(t, database);
    });
  }
}

async function admin(statement: string, params: unknown[] = []): Promise<void> {
  const client = new pg.Client({ connectionString: ADMIN_URL });
  await client.connect();
  try {
    await client.query(statement, params);
  } finally {
    await client.end();
  }
}

/**
 * Makes a throwaway PostgreSQL database unreachable (connections refused,
 * open ones ended) or reachable again, without touching the shared server.
 */
export async function setDatabaseReachable(database: TestDatabase, reachable: boolean): Promise<void> {
  if (!database.url) throw new Error('only a PostgreSQL test database can be made unreachable');
  const name = new URL(database.url).pathname.slice(1);
  await admin(`alter database ${name} allow_connections ${reachable}`);
  if (!reachable) await admin('select pg_terminate_backend(pid) from pg_stat_activity where datname = $1', [name]);
}
