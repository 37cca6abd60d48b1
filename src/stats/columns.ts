// Samples as compact columns, and the leaderboard figures computed from them.
//
// Exact medians need every delay. A week of a million samples costs
// PostgreSQL well over a second to sort row by row on this class of machine,
// while typed arrays in the process sort it in a few tens of milliseconds. So
// the figures of each hour are kept packed (see digests.ts), and the
// figures are computed here from those columns: pure code, tested directly.
import type { DelayFilter } from './repository.ts';
import { quantileOfSortedRun } from './figures.ts';
import { compareNames } from '../order.ts';
import type { ResponderFigures, ServerFigures } from './ranking.ts';
import { getOrInsert } from '../collections.ts';

/**
 * Indexes, in the narrowest integers that hold them where they are kept
 * (decoded digests: a week of a million samples in 7 MB rather than 12).
 */
export type IndexColumn = Int8Array | Int16Array | Int32Array;

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
  readonly server: IndexColumn;
  readonly responder: IndexColumn;
  readonly ping: IndexColumn;
  readonly delay: Int32Array;
}

/** The narrowest index column that holds indexes below `count`. */
export function indexColumnFor(count: number): new (length: number) => IndexColumn {
  return count <= 2 ** 7 ? Int8Array : count <= 2 ** 15 ? Int16Array : Int32Array;
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

/**
 * Numbers for the pings of one room's tables, by ping key. A table counts
 * distinct pings by number; most of its chunks are kept digests that come
 * back to every table, so each chunk's pings are numbered once (and the
 * numbers kept with the chunk) rather than hashed again for every table.
 * The numbers of pings no longer in any table are dropped, all at once,
 * when they outnumber those in the latest (a build's preparation for a
 * table to come keeps the latest table's too); a table's arrays indexed by
 * ping are as long as the numbers handed out.
 */
export class PingNumbers {
  /** Open addressing: a slot is [high, low, number + 1] in one array (one cache miss per probe); 0 marks a free slot. */
  #table = new Int32Array(3 * 1024);
  #count = 0;
  /** Pings of the latest table's chunks. */
  #tablePings = 0;
  #perChunk = new WeakMap<SampleColumns, Int32Array>();

  /** Pings numbered so far: every number is below it. */
  get count(): number {
    return this.#count;
  }

  /**
   * The number of each ping of each chunk, by the chunk's own ping index.
   * `preparing`: for a table to come (prepareFigures), not for a table now:
   * its chunks, a build's rolling week, may be fewer than the latest
   * table's (a 30-day one), whose numbers it then must not drop.
   */
  numbersOf(chunks: readonly SampleColumns[], { preparing = false } = {}): Int32Array[] {
    const pings = chunks.reduce((sum, chunk) => sum + chunk.pingKeys.length / 2, 0);
    const needed = preparing ? Math.max(pings, this.#tablePings) : pings;
    if (!preparing) this.#tablePings = pings;
    if (this.#count > 2 * needed + 4096) {
      this.#table = new Int32Array(3 * 1024);
      this.#count = 0;
      this.#perChunk = new WeakMap();
    }
    // Grown once for every ping not numbered yet, rather than doubling chunk by chunk.
    const unnumbered = chunks.reduce(
      (sum, chunk) => sum + (this.#perChunk.has(chunk) ? 0 : chunk.pingKeys.length / 2),
      0,
    );
    if (3 * 1.5 * (this.#count + unnumbered) > this.#table.length) this.#grow(this.#count + unnumbered);
    return chunks.map((chunk) => {
      let numbers = this.#perChunk.get(chunk);
      if (numbers === undefined) {
        numbers = this.#number(chunk.pingKeys);
        this.#perChunk.set(chunk, numbers);
      }
      return numbers;
    });
  }

  #number(keys: Int32Array): Int32Array {
    const numbers = new Int32Array(keys.length / 2);
    const table = this.#table;
    const mask = table.length / 3 - 1;
    for (let p = 0; p < numbers.length; p++) {
      const high = keys[2 * p]!;
      const low = keys[2 * p + 1]!;
      let slot = 3 * (low & mask);
      while (table[slot + 2] !== 0 && (table[slot] !== high || table[slot + 1] !== low))
        slot = slot + 3 === table.length ? 0 : slot + 3;
      if (table[slot + 2] === 0) {
        table[slot] = high;
        table[slot + 1] = low;
        table[slot + 2] = ++this.#count;
      }
      numbers[p] = table[slot + 2]! - 1;
    }
    return numbers;
  }

  #grow(entries: number): void {
    let capacity = this.#table.length / 3;
    while (capacity < 1.5 * entries) capacity *= 2;
    const old = this.#table;
    const table = new Int32Array(3 * capacity);
    const mask = capacity - 1;
    for (let from = 0; from < old.length; from += 3) {
      if (old[from + 2] === 0) continue;
      let slot = 3 * (old[from + 1]! & mask);
      while (table[slot + 2] !== 0) slot = slot + 3 === table.length ? 0 : slot + 3;
      table.set(old.subarray(from, from + 3), slot);
    }
    this.#table = table;
  }
}

/** Scratch arrays longer than this are not kept (4 MB as int32s): a table of more samples allocates its own. */
const KEPT_SCRATCH_LENGTH = 2 ** 20;

/**
 * The scratch arrays a table writes before it reads, kept by one process
 * between the tables it computes. A table of a million samples needs one of
 * 4 MB for its samples' numbers (8 with 64-bit keys), one for its pings and a few as long as the
 * largest server's samples: fresh ones are zeroed and faulted in page by
 * page, and, freed only by a later garbage collection, kept the collector
 * busy (a third of a table's time, measured with the service's heap settings).
 */
export class FiguresScratch {
  readonly #int32 = new Map<string, Int32Array>();
  readonly #float64 = new Map<string, Float64Array>();

  /** The scratch array named `name`, `length` long, holding whatever it was last left with. */
  int32(name: string, length: number): Int32Array {
    return scratch(this.#int32, name, length, Int32Array);
  }

  float64(name: string, length: number): Float64Array {
    return scratch(this.#float64, name, length, Float64Array);
  }
}

function scratch<Kind extends Int32Array | Float64Array>(
  kept: Map<string, Kind>,
  name: string,
  length: number,
  Type: new (length: number) => Kind,
): Kind {
  const current = kept.get(name);
  if (current !== undefined && current.length >= length) return current.subarray(0, length) as Kind;
  if (length > KEPT_SCRATCH_LENGTH) return new Type(length);
  // Grown a quarter past the need (within the limit), so a week that grows by a few samples does not allocate again.
  const grown = new Type(Math.min(KEPT_SCRATCH_LENGTH, Math.ceil(1.25 * length)));
  kept.set(name, grown);
  return grown.subarray(0, length) as Kind;
}

interface NameOrder {
  /** The distinct names, in code-point order. */
  readonly sorted: readonly string[];
  /** Each name's index in `sorted`. */
  readonly position: ReadonlyMap<string, number>;
  /** For each entry of the dictionary, its name's index in `sorted`. */
  readonly rank: Int32Array;
}

// Dictionaries are only ever added to (digests share one that grows: see
// DigestNames), so an order kept for a dictionary holds while its length does.
const orders = new WeakMap<readonly string[], { readonly length: number; readonly order: NameOrder }>();

function orderOf(dictionary: readonly string[]): NameOrder {
  const kept = orders.get(dictionary);
  if (kept?.length === dictionary.length) return kept.order;
  const sorted = [...new Set(dictionary)].sort(compareNames);
  const position = new Map(sorted.map((name, i) => [name, i]));
  const order = { sorted, position, rank: Int32Array.from(dictionary, (name) => position.get(name)!) };
  orders.set(dictionary, { length: dictionary.length, order });
  return order;
}

/** The dictionary whose order is kept from table to table: the one the digests share. */
function largestOf(dictionaries: readonly (readonly string[])[]): readonly string[] {
  return dictionaries.reduce((a, b) => (b.length > a.length ? b : a), []);
}

/**
 * Global numbers of each chunk's names, and the names in code-point order (so
 * a number's order is its name's). The largest dictionary (the one digests
 * share) keeps its order from table to table; names that only the others
 * hold, few, are merged into it.
 */
function namesInOrder(chunks: readonly SampleColumns[], names: (chunk: SampleColumns) => readonly string[]) {
  const dictionaries = [...new Set(chunks.map(names))];
  const largest = largestOf(dictionaries);
  const base = orderOf(largest);
  const extra = new Set<string>();
  for (const dictionary of dictionaries)
    if (dictionary !== largest) for (const name of dictionary) if (!base.position.has(name)) extra.add(name);
  let sorted = base.sorted;
  let positionOf = (name: string) => base.position.get(name)!;
  let largestRanks = base.rank;
  if (extra.size > 0) {
    const extras = [...extra].sort(compareNames);
    const merged: string[] = [];
    const moved = new Int32Array(base.sorted.length);
    const extraPosition = new Map<string, number>();
    for (let b = 0, e = 0; b < base.sorted.length || e < extras.length; ) {
      if (e === extras.length || (b < base.sorted.length && compareNames(base.sorted[b]!, extras[e]!) < 0)) {
        moved[b] = merged.length;
        merged.push(base.sorted[b++]!);
      } else {
        extraPosition.set(extras[e]!, merged.length);
        merged.push(extras[e++]!);
      }
    }
    sorted = merged;
    positionOf = (name) => {
      const at = base.position.get(name);
      return at === undefined ? extraPosition.get(name)! : moved[at]!;
    };
    largestRanks = base.rank.map((at) => moved[at]!);
  }
  const ranks = new Map(
    dictionaries.map((dictionary) => [
      dictionary,
      dictionary === largest ? largestRanks : Int32Array.from(dictionary, positionOf),
    ]),
  );
  return { sorted, perChunk: chunks.map((chunk) => ranks.get(names(chunk))!) };
}

/**
 * The figures of values[start, end), sorted ascending, whose sum and sum of
 * logarithms (in that order) the caller took: one object, spelled out, with
 * no view of the run (a table makes tens of thousands, and a spread or a
 * view costs several times more).
 */
function runFigures(
  values: Int32Array,
  start: number,
  end: number,
  sum: number,
  logSum: number,
  server: string,
  pings: number,
): ResponderFigures {
  const samples = end - start;
  return {
    server,
    // Delays are integers, so their sum is exact in any order: the mean is sumSimple's.
    medianMs: quantileOfSortedRun(values, start, end, 0.5),
    meanMs: sum / samples,
    gmeanMs: Math.exp(logSum / samples),
    p90Ms: quantileOfSortedRun(values, start, end, 0.9),
    minMs: values[start]!,
    maxMs: values[end - 1]!,
    samples,
    pings,
  };
}

const RADIX_BITS = 11;
const RADIX_MASK = (1 << RADIX_BITS) - 1;
/**
 * Runs this long or longer are sorted by digits; shorter ones by the engine's
 * own sort of typed arrays, which needs no spare and no 2,048-entry count per
 * digit: below this, those passes cost more than the sort (measured on a week
 * of 10,000 servers, most of whom have a few dozen samples).
 */
const RADIX_RUN = 4096;

/**
 * Sorts keys[start, end) ascending. A long run is sorted through `spare` (at
 * least as long), least significant 11 bits first, for as many digits as
 * `largest` has: linear, where the engine's sort of a server with a hundred
 * thousand samples cost several times more. Keys are below 2^53 (Float64Array
 * keys may pass 2^31), so a digit is taken by multiplying by a power of two,
 * which is exact, and `&`, which keeps the low bits of the truncated quotient.
 */
function sortRun<Keys extends Int32Array | Float64Array>(
  keys: Keys,
  start: number,
  end: number,
  largest: number,
  spare: Keys,
): void {
  const run = keys.subarray(start, end) as Keys;
  if (run.length < RADIX_RUN) {
    run.sort();
    return;
  }
  let from = run;
  let to = spare.subarray(0, run.length) as Keys;
  const starts = new Int32Array(RADIX_MASK + 2);
  for (let scale = 1; largest * scale >= 1; scale /= RADIX_MASK + 1) {
    starts.fill(0);
    for (let i = 0; i < from.length; i++) starts[((from[i]! * scale) & RADIX_MASK) + 1]!++;
    // A digit that is the same in every key moves nothing.
    if (starts.includes(from.length)) continue;
    for (let d = 0; d <= RADIX_MASK; d++) starts[d + 1]! += starts[d]!;
    for (let i = 0; i < from.length; i++) {
      const key = from[i]!;
      to[starts[(key * scale) & RADIX_MASK]!++] = key;
    }
    [from, to] = [to, from];
  }
  if (from !== run) run.set(from);
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
 * What a table of `chunks` does first and keeps for the tables after it:
 * the order of their names and the numbers of their pings. Done where the
 * chunks are made (a digest build), so the first table after an import
 * does not also pay for it (an order of 10,000 names and a table of 250,000
 * pings touched for the first time: 25–40 ms of a week of a million).
 */
export function prepareFigures(chunks: readonly SampleColumns[], pings: PingNumbers): void {
  // Only the kept part of namesInOrder: the names of other dictionaries are merged in at each table.
  orderOf(largestOf(chunks.map((chunk) => chunk.servers)));
  orderOf(largestOf(chunks.map((chunk) => chunk.responders)));
  pings.numbersOf(chunks, { preparing: true });
}

/**
 * Figures per ping server and per (ping server, responder server) over the
 * samples of `chunks` that pass the delay filter. Servers come out in name
 * order, responders in name order within them. A process that computes a
 * room's table again and again passes what it `kept`: the room's ping numbers
 * and its scratch arrays.
 */
export function figuresFromColumns(
  chunks: readonly SampleColumns[],
  filter: DelayFilter,
  kept: { readonly pings: PingNumbers; readonly scratch: FiguresScratch } = {
    pings: new PingNumbers(),
    scratch: new FiguresScratch(),
  },
): ServerFigures[] {
  // The geometric mean needs positive delays; the configuration never allows less.
  if (filter.minDelayMs < 1)
    throw new RangeError(`the delay filter must start at 1 ms or more, not ${filter.minDelayMs}`);
  const servers = namesInOrder(chunks, (chunk) => chunk.servers);
  const responders = namesInOrder(chunks, (chunk) => chunk.responders);
  const { pings, scratch } = kept;
  const pingsOf = pings.numbersOf(chunks);
  // Numbers handed out, this table's pings among them: what arrays indexed by ping need.
  const pingNumbers = pings.count;
  const serverCount = servers.sorted.length;
  const responderCount = Math.max(1, responders.sorted.length);

  // Each sample becomes one sortable number, (delay - min) * responders +
  // responder: sorting a server's numbers orders its delays, and within
  // equal delays its responders, so one sort serves the pooled figures and,
  // through a stable split, every responder's.
  const span = (filter.maxDelayMs - filter.minDelayMs + 1) * responderCount;
  const keys = (name: string, length: number) =>
    span <= 2 ** 31 ? scratch.int32(name, length) : scratch.float64(name, length);
  const { minDelayMs, maxDelayMs } = filter;
  // Each server's numbers go into a run of their own in one array, counted first, and each run is
  // sorted alone: a server's figures need only its own numbers in order, so that array (and a spare
  // as long as the longest run) is all a table touches, and keeps, for its samples.
  const starts = new Int32Array(serverCount + 1);
  chunks.forEach((chunk, c) => {
    const serverOf = servers.perChunk[c]!;
    const { delay: delays, server: serverIndexes } = chunk;
    for (let i = 0; i < delays.length; i++) {
      const delay = delays[i]!;
      // The filter exactly as the pass that writes the numbers spells it: a run counted short would overflow into the next.
      if (delay < minDelayMs || delay > maxDelayMs) continue;
      starts[serverOf[serverIndexes[i]!]! + 1]!++;
    }
  });
  let longestRun = 0;
  for (let s = 0; s < serverCount; s++) {
    longestRun = Math.max(longestRun, starts[s + 1]!);
    starts[s + 1]! += starts[s]!;
  }
  const grouped = keys('keys', starts[serverCount]!);
  const fill = starts.slice(0, serverCount);
  const pingCounts = new Int32Array(serverCount);
  const pingOwner = scratch.int32('ping owners', pingNumbers).fill(-1);
  // A ping belongs to one server; a forged pong could name another, counted apart.
  const strayPings = new Set<number>();
  const pairSeen = new Uint8Array(pingNumbers * responderCount);
  const pairPings = new Int32Array(serverCount * responderCount);
  let largestKey = 0;
  chunks.forEach((chunk, c) => {
    const serverOf = servers.perChunk[c]!;
    const responderOf = responders.perChunk[c]!;
    const pingOf = pingsOf[c]!;
    // Chunks come in two shapes (digests, raw rows), with index columns one to four bytes wide: each column is
    // taken into a local once, not through the chunk at every sample.
    const { delay: delays, server: serverIndexes, responder: responderIndexes, ping: pingIndexes } = chunk;
    for (let i = 0; i < delays.length; i++) {
      const delay = delays[i]!;
      if (delay < minDelayMs || delay > maxDelayMs) continue;
      const server = serverOf[serverIndexes[i]!]!;
      const responder = responderOf[responderIndexes[i]!]!;
      const ping = pingOf[pingIndexes[i]!]!;
      const key = (delay - minDelayMs) * responderCount + responder;
      grouped[fill[server]!++] = key;
      if (key > largestKey) largestKey = key;
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
  const spare = keys('spare keys', longestRun);
  for (let s = 0; s < serverCount; s++) sortRun(grouped, starts[s]!, starts[s + 1]!, largestKey, spare);

  const logs = logarithmsFrom(minDelayMs);
  // A server's delays, and the same split by responder, each written before it is read.
  const delays = scratch.int32('delays', longestRun);
  const split = scratch.int32('split', longestRun);
  const responderStarts = new Int32Array(responderCount + 1);
  const responderFill = new Int32Array(responderCount);
  // Each delay's logarithm is taken once, summed in sorted order for the
  // server and for its responder alike (what summing each sorted list gives).
  const responderLogSums = new Float64Array(responderCount);
  const responderSums = new Float64Array(responderCount);
  const result: ServerFigures[] = [];
  for (let s = 0; s < serverCount; s++) {
    const start = starts[s]!;
    const end = starts[s + 1]!;
    if (start === end) continue;
    responderStarts.fill(0);
    responderLogSums.fill(0);
    responderSums.fill(0);
    let logSum = 0;
    let sum = 0;
    for (let i = start; i < end; i++) {
      const key = grouped[i]!;
      const responder = key % responderCount;
      const offset = (key - responder) / responderCount;
      const delay = offset + minDelayMs;
      const log = offset < logs.length ? logs[offset]! : Math.log(delay);
      delays[i - start] = delay;
      logSum += log;
      sum += delay;
      responderLogSums[responder]! += log;
      responderSums[responder]! += delay;
      responderStarts[responder + 1]!++;
    }
    for (let r = 0; r < responderCount; r++) {
      responderStarts[r + 1]! += responderStarts[r]!;
      responderFill[r] = responderStarts[r]!;
    }
    for (let i = start; i < end; i++) split[responderFill[grouped[i]! % responderCount]!++] = delays[i - start]!;
    const own: ResponderFigures[] = [];
    for (let r = 0; r < responderCount; r++) {
      const from = responderStarts[r]!;
      const to = responderStarts[r + 1]!;
      if (from === to) continue;
      own.push(
        runFigures(
          split,
          from,
          to,
          responderSums[r]!,
          responderLogSums[r]!,
          responders.sorted[r]!,
          pairPings[s * responderCount + r]!,
        ),
      );
    }
    result.push({
      ...runFigures(delays, 0, end - start, sum, logSum, servers.sorted[s]!, pingCounts[s]!),
      responders: own,
    });
  }
  return result;
}
