// Turns what a caller asked for (HTTP query or CLI options) into a room and a
// window. The HTTP routes and the CLI share it, so both return the same table.
import type { Db } from '../db/database.ts';
import { InputError, NotFoundError } from '../errors.ts';
import { mostRecentRoom, roomHasSamples } from '../samples/repository.ts';
import { ROLLING_WEEK, type Leaderboard, type Statistics } from './leaderboard.ts';
import type { ProbeFigures } from './probe-counts.ts';
import { probeFiguresInWindow } from './probe-figures.ts';
import { RoomRegistry, type TrackedRoom } from './rooms.ts';
import { parseWeekLabel } from './windows.ts';

export interface LeaderboardQuery {
  readonly room?: string | undefined;
  readonly week?: string | undefined;
  readonly days?: number | undefined;
}

export interface SelectionDeps {
  readonly db: Db;
  readonly statistics: Statistics;
  readonly rooms: RoomRegistry;
}

export const MAX_DAYS = 90;

/** A tracked room, or a room that holds samples; the first configured room when none is named. */
export async function resolveRoom(deps: SelectionDeps, reference: string | undefined): Promise<TrackedRoom> {
  if (reference === undefined) {
    const room = deps.rooms.default();
    if (room) return room;
    const recent = await mostRecentRoom(deps.db);
    if (recent) return deps.rooms.find(recent) ?? RoomRegistry.untracked(recent);
    throw new NotFoundError('no room is configured and no samples are stored yet');
  }
  const tracked = deps.rooms.find(reference);
  if (tracked) return tracked;
  if (reference.startsWith('!') && (await roomHasSamples(deps.db, reference))) return RoomRegistry.untracked(reference);
  throw new NotFoundError(`unknown room ${reference}`);
}

/**
 * A table with no row, saying why in one line: what `pingboard leaderboard`
 * prints (exit code 3) and /leaderboard.md and .json answer with a 404, so a
 * newsletter script cannot take an empty table for a result.
 */
export class EmptyTableError extends NotFoundError {
  constructor(board: Leaderboard) {
    const span = `${board.window.start.toISOString()} to ${board.window.end.toISOString()}`;
    super(
      `the table is empty: no server is ranked in ${board.room.id} for ${board.week === null ? span : `week ${board.week} (${span})`} ` +
        '(no samples in that window, or none that passes the filters and exclusions)',
    );
  }
}

/** A leaderboard and the probe figures of its window, as the newsletter table and the JSON show them. */
export interface Table {
  readonly board: Leaderboard;
  readonly probes: readonly ProbeFigures[];
}

/**
 * The table the caller asked for, with its window's probe figures when
 * `probes` says how to flag their clocks (the JSON carries them, the markdown
 * does not): a room measured by probes alone is not empty. Throws
 * EmptyTableError when neither ranks a server; the HTTP routes and the CLI
 * share this, so both call the same table empty.
 */
export async function selectTable(
  deps: SelectionDeps,
  query: LeaderboardQuery,
  probes: { readonly clockOffsetThresholdMs: number } | undefined,
): Promise<Table> {
  const board = await selectLeaderboard(deps, query);
  const figures = probes
    ? await probeFiguresInWindow(deps.db, board.room, board.window, probes.clockOffsetThresholdMs)
    : [];
  if (board.servers.length === 0 && figures.length === 0) throw new EmptyTableError(board);
  return { board, probes: figures };
}

export async function selectLeaderboard(deps: SelectionDeps, query: LeaderboardQuery): Promise<Leaderboard> {
  if (query.week !== undefined && query.days !== undefined) {
    throw new InputError('week', 'give either week or days, not both');
  }
  if (query.days !== undefined && (!Number.isInteger(query.days) || query.days < 1 || query.days > MAX_DAYS)) {
    throw new InputError('days', `expected an integer from 1 to ${MAX_DAYS}, got ${query.days}`);
  }
  // A week that does not exist is a bad argument whatever the database holds: say so before looking up the room.
  if (query.week !== undefined && !parseWeekLabel(query.week)) {
    throw new InputError('week', `expected an ISO week such as 2026-W47, got ${JSON.stringify(query.week)}`);
  }
  const room = await resolveRoom(deps, query.room);
  if (query.week !== undefined) return deps.statistics.week(room, query.week);
  if (query.days === undefined) return deps.statistics.rolling(room, ROLLING_WEEK);
  return deps.statistics.rolling(room, { ...ROLLING_WEEK, maxAgeSeconds: query.days * 86_400 });
}
