// What an operator (HTTP, bearer token) and a room admin (`!pingboard …` in
// the room) can do, in one place so both paths check the same things:
// exclude a server with a reason and include it again, delete the samples
// of a ping, and freeze a closed week again.
import type { Db } from '../db/database.ts';
import { InputError } from '../errors.ts';
import { isValidEventId, isValidServerName } from '../matrix-ids.ts';
import { deleteSamplesOfPing } from '../samples/repository.ts';
import type { FrozenWeek } from '../stats/frozen-weeks.ts';
import type { Statistics } from '../stats/leaderboard.ts';
import type { TrackedRoom } from '../stats/rooms.ts';
import { excludeServer, includeServer, type Exclusion } from '../stats/exclusions.ts';
import { checkReason } from './reason.ts';

function checkServer(server: string): string {
  if (!isValidServerName(server))
    throw new InputError('server', `not a Matrix server name: ${JSON.stringify(server.slice(0, 100))}`);
  return server;
}

export class OperatorControls {
  readonly #db: Db;
  readonly #statistics: Statistics;

  constructor(db: Db, statistics: Statistics) {
    this.#db = db;
    this.#statistics = statistics;
  }

  async exclude(room: TrackedRoom, server: string, reason: string, by: string): Promise<Exclusion> {
    const exclusion = await excludeServer(this.#db, room.id, {
      server: checkServer(server),
      reason: checkReason(reason),
      excludedBy: by,
    });
    this.#statistics.forgetLiveTables();
    return exclusion;
  }

  /** False when the server was not excluded. */
  async include(room: TrackedRoom, server: string): Promise<boolean> {
    const included = await includeServer(this.#db, room.id, checkServer(server));
    this.#statistics.forgetLiveTables();
    return included;
  }

  /** Deletes the samples of one ping in the room (and its predecessors); returns how many. */
  async deletePing(room: TrackedRoom, pingEventId: string): Promise<number> {
    if (!isValidEventId(pingEventId))
      throw new InputError('eventId', `not an event ID: ${JSON.stringify(pingEventId.slice(0, 100))}`);
    const deleted = await deleteSamplesOfPing(this.#db, room.roomIds, pingEventId);
    this.#statistics.forgetLiveTables();
    return deleted;
  }

  async refreeze(room: TrackedRoom, week: string, by: string, reason: string): Promise<FrozenWeek> {
    return this.#statistics.refreeze(room, week, by, checkReason(reason));
  }
}
