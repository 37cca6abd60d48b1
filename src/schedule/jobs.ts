// Scheduled work. Each job never overlaps itself, logs its failures instead
// of crashing the process, and stops with stop().
import cron from 'node-cron';
import type { Logger } from '../log.ts';
import { ROLLING_WEEK, type Statistics } from '../stats/leaderboard.ts';
import type { KnownRoom, RoomRegistry } from '../stats/rooms.ts';

export interface Jobs {
  /** Runs the week freezer once, now (also done at start). */
  freezeNow(): Promise<void>;
  /**
   * Asks for the missing digests to be built soon (after a write): at most
   * one build runs at a time, and one asked for meanwhile runs after it.
   * Resolves when a build begun after the call has ended.
   */
  buildDigestsSoon(): Promise<void>;
  stop(): Promise<void>;
}

/**
 * Every five minutes: learn what was stored of the rooms (an alias's ID, an
 * upgrade) by a bot elsewhere or a backfill, build the digests of hours that
 * closed meanwhile or whose digest a write dropped, freeze the last closed
 * week of every tracked room once its grace period is over, and compute each
 * room's rolling week. Requests only read: none waits for any of this.
 */
export const FREEZE_SCHEDULE = '*/5 * * * *';

async function learnRooms(rooms: RoomRegistry, knownRooms: () => Promise<readonly KnownRoom[]>): Promise<void> {
  rooms.learn(await knownRooms());
}

export interface RoomLearning {
  stop(): Promise<void>;
}

/**
 * On an instance that does not lead (docs/instances.md), the bot runs
 * elsewhere: what it stores of the rooms (an alias's ID, an upgrade) is
 * learnt on the jobs' schedule, without the jobs.
 */
export function startRoomLearning(
  rooms: RoomRegistry,
  knownRooms: () => Promise<readonly KnownRoom[]>,
  log: Logger,
): RoomLearning {
  const learnNow = async () => {
    try {
      await learnRooms(rooms, knownRooms);
    } catch (err) {
      log.error({ err }, 'reading the stored rooms failed; will retry at the next run');
    }
  };
  const task = cron.schedule(FREEZE_SCHEDULE, learnNow, { name: 'learn-rooms', timezone: 'UTC', noOverlap: true });
  return { stop: async () => void (await task.destroy()) };
}

/** `knownRooms` reads what was stored of the rooms (lineages only grow, so learning what the bot in this process told the registry changes nothing). */
export function startJobs(
  statistics: Statistics,
  rooms: RoomRegistry,
  knownRooms: () => Promise<readonly KnownRoom[]>,
  log: Logger,
): Jobs {
  const buildDigests = async () => {
    try {
      const hours = await statistics.buildDigests(rooms.list());
      if (hours > 0) log.debug({ hours }, 'hourly digests built');
    } catch (err) {
      log.error({ err }, 'building hourly digests failed; will retry at the next run');
    }
  };
  let building: Promise<void> | undefined;
  let next: Promise<void> | undefined;
  let stopped = false;
  const buildDigestsSoon = (): Promise<void> => {
    if (stopped) return Promise.resolve();
    if (!building) {
      building = buildDigests().finally(() => (building = undefined));
      return building;
    }
    next ??= building.then(() => {
      next = undefined;
      return buildDigestsSoon();
    });
    return next;
  };
  const freezeNow = async () => {
    try {
      await learnRooms(rooms, knownRooms);
      await buildDigestsSoon();
      const frozen = await statistics.freezeDueWeeks(rooms.list());
      for (const week of frozen) log.info({ week }, 'week frozen');
      for (const room of rooms.list()) await statistics.rolling(room, ROLLING_WEEK);
    } catch (err) {
      log.error({ err }, 'freezing weeks or preparing tables failed; will retry at the next run');
    }
  };
  const task = cron.schedule(FREEZE_SCHEDULE, freezeNow, { name: 'freeze-weeks', timezone: 'UTC', noOverlap: true });
  const first = freezeNow();
  return {
    freezeNow,
    buildDigestsSoon,
    stop: async () => {
      stopped = true;
      await task.destroy();
      await first;
      await next;
      await building;
    },
  };
}
