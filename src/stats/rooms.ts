// Which rooms are tracked and which room IDs make up each of them (a room
// that was upgraded keeps its predecessors' samples in its statistics).
import type { RoomConfig } from '../config.ts';
import { DEFAULT_DISCLAIMER } from '../config.ts';
import type { Db } from '../db/database.ts';
import { isValidRoomId } from '../matrix/ids.ts';

export interface TrackedRoom {
  /** The room's canonical ID: frozen weeks and URLs use it. */
  readonly id: string;
  /** How the operator named it (ID or alias). */
  readonly reference: string;
  /** `id` and every room it replaced or was replaced by. */
  readonly roomIds: readonly string[];
  readonly disclaimer: string;
}

/** What the bot learnt of a configured room, as the database keeps it. */
export type KnownRoom = Pick<TrackedRoom, 'reference' | 'id' | 'roomIds'>;

/**
 * The configured rooms, in their configured order. A room ID is tracked at
 * once, with the lineage the bot last stored for it; an alias once its ID is
 * known, from the bot or from what it stored before.
 */
export class RoomRegistry {
  readonly #configured: readonly RoomConfig[];
  readonly #tracked = new Map<string, TrackedRoom>();

  constructor(configured: readonly RoomConfig[], known: readonly KnownRoom[] = []) {
    this.#configured = configured;
    for (const room of configured) {
      if (isValidRoomId(room.id)) this.#tracked.set(room.id, { id: room.id, reference: room.id, roomIds: [room.id], disclaimer: room.disclaimer });
    }
    this.learn(known);
  }

  /**
   * Takes in what the bot stored (a service without a bot reads it again from
   * time to time): an alias's ID, or a lineage with rooms this one lacks.
   * Lineages only grow, so an older copy never replaces a newer one.
   */
  learn(known: readonly KnownRoom[]): void {
    const stored = new Map(known.map((room) => [room.reference, room]));
    for (const room of this.#configured) {
      const learnt = stored.get(room.id);
      const current = this.#tracked.get(room.id);
      if (learnt && (!current || learnt.roomIds.some((id) => !current.roomIds.includes(id)))) {
        this.#tracked.set(room.id, { id: learnt.id, reference: room.id, roomIds: [...learnt.roomIds], disclaimer: room.disclaimer });
      }
    }
  }

  /** Records that a configured `reference` (an alias) is `id`, or that its room gained a predecessor or successor. */
  track(room: TrackedRoom): void {
    this.#tracked.set(room.reference, room);
  }

  /** The tracked rooms, in the order they are configured. */
  list(): TrackedRoom[] {
    return this.#configured.flatMap((room) => this.#tracked.get(room.id) ?? []);
  }

  /** The first configured room whose ID is known. */
  default(): TrackedRoom | undefined {
    return this.list()[0];
  }

  /** A tracked room by its ID, any ID in its lineage, or the alias it was configured by. */
  find(reference: string): TrackedRoom | undefined {
    return this.list().find((r) => r.reference === reference || r.roomIds.includes(reference));
  }

  /** A room that is not configured but holds samples (imported history, for example). */
  static untracked(roomId: string): TrackedRoom {
    return { id: roomId, reference: roomId, roomIds: [roomId], disclaimer: DEFAULT_DISCLAIMER };
  }
}

/** Keeps what the bot learnt of a configured room, for later starts and for services without a bot. */
export async function storeKnownRoom(db: Db, room: KnownRoom): Promise<void> {
  const values = { room_id: room.id, room_ids: [...room.roomIds] };
  await db.insertInto('tracked_rooms')
    .values({ reference: room.reference, ...values })
    .onConflict((oc) => oc.column('reference').doUpdateSet({ ...values, updated_at: new Date() }))
    .execute();
}

export async function loadKnownRooms(db: Db): Promise<KnownRoom[]> {
  const rows = await db.selectFrom('tracked_rooms').select(['reference', 'room_id', 'room_ids']).execute();
  return rows.map((row) => ({ reference: row.reference, id: row.room_id, roomIds: row.room_ids }));
}
