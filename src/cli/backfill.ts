// `pingboard backfill`: the pongs in the rooms' history, read through the
// bot's account. Apart from the other commands because it loads the Matrix
// SDK, which must come after sdk-logs.ts (main.ts sees to it). It runs on a
// database of its own, or on a running service's (through channel.ts), with
// the same account client, output and exit codes.
import { backfillRooms } from '../backfill/backfill.ts';
import { emptyCounts, formatProgress, formatSummary } from '../backfill/progress.ts';
import type { Config } from '../config.ts';
import { messageWithCauses } from '../errors.ts';
import type { Database } from '../db/database.ts';
import type { Logger } from '../log.ts';
import { createAccountClient } from '../matrix/client.ts';
import { openMigratedDatabase } from '../open.ts';
import { backfillRoomsOf, type BackfillCommandOptions } from './backfill-rooms.ts';
import { PROGRESS_INTERVAL_MS, type Output } from './commands.ts';
import { FAILED, INTERRUPTED } from './exit-codes.ts';

/** Opens and migrates the database for the run, and closes it after. */
export async function backfillCommand(
  config: Config,
  log: Logger,
  options: BackfillCommandOptions,
  out: Output,
): Promise<number> {
  // Refused before the database is opened, which takes seconds.
  backfillRoomsOf(config, options);
  const database = await openMigratedDatabase(config, log);
  try {
    return await backfillOn(database, config, log, options, out);
  } finally {
    await database.destroy();
  }
}

/** The run on a database already open (a running service's); the bot's account client is the run's own. */
export async function backfillOn(
  database: Database,
  config: Config,
  log: Logger,
  options: BackfillCommandOptions,
  out: Output,
): Promise<number> {
  const { bot, rooms } = backfillRoomsOf(config, options);
  const now = new Date();
  const counts = emptyCounts();
  const started = performance.now();
  let lastProgress = 0;
  const progress = (final: boolean) => {
    if (!out.stderr.isTTY) return;
    const now = performance.now();
    if (!final && now - lastProgress < PROGRESS_INTERVAL_MS) return;
    lastProgress = now;
    out.stderr.write(`\r\x1b[K${formatProgress(counts, now - started)}${final ? '\n' : ''}`);
  };
  try {
    const { client } = await createAccountClient(bot, database.db, log);
    const result = await backfillRooms(rooms, {
      client,
      db: database.db,
      log,
      since: options.since,
      now,
      trustedResponders: config.pings.trustedResponders,
      signal: options.signal,
      counts,
      retentionDays: config.retentionDays,
      onProgress: () => progress(false),
    });
    progress(true);
    out.stdout.write(`${formatSummary(counts, performance.now() - started)}\n`);
    for (const { room, error } of result.unreadable)
      out.stderr.write(`cannot read room ${room}: ${error}; its history is left out (the next run tries again)\n`);
    if (result.unreadable.length > 0) return FAILED;
    if (!result.completed) {
      out.stderr.write('interrupted: the next run continues where this one stopped\n');
      return INTERRUPTED;
    }
    return 0;
  } catch (err) {
    progress(true);
    // A homeserver that refuses the bot or stays down: one line, not a stack.
    if ((err as { httpStatus?: number }).httpStatus !== undefined || (err as Error).name === 'ConnectionError') {
      // fetch says "fetch failed", twice through the SDK; the cause names the host and what went wrong.
      out.stderr.write(
        `backfill failed: homeserver ${bot.homeserverUrl} (PINGBOARD_HOMESERVER_URL): ${messageWithCauses(err)} (samples stored so far are kept; the next run continues)\n`,
      );
      return FAILED;
    }
    throw err;
  }
}
