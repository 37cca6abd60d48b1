// The sync every Pingboard client runs (the bot and each probe): only the
// watched rooms, messages and tombstones, lazy-loaded members, and timelines
// trimmed, because none of them ever looks back.
import { Filter, PendingEventOrdering, type MatrixClient, type Room } from 'matrix-js-sdk';
import { clearRelationIndex, startSyncing } from './sdk-internals.ts';

/** Live timelines are trimmed past this many events. */
export const TIMELINE_KEEP = 200;

/**
 * Drops what the SDK keeps of a room's past: the live timeline, and the index
 * of relations it builds from every event (each pong relates to its ping),
 * which no timeline reset clears.
 */
export function trimRoom(room: Room): void {
  room.resetLiveTimeline(null, null);
  clearRelationIndex(room);
}

/** Trims a room's timeline once it holds more than TIMELINE_KEEP events. */
export function trimIfLong(room: Room): void {
  if (room.getLiveTimeline().getEvents().length > TIMELINE_KEEP) trimRoom(room);
}

/**
 * Events one incremental sync may carry per room. A sync holding more is
 * "limited": the server leaves out the older ones, and pings among them would
 * go unanswered, which happens when many probes fire at once. (The very first
 * sync keeps the SDK's initialSyncLimit: that backlog is not answered anyway.)
 */
export const SYNC_TIMELINE_LIMIT = 500;

/**
 * Starts the client's sync loop over `roomIds` only. The client's own
 * messages are left out: every reader here ignores them, and in a busy room
 * they would take half of each sync.
 */
export async function startRoomSync(client: MatrixClient, userId: string, roomIds: readonly string[]): Promise<void> {
  const filter = new Filter(userId);
  filter.setDefinition({
    presence: { types: [] },
    account_data: { types: [] },
    room: {
      rooms: [...roomIds],
      account_data: { types: [] },
      ephemeral: { types: [] },
      state: { lazy_load_members: true },
      timeline: {
        limit: SYNC_TIMELINE_LIMIT,
        types: ['m.room.message', 'm.room.tombstone'],
        not_senders: [userId],
        lazy_load_members: true,
      },
    },
  });
  await startSyncing(client, {
    filter,
    lazyLoadMembers: true,
    pendingEventOrdering: PendingEventOrdering.Detached,
    initialSyncLimit: 50,
    disablePresence: true,
    threadSupport: false,
  });
}
