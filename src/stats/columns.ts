// Samples as compact columns, and the leaderboard figures computed from them.
//
// Exact medians need every delay. A week of a million samples costs
// PostgreSQL well over a second to sort row by row on this class of machine,
// while typed arrays in the process sort it in a few tens of milliseconds. So
// samples of each closed hour are kept packed (see digests.ts), and the
// figures are computed here from those columns: pure code, tested directly.
import type { DelayFilter } from './repository.ts';
import { figuresOfSorted, type Figures } from './figures.ts';
import { compareNames } from '../order.ts';
import type { ResponderFigures, ServerFigures } from './ranking.ts';
import { getOrInsert } from '../collections.ts';

/**
 * The samples of one stretch of time. Server names are held once, in
 * dictionaries; pings only as 64-bit keys of their event IDs (see pingKey).
 */
export interface SampleColumns {
  readonly servers: readonly string[];
  readonly responders: readonly string[];
  /** Two 32-bit halves per distinct ping: [high, low, high, low, …]. */
  readonly pingKeys: Int32Array;
  /** Indexes into `servers`, `responders` and the pings of `pingKeys`, one entry per sample. */
  readonly server: Int32Array;
  readonly responder: Int32Array;
  readonly ping: Int32Array;
  readonly delay: Int32Array;
}

export interface SampleRowLike {
  readonly ping_server: string;
  readonly responder_server: string;
  readonly ping_event_id: string;
  readonly delay_ms: number;
}

/**
 * A 64-bit key of a ping's event ID (cyrb53's two lanes, kept whole).
 * Pings are counted by key rather than by ID because interning a week's
 * quarter of a million IDs as strings cost more than all the rest of the
 * table; two pings of one server sharing a key in one window has a chance
 * of about n² / 2⁶⁵ (below one in a billion for a million pings), and would
 * count one ping fewer.
 */
export function pingKey(eventId: string, into: Int32Array, at: number): void {
  let h1 = 0xdeadbeef;
  let h2 = 0x41c6ce57;
  for (let i = 0; i < eventId.length; i++) {
    const c = eventId.charCodeAt(i);
    h1 = Math.imul(h1 ^ c, 2654435761);
    h2 = Math.imul(h2 ^ c, 1597334677);
  }
  h1 = Math.imul(h1 ^ (h1 >>> 16), 2246822507) ^ Math.imul(h2 ^ (h2 >>> 13), 3266489909);
  h2 = Math.imul(h2 ^ (h2 >>> 16), 2246822507) ^ Math.imul(h1 ^ (h1 >>> 13), 3266489909);
  into[at] = h2;
  into[at + 1] = h1;
}

/** Turns rows into columns, interning the strings. */
export function columnsFromRows(rows: readonly SampleRowLike[]): SampleColumns {
  const servers = new Map<string, number>();
  const responders = new Map<string, number>();
  const pings = new Map<string, number>();
  const intern = (map: Map<string, number>, key: string) => {
    return getOrInsert(map, key, () => map.size);
  };
  const n = rows.length;
  const columns = {
    server: new Int32Array(n),
    responder: new Int32Array(n),
    ping: new Int32Array(n),
    delay: new Int32Array(n),
  };
  rows.forEach((row, i) => {
    columns.server[i] = intern(servers, row.ping_server);
    columns.responder[i] = intern(responders, row.responder_server);
    columns.ping[i] = intern(pings, row.ping_event_id);
    columns.delay[i] = row.delay_ms;
  });
  const pingKeys = new Int32Array(2 * pings.size);
  for (const [id, index] of pings) pingKey(id, pingKeys, 2 * index);
  return { servers: [...servers.keys()], responders: [...responders.keys()], pingKeys, ...columns };
}

/** Numbers every distinct ping key of the chunks, with an open-addressing table over typed arrays. */
function globalPingIndexes(chunks: readonly SampleColumns[]): { perChunk: Int32Array[]; count: number } {
  const total = chunks.reduce((sum, chunk) => sum + chunk.pingKeys.length / 2, 0);
  let capacity = 16;
  while (capacity < 1.5 * total) capacity *= 2;
  const mask = capacity - 1;
  // A slot is [high, low, index + 1] in one array (one cache miss per probe); 0 marks a free slot.
  const table = new Int32Array(3 * capacity);
  let count = 0;
  const perChunk = chunks.map((chunk) => {
    const keys = chunk.pingKeys;
    const local = new Int32Array(keys.length / 2);
    for (let p = 0; p < local.length; p++) {
      const high = keys[2 * p]!;
      const low = keys[2 * p + 1]!;
      let slot = 3 * (low & mask);
      while (table[slot + 2] !== 0 && (table[slot] !== high || table[slot + 1] !== low))
        slot = slot + 3 === table.length ? 0 : slot + 3;
      if (table[slot + 2] === 0) {
        table[slot] = high;
        table[slot + 1] = low;
        table[slot + 2] = ++count;
      }
      local[p] = table[slot + 2]! - 1;
    }
    return local;
  });
  return { perChunk, count };
}

/**
 * Global numbers of each chunk's names, and the names in code-point order (so
 * a number's order is its name's). Chunks may share a dictionary (digests
 * do): each distinct one is interned once.
 */
function namesInOrder(chunks: readonly SampleColumns[], names: (chunk: SampleColumns) => readonly string[]) {
  const dictionaries = [...new Set(chunks.map(names))];
  const index = new Map<string, number>();
  for (const dictionary of dictionaries)
    for (const name of dictionary) if (!index.has(name)) index.set(name, index.size);
  const sorted = [...index.keys()].sort(compareNames);
  const rank = new Int32Array(sorted.length);
  for (const [i, name] of sorted.entries()) rank[index.get(name)!] = i;
  const ranks = new Map(
    dictionaries.map((dictionary) => [dictionary, Int32Array.from(dictionary, (name) => rank[index.get(name)!]!)]),
  );
  return { sorted, perChunk: chunks.map((chunk) => ranks.get(names(chunk))!) };
}

/** Spelled out rather than spread: tens of thousands of these per table, and a spread costs several times more. */
function withCounts(figures: Figures, server: string, samples: number, pings: number): ResponderFigures {
  const { medianMs, meanMs, gmeanMs, p90Ms, minMs, maxMs } = figures;
  return { server, medianMs, meanMs, gmeanMs, p90Ms, minMs, maxMs, samples, pings };
}

/** Most servers ping a few times a week: sorting their handful of numbers in place beats a sort call on a subarray each. */
const SMALL_GROUP = 24;

function insertionSort(values: Int32Array | Float64Array, start: number, end: number): void {
  for (let i = start + 1; i < end; i++) {
    const value = values[i]!;
    let j = i - 1;
    while (j >= start && values[j]! > value) {
      values[j + 1] = values[j]!;
      j--;
    }
    values[j + 1] = value;
  }
}

/** Delays up to 65 s past the filter's minimum: most delays, in a table that fits a core's cache. */
const LOG_TABLE_SIZE = 65_536;
let logTable: { readonly from: number; readonly logs: Float64Array } | undefined;

/**
 * ln(from + i) for i below LOG_TABLE_SIZE, computed once per minimum delay
 * (the service has one). The figures take a logarithm per sample, and a
 * lookup costs a tenth of Math.log.
 */
function logarithmsFrom(from: number): Float64Array {
  if (logTable?.from !== from) {
    const logs = new Float64Array(LOG_TABLE_SIZE);
    for (let i = 0; i < logs.length; i++) logs[i] = Math.log(from + i);
    logTable = { from, logs };
  }
  return logTable.logs;
}

/**
 * Figures per ping server and per (ping server, responder server) over the
 * samples of `chunks` that pass the delay filter. Servers come out in name
 * order, responders in name order within them.
 */
export function figuresFromColumns(chunks: readonly SampleColumns[], filter: DelayFilter): ServerFigures[] {
  // The geometric mean needs positive delays; the configuration never allows less.
  if (filter.minDelayMs < 1)
    throw new RangeError(`the delay filter must start at 1 ms or more, not ${filter.minDelayMs}`);
  const servers = namesInOrder(chunks, (chunk) => chunk.servers);
  const responders = namesInOrder(chunks, (chunk) => chunk.responders);
  const pings = globalPingIndexes(chunks);
  const serverCount = servers.sorted.length;
  const responderCount = Math.max(1, responders.sorted.length);

  // Each sample becomes one sortable number, (delay - min) * responders +
  // responder: sorting a server's numbers orders its delays, and within
  // equal delays its responders, so one sort serves the pooled figures and,
  // through a stable split, every responder's.
  const span = (filter.maxDelayMs - filter.minDelayMs + 1) * responderCount;
  const capacity = chunks.reduce((sum, chunk) => sum + chunk.delay.length, 0);
  const sampleServer = new Int32Array(capacity);
  const sampleKey = span <= 2 ** 31 ? new Int32Array(capacity) : new Float64Array(capacity);
  const pingCounts = new Int32Array(serverCount);
  const pingOwner = new Int32Array(pings.count).fill(-1);
  // A ping belongs to one server; a forged pong could name another, counted apart.
  const strayPings = new Set<number>();
  const pairSeen = new Uint8Array(pings.count * responderCount);
  const pairPings = new Int32Array(serverCount * responderCount);
  let total = 0;
  const { minDelayMs, maxDelayMs } = filter;
  chunks.forEach((chunk, c) => {
    const serverOf = servers.perChunk[c]!;
    const responderOf = responders.perChunk[c]!;
    const pingOf = pings.perChunk[c]!;
    // Chunks come in two shapes (digests, raw rows): locals keep the loop monomorphic.
    const { delay: delays, server: serverIndexes, responder: responderIndexes, ping: pingIndexes } = chunk;
    for (let i = 0; i < delays.length; i++) {
      const delay = delays[i]!;
      if (delay < minDelayMs || delay > maxDelayMs) continue;
      const server = serverOf[serverIndexes[i]!]!;
      const responder = responderOf[responderIndexes[i]!]!;
      const ping = pingOf[pingIndexes[i]!]!;
      sampleServer[total] = server;
      sampleKey[total] = (delay - minDelayMs) * responderCount + responder;
      total++;
      const owner = pingOwner[ping]!;
      if (owner === -1) {
        pingOwner[ping] = server;
        pingCounts[server]!++;
      } else if (owner !== server && !strayPings.has(ping * serverCount + server)) {
        strayPings.add(ping * serverCount + server);
        pingCounts[server]!++;
      }
      const seen = ping * responderCount + responder;
      if (pairSeen[seen] === 0) {
        pairSeen[seen] = 1;
        pairPings[server * responderCount + responder]!++;
      }
    }
  });

  // Counting sort by server, then a sort of each server's numbers.
  const starts = new Int32Array(serverCount + 1);
  for (let i = 0; i < total; i++) starts[sampleServer[i]! + 1]!++;
  for (let s = 0; s < serverCount; s++) starts[s + 1]! += starts[s]!;
  const grouped = sampleKey instanceof Int32Array ? new Int32Array(total) : new Float64Array(total);
  const fill = starts.slice(0, serverCount);
  for (let i = 0; i < total; i++) grouped[fill[sampleServer[i]!]!++] = sampleKey[i]!;

  const logs = logarithmsFrom(minDelayMs);
  const delays = new Int32Array(total);
  const split = new Int32Array(total);
  const responderStarts = new Int32Array(responderCount + 1);
  // Each delay's logarithm is taken once, summed in sorted order for the
  // server and for its responder alike (what summing each sorted list gives).
  const responderLogSums = new Float64Array(responderCount);
  const result: ServerFigures[] = [];
  for (let s = 0; s < serverCount; s++) {
    const start = starts[s]!;
    const end = starts[s + 1]!;
    if (start === end) continue;
    if (end - start > SMALL_GROUP) grouped.subarray(start, end).sort();
    else insertionSort(grouped, start, end);
    responderStarts.fill(0);
    responderLogSums.fill(0);
    let logSum = 0;
    for (let i = start; i < end; i++) {
      const key = grouped[i]!;
      const responder = key % responderCount;
      const offset = (key - responder) / responderCount;
      const delay = offset + minDelayMs;
      const log = offset < logs.length ? logs[offset]! : Math.log(delay);
      delays[i] = delay;
      logSum += log;
      responderLogSums[responder]! += log;
      responderStarts[responder + 1]!++;
    }
    for (let r = 0; r < responderCount; r++) responderStarts[r + 1]! += responderStarts[r]!;
    const responderFill = responderStarts.slice(0, responderCount);
    for (let i = start; i < end; i++) split[start + responderFill[grouped[i]! % responderCount]!++] = delays[i]!;
    const own: ResponderFigures[] = [];
    for (let r = 0; r < responderCount; r++) {
      const count = responderStarts[r + 1]! - responderStarts[r]!;
      if (count === 0) continue;
      const sorted = split.subarray(start + responderStarts[r]!, start + responderStarts[r + 1]!);
      own.push(
        withCounts(
          figuresOfSorted(sorted, responderLogSums[r]),
          responders.sorted[r]!,
          count,
          pairPings[s * responderCount + r]!,
        ),
      );
    }
    const pooled = delays.subarray(start, end);
    result.push({
      ...withCounts(figuresOfSorted(pooled, logSum), servers.sorted[s]!, end - start, pingCounts[s]!),
      responders: own,
    });
  }
  return result;
}
