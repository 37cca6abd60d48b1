// Joining a configured room and following its upgrades: a room that was
// replaced (m.room.tombstone) is left for its replacement, and its
// predecessors (m.room.create's predecessor) stay part of its statistics.
import { Method, type MatrixClient } from 'matrix-js-sdk';
import type { Logger } from '../log.ts';
import { isValidRoomId, isValidServerName, serverOfUserId } from '../matrix-ids.ts';

/** A room's lineage as joined so far: a value, which joining a replacement gives anew (joinReplacement). */
export interface RoomLineage {
  /** The ID of the room as configured (resolved from an alias): frozen weeks are kept under it. */
  readonly configuredId: string;
  /** The room the bot is in now, the newest of the lineage. */
  readonly currentId: string;
  /** Every room of the lineage, oldest first. */
  readonly roomIds: readonly string[];
}

const MAX_UPGRADES = 50;

async function stateContent(
  client: MatrixClient,
  roomId: string,
  type: string,
): Promise<Record<string, unknown> | undefined> {
  try {
    return (await client.getStateEvent(roomId, type, '')) as Record<string, unknown>;
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
  const roomId =
    typeof predecessor === 'string' ? predecessor : (predecessor as { room_id?: unknown } | undefined)?.room_id;
  return typeof roomId === 'string' && isValidRoomId(roomId) ? roomId : undefined;
}

/** The predecessor of `roomId` from its m.room.create event, or undefined for the first room of a lineage. */
export async function readPredecessor(client: MatrixClient, roomId: string): Promise<string | undefined> {
  return predecessorOf(await stateContent(client, roomId, 'm.room.create'));
}

/**
 * The server part of a room ID, for room versions that have one
 * (`!opaque:server`; from version 12 on a room ID is `!opaque` alone).
 */
export function serverOfRoomId(roomId: string): string | undefined {
  const colon = roomId.indexOf(':');
  const server = colon < 0 ? '' : roomId.slice(colon + 1);
  return isValidServerName(server) ? server : undefined;
}

/** The servers of these users, those with the most users first (ties in first-seen order). */
export function serversByMembers(userIds: Iterable<string>): string[] {
  const counts = new Map<string, number>();
  for (const userId of userIds) {
    const server = serverOfUserId(userId);
    if (server) counts.set(server, (counts.get(server) ?? 0) + 1);
  }
  return [...counts].sort((a, b) => b[1] - a[1]).map(([server]) => server);
}

/**
 * Servers to join a room through, best first, without duplicates or the
 * bot's own (which cannot help: Synapse drops it). Order matters twice:
 * matrix-js-sdk sends only the first three, and Synapse 1.67 asks them in
 * turn, the first that answers deciding (federation_client.py
 * `_try_destination_list`: a server not in the room answers 404 and ends it).
 */
export function viaServers(candidates: Iterable<string | undefined>, ownServer: string): string[] {
  const servers: string[] = [];
  for (const server of candidates)
    if (server && server !== ownServer && !servers.includes(server)) servers.push(server);
  return servers;
}

/** Joins a room by ID (through `via`) or alias; resolves with its ID. */
export async function joinVia(client: MatrixClient, roomIdOrAlias: string, via: readonly string[]): Promise<string> {
  const room = await client.joinRoom(roomIdOrAlias, via.length > 0 ? { viaServers: [...via] } : {});
  return room.roomId;
}

/** An upgrade the bot has not followed yet: its replacement room, and the servers to join it through. */
export interface Replacement {
  readonly roomId: string;
  readonly via: readonly string[];
}

/**
 * Servers to join `replacement` through: the tombstone's sender's (whoever
 * upgraded the room created the replacement and is in it), the one in the
 * replacement's ID (its creator's, where IDs have one), then those of the old
 * room's joined members (they follow the upgrade), most members first.
 */
export async function replacementVia(
  client: MatrixClient,
  oldRoomId: string,
  replacement: string,
  tombstoneSender: string | undefined,
  ownServer: string,
): Promise<string[]> {
  const members = await client.getJoinedRoomMembers(oldRoomId).then(
    (r) => Object.keys(r.joined),
    () => [],
  );
  return viaServers(
    [tombstoneSender && serverOfUserId(tombstoneSender), serverOfRoomId(replacement), ...serversByMembers(members)],
    ownServer,
  );
}

/** The replacement named by a room's tombstone, with the servers to join it through; undefined when it was not upgraded. */
async function readReplacement(
  client: MatrixClient,
  roomId: string,
  ownServer: string,
): Promise<Replacement | undefined> {
  let tombstone: { sender?: unknown; content?: { replacement_room?: unknown } };
  try {
    // As an event, not its content: the sender's server is the best one to join through.
    tombstone = await client.http.authedRequest(
      Method.Get,
      `/rooms/${encodeURIComponent(roomId)}/state/m.room.tombstone/`,
      { format: 'event' },
    );
  } catch (err) {
    if ((err as { httpStatus?: number }).httpStatus === 404) return undefined;
    throw err;
  }
  const replacement = tombstone.content?.replacement_room;
  if (typeof replacement !== 'string' || !isValidRoomId(replacement)) return undefined;
  const sender = typeof tombstone.sender === 'string' ? tombstone.sender : undefined;
  return { roomId: replacement, via: await replacementVia(client, roomId, replacement, sender, ownServer) };
}

/** What following a room came to: the lineage joined, and the upgrade the bot could not join yet, if any. */
export interface FollowedRoom {
  readonly lineage: RoomLineage;
  readonly stranded: (Replacement & { readonly error: unknown }) | undefined;
}

/**
 * Joins `reference` (ID or alias), collects its predecessors, then joins
 * every replacement room in turn. A room ID is joined through the server in
 * it: a server that is not in a room can join it by ID only through one that
 * is (Synapse 1.67 `_remote_join`), unless invited. A replacement that cannot
 * be joined ends the walk: the rooms joined so far are followed, and the
 * replacement is returned for the caller to try again.
 */
export async function followRoom(
  client: MatrixClient,
  reference: string,
  ownServer: string,
  log: Logger,
): Promise<FollowedRoom> {
  const configuredId = await joinVia(
    client,
    reference,
    isValidRoomId(reference) ? viaServers([serverOfRoomId(reference)], ownServer) : [],
  );
  const roomIds = [configuredId];
  let predecessor = await readPredecessor(client, configuredId);
  while (predecessor !== undefined && !roomIds.includes(predecessor) && roomIds.length < MAX_UPGRADES) {
    roomIds.unshift(predecessor);
    // The bot may never have been in an old room; its ID is all the statistics need.
    predecessor = await readPredecessor(client, predecessor).catch(() => undefined);
  }
  return followReplacements(client, { configuredId, currentId: configuredId, roomIds }, ownServer, log);
}

/**
 * Joins `replacement` and the rooms that replaced it in turn: the lineage
 * with each of them; throws when `replacement` itself cannot be joined, and
 * returns a later replacement that could not be.
 */
export async function joinReplacement(
  client: MatrixClient,
  lineage: RoomLineage,
  replacement: Replacement,
  ownServer: string,
  log: Logger,
): Promise<FollowedRoom> {
  return followReplacements(client, await joinInto(client, lineage, replacement), ownServer, log);
}

/** `lineage` moved on to `replacement`, once joined. */
async function joinInto(client: MatrixClient, lineage: RoomLineage, replacement: Replacement): Promise<RoomLineage> {
  await joinVia(client, replacement.roomId, replacement.via);
  return {
    configuredId: lineage.configuredId,
    currentId: replacement.roomId,
    roomIds: lineage.roomIds.includes(replacement.roomId) ? lineage.roomIds : [...lineage.roomIds, replacement.roomId],
  };
}

async function followReplacements(
  client: MatrixClient,
  joined: RoomLineage,
  ownServer: string,
  log: Logger,
): Promise<FollowedRoom> {
  let lineage = joined;
  for (let hops = 0; hops < MAX_UPGRADES; hops++) {
    const replacement = await readReplacement(client, lineage.currentId, ownServer);
    if (!replacement || lineage.roomIds.includes(replacement.roomId)) break;
    log.info(
      { from: lineage.currentId, to: replacement.roomId, via: replacement.via },
      'room was upgraded: joining its replacement',
    );
    try {
      lineage = await joinInto(client, lineage, replacement);
    } catch (err) {
      return { lineage, stranded: { ...replacement, error: err } };
    }
  }
  return { lineage, stranded: undefined };
}
