// Opens the database: PostgreSQL over `pg` when a URL is configured, the
// embedded PGlite otherwise, so a fresh machine runs with no server at all.
import { promises as fs } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { Kysely, PGliteDialect, PostgresDialect, sql } from 'kysely';
import { FileMigrationProvider, Migrator, type MigrationResult } from 'kysely/migration';
import pg from 'pg';
import { errorChain, messageWithCauses, StartupError } from '../errors.ts';
import type { PGlite } from '@electric-sql/pglite';
import { createDataDir, isNewDataDir, openPGlite } from './create-pglite.ts';
import { lockDataDir } from './data-dir-lock.ts';
import type { Tables } from './schema.ts';

export type Engine = 'postgres' | 'pglite';
export type Db = Kysely<Tables>;

export interface Database {
  readonly db: Db;
  readonly engine: Engine;
  /** Where the data lives, safe to log (no password). */
  readonly location: string;
  /**
   * Round-trips a trivial query over a connection of its own, so a flood of
   * requests does not queue it; rejects when no answer comes within `timeoutMs`.
   */
  ping(timeoutMs: number): Promise<void>;
  /**
   * Like ping, and says how far this server, when it is a standby, is behind
   * its primary: for /healthz's report on the read replica.
   */
  replication(timeoutMs: number): Promise<Replication>;
  destroy(): Promise<void>;
}

export interface Replication {
  /** A hot standby (pg_is_in_recovery()); false for a primary, and for PGlite. */
  readonly standby: boolean;
  /**
   * Seconds since the newest transaction the standby replayed was committed on the
   * primary; 0 once it has replayed all the WAL it received; null for a primary.
   */
  readonly replayLagSeconds: number | null;
}

export interface DatabaseOptions {
  readonly url: string | undefined;
  /** PGlite data directory; `memory://` keeps it in memory. */
  readonly dataDir: string;
  readonly poolSize?: number;
  /**
   * A statement running longer is cancelled by PostgreSQL (statement_timeout),
   * and a query without any answer this long after (a server that hangs
   * cannot cancel anything) fails on the client (pg's query_timeout).
   * 0 or absent: no limit. PGlite runs in this process and cannot hang that way.
   */
  readonly queryTimeoutMs?: number;
  /** How long to wait for a connection, new or from the pool (pg's connectionTimeoutMillis). */
  readonly connectTimeoutMs?: number;
  /**
   * PostgreSQL: every transaction is read-only (default_transaction_read_only), so a
   * write slipped into a reader fails on a primary as it would on a standby, in tests too.
   */
  readonly readOnly?: boolean;
}

/** Time a server that still answers has to report its own statement timeout before the client gives up. */
const CLIENT_TIMEOUT_MARGIN_MS = 500;
const DEFAULT_CONNECT_TIMEOUT_MS = 5000;

/** How far a standby is behind; the lag is 0 once all that it received is replayed (an idle primary sends nothing). */
const REPLICATION_QUERY = `select pg_is_in_recovery() as standby,
  case when not pg_is_in_recovery() then null
       when pg_last_wal_receive_lsn() = pg_last_wal_replay_lsn() then 0
       else greatest(0, extract(epoch from now() - pg_last_xact_replay_timestamp()))::float8 end as lag`;

export const MIGRATIONS_DIR = fileURLToPath(new URL('../../migrations', import.meta.url));

export async function openDatabase(options: DatabaseOptions): Promise<Database> {
  if (options.url !== undefined) {
    const timeout = options.queryTimeoutMs ?? 0;
    const poolSize = options.poolSize ?? 10;
    const pool = newPool(options.url, {
      max: poolSize,
      // Connections stay open however long they idle. A new one costs 10-20 ms
      // to open and its first statements 40-60 ms more (a new backend fills its
      // caches): closed after node-postgres's default ten idle seconds, a
      // table asked for after a quiet spell opened all four of its connections
      // again (270 ms for a week of a million samples, against 100 on kept ones).
      min: poolSize,
      connectionTimeoutMillis: options.connectTimeoutMs ?? DEFAULT_CONNECT_TIMEOUT_MS,
      ...(timeout > 0 ? { statement_timeout: timeout, query_timeout: timeout + CLIENT_TIMEOUT_MARGIN_MS } : {}),
      ...(options.readOnly ? { options: '-c default_transaction_read_only=on' } : {}),
    });
    // Health checks get a connection of their own, created on first use.
    let healthPool: pg.Pool | undefined;
    const healthQuery = async <Row extends pg.QueryResultRow>(text: string, timeoutMs: number) => {
      healthPool ??= newPool(options.url!, { max: 1, connectionTimeoutMillis: timeoutMs, query_timeout: timeoutMs });
      const query = healthPool.query<Row>(text);
      await withTimeout(query, timeoutMs);
      return (await query).rows;
    };
    const db = new Kysely<Tables>({ dialect: new PostgresDialect({ pool }) });
    return {
      db,
      engine: 'postgres',
      location: redactUrl(options.url),
      ping: async (timeoutMs) => {
        await healthQuery('select 1', timeoutMs);
      },
      replication: async (timeoutMs) => {
        const [row] = await healthQuery<{ standby: boolean; lag: number | null }>(REPLICATION_QUERY, timeoutMs);
        return { standby: row!.standby, replayLagSeconds: row!.lag };
      },
      destroy: async () => {
        await db.destroy();
        await healthPool?.end();
      },
    };
  }
  const inMemory = options.dataDir.startsWith('memory://');
  const releaseLock = inMemory ? () => {} : lockDataDir(options.dataDir);
  let pglite: PGlite;
  try {
    if (isNewDataDir(options.dataDir)) await createDataDir(options.dataDir);
    pglite = await openPGlite(options.dataDir);
  } catch (err) {
    releaseLock();
    throw err;
  }
  const db = new Kysely<Tables>({ dialect: new PGliteDialect({ pglite }) });
  // One connection, in this process: a long statement delays the ping, and the timeout says so.
  const ping = (timeoutMs: number) => withTimeout(sql`select 1`.execute(db), timeoutMs);
  return {
    db,
    engine: 'pglite',
    location: options.dataDir,
    ping,
    replication: async (timeoutMs) => {
      await ping(timeoutMs);
      return { standby: false, replayLagSeconds: null };
    },
    destroy: async () => {
      await db.destroy();
      if (!pglite.closed) await pglite.close();
      releaseLock();
    },
  };
}

function newPool(url: string, options: pg.PoolConfig): pg.Pool {
  // TCP keepalives: a connection kept idle for hours that a firewall or NAT dropped in between fails
  // then, rather than taking the next statement's whole timeout to be found dead.
  const pool = new pg.Pool({ connectionString: url, keepAlive: true, ...options });
  // A client losing its server must not crash the process: the next query reports it. The pool
  // listens on idle clients only; a client checked out between two queries (inside a
  // transaction, say) emits the error itself, with nobody listening, when PostgreSQL restarts.
  pool.on('error', () => {});
  pool.on('connect', (client) => client.on('error', () => {}));
  return pool;
}

export class DatabaseTimeoutError extends Error {
  override name = 'DatabaseTimeoutError';
}

/** `work`, or a DatabaseTimeoutError once `timeoutMs` has passed without it settling. */
async function withTimeout(work: Promise<unknown>, timeoutMs: number): Promise<void> {
  let timer: NodeJS.Timeout | undefined;
  const late = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new DatabaseTimeoutError(`no answer within ${timeoutMs} ms`)), timeoutMs);
  });
  // The work may still fail after the deadline; nobody is waiting for it then.
  work.catch(() => {});
  try {
    await Promise.race([work, late]);
  } finally {
    clearTimeout(timer);
  }
}

/** A server that may come up shortly: not there, not resolvable yet, or starting (57P03). */
const NOT_UP_YET = new Set([
  'ECONNREFUSED',
  'ENOTFOUND',
  'EAI_AGAIN',
  'ETIMEDOUT',
  'EHOSTUNREACH',
  'ENETUNREACH',
  'ECONNRESET',
  '57P03',
]);
/** A data directory that cannot be made or written. */
const UNUSABLE_DIRECTORY = new Set([
  'EACCES',
  'EPERM',
  'ENOTDIR',
  'EROFS',
  'EEXIST',
  'ENOSPC',
  'ELOOP',
  'ENAMETOOLONG',
]);

export interface OpenFailure {
  readonly error: StartupError;
  /** The server may come up shortly: worth trying again. */
  readonly transient: boolean;
}

/**
 * What an error opening or migrating the database means for whoever started
 * the service, as one line naming the setting; undefined for anything else
 * (a failed migration, a bug), which keeps its stack.
 */
export function openFailure(err: unknown, options: Pick<DatabaseOptions, 'url' | 'dataDir'>): OpenFailure | undefined {
  const chain = errorChain(err);
  const codes = new Set(chain.map((e) => (e as { code?: unknown }).code).filter((c) => typeof c === 'string'));
  if (options.url === undefined) {
    if (![...codes].some((c) => UNUSABLE_DIRECTORY.has(c))) return undefined;
    return {
      error: new StartupError(
        'PINGBOARD_DATA_DIR',
        `cannot use ${options.dataDir} for the embedded database: ${messageWithCauses(err)}`,
        { cause: err },
      ),
      transient: false,
    };
  }
  const server = serverOf(options.url);
  const pgError = chain.find((e) => typeof (e as { severity?: unknown }).severity === 'string') as Error | undefined;
  if (codes.has('3D000') || codes.has('28P01') || codes.has('28000')) {
    return {
      error: new StartupError(
        'DATABASE_URL',
        `${pgError?.message ?? messageWithCauses(err)} (PostgreSQL at ${server})`,
        { cause: err },
      ),
      transient: false,
    };
  }
  const unreachable =
    [...codes].some((c) => NOT_UP_YET.has(c)) ||
    chain.some((e) =>
      /timeout exceeded when trying to connect|Connection terminated/i.test((e as Error)?.message ?? ''),
    );
  if (!unreachable) return undefined;
  return {
    error: new StartupError('DATABASE_URL', `cannot reach PostgreSQL at ${server}: ${messageWithCauses(err)}`, {
      cause: err,
    }),
    transient: true,
  };
}

/** host:port of a database URL, for messages (no user, no password). */
function serverOf(url: string): string {
  try {
    const parsed = new URL(url);
    return `${parsed.hostname || 'localhost'}:${parsed.port || '5432'}`;
  } catch {
    return 'an unparsable URL';
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

/**
 * Applies every pending migration, one at a time so `onApplying` can say
 * which one runs (on PGlite one takes seconds); throws with the failing
 * migration's name.
 */
export async function migrateToLatest(
  db: Db,
  onApplying: (migration: string) => void = () => {},
): Promise<MigrationResult[]> {
  const migrator = new Migrator({
    db,
    provider: new FileMigrationProvider({ fs, path, migrationFolder: MIGRATIONS_DIR }),
  });
  const applied: MigrationResult[] = [];
  for (const { name } of (await migrator.getMigrations()).filter((m) => m.executedAt === undefined)) {
    onApplying(name);
    // Up to this one: another process that applied it meanwhile leaves nothing to do.
    const { error, results = [] } = await migrator.migrateTo(name);
    if (error) {
      const failed = results.find((r) => r.status === 'Error');
      // No migration ran: the database could not be reached or locked, which the error says itself.
      if (!failed) throw error;
      throw new Error(`migration ${failed.migrationName} failed: ${(error as Error).message ?? error}`, {
        cause: error,
      });
    }
    applied.push(...results);
  }
  return applied;
}

/** How long /healthz waits for the database: it answers within a second whatever the database does. */
export const HEALTH_TIMEOUT_MS = 500;

/** Round-trips a trivial query for /healthz, on its own connection, within HEALTH_TIMEOUT_MS. */
export function pingDatabase(database: Database): Promise<void> {
  return database.ping(HEALTH_TIMEOUT_MS);
}

/**
 * Why the database did not answer, as a word that stays the same from one
 * version to the next: /healthz shows it in place of the error's text, which
 * names hosts, ports and users.
 */
export type DatabaseFailure = 'timeout' | 'unreachable' | 'disconnected' | 'refused' | 'closed' | 'error';

const FAILURE_BY_CODE: Readonly<Record<string, DatabaseFailure>> = {
  // pg's query_timeout, and PostgreSQL's statement_timeout.
  '57014': 'timeout',
  ECONNREFUSED: 'unreachable',
  EHOSTUNREACH: 'unreachable',
  ENETUNREACH: 'unreachable',
  ENOTFOUND: 'unreachable',
  EAI_AGAIN: 'unreachable',
  ETIMEDOUT: 'unreachable',
  ECONNRESET: 'disconnected',
  EPIPE: 'disconnected',
  '57P01': 'disconnected',
  '57P02': 'disconnected',
  '08000': 'disconnected',
  '08003': 'disconnected',
  '08006': 'disconnected',
  // The server answered and said no: a password, a database that is not there, too many connections, starting up or shutting down.
  '28000': 'refused',
  '28P01': 'refused',
  '3D000': 'refused',
  '53300': 'refused',
  '57P03': 'refused',
  '08001': 'refused',
  '08004': 'refused',
};

export function databaseFailure(err: unknown): DatabaseFailure {
  for (const e of errorChain(err)) {
    if (e instanceof DatabaseTimeoutError) return 'timeout';
    const code = (e as { code?: unknown }).code;
    if (typeof code === 'string' && Object.hasOwn(FAILURE_BY_CODE, code)) return FAILURE_BY_CODE[code]!;
    const message = e instanceof Error ? e.message : '';
    if (/PGlite is closed/i.test(message)) return 'closed';
    if (/timeout|timed out/i.test(message)) return 'timeout';
    if (/Connection terminated/i.test(message)) return 'disconnected';
  }
  return 'error';
}
