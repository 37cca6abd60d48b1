// Probe figures (round trip, loss, clock skew) of the ping servers of a
// leaderboard's window, or of one server per calendar week. They come from
// probe pings and probe samples only, so they are computed at request time.
import type { Db } from '../db/database.ts';
import { probeFigures, type ProbeFigures } from './probe-counts.ts';
import { matrixServers, serverOffset, type PairFigures, type ServerOffset } from './one-way.ts';
import { oneWayFigures, probeCountsPerBucket, serverHasProbePings } from './probe-pings.ts';
import { serverHasSamples } from '../samples/repository.ts';
import type { TrackedRoom } from './rooms.ts';
import type { TimeWindow } from './windows.ts';

/**
 * The room IDs probe data of a room is kept under: a probe that could not
 * reach its homeserver never learnt the ID of an aliased room, so its failed
 * sends are kept under the alias.
 */
function probeRoomIds(room: TrackedRoom): string[] {
  return [...new Set([...room.roomIds, room.reference])];
}

/** Every probed server's figures over the window (or only `server`'s), by server name. */
export async function probeFiguresInWindow(
  db: Db,
  room: TrackedRoom,
  window: TimeWindow,
  server?: string,
): Promise<ProbeFigures[]> {
  // Buckets exclude their end: an inclusive window ends one millisecond later.
  const end = window.endInclusive ? new Date(window.end.getTime() + 1) : window.end;
  const counts = await probeCountsPerBucket(db, probeRoomIds(room), [window.start, end], server);
  return counts.map(probeFigures).sort((a, b) => (a.server < b.server ? -1 : a.server > b.server ? 1 : 0));
}

export interface DeliveryMatrix {
  readonly servers: string[];
  readonly pairs: PairFigures[];
  readonly offsets: ServerOffset[];
}

/** Delivery times between the probed servers over the window, and each sender server's clock offset. */
export async function matrixInWindow(
  db: Db,
  room: TrackedRoom,
  window: TimeWindow,
  thresholdMs: number,
): Promise<DeliveryMatrix> {
  const end = window.endInclusive ? new Date(window.end.getTime() + 1) : window.end;
  const { pairs, offsets } = await oneWayFigures(db, probeRoomIds(room), window.start, end);
  return {
    servers: matrixServers(pairs),
    pairs,
    offsets: offsets.map((o) => serverOffset(o.server, o.samples, o.median, thresholdMs)),
  };
}

/** One server's figures per bucket between consecutive boundaries (index i: boundaries[i] to boundaries[i + 1]). */
export async function serverProbeFiguresPerBucket(
  db: Db,
  room: TrackedRoom,
  server: string,
  boundaries: readonly Date[],
): Promise<Map<number, ProbeFigures>> {
  const counts = await probeCountsPerBucket(db, probeRoomIds(room), boundaries, server);
  return new Map(counts.map((c) => [c.bucket, probeFigures(c)]));
}

/** Whether a room holds anything of `server`: samples, or pings of a probe there (a server may only ever have lost them). */
export async function serverIsKnown(db: Db, room: TrackedRoom, server: string): Promise<boolean> {
  return (
    (await serverHasSamples(db, room.roomIds, server)) || (await serverHasProbePings(db, probeRoomIds(room), server))
  );
}

/** The boundaries of consecutive calendar weeks, for the per-bucket queries. */
export function weekBoundaries(weeks: readonly { readonly start: Date; readonly end: Date }[]): Date[] {
  return [weeks[0]!.start, ...weeks.map((w) => w.end)];
}
