// What `serve` and the one-shot commands begin with: the database, opened
// and migrated, and the statistics over it. Apart from start.ts, so a
// command that only reads a table does not load the HTTP server and the bot.
import type { Config } from './config.ts';
import { migrateToLatest, openDatabase, openFailure, type Database } from './db/database.ts';
import { StartupError } from './errors.ts';
import type { Logger } from './log.ts';
import { Statistics } from './stats/leaderboard.ts';

/**
 * Opens and migrates the database; both `serve` and the one-shot commands
 * begin here. Migrations, and the commands a person runs and watches (an
 * import's ANALYZE of a large table, say), run without the query timeout;
 * `serve` (`timed`) then works on a pool with it.
 */
export async function openMigratedDatabase(config: Config, log: Logger, timed = false): Promise<Database> {
  let database: Database | undefined;
  try {
    // Each step that can take seconds says so first (PGlite starts in 2-20 s, a migration may take as long).
    if (config.database.url === undefined)
      log.info({ location: config.database.dataDir }, `opening the embedded database in ${config.database.dataDir}`);
    database = await openDatabase({
      url: config.database.url,
      dataDir: config.database.dataDir,
      connectTimeoutMs: config.database.connectTimeoutMs,
    });
    await migrateToLatest(database.db, (migration) => log.info({ migration }, `applying migration ${migration}`));
  } catch (err) {
    await database?.destroy();
    throw openFailure(err, config.database)?.error ?? err;
  }
  log.info({ engine: database.engine, location: database.location }, 'database ready');
  // PGlite is one instance in this process: nothing to time out.
  if (!timed || database.engine === 'pglite') return database;
  await database.destroy();
  return openDatabase(config.database);
}

/** The longest wait between two tries of a database that is not up yet. */
const MAX_RETRY_DELAY_MS = 30_000;

/**
 * `serve` started beside its database (a container, a unit starting at the
 * same time) waits for it, trying again with a growing delay and a log line
 * each time; a database that answers with a refusal (none of that name,
 * wrong password) is a setting to fix, and ends the start.
 */
export async function openMigratedDatabaseWhenUp(config: Config, log: Logger): Promise<Database> {
  for (let delayMs = 1000; ; delayMs = Math.min(delayMs * 2, MAX_RETRY_DELAY_MS)) {
    try {
      return await openMigratedDatabase(config, log, true);
    } catch (err) {
      if (!(err instanceof StartupError) || !openFailure(err, config.database)?.transient) throw err;
      log.warn(
        { reason: err.message, retryInSeconds: delayMs / 1000 },
        'the database is not reachable yet; waiting for it',
      );
      await new Promise((resolve) => setTimeout(resolve, delayMs));
    }
  }
}

export function createStatistics(
  config: Config,
  database: Database,
  options: { readonly now?: () => Date; readonly keepBuiltDigests?: boolean } = {},
): Statistics {
  return new Statistics({
    db: database.db,
    stats: config.stats,
    weeks: config.weeks,
    cacheSeconds: config.cacheSeconds,
    ...options,
  });
}
