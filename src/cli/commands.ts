// The one-shot commands. Each takes its parsed options and returns an exit
// code; output goes to the given streams so tests can read it.
import { backfillRooms } from '../backfill/backfill.ts';
import { emptyCounts, formatProgress, formatSummary } from '../backfill/progress.ts';
import { parseSince } from '../backfill/since.ts';
import { ConfigError } from '../config.ts';
import { InputError, messageWithCauses } from '../errors.ts';
import { createBotClient } from '../matrix/client.ts';
import { isValidRoomAlias, isValidRoomId } from '../matrix/ids.ts';
import { renderLeaderboardJson } from '../render/leaderboard-json.ts';
import { renderNewsletterTable } from '../render/markdown.ts';
import { importFiles, type ImportCounts } from '../samples/import.ts';
import { createStatistics, openMigratedDatabase } from '../start.ts';
import { probeFiguresInWindow } from '../stats/probe-figures.ts';
import { loadKnownRooms, RoomRegistry } from '../stats/rooms.ts';
import { resolveRoom, selectLeaderboard, type LeaderboardQuery, type SelectionDeps } from '../stats/selection.ts';
import { listFrozenWeeks } from '../stats/frozen-weeks.ts';
import { parseWeekLabel } from '../stats/windows.ts';
import { checkReason, OperatorControls } from '../operator/controls.ts';
import type { Database } from '../db/database.ts';
import type { Config } from '../config.ts';
import type { Logger } from '../log.ts';

export interface Output {
  readonly stdout: NodeJS.WritableStream & { isTTY?: boolean };
  readonly stderr: NodeJS.WritableStream & { isTTY?: boolean };
}

export async function migrateCommand(config: Config, log: Logger): Promise<number> {
  const database = await openMigratedDatabase(config, log);
  await database.destroy();
  return 0;
}

export interface LeaderboardOptions extends LeaderboardQuery {
  readonly format: 'md' | 'json';
  readonly limit: number;
}

/** What the HTTP routes select rooms and tables with, and the same rooms: configured, and what the bot learnt of them. */
async function selectionDeps(config: Config, database: Database): Promise<SelectionDeps> {
  return { db: database.db, statistics: createStatistics(config, database), rooms: new RoomRegistry(config.rooms, await loadKnownRooms(database.db)) };
}

/** Prints exactly what /leaderboard.md or /leaderboard.json returns for the same selection. */
export async function leaderboardCommand(config: Config, log: Logger, options: LeaderboardOptions, out: Output): Promise<number> {
  const database = await openMigratedDatabase(config, log);
  try {
    const board = await selectLeaderboard(await selectionDeps(config, database), options);
    out.stdout.write(options.format === 'md'
      ? renderNewsletterTable(board.servers, options.limit)
      : JSON.stringify(renderLeaderboardJson(board, options.limit, await probeFiguresInWindow(database.db, board.room, board.window))));
    return 0;
  } finally {
    await database.destroy();
  }
}

export interface RefreezeOptions {
  readonly room: string | undefined;
  /** One week; undefined with `all`. */
  readonly week: string | undefined;
  /** Every frozen week of the room. */
  readonly all: boolean;
  readonly reason: string | undefined;
}

/** Who re-froze a week from the command line, in the week's history. */
export const CLI_OPERATOR = 'operator (cli)';

/**
 * Freezes closed weeks again with the rules of this version, as the admin
 * route and the room command do: each replaced version stays in the week's
 * history with the reason. Frozen weeks never change by themselves, so
 * whether a published table is recomputed is the operator's call.
 */
export async function refreezeCommand(config: Config, log: Logger, options: RefreezeOptions, out: Output): Promise<number> {
  if ((options.week === undefined) === !options.all) throw new InputError('--week', 'give either --week W (e.g. 2026-W47) or --all');
  if (options.reason === undefined) throw new InputError('--reason', 'a reason is required (it is kept in the week\'s history)');
  const reason = checkReason(options.reason);
  if (options.week !== undefined && !parseWeekLabel(options.week)) {
    throw new InputError('--week', `expected an ISO week such as 2026-W47, got ${JSON.stringify(options.week)}`);
  }
  const database = await openMigratedDatabase(config, log);
  try {
    const deps = await selectionDeps(config, database);
    const room = await resolveRoom(deps, options.room);
    // Oldest first, so the history reads in the order the weeks were published.
    const weeks = options.week !== undefined ? [options.week] : (await listFrozenWeeks(database.db, room.id)).map((w) => w.week).reverse();
    if (weeks.length === 0) out.stdout.write(`${room.id}: no frozen weeks\n`);
    const controls = new OperatorControls(database.db, deps.statistics);
    for (const week of weeks) {
      const frozen = await controls.refreeze(room, week, CLI_OPERATOR, reason);
      out.stdout.write(`${room.id} ${frozen.week}: version ${frozen.version}, ${frozen.servers.length} ranked\n`);
    }
    return 0;
  } finally {
    await database.destroy();
  }
}

/** Rejections printed in full before the rest are only counted, so a broken file does not flood the terminal. */
const MAX_REPORTED_REJECTIONS = 100;
const PROGRESS_INTERVAL_MS = 250;

export async function importCommand(config: Config, log: Logger, files: readonly string[], out: Output): Promise<number> {
  const database = await openMigratedDatabase(config, log);
  const counts: ImportCounts = { read: 0, stored: 0, duplicate: 0, rejected: 0 };
  const started = performance.now();
  let lastProgress = 0;
  let failedFiles = 0;
  const progress = (final: boolean) => {
    if (!out.stderr.isTTY) return;
    const now = performance.now();
    if (!final && now - lastProgress < PROGRESS_INTERVAL_MS) return;
    lastProgress = now;
    const rate = Math.round(counts.read / Math.max(0.001, (now - started) / 1000));
    out.stderr.write(`\r\x1b[K${counts.read.toLocaleString('en')} read, ${counts.stored.toLocaleString('en')} stored, ` +
      `${counts.duplicate.toLocaleString('en')} duplicate, ${counts.rejected.toLocaleString('en')} rejected (${rate.toLocaleString('en')}/s)${final ? '\n' : ''}`);
  };
  try {
    await importFiles(database.db, files, counts, {
      retention: { days: config.retentionDays, now: new Date() },
      onProgress: () => progress(false),
      onRejected: (r) => {
        if (counts.rejected <= MAX_REPORTED_REJECTIONS) out.stderr.write(`${out.stderr.isTTY ? '\r\x1b[K' : ''}${r.file}:${r.line}: ${r.error}\n`);
      },
      onUnreadable: (file, err) => {
        failedFiles++;
        out.stderr.write(`${file}: cannot read: ${err.message}\n`);
      },
    });
  } finally {
    progress(true);
    await database.destroy();
  }
  if (counts.rejected > MAX_REPORTED_REJECTIONS) out.stderr.write(`… and ${counts.rejected - MAX_REPORTED_REJECTIONS} more rejected records\n`);
  const seconds = (performance.now() - started) / 1000;
  out.stdout.write(`read ${counts.read}, stored ${counts.stored}, duplicate ${counts.duplicate}, rejected ${counts.rejected}` +
    `${failedFiles ? `, unreadable files ${failedFiles}` : ''} in ${seconds.toFixed(1)} s\n`);
  return counts.rejected > 0 || failedFiles > 0 ? 1 : 0;
}

export interface BackfillCommandOptions {
  /** A room ID or alias; undefined: every configured room. */
  readonly room: string | undefined;
  /** As `--since` accepts it; undefined: the last 7 days. */
  readonly since: string | undefined;
  /** Aborted on Ctrl-C: the run stops after the page in hand, and the next one continues there. */
  readonly signal: AbortSignal;
}

/** Exit code of a backfill stopped by a signal (128 + SIGINT), as shells report it. */
export const INTERRUPTED_EXIT_CODE = 130;

export async function backfillCommand(config: Config, log: Logger, options: BackfillCommandOptions, out: Output): Promise<number> {
  if (!config.bot) {
    throw new ConfigError('PINGBOARD_HOMESERVER_URL: backfill reads the rooms through the bot\'s account; ' +
      'set PINGBOARD_HOMESERVER_URL, PINGBOARD_BOT_USER_ID and PINGBOARD_BOT_ACCESS_TOKEN (or PINGBOARD_BOT_PASSWORD)');
  }
  const now = new Date();
  const since = parseSince(options.since ?? '7d', now);
  if (options.room !== undefined && !isValidRoomId(options.room) && !isValidRoomAlias(options.room)) {
    throw new InputError('--room', `expected a room ID (!id:server) or alias (#alias:server), got ${JSON.stringify(options.room)}`);
  }
  const rooms = options.room !== undefined ? [options.room] : config.rooms.map((r) => r.id);
  if (rooms.length === 0) throw new InputError('--room', 'no room given and PINGBOARD_ROOMS names none');
  const database = await openMigratedDatabase(config, log);
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
    const { client } = await createBotClient(config.bot, database.db, log);
    const result = await backfillRooms(rooms, {
      client, db: database.db, log, since, now, trustedResponders: config.pings.trustedResponders, signal: options.signal, counts,
      retentionDays: config.retentionDays,
      onProgress: () => progress(false),
    });
    progress(true);
    out.stdout.write(`${formatSummary(counts, performance.now() - started)}\n`);
    for (const { room, error } of result.unreadable) out.stderr.write(`cannot read room ${room}: ${error}; its history is left out (the next run tries again)\n`);
    if (result.unreadable.length > 0) return 1;
    if (!result.completed) {
      out.stderr.write('interrupted: the next run continues where this one stopped\n');
      return INTERRUPTED_EXIT_CODE;
    }
    return 0;
  } catch (err) {
    progress(true);
    // A homeserver that refuses the bot or stays down: one line, not a stack.
    if ((err as { httpStatus?: number }).httpStatus !== undefined || (err as Error).name === 'ConnectionError') {
      // fetch says "fetch failed", twice through the SDK; the cause names the host and what went wrong.
      out.stderr.write(`backfill failed: homeserver ${config.bot.homeserverUrl} (PINGBOARD_HOMESERVER_URL): ${messageWithCauses(err)} (samples stored so far are kept; the next run continues)\n`);
      return 1;
    }
    throw err;
  } finally {
    await database.destroy();
  }
}
