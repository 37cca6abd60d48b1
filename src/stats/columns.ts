// Samples as compact columns, and the leaderboard figures computed from them.
//
// Exact medians need every delay. A week of a million samples costs
// PostgreSQL well over a second to sort row by row on this class of machine,
// while typed arrays in the process sort it in a few tens of milliseconds. So
// samples of each closed hour are kept packed (see digests.ts), and the
// figures are computed here from those columns: pure code, tested directly.
import type { DelayFilter } from './repository.ts';
import { figuresOfSorted } from './figures.ts';
import { compareNames, type ResponderFigures, type ServerFigures } from './ranking.ts';
import type { TimeWindow } from './windows.ts';

/** The samples of one stretch of time; strings are held once, in dictionaries. */
export interface SampleColumns {
  readonly servers: readonly string[];
  readonly responders: readonly string[];
  readonly pings: readonly string[];
  /** Indexes into `servers`, `responders` and `pings`, one entry per sample. */
  readonly server: Int32Array;
  readonly responder: Int32Array;
  readonly ping: Int32Array;
  readonly delay: Int32Array;
  /** Epoch milliseconds of each measurement. */
  readonly measuredAt: Float64Array;
}

export interface SampleRowLike {
  readonly ping_server: string;
  readonly responder_server: string;
  readonly ping_event_id: string;
  readonly delay_ms: number;
  readonly measured_at: Date;
}

/** Turns rows into columns, interning the strings. */
export function columnsFromRows(rows: readonly SampleRowLike[]): SampleColumns {
  const servers = new Map<string, number>();
  const responders = new Map<string, number>();
  const pings = new Map<string, number>();
  const intern = (map: Map<string, number>, key: string) => {
    let index = map.get(key);
    if (index === undefined) map.set(key, (index = map.size));
    return index;
  };
  const n = rows.length;
  const columns = {
    server: new Int32Array(n), responder: new Int32Array(n), ping: new Int32Array(n), delay: new Int32Array(n), measuredAt: new Float64Array(n),
  };
  rows.forEach((row, i) => {
    columns.server[i] = intern(servers, row.ping_server);
    columns.responder[i] = intern(responders, row.responder_server);
    columns.ping[i] = intern(pings, row.ping_event_id);
    columns.delay[i] = row.delay_ms;
    columns.measuredAt[i] = row.measured_at.getTime();
  });
  return { servers: [...servers.keys()], responders: [...responders.keys()], pings: [...pings.keys()], ...columns };
}

function inWindow(t: number, window: TimeWindow): boolean {
  return t >= window.start.getTime() && (window.endInclusive ? t <= window.end.getTime() : t < window.end.getTime());
}

/**
 * Figures per ping server and per (ping server, responder server) over the
 * samples of `chunks` that lie in `window` and pass the delay filter. Servers
 * come out in name order, responders in name order within them.
 */
export function figuresFromColumns(chunks: readonly SampleColumns[], window: TimeWindow, filter: DelayFilter): ServerFigures[] {
  // Global dictionaries across chunks.
  const serverIndex = new Map<string, number>();
  const responderIndex = new Map<string, number>();
  const pingIndex = new Map<string, number>();
  const global = (map: Map<string, number>, key: string) => {
    let index = map.get(key);
    if (index === undefined) map.set(key, (index = map.size));
    return index;
  };
  const capacity = chunks.reduce((sum, chunk) => sum + chunk.delay.length, 0);
  const rowServer = new Int32Array(capacity);
  const rowResponder = new Int32Array(capacity);
  const rowPing = new Int32Array(capacity);
  const rowDelay = new Int32Array(capacity);
  let total = 0;
  for (const chunk of chunks) {
    const servers = chunk.servers.map((s) => global(serverIndex, s));
    const responders = chunk.responders.map((r) => global(responderIndex, r));
    const pings = chunk.pings.map((p) => global(pingIndex, p));
    for (let i = 0; i < chunk.delay.length; i++) {
      const delay = chunk.delay[i]!;
      if (delay < filter.minDelayMs || delay > filter.maxDelayMs || !inWindow(chunk.measuredAt[i]!, window)) continue;
      rowServer[total] = servers[chunk.server[i]!]!;
      rowResponder[total] = responders[chunk.responder[i]!]!;
      rowPing[total] = pings[chunk.ping[i]!]!;
      rowDelay[total] = delay;
      total++;
    }
  }

  // Counting sort by group: one typed array holds every delay, grouped by
  // server and, within the pooled copy, by (server, responder).
  const serverCount = serverIndex.size;
  const responderCount = Math.max(1, responderIndex.size);
  const pooledCounts = new Int32Array(serverCount + 1);
  const pairCounts = new Int32Array(serverCount * responderCount + 1);
  const pingCounts = new Int32Array(serverCount);
  const pingOwner = new Int32Array(pingIndex.size).fill(-1);
  const extraPings = new Set<string>();
  for (let i = 0; i < total; i++) {
    const server = rowServer[i]!;
    const ping = rowPing[i]!;
    pooledCounts[server + 1]!++;
    pairCounts[server * responderCount + rowResponder[i]! + 1]!++;
    // A ping belongs to one server; a forged pong could name another, counted apart.
    const owner = pingOwner[ping]!;
    if (owner === -1) {
      pingOwner[ping] = server;
      pingCounts[server]!++;
    } else if (owner !== server && !extraPings.has(`${ping}:${server}`)) {
      extraPings.add(`${ping}:${server}`);
      pingCounts[server]!++;
    }
  }
  for (let i = 1; i < pooledCounts.length; i++) pooledCounts[i]! += pooledCounts[i - 1]!;
  for (let i = 1; i < pairCounts.length; i++) pairCounts[i]! += pairCounts[i - 1]!;
  const pooled = new Int32Array(total);
  const pairs = new Int32Array(total);
  const pooledFill = pooledCounts.slice(0, serverCount);
  const pairFill = pairCounts.slice(0, serverCount * responderCount);
  // Distinct pings per (server, responder): one bit per (ping, responder server).
  const pairPings = new Int32Array(serverCount * responderCount);
  const seen = new Uint8Array(pingIndex.size * responderCount);
  for (let i = 0; i < total; i++) {
    const server = rowServer[i]!;
    pooled[pooledFill[server]!++] = rowDelay[i]!;
    const pair = server * responderCount + rowResponder[i]!;
    pairs[pairFill[pair]!++] = rowDelay[i]!;
    const bit = rowPing[i]! * responderCount + rowResponder[i]!;
    if (seen[bit] === 0) {
      seen[bit] = 1;
      pairPings[pair]!++;
    }
  }

  const serverNames = [...serverIndex.keys()];
  const responderNames = [...responderIndex.keys()];
  const responderOrder = responderNames.map((_, i) => i).sort((a, b) => compareNames(responderNames[a]!, responderNames[b]!));
  const result: ServerFigures[] = [];
  for (const s of serverNames.map((_, i) => i).sort((a, b) => compareNames(serverNames[a]!, serverNames[b]!))) {
    const delays = pooled.subarray(pooledCounts[s]!, pooledCounts[s + 1]!);
    if (delays.length === 0) continue;
    delays.sort();
    const responders: ResponderFigures[] = [];
    for (const r of responderOrder) {
      const pair = s * responderCount + r;
      const own = pairs.subarray(pairCounts[pair]!, pairCounts[pair + 1]!);
      if (own.length === 0) continue;
      own.sort();
      responders.push({ server: responderNames[r]!, ...figuresOfSorted(own), samples: own.length, pings: pairPings[pair]! });
    }
    result.push({ server: serverNames[s]!, ...figuresOfSorted(delays), samples: delays.length, pings: pingCounts[s]!, responders });
  }
  return result;
}
