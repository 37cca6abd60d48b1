// Opens the database: PostgreSQL over `pg` when a URL is configured, the
// embedded PGlite otherwise, so a fresh machine runs with no server at all.
import { mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { promises as fs } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { Kysely, PGliteDialect, PostgresDialect, sql } from 'kysely';
import { FileMigrationProvider, Migrator, type MigrationResult } from 'kysely/migration';
import pg from 'pg';
import type { Tables } from './schema.ts';

export type Engine = 'postgres' | 'pglite';
export type Db = Kysely<Tables>;

export interface Database {
  readonly db: Db;
  readonly engine: Engine;
  /** Where the data lives, safe to log (no password). */
  readonly location: string;
  destroy(): Promise<void>;
}

export interface DatabaseOptions {
  readonly url: string | undefined;
  /** PGlite data directory; `memory://` keeps it in memory. */
  readonly dataDir: string;
  readonly poolSize?: number;
}

export const MIGRATIONS_DIR = fileURLToPath(new URL('../../migrations', import.meta.url));

export async function openDatabase(options: DatabaseOptions): Promise<Database> {
  if (options.url !== undefined) {
    const pool = new pg.Pool({ connectionString: options.url, max: options.poolSize ?? 10, connectionTimeoutMillis: 5000 });
    // A client losing its server must not crash the process: the next query reports it. The pool
    // listens on idle clients only; a client checked out between two queries (inside a
    // transaction, say) emits the error itself, with nobody listening, when PostgreSQL restarts.
    pool.on('error', () => {});
    pool.on('connect', (client) => client.on('error', () => {}));
    const db = new Kysely<Tables>({ dialect: new PostgresDialect({ pool }) });
    return { db, engine: 'postgres', location: redactUrl(options.url), destroy: () => db.destroy() };
  }
  const { PGlite } = await import('@electric-sql/pglite');
  const inMemory = options.dataDir.startsWith('memory://');
  const releaseLock = inMemory ? () => {} : lockDataDir(options.dataDir);
  let pglite;
  try {
    pglite = await PGlite.create(options.dataDir);
  } catch (err) {
    releaseLock();
    throw err;
  }
  const db = new Kysely<Tables>({ dialect: new PGliteDialect({ pglite }) });
  return {
    db,
    engine: 'pglite',
    location: options.dataDir,
    destroy: async () => {
      await db.destroy();
      if (!pglite.closed) await pglite.close();
      releaseLock();
    },
  };
}

export class DataDirLockedError extends Error {
  override name = 'DataDirLockedError';
}

/**
 * PGlite is a single-process database: two processes on one data directory
 * corrupt it. A lock file with the owner's PID keeps a second one out; a
 * lock left by a process that is gone is taken over.
 */
function lockDataDir(dataDir: string): () => void {
  mkdirSync(dataDir, { recursive: true });
  const lockPath = path.join(dataDir, 'pingboard.lock');
  for (let attempt = 0; attempt < 2; attempt++) {
    try {
      writeFileSync(lockPath, String(process.pid), { flag: 'wx' });
      return () => rmSync(lockPath, { force: true });
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err;
      const owner = Number(readFileSync(lockPath, 'utf8'));
      if (Number.isInteger(owner) && owner > 0 && owner !== process.pid && isAlive(owner)) {
        throw new DataDirLockedError(
          `the embedded database in ${dataDir} is in use by process ${owner}; stop it first, or use PostgreSQL (DATABASE_URL) to share the data`,
        );
      }
      rmSync(lockPath, { force: true });
    }
  }
  throw new DataDirLockedError(`cannot lock ${lockPath}`);
}

function isAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'EPERM';
  }
}

export function redactUrl(url: string): string {
  try {
    const parsed = new URL(url);
    if (parsed.password) parsed.password = '***';
    return parsed.toString();
  } catch {
    return 'an unparsable URL';
  }
}

/** Applies every pending migration; throws with the failing migration's name. */
export async function migrateToLatest(db: Db): Promise<MigrationResult[]> {
  const migrator = new Migrator({
    db,
    provider: new FileMigrationProvider({ fs, path, migrationFolder: MIGRATIONS_DIR }),
  });
  const { error, results = [] } = await migrator.migrateToLatest();
  if (error) {
    const failed = results.find((r) => r.status === 'Error');
    throw new Error(`migration ${failed?.migrationName ?? '(unknown)'} failed: ${(error as Error).message ?? error}`, { cause: error });
  }
  return results;
}

/** Round-trips a trivial query; used by /healthz. */
export async function pingDatabase(db: Db): Promise<void> {
  await sql`select 1`.execute(db);
}
