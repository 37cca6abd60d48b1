// What the HTTP app is built from: the service hands these to buildApp, and
// every route reads its part of them. Apart from app.ts, which imports every
// route, so the routes do not import the module that imports them.
import type { BotCounts } from '../bot/bot.ts';
import type { Database } from '../db/database.ts';
import type { NotFollowedRoom } from '../matrix/follow.ts';
import type { OperatorControls } from '../operator/controls.ts';
import type { ProbeState } from '../probes/probe.ts';
import type { Statistics } from '../stats/leaderboard.ts';
import type { RoomRegistry } from '../stats/rooms.ts';
import type { SpillDirectory } from '../spill.ts';

export interface HttpDeps {
  readonly database: Database;
  readonly statistics: Statistics;
  readonly rooms: RoomRegistry;
  /** Seconds a live (not frozen) table may be cached by clients. */
  readonly cacheSeconds: number;
  /** When a measured clock offset is flagged (PINGBOARD_CLOCK_OFFSET_THRESHOLD_MS); default: that setting's. */
  readonly clockOffsetThresholdMs?: number | undefined;
  /** Renders /metrics; absent: an empty page. */
  readonly metrics?: (() => string) | undefined;
  /** The operator's routes; absent (no token configured): not registered. */
  readonly operator?: OperatorDeps | undefined;
  /** The running parts /healthz reports on; absent: none (a service without bot and probes). */
  readonly health?: HealthSources | undefined;
  /**
   * Where the public routes read (DATABASE_READ_URL: a replica, and the statistics
   * over it); absent: `database` and `statistics`. The operator's routes, which
   * write and must see what they wrote, stay on `database`.
   */
  readonly reads?: { readonly database: Database; readonly statistics: Statistics } | undefined;
  /** Where the raw rows of the aggregator-compatible answers are kept on disk; absent: in memory. */
  readonly spill?: SpillDirectory | undefined;
}

export interface OperatorDeps {
  readonly controls: OperatorControls;
  readonly token: string;
}

/**
 * What /healthz reads from the running parts; all in memory, so the only
 * wait is the database's ping. A part that is absent is not configured.
 */
export interface HealthSources {
  /** The bot; undefined while it is still starting. */
  readonly bot?:
    | (() =>
        | {
            readonly counts: Pick<BotCounts, 'lastSyncAtMs' | 'consecutiveSyncFailures'>;
            notFollowed(): readonly NotFollowedRoom[];
          }
        | undefined)
    | undefined;
  readonly probes?: (() => readonly ProbeState[]) | undefined;
  /** measured_at (ms) of the newest sample this process has written; undefined before the first. */
  readonly newestSampleMs?: (() => number | undefined) | undefined;
  /** Which instance this is and whether it leads; undefined while it is starting. */
  readonly instance?:
    | (() => { readonly id: string; readonly role: 'leader' | 'follower'; readonly single: boolean } | undefined)
    | undefined;
}
