// Which rooms are tracked and which room IDs make up each of them (a room
// that was upgraded keeps its predecessors' samples in its statistics).
import type { RoomConfig } from '../config.ts';
import { DEFAULT_DISCLAIMER } from '../config.ts';
import type { Db } from '../db/database.ts';
import { isValidRoomId } from '../matrix-ids.ts';

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
 * Two copies of one lineage (oldest first) as one: `newer`, with the rooms
 * only `older` knows kept on their side (a backfill learns old rooms the bot
 * never joined; the bot learns new ones). Lineages that share no room are not
 * the same lineage: `newer` replaces `older`.
 */
export function mergeLineages(older: readonly string[], newer: readonly string[]): string[] {
  const first = older.findIndex((id) => newer.includes(id));
  if (first < 0) return [...newer];
  const last = older.findLastIndex((id) => newer.includes(id));
  const only = (ids: readonly string[]) => ids.filter((id) => !newer.includes(id));
  return [...only(older.slice(0, first)), ...newer, ...only(older.slice(last + 1))];
}

/**
 * The configured rooms, in their configured order. A room ID is tracked at
 * once, with the lineage stored for it (by the bot or a backfill); an alias
 * once its ID is known, from the bot or from what was stored before. A room
 * that is not configured is still found with the lineage stored for it.
 */
export class RoomRegistry {
  readonly #configured: readonly RoomConfig[];
  readonly #tracked = new Map<string, TrackedRoom>();
  /** Every lineage stored, configured or not, by reference. */
  readonly #known = new Map<string, KnownRoom>();

  constructor(configured: readonly RoomConfig[], known: readonly KnownRoom[] = []) {
    this.#configured = configured;
    for (const room of configured) {
      if (isValidRoomId(room.id))
        this.#tracked.set(room.id, {
          id: room.id,
          reference: room.id,
          roomIds: [room.id],
          disclaimer: room.disclaimer,
        });
    }
    this.learn(known);
  }

  /**
   * Takes in what the bot or a backfill stored (a service reads it again from
   * time to time): an alias's ID, or a lineage with rooms this one lacks. A
   * room configured by ID takes the lineage stored under any reference that
   * holds it. Lineages only grow, so an older copy never drops a room.
   */
  learn(known: readonly KnownRoom[]): void {
    for (const room of known) this.#known.set(room.reference, room);
    for (const room of this.#configured) {
      const learnt = known.filter(
        (k) => k.reference === room.id || (isValidRoomId(room.id) && k.roomIds.includes(room.id)),
      );
      for (const k of learnt)
        this.track({
          id: k.reference === room.id ? k.id : room.id,
          reference: room.id,
          roomIds: k.roomIds,
          disclaimer: room.disclaimer,
        });
    }
  }

  /** Records that a configured `reference` (an alias) is `id`, or that its room gained a predecessor or successor. */
  track(room: TrackedRoom): void {
    const current = this.#tracked.get(room.reference);
    this.#tracked.set(room.reference, {
      ...room,
      roomIds: current ? mergeLineages(current.roomIds, room.roomIds) : [...room.roomIds],
    });
  }

  /** The tracked rooms, in the order they are configured. */
  list(): TrackedRoom[] {
    return this.#configured.flatMap((room) => this.#tracked.get(room.id) ?? []);
  }

  /** The first configured room whose ID is known. */
  default(): TrackedRoom | undefined {
    return this.list()[0];
  }

  /**
   * A tracked room by its ID, any ID in its lineage, or the alias it was
   * configured by; else a room that is not configured, with the longest
   * lineage stored for it (by the reference it was stored under, or any of its IDs).
   */
  find(reference: string): TrackedRoom | undefined {
    const tracked = this.list().find((r) => r.reference === reference || r.roomIds.includes(reference));
    if (tracked) return tracked;
    const stored = [...this.#known.values()]
      .filter((r) => r.reference === reference || r.roomIds.includes(reference))
      .sort((a, b) => b.roomIds.length - a.roomIds.length)[0];
    return (
      stored && {
        id: stored.id,
        reference: stored.reference,
        roomIds: [...stored.roomIds],
        disclaimer: DEFAULT_DISCLAIMER,
      }
    );
  }

  /** A room that is not configured but holds samples (imported history, for example). */
  static untracked(roomId: string): TrackedRoom {
    return { id: roomId, reference: roomId, roomIds: [roomId], disclaimer: DEFAULT_DISCLAIMER };
  }
}

/**
 * Keeps what the bot or a backfill learnt of a room, for later starts and for
 * services without a bot, merged with what was stored before: neither one's
 * rooms are lost to the other's.
 */
export async function storeKnownRoom(db: Db, room: KnownRoom): Promise<void> {
  await db.transaction().execute(async (tx) => {
    const stored = await tx
      .selectFrom('tracked_rooms')
      .select('room_ids')
      .where('reference', '=', room.reference)
      .forUpdate()
      .executeTakeFirst();
    const values = {
      room_id: room.id,
      room_ids: stored ? mergeLineages(stored.room_ids, room.roomIds) : [...room.roomIds],
    };
    await tx
      .insertInto('tracked_rooms')
      .values({ reference: room.reference, ...values })
      .onConflict((oc) => oc.column('reference').doUpdateSet({ ...values, updated_at: new Date() }))
      .execute();
  });
}

export async function loadKnownRooms(db: Db): Promise<KnownRoom[]> {
  const rows = await db.selectFrom('tracked_rooms').select(['reference', 'room_id', 'room_ids']).execute();
  return rows.map((row) => ({ reference: row.reference, id: row.room_id, roomIds: row.room_ids }));
}
