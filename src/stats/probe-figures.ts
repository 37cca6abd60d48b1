// Probe figures (round trip, loss, measured clock offset) of the ping servers
// of a leaderboard's window, or of one server per calendar week. They come
// from probe pings and probe samples only, so they are computed at request time.
import type { Db } from '../db/database.ts';
import { mergeProbeFigures, type ProbeFigures } from './probe-counts.ts';
import { matrixServers, serverOffset, type PairFigures, type ServerOffset } from './one-way.ts';
import { offsetsPerBucket, pairFigures, probeCountsPerBucket } from './probe-pings.ts';
import { serverHasRows } from '../samples/repository.ts';
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

/** Buckets exclude their end: an inclusive window ends one millisecond later. */
function windowBoundaries(window: TimeWindow): Date[] {
  return [window.start, window.endInclusive ? new Date(window.end.getTime() + 1) : window.end];
}

/** Probe figures per bucket between consecutive boundaries (index i: boundaries[i] to boundaries[i + 1]). */
async function probeFiguresPerBucket(
  db: Db,
  room: TrackedRoom,
  boundaries: readonly Date[],
  thresholdMs: number,
  server?: string,
): Promise<Map<number, ProbeFigures[]>> {
  const roomIds = probeRoomIds(room);
  const counts = await probeCountsPerBucket(db, roomIds, boundaries, server);
  const offsets = await offsetsPerBucket(db, roomIds, boundaries, server);
  const buckets = [...new Set([...counts.map((c) => c.bucket), ...offsets.map((o) => o.bucket)])];
  return new Map(
    buckets.map((bucket) => [
      bucket,
      mergeProbeFigures(
        counts.filter((c) => c.bucket === bucket),
        offsets.filter((o) => o.bucket === bucket).map((o) => serverOffset(o.server, o.samples, o.median, thresholdMs)),
      ),
    ]),
  );
}

/**
 * Every probed server's figures over the window (or only `server`'s), by
 * server name; a clock offset is flagged beyond its bound by more than
 * `thresholdMs`.
 */
export async function probeFiguresInWindow(
  db: Db,
  room: TrackedRoom,
  window: TimeWindow,
  thresholdMs: number,
  server?: string,
): Promise<ProbeFigures[]> {
  return (await probeFiguresPerBucket(db, room, windowBoundaries(window), thresholdMs, server)).get(0) ?? [];
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
  const boundaries = windowBoundaries(window);
  const roomIds = probeRoomIds(room);
  const pairs = await pairFigures(db, roomIds, boundaries[0]!, boundaries[1]!);
  const offsets = await offsetsPerBucket(db, roomIds, boundaries);
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
  thresholdMs: number,
): Promise<Map<number, ProbeFigures>> {
  const buckets = await probeFiguresPerBucket(db, room, boundaries, thresholdMs, server);
  return new Map([...buckets].map(([bucket, [figures]]) => [bucket, figures!]));
}

/** Whether a room holds anything of `server`: samples, or pings of a probe there (a server may only ever have lost them). */
export async function serverIsKnown(db: Db, room: TrackedRoom, server: string): Promise<boolean> {
  return (
    (await serverHasRows(db, 'samples', room.roomIds, server)) ||
    (await serverHasRows(db, 'probe_pings', probeRoomIds(room), server))
  );
}

/** The boundaries of consecutive calendar weeks, for the per-bucket queries. */
export function weekBoundaries(weeks: readonly { readonly start: Date; readonly end: Date }[]): Date[] {
  return [weeks[0]!.start, ...weeks.map((w) => w.end)];
}
