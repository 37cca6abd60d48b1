// Keeps the bot in its configured rooms and their replacements. A room it
// cannot join (not invited yet, an upgrade's replacement that its server is
// not in yet, a homeserver error) is tried again with backoff, at once on an
// invite to it, until joined or the bot stops; meanwhile the bot works in its
// other rooms, and the room is reported as not followed.
import type { MatrixClient, MatrixEvent } from 'matrix-js-sdk';
import type { RoomConfig } from '../config.ts';
import type { Logger } from '../log.ts';
import { isValidRoomId } from '../matrix-ids.ts';
import {
  followRoom,
  joinReplacement,
  replacementVia,
  type FollowedRoom,
  type Replacement,
  type RoomLineage,
} from './rooms.ts';

/** A lineage the bot is in, with the configured room it belongs to. */
export interface FollowedLineage extends RoomLineage {
  readonly room: RoomConfig;
}

/** A configured room, or an upgrade of one, that the bot is not in. */
export interface NotFollowedRoom {
  /** The configured room, as configured (ID or alias). */
  readonly room: string;
  /** The room the bot cannot join; undefined while an alias does not resolve. */
  readonly roomId: string | undefined;
  /** `join`: the configured room itself; `upgrade`: the replacement of a room the bot is in. */
  readonly reason: 'join' | 'upgrade';
  readonly since: Date;
  readonly attempts: number;
  /** What the latest attempt got: a Matrix error code, `http_<status>`, or `no_response`; never the error's text. */
  readonly lastFailure: string;
}

export interface RoomFollowerOptions {
  readonly client: MatrixClient;
  readonly ownServer: string;
  readonly log: Logger;
  /** The bot joined rooms of `lineage` (the configured room, or replacements): watch them. */
  readonly joined: (lineage: FollowedLineage) => Promise<void>;
  /** The rooms awaited changed (see `awaitedRoomIds`): an invite to them must reach the bot. */
  readonly awaitedChanged: () => Promise<void>;
  /** The first wait before trying again; each next one doubles, up to `maxRetryDelayMs`. */
  readonly firstRetryDelayMs?: number;
  readonly maxRetryDelayMs?: number;
}

/** A failure as the health report may show it: a code, not the text (which may quote the homeserver). */
export function failureCode(err: unknown): string {
  const { errcode, httpStatus } = err as { errcode?: unknown; httpStatus?: unknown };
  if (typeof errcode === 'string' && /^[A-Z0-9_.]{1,64}$/i.test(errcode)) return errcode;
  return typeof httpStatus === 'number' ? `http_${httpStatus}` : 'no_response';
}

interface Pending {
  readonly room: RoomConfig;
  /** For an upgrade: the lineage the replacement joins. */
  readonly lineage: RoomLineage | undefined;
  replacement: Replacement | undefined;
  roomId: string | undefined;
  readonly since: Date;
  attempts: number;
  lastFailure: string;
  /** Set by an invite (or a stop): the next wait ends at once, even one not begun yet (an attempt was under way). */
  woken: boolean;
  /** Ends the wait under way, if any. */
  endWait: () => void;
}

export class RoomFollower {
  readonly #options: RoomFollowerOptions;
  readonly #log: Logger;
  readonly #pending = new Set<Pending>();
  readonly #loops = new Set<Promise<void>>();
  #stopped = false;

  constructor(options: RoomFollowerOptions) {
    this.#options = options;
    this.#log = options.log;
  }

  /** Joins every configured room (and its replacements) once, in turn; what fails is tried again in the background. */
  async start(rooms: readonly RoomConfig[]): Promise<void> {
    for (const room of rooms) {
      try {
        await this.#followed(await followRoom(this.#options.client, room.id, this.#options.ownServer, this.#log), room);
      } catch (err) {
        const roomId = isValidRoomId(room.id) ? room.id : await this.#resolve(room.id);
        this.#log.error(
          { err, room: room.id, roomId },
          'cannot join the room yet: trying again, and accepting an invite to it',
        );
        this.#retry({
          room,
          lineage: undefined,
          replacement: undefined,
          roomId,
          since: new Date(),
          attempts: 1,
          lastFailure: failureCode(err),
          woken: false,
          endWait: () => {},
        });
      }
    }
  }

  /** A tombstone in a room of `lineage`: joins its replacement, retrying until joined. */
  tombstone(lineage: FollowedLineage, event: MatrixEvent): void {
    const replacement = (event.getContent() as { replacement_room?: unknown }).replacement_room;
    if (typeof replacement !== 'string' || !isValidRoomId(replacement) || lineage.roomIds.includes(replacement)) return;
    if ([...this.#pending].some((p) => p.roomId === replacement)) return;
    this.#log.info({ from: event.getRoomId(), to: replacement }, 'room upgraded: following it');
    const pending: Pending = {
      room: lineage.room,
      lineage,
      replacement: undefined,
      roomId: replacement,
      since: new Date(),
      attempts: 0,
      lastFailure: '',
      woken: false,
      endWait: () => {},
    };
    this.#retry(
      pending,
      replacementVia(
        this.#options.client,
        event.getRoomId()!,
        replacement,
        event.getSender(),
        this.#options.ownServer,
      ).then((via) => {
        pending.replacement = { roomId: replacement, via };
      }),
    );
  }

  /** An invite to a room the bot is waiting for: tries it now. */
  invited(roomId: string): void {
    for (const pending of this.#pending) if (pending.roomId === roomId) wake(pending);
  }

  /** Rooms the bot waits for by ID: the sync must include them so that an invite to one arrives. */
  awaitedRoomIds(): string[] {
    return [...this.#pending].flatMap((p) => p.roomId ?? []);
  }

  notFollowed(): NotFollowedRoom[] {
    return [...this.#pending].map((p) => ({
      room: p.room.id,
      roomId: p.roomId,
      reason: p.lineage ? 'upgrade' : 'join',
      since: p.since,
      attempts: p.attempts,
      lastFailure: p.lastFailure,
    }));
  }

  /** Ends every retry; resolves once none is running. */
  async stop(): Promise<void> {
    this.#stopped = true;
    for (const pending of this.#pending) wake(pending);
    await Promise.allSettled([...this.#loops]);
  }

  async #followed({ lineage, stranded }: FollowedRoom, room: RoomConfig): Promise<void> {
    await this.#options.joined({ ...lineage, room });
    if (!stranded) return;
    this.#log.warn(
      {
        room: room.id,
        from: lineage.currentId,
        to: stranded.roomId,
        via: stranded.via,
        failure: failureCode(stranded.error),
      },
      'cannot join the upgraded room yet: trying again',
    );
    this.#retry({
      room,
      lineage,
      replacement: stranded,
      roomId: stranded.roomId,
      since: new Date(),
      attempts: 1,
      lastFailure: failureCode(stranded.error),
      woken: false,
      endWait: () => {},
    });
  }

  async #resolve(alias: string): Promise<string | undefined> {
    return this.#options.client.getRoomIdForAlias(alias).then(
      (r) => r.room_id,
      () => undefined,
    );
  }

  /** Tries `pending` until it is joined or the bot stops: at once when it has no attempt yet, then after each wait. */
  #retry(pending: Pending, ready: Promise<void> = Promise.resolve()): void {
    this.#pending.add(pending);
    if (pending.attempts > 0) void this.#options.awaitedChanged();
    const loop = (async () => {
      await ready;
      for (
        let wait = this.#options.firstRetryDelayMs ?? 1000;
        !this.#stopped;
        wait = Math.min(wait * 2, this.#options.maxRetryDelayMs ?? 300_000)
      ) {
        if (pending.attempts > 0) await this.#wait(pending, wait);
        if (this.#stopped) return;
        try {
          await this.#attempt(pending);
          this.#log.info(
            { room: pending.room.id, roomId: pending.roomId, attempts: pending.attempts + 1 },
            'joined the room',
          );
          return;
        } catch (err) {
          pending.attempts++;
          pending.lastFailure = failureCode(err);
          this.#log.warn(
            { err, room: pending.room.id, roomId: pending.roomId, attempts: pending.attempts },
            'joining the room failed: trying again',
          );
          const known = pending.roomId !== undefined;
          pending.roomId ??= await this.#resolve(pending.room.id);
          // Now awaited by ID (an invite to it must reach the bot): its first failure, or an alias that now resolves.
          if (pending.roomId !== undefined && (pending.attempts === 1 || !known)) void this.#options.awaitedChanged();
        }
      }
    })()
      .catch((err: unknown) => this.#log.error({ err, room: pending.room.id }, 'following the room failed'))
      .finally(() => {
        this.#pending.delete(pending);
        this.#loops.delete(loop);
      });
    this.#loops.add(loop);
  }

  async #attempt(pending: Pending): Promise<void> {
    const { client, ownServer } = this.#options;
    if (!pending.lineage)
      return this.#followed(await followRoom(client, pending.room.id, ownServer, this.#log), pending.room);
    await this.#followed(
      await joinReplacement(client, pending.lineage, pending.replacement!, ownServer, this.#log),
      pending.room,
    );
  }

  #wait(pending: Pending, ms: number): Promise<void> {
    return new Promise<void>((resolve) => {
      if (pending.woken) return resolve();
      const timer = setTimeout(resolve, ms);
      pending.endWait = () => {
        clearTimeout(timer);
        resolve();
      };
    }).finally(() => {
      pending.woken = false;
      pending.endWait = () => {};
    });
  }
}

function wake(pending: Pending): void {
  pending.woken = true;
  pending.endWait();
}
