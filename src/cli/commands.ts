// The one-shot commands. Each takes its parsed options and returns an exit
// code; output goes to the given streams so tests can read it.
import { renderLeaderboardJson } from '../render/leaderboard-json.ts';
import { renderNewsletterTable } from '../render/markdown.ts';
import type { ImportCounts, StopPosition } from '../samples/import.ts';
import { importFiles } from './import-files.ts';
import { createStatistics, openMigratedDatabase } from '../open.ts';
import { loadKnownRooms, RoomRegistry } from '../stats/rooms.ts';
import { EmptyTableError, resolveRoom, selectTable, type LeaderboardQuery, type Table } from '../stats/selection.ts';
import { listFrozenWeeks } from '../stats/frozen-weeks.ts';
import type { Statistics } from '../stats/leaderboard.ts';
import { OperatorControls } from '../operator/controls.ts';
import type { Database } from '../db/database.ts';
import type { Config } from '../config.ts';
import type { Logger } from '../log.ts';
import { EMPTY_TABLE, FAILED, INTERRUPTED } from './exit-codes.ts';

export interface Output {
  readonly stdout: NodeJS.WritableStream & { isTTY?: boolean };
  readonly stderr: NodeJS.WritableStream & { isTTY?: boolean };
}

/**
 * What a command works on: opened for it (withOwnData), or, while `serve`
 * holds the embedded database, the running service's (see channel.ts).
 * The statistics and rooms are what the HTTP routes select tables with.
 */
export interface CommandData {
  readonly database: Database;
  readonly statistics: Statistics;
  readonly rooms: RoomRegistry;
  /** PINGBOARD_CLOCK_OFFSET_THRESHOLD_MS: what flags a clock in the probes' figures. */
  readonly clockOffsetThresholdMs: number;
}

export async function migrateCommand(config: Config, log: Logger): Promise<number> {
  const database = await openMigratedDatabase(config, log);
  await database.destroy();
  return 0;
}

/** Opens and migrates the database for one command, and closes it after. */
export async function withOwnData<T>(config: Config, log: Logger, work: (data: CommandData) => Promise<T>): Promise<T> {
  const database = await openMigratedDatabase(config, log);
  try {
    return await work({
      database,
      // The command's process ends with it: the digests an import builds are not kept for tables it will not compute.
      statistics: createStatistics(config, database, { keepBuiltDigests: false }),
      rooms: new RoomRegistry(config.rooms, await loadKnownRooms(database.db)),
      clockOffsetThresholdMs: config.probes.clockOffsetThresholdMs,
    });
  } finally {
    await database.destroy();
  }
}

export interface LeaderboardOptions extends LeaderboardQuery {
  readonly format: 'md' | 'json';
  readonly limit: number;
}

/** Prints exactly what /leaderboard.md or /leaderboard.json returns for the same selection; nothing, and exit 3, for an empty table. */
export async function leaderboardCommand(data: CommandData, options: LeaderboardOptions, out: Output): Promise<number> {
  const { database, statistics, rooms } = data;
  let table: Table;
  try {
    table = await selectTable(
      { db: database.db, statistics, rooms },
      options,
      options.format === 'json' ? { clockOffsetThresholdMs: data.clockOffsetThresholdMs } : undefined,
    );
  } catch (err) {
    if (!(err instanceof EmptyTableError)) throw err;
    out.stderr.write(`pingboard: ${err.message}\n`);
    return EMPTY_TABLE;
  }
  const { board, probes } = table;
  out.stdout.write(
    options.format === 'md'
      ? renderNewsletterTable(board.servers, options.limit)
      : JSON.stringify(renderLeaderboardJson(board, options.limit, probes)),
  );
  return 0;
}

export interface RefreezeOptions {
  readonly room: string | undefined;
  /** One week; undefined: every frozen week of the room. */
  readonly week: string | undefined;
  /** Checked (see checkReason). */
  readonly reason: string;
}

/** Who re-froze a week from the command line, in the week's history. */
export const CLI_OPERATOR = 'operator (cli)';

/**
 * Freezes closed weeks again with the rules of this version, as the admin
 * route and the room command do: each replaced version stays in the week's
 * history with the reason. Frozen weeks never change by themselves, so
 * whether a published table is recomputed is the operator's call.
 */
export async function refreezeCommand(data: CommandData, options: RefreezeOptions, out: Output): Promise<number> {
  const { database, statistics, rooms } = data;
  const room = await resolveRoom({ db: database.db, statistics, rooms }, options.room);
  // Oldest first, so the history reads in the order the weeks were published.
  const weeks =
    options.week !== undefined
      ? [options.week]
      : (await listFrozenWeeks(database.db, room.id)).map((w) => w.week).reverse();
  if (weeks.length === 0) out.stdout.write(`${room.id}: no frozen weeks\n`);
  const controls = new OperatorControls(database.db, statistics);
  for (const week of weeks) {
    const frozen = await controls.refreeze(room, week, CLI_OPERATOR, options.reason);
    out.stdout.write(`${room.id} ${frozen.week}: version ${frozen.version}, ${frozen.servers.length} ranked\n`);
  }
  return 0;
}

/** Rejections printed in full before the rest are only counted, so a broken file does not flood the terminal. */
const MAX_REPORTED_REJECTIONS = 100;
export const PROGRESS_INTERVAL_MS = 250;

export interface ImportCommandOptions {
  /** As given on the command line. */
  readonly files: readonly string[];
  /** Where relative names are read from: the caller's directory, which is not the service's. */
  readonly cwd?: string;
  /** Aborted by Ctrl-C or SIGTERM (the caller's, or the service's stopping). */
  readonly signal: AbortSignal;
}

/**
 * Imports the files in order. Aborting `signal` (Ctrl-C, SIGTERM) stops it
 * after the records read so far are stored: it says where, and exits 130;
 * the same import run again skips what is stored (as duplicates) and goes on.
 */
export async function importCommand(
  config: Config,
  data: CommandData,
  { files, cwd, signal }: ImportCommandOptions,
  out: Output,
): Promise<number> {
  const counts: ImportCounts = { read: 0, stored: 0, duplicate: 0, rejected: 0 };
  const started = performance.now();
  let lastProgress = 0;
  let failedFiles = 0;
  /** The counts on one line a terminal rewrites in place; `doing`, when given, says what the import does meanwhile. */
  const progress = (final: boolean, doing = '') => {
    if (!out.stderr.isTTY) return;
    const now = performance.now();
    if (!final && !doing && now - lastProgress < PROGRESS_INTERVAL_MS) return;
    lastProgress = now;
    const rate = Math.round(counts.read / Math.max(0.001, (now - started) / 1000));
    out.stderr.write(
      `\r\x1b[K${counts.read.toLocaleString('en')} read, ${counts.stored.toLocaleString('en')} stored, ` +
        `${counts.duplicate.toLocaleString('en')} duplicate, ${counts.rejected.toLocaleString('en')} rejected (${rate.toLocaleString('en')}/s)${doing}${final ? '\n' : ''}`,
    );
  };
  let stoppedAt: StopPosition | undefined;
  try {
    ({ stoppedAt } = await importFiles(data.database.db, data.statistics, files, counts, {
      retention: { days: config.retentionDays, now: new Date() },
      signal,
      cwd,
      onProgress: () => progress(false),
      // After a million samples the digests take seconds on PostgreSQL and half a minute on PGlite: the line says why it waits.
      onFinishing: () => progress(false, "; building the week's digests for the leaderboard…"),
      roomOf: (roomId) => data.rooms.find(roomId),
      onRejected: (r) => {
        if (counts.rejected <= MAX_REPORTED_REJECTIONS)
          out.stderr.write(`${out.stderr.isTTY ? '\r\x1b[K' : ''}${r.file}:${r.line}: ${r.error}\n`);
      },
      onUnreadable: (file, err) => {
        failedFiles++;
        out.stderr.write(`${file}: cannot read: ${err.message}\n`);
      },
    }));
  } finally {
    progress(true);
    // A running service shows what was stored at once, not when its cached tables expire.
    data.statistics.forgetLiveTables();
  }
  if (counts.rejected > MAX_REPORTED_REJECTIONS)
    out.stderr.write(`… and ${counts.rejected - MAX_REPORTED_REJECTIONS} more rejected records\n`);
  const seconds = (performance.now() - started) / 1000;
  out.stdout.write(
    `read ${counts.read}, stored ${counts.stored}, duplicate ${counts.duplicate}, rejected ${counts.rejected}` +
      `${failedFiles ? `, unreadable files ${failedFiles}` : ''} in ${seconds.toFixed(1)} s\n`,
  );
  if (stoppedAt) {
    out.stderr.write(
      `interrupted after ${stoppedAt.file}:${stoppedAt.line}: every record up to there is read and stored; ` +
        'run the same import again to continue (what is stored is skipped as duplicate)\n',
    );
    return INTERRUPTED;
  }
  return counts.rejected > 0 || failedFiles > 0 ? FAILED : 0;
}
