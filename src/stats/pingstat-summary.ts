// The figures of the aggregator-compatible routes (stats.json and its HTML
// table): per (ping server, pong server) pair and per ping server, then the
// ping servers ranked. A ping server's figures depend on its own pongs only,
// so they are computed one server at a time, and a server whose pongs in the
// window did not change keeps its figures (pingstat-summaries.ts).
//
// A ping server's member of stats.json lists every ping and delay (a week of
// a busy room is 19 MB of them): it is written here, once, from the lists its
// pairs bring as JSON, the first time stats.json asks for it (the HTML table
// never does), and the lists are dropped then. (Kept beside the member they
// were copied into, as they were, they held a second 19 MB for as long as the
// figures.) Where the caller keeps members elsewhere (large ones in the
// spill directory's files, as raw rows are), such a member is written at
// once, and leaves the heap.
import { getOrInsert } from '../collections.ts';
import { compareNames } from '../order.ts';
import { isFileRange, type FileRange } from '../spill.ts';
import { ExactSum, figuresOfSorted } from './figures.ts';
import { libmLog } from './libm.ts';
import {
  ownedBytes,
  type JsonText,
  type PingstatGroups,
  type PingstatPair,
  type PingstatPings,
} from './pingstat-data.ts';

/** One pong server's figures for one ping server. */
export interface PingstatPongFigures {
  readonly pongs: number;
  readonly mean: number;
  readonly median: number;
  readonly gmean: number;
}

export interface PingstatServerFigures {
  readonly server: string;
  /** By pong server name. */
  readonly pongs: readonly (readonly [string, PingstatPongFigures])[];
  readonly pings: number;
  readonly mean: number;
  readonly median: number;
  readonly gmean: number;
  /** Its member of stats.json, `"server":{…}`, as UTF-8 bytes: in a buffer of their own, or a spilled file. */
  readonly json: Buffer | FileRange;
  /** What it holds of stats.json: its member, or until that is written, the lists it is written from. */
  readonly jsonBytes: number;
  /** Its member's file is gone: the lists it was written from are too, so the figures must be computed again. */
  readonly jsonLost: boolean;
}

/**
 * Members of this size or more go to the spill directory: a week of a
 * million rows has 300 of about 64 kB. Smaller ones (a room of 100,000 rows
 * has members of about 7 kB) stay in memory, where they cost a client no
 * file to open.
 */
export const SPILLED_MEMBER_MIN_BYTES = 16 * 1024;

/** A ping server's delays: its pairs' pongs (a median of an even count is a float in pingstat). */
export const delayCount = (server: Pick<PingstatServerFigures, 'pongs'>) =>
  server.pongs.reduce((n, [, pong]) => n + pong.pongs, 0);

/**
 * A float as Python's json.dumps writes it: a whole value keeps its `.0`
 * (`259.0`, where JSON.stringify writes `259`), so a reader in Python gets a
 * float where pingstat gave one. Delays stay far below 1e16, where Python
 * would switch to an exponent.
 */
export const pythonFloat = (value: number) => (Number.isInteger(value) ? `${value}.0` : JSON.stringify(value));

/**
 * Means and geometric means are always floats in pingstat; its median
 * (statistics.median of whole delays) is the middle delay, an int, for an
 * odd count and the average of the two middle ones, a float, for an even one.
 */
const figuresJson = (f: { mean: number; median: number; gmean: number }, delays: number) =>
  `"mean":${pythonFloat(f.mean)},"median":${delays % 2 === 0 ? pythonFloat(f.median) : JSON.stringify(f.median)},"gmean":${pythonFloat(f.gmean)}`;

/** A pair's `diffs` members and the server's `pings` items, as JSON. */
interface MemberLists {
  /** In the order of the figures' pongs. */
  readonly diffs: readonly JsonText[];
  readonly pings: JsonText;
}

/** Keeps a member's bytes outside the heap (those of SPILLED_MEMBER_MIN_BYTES or more): their range of a file, or undefined if it does not. */
export type KeepMember = (bytes: Buffer) => FileRange | undefined;

/**
 * The figures, with their member written from `lists` the first time it is
 * asked for (and given to `keep`, if it takes it), and the lists dropped
 * then.
 */
function serverFigures(
  fields: Omit<PingstatServerFigures, 'json' | 'jsonBytes' | 'jsonLost'>,
  lists: MemberLists,
  keep: KeepMember | undefined,
): PingstatServerFigures {
  let unwritten: MemberLists | undefined = lists;
  let written: Buffer | FileRange | undefined;
  /**
   * As the aggregator's `json.dumps(data)` writes it (without its spaces, as
   * JSON.stringify writes it, but its floats spelt as Python spells them),
   * keys in the order pingstat inserts them.
   */
  const write = ({ diffs, pings }: MemberLists) => {
    const parts: JsonText[] = [`${JSON.stringify(fields.server)}:{"pongs":{`];
    for (const [pongIndex, [pongServer, pong]] of fields.pongs.entries())
      parts.push(
        `${pongIndex > 0 ? ',' : ''}${JSON.stringify(pongServer)}:{"diffs":{`,
        diffs[pongIndex]!,
        `},${figuresJson(pong, pong.pongs)}}`,
      );
    parts.push('},"pings":[', pings, `],${figuresJson(fields, delayCount(fields))}}`);
    return ownedBytes(parts);
  };
  const listBytes = lists.diffs.reduce((n, diffs) => n + diffs.length, lists.pings.length);
  // A member that goes to a file is written at once: the lists of a week's servers, waiting together for
  // the first stats.json, were 19 MB at a million rows, at the peak of that request. One written later
  // (its lists smaller than that) stays in memory: `keep` appends to this computation's file only.
  if (keep !== undefined && listBytes >= SPILLED_MEMBER_MIN_BYTES) {
    const bytes = write(lists);
    unwritten = undefined;
    written = keep(bytes) ?? bytes;
  }
  return {
    ...fields,
    get json() {
      if (written === undefined) {
        written = write(unwritten!);
        unwritten = undefined;
      }
      return written;
    },
    get jsonBytes() {
      if (written === undefined) return listBytes;
      return isFileRange(written) ? written.end - written.start : written.length;
    },
    get jsonLost() {
      return written !== undefined && isFileRange(written) && written.file.unreadable;
    },
  };
}

/** What stats.json and the HTML table say, ping servers in ranking order. */
export interface PingstatSummary {
  readonly disclaimer: string;
  readonly servers: readonly PingstatServerFigures[];
  readonly mean: number;
  readonly pongservers: readonly string[];
}

/**
 * One ping server's figures from its pairs (at least one), computed from
 * the delays sorted ascending as figuresOfSorted sums them (in the process:
 * sorting numbers here is cheaper than in SQL), so they are the same doubles
 * whatever the database. The geometric mean is taken over the exact sum of
 * the logarithms, as pingstat's geomean takes it (math.fsum), each logarithm
 * and the exponential as the C library under Python takes them (libm.ts).
 */
export function summarisePingServer(
  server: string,
  pairs: readonly PingstatPair[],
  pings: PingstatPings,
  keep?: KeepMember,
): PingstatServerFigures {
  const pongs: [string, PingstatPongFigures, JsonText][] = [];
  const sortedDelays: Float64Array[] = [];
  const serverLogs = new ExactSum();
  for (const pair of pairs) {
    const delays = pair.delays.slice().sort();
    const logs = new ExactSum();
    for (let i = 0; i < delays.length; i++) logs.add(libmLog(delays[i]!));
    const f = figuresOfSorted(delays, logs.value());
    // An exact sum: the server's is its pairs' added up, each logarithm taken once.
    serverLogs.addSum(logs);
    pongs.push([
      pair.pongServer,
      { pongs: pair.pongs, mean: f.meanMs, median: f.medianMs, gmean: f.gmeanMs },
      pair.diffsJson,
    ]);
    sortedDelays.push(delays);
  }
  const pooled = new Float64Array(sortedDelays.reduce((n, d) => n + d.length, 0));
  let offset = 0;
  for (const delays of sortedDelays) {
    pooled.set(delays, offset);
    offset += delays.length;
  }
  const f = figuresOfSorted(pooled.sort(), serverLogs.value());
  pongs.sort((a, b) => compareNames(a[0], b[0]));
  return serverFigures(
    {
      server,
      pongs: pongs.map(([pongServer, pong]) => [pongServer, pong] as const),
      pings: pings.count,
      mean: f.meanMs,
      median: f.medianMs,
      gmean: f.gmeanMs,
    },
    { diffs: pongs.map(([, , diffs]) => diffs), pings: pings.json },
    keep,
  );
}

/** The ping servers ranked by ascending median, ties by name, with the mean of their means and every pong server. */
export function rankPingstatServers(figures: readonly PingstatServerFigures[], disclaimer: string): PingstatSummary {
  const servers = [...figures].sort((a, b) => a.median - b.median || compareNames(a.server, b.server));
  const pongServers = new Set<string>();
  for (const server of servers) for (const [pongServer] of server.pongs) pongServers.add(pongServer);
  return {
    disclaimer,
    servers,
    // Added in ranking order, as pingstat adds them: a float sum depends on its order.
    mean: servers.length > 0 ? servers.reduce((sum, s) => sum + s.mean, 0) / servers.length : 0,
    pongservers: [...pongServers].sort(compareNames),
  };
}

/** The figures of every pair and ping server of the groups, ranked. */
export function summarisePingstat(groups: PingstatGroups, disclaimer: string): PingstatSummary {
  const pairsOf = new Map<string, PingstatPair[]>();
  for (const pair of groups.pairs) getOrInsert(pairsOf, pair.pingServer, () => []).push(pair);
  const servers = [...pairsOf].map(([server, pairs]) => summarisePingServer(server, pairs, groups.pings.get(server)!));
  return rankPingstatServers(servers, disclaimer);
}
