// Joining a configured room and following its upgrades: a room that was
// replaced (m.room.tombstone) is left for its replacement, and its
// predecessors (m.room.create's predecessor) stay part of its statistics.
import type { MatrixClient } from 'matrix-js-sdk';
import type { RoomConfig } from '../config.ts';
import type { Logger } from '../log.ts';
import { isValidRoomId } from './ids.ts';

export interface RoomLineage {
  /** The ID of the room as configured (resolved from an alias): frozen weeks are kept under it. */
  readonly configuredId: string;
  /** The room the bot is in now, the newest of the lineage. */
  currentId: string;
  /** Every room of the lineage, oldest first. */
  readonly roomIds: string[];
  /** The configured room this lineage belongs to, set by whoever follows it. */
  config?: RoomConfig;
}

const MAX_UPGRADES = 50;

async function stateContent(client: MatrixClient, roomId: string, type: string): Promise<Record<string, unknown> | undefined> {
  try {
    return await client.getStateEvent(roomId, type, '') as Record<string, unknown>;
  } catch (err) {
    if ((err as { httpStatus?: number }).httpStatus === 404) return undefined;
    throw err;
  }
}

/**
 * The room an m.room.create content names as its predecessor: `predecessor`
 * is `{ room_id, event_id }` (event_id optional since room version 12), and
 * some old rooms carry the bare room ID as a string.
 */
export function predecessorOf(createContent: Record<string, unknown> | undefined): string | undefined {
  const predecessor = createContent?.['predecessor'];
  const roomId = typeof predecessor === 'string' ? predecessor : (predecessor as { room_id?: unknown } | undefined)?.room_id;
  return typeof roomId === 'string' && isValidRoomId(roomId) ? roomId : undefined;
}

/** The predecessor of `roomId` from its m.room.create event, or undefined for the first room of a lineage. */
export async function readPredecessor(client: MatrixClient, roomId: string): Promise<string | undefined> {
  return predecessorOf(await stateContent(client, roomId, 'm.room.create'));
}

/** Joins `reference` (ID or alias), then every replacement room in turn; collects predecessors. */
export async function followRoom(client: MatrixClient, reference: string, log: Logger): Promise<RoomLineage> {
  const joined = await client.joinRoom(reference);
  const configuredId = joined.roomId;
  const roomIds = [configuredId];
  let predecessor = await readPredecessor(client, configuredId);
  while (predecessor !== undefined && !roomIds.includes(predecessor) && roomIds.length < MAX_UPGRADES) {
    roomIds.unshift(predecessor);
    // The bot may never have been in an old room; its ID is all the statistics need.
    predecessor = await readPredecessor(client, predecessor).catch(() => undefined);
  }
  let currentId = configuredId;
  for (let hops = 0; hops < MAX_UPGRADES; hops++) {
    const replacement = (await stateContent(client, currentId, 'm.room.tombstone'))?.['replacement_room'];
    if (typeof replacement !== 'string' || !isValidRoomId(replacement) || roomIds.includes(replacement)) break;
    log.info({ from: currentId, to: replacement }, 'room was upgraded: joining its replacement');
    await client.joinRoom(replacement);
    roomIds.push(replacement);
    currentId = replacement;
  }
  return { configuredId, currentId, roomIds };
}
