// Which rooms are tracked and which room IDs make up each of them (a room
// that was upgraded keeps its predecessors' samples in its statistics).
import type { RoomConfig } from '../config.ts';
import { DEFAULT_DISCLAIMER } from '../config.ts';
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

export class RoomRegistry {
  readonly #rooms: TrackedRoom[] = [];

  /** Configured room IDs are tracked at once; aliases once `resolve` names their ID. */
  constructor(configured: readonly RoomConfig[]) {
    for (const room of configured) {
      if (isValidRoomId(room.id)) this.#rooms.push({ id: room.id, reference: room.id, roomIds: [room.id], disclaimer: room.disclaimer });
    }
  }

  /** Records that `reference` (an alias) is `roomId`, or that a room gained a predecessor/successor. */
  track(room: TrackedRoom): void {
    const index = this.#rooms.findIndex((r) => r.reference === room.reference);
    if (index >= 0) this.#rooms[index] = room;
    else this.#rooms.push(room);
  }

  list(): readonly TrackedRoom[] {
    return this.#rooms;
  }

  /** The first configured room. */
  default(): TrackedRoom | undefined {
    return this.#rooms[0];
  }

  /** A tracked room by its ID, any ID in its lineage, or the alias it was configured by. */
  find(reference: string): TrackedRoom | undefined {
    return this.#rooms.find((r) => r.reference === reference || r.roomIds.includes(reference));
  }

  /** A room that is not configured but holds samples (imported history, for example). */
  static untracked(roomId: string): TrackedRoom {
    return { id: roomId, reference: roomId, roomIds: [roomId], disclaimer: DEFAULT_DISCLAIMER };
  }
}
