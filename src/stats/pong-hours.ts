// The samples of the aggregator-compatible routes as compact columns, one
// hour of pong time each, and the answers computed from them: pure code,
// tested directly against the database's own answers (pingstat-data.ts).
//
// Pingstat's answers list every pong of the window, and a week of a busy
// room is a million rows: read from the database on each request, sorting
// and writing them cost more than pingstat itself. Kept here per hour, in the
// window's order (pong time, then ping, then responder: the database sorts
// each hour once, when it is read), a request only walks them.
import { getOrInsert } from '../collections.ts';
import type { PingstatGroups, PingstatPair } from './pingstat-data.ts';
import type { PingstatWindow } from './pingstat-window.ts';
import type { DelayFilter } from './repository.ts';
import { HOUR_MS } from './windows.ts';

/**
 * Ping event IDs and server names, numbered, with their JSON text as
 * PostgreSQL's to_json writes it (what the answers print). Only ever grows:
 * hours read at different times share it; a store starts a new one when
 * too much of it is no longer used.
 */
export class PongDictionary {
  readonly #pingIndex = new Map<string, number>();
  readonly #nameIndex = new Map<string, number>();
  /** Each ping's event ID as JSON text, quotes included. */
  readonly pingJson: string[] = [];
  readonly nameJson: string[] = [];
  readonly names: string[] = [];
  /** The same JSON texts in UTF-8, one after another, for answers written as bytes. */
  bytes = Buffer.alloc(64 * 1024);
  #byteLength = 0;
  /** Where each ping's and each name's JSON text starts in `bytes`, and where it ends: [start, end, start, end, …]. */
  readonly pingBytes: number[] = [];
  readonly nameBytes: number[] = [];

  #encode(json: string, spans: number[]): void {
    const length = Buffer.byteLength(json);
    if (this.#byteLength + length > this.bytes.length) {
      const larger = Buffer.alloc(2 * Math.max(this.bytes.length, length));
      this.bytes.copy(larger, 0, 0, this.#byteLength);
      this.bytes = larger;
    }
    spans.push(this.#byteLength, this.#byteLength + length);
    this.#byteLength += this.bytes.write(json, this.#byteLength);
  }

  get pings(): number {
    return this.pingJson.length;
  }

  /** The number of a ping by its JSON text (which may be a slice of a larger string: a copy is kept). */
  ping(json: string): number {
    let index = this.#pingIndex.get(json);
    if (index === undefined) {
      index = this.pingJson.length;
      // A slice would keep the whole text it was read from alive.
      const copy = JSON.stringify(JSON.parse(json) as string);
      this.#pingIndex.set(copy, index);
      this.pingJson.push(copy);
      this.#encode(copy, this.pingBytes);
    }
    return index;
  }

  name(json: string): number {
    let index = this.#nameIndex.get(json);
    if (index === undefined) {
      index = this.names.length;
      const name = JSON.parse(json) as string;
      const copy = JSON.stringify(name);
      this.#nameIndex.set(copy, index);
      this.nameJson.push(copy);
      this.names.push(name);
      this.#encode(copy, this.nameBytes);
    }
    return index;
  }
}

/** One hour of a lineage's samples, every one, in the window's order. */
export interface PongHour {
  /** The hour's start, ms since the epoch. */
  readonly hour: number;
  /** The pong's time (coalesce(pong_ts, measured_at)) in µs since the epoch: exact in a double. */
  readonly pongMicros: Float64Array;
  readonly delay: Int32Array;
  /** Index of the sample's room in the lineage's room IDs. */
  readonly room: Int32Array;
  /** Into the dictionary's pings and names. */
  readonly ping: Int32Array;
  readonly pingServer: Int32Array;
  readonly responderServer: Int32Array;
}

const isSurrogate = (unit: number) => unit >= 0xd800 && unit <= 0xdfff;

/**
 * Orders as PostgreSQL's "C" collation does: by UTF-8 bytes, which is code
 * points. UTF-16 units (what `<` compares) agree except that a surrogate,
 * half of a code point past U+FFFF, comes after every unit that is not one.
 */
export function compareCodePoints(a: string, b: string): number {
  const n = Math.min(a.length, b.length);
  for (let i = 0; i < n; i++) {
    const x = a.charCodeAt(i);
    const y = b.charCodeAt(i);
    if (x !== y) return isSurrogate(x) === isSurrogate(y) ? x - y : isSurrogate(x) ? 1 : -1;
  }
  return a.length - b.length;
}

/**
 * An hour's rows from the database's text: one line per sample, in no
 * order, `µs,delay,room,"ping","ping server","responder server","responder"`,
 * the strings as to_json writes them (so no line holds a raw line break).
 * Sorted here into the window's order (pong time, then ping, then
 * responder), which a sort in the database cost several times more: the
 * time alone decides all but a few rows.
 */
export function parsePongHour(hour: number, count: number, text: string, dictionary: PongDictionary): PongHour {
  const read = {
    pongMicros: new Float64Array(count),
    delay: new Int32Array(count),
    room: new Int32Array(count),
    ping: new Int32Array(count),
    pingServer: new Int32Array(count),
    responderServer: new Int32Array(count),
  };
  const responders: string[] = new Array(count);
  let at = 0;
  const integer = () => {
    let sign = 1;
    if (text.charCodeAt(at) === 45) {
      sign = -1;
      at++;
    }
    let value = 0;
    for (let code = text.charCodeAt(at); code >= 48 && code <= 57; code = text.charCodeAt(++at))
      value = value * 10 + (code - 48);
    at++; // the comma
    return sign * value;
  };
  const jsonString = () => {
    const start = at;
    at++; // the opening quote
    for (let code = text.charCodeAt(at); code !== 34; code = text.charCodeAt(++at)) if (code === 92) at++;
    at += 2; // the closing quote and the separator
    return text.slice(start, at - 1);
  };
  for (let i = 0; i < count; i++) {
    read.pongMicros[i] = integer();
    read.delay[i] = integer();
    read.room[i] = integer();
    read.ping[i] = dictionary.ping(jsonString());
    read.pingServer[i] = dictionary.name(jsonString());
    read.responderServer[i] = dictionary.name(jsonString());
    responders[i] = jsonString();
  }
  if (at < text.length) throw new Error(`hour ${new Date(hour).toISOString()}: more than the ${count} rows announced`);
  const { pongMicros, ping } = read;
  // Pings answered in one sync share a time (the bot's measured_at): the IDs are decoded once each.
  const decoded = new Map<string, string>();
  const raw = (json: string) => getOrInsert(decoded, json, () => JSON.parse(json) as string);
  const order = Array.from({ length: count }, (_, i) => i).sort(
    (a, b) =>
      pongMicros[a]! - pongMicros[b]! ||
      (ping[a] === ping[b]
        ? 0
        : compareCodePoints(raw(dictionary.pingJson[ping[a]!]!), raw(dictionary.pingJson[ping[b]!]!))) ||
      compareCodePoints(raw(responders[a]!), raw(responders[b]!)),
  );
  const sorted = <T extends Float64Array | Int32Array>(column: T): T => column.map((_, i) => column[order[i]!]!) as T;
  return {
    hour,
    pongMicros: sorted(read.pongMicros),
    delay: sorted(read.delay),
    room: sorted(read.room),
    ping: sorted(read.ping),
    pingServer: sorted(read.pingServer),
    responderServer: sorted(read.responderServer),
  };
}

/**
 * Which (second, third) numbers a walk has met with each ping: a short list
 * per ping (a ping has a pong from a few servers), its entries in typed
 * arrays. Pings read in the same hour have nearby numbers, so a walk in
 * time order touches nearby memory; a hash table over a million keys cost a
 * cache miss per row.
 */
class PerPingPairs {
  readonly #head: Int32Array;
  readonly #next: Int32Array;
  readonly #second: Int32Array;
  readonly #third: Int32Array;
  #size = 0;

  /** `rows`: the rows walked, at most one entry each. */
  constructor(pings: number, rows: number) {
    this.#head = new Int32Array(pings).fill(-1);
    this.#next = new Int32Array(rows);
    this.#second = new Int32Array(rows);
    this.#third = new Int32Array(rows);
  }

  /** True if the ping had not been met with this pair (and now has). */
  add(ping: number, second: number, third: number): boolean {
    for (let e = this.#head[ping]!; e !== -1; e = this.#next[e]!)
      if (this.#second[e] === second && this.#third[e] === third) return false;
    const e = this.#size++;
    this.#second[e] = second;
    this.#third[e] = third;
    this.#next[e] = this.#head[ping]!;
    this.#head[ping] = e;
    return true;
  }
}

/** The rows of each hour inside the window (inclusive at both ends), as ranges, in order. */
function rowsInWindow(
  hours: readonly PongHour[],
  window: PingstatWindow,
): { ranges: [PongHour, number, number][]; rows: number } {
  const start = window.start.getTime() * 1000;
  const end = window.end.getTime() * 1000;
  const ranges: [PongHour, number, number][] = [];
  let rows = 0;
  for (const hour of hours) {
    if ((hour.hour + HOUR_MS) * 1000 <= start || hour.hour * 1000 > end) continue;
    const micros = hour.pongMicros;
    let first = 0;
    while (first < micros.length && micros[first]! < start) first++;
    let last = micros.length;
    while (last > first && micros[last - 1]! > end) last--;
    if (first < last) ranges.push([hour, first, last]);
    rows += last - first;
  }
  return { ranges, rows };
}

interface PairBuilder {
  readonly pingServer: number;
  readonly responderServer: number;
  readonly pings: number[];
  readonly delays: number[];
}

/**
 * JSON text written as UTF-8 bytes, copied from the dictionary's encoded
 * texts: a week of a busy room is a million IDs and delays in an answer,
 * and as strings each would be made, kept until joined, then encoded again
 * (three quarters of a second for a million, most of it collecting them).
 */
class JsonBytes {
  #buffer: Buffer;
  #at = 0;
  #mark = 0;
  readonly #digits = new Uint8Array(24);

  readonly #capacity: number;

  constructor(bytes: number) {
    this.#capacity = Math.max(bytes, 1024);
    this.#buffer = Buffer.allocUnsafe(this.#capacity);
  }

  get written(): number {
    return this.#at - this.#mark;
  }

  /** Room for `bytes` more: a new buffer past the end (what was taken keeps the old one). */
  reserve(bytes: number): void {
    if (this.#at + bytes <= this.#buffer.length) return;
    const larger = Buffer.allocUnsafe(Math.max(this.#capacity, 2 * (bytes + this.written)));
    this.#buffer.copy(larger, 0, this.#mark, this.#at);
    this.#buffer = larger;
    this.#at -= this.#mark;
    this.#mark = 0;
  }

  byte(value: number): void {
    this.#buffer[this.#at++] = value;
  }

  /** A few dozen bytes each: a loop, below what a native copy's call costs. */
  copy(from: Uint8Array, start: number, end: number): void {
    const buffer = this.#buffer;
    let at = this.#at;
    for (let i = start; i < end; i++) buffer[at++] = from[i]!;
    this.#at = at;
  }

  /** A safe integer in decimal, as PostgreSQL writes an integer. */
  integer(value: number): void {
    let rest = value;
    if (rest < 0) {
      this.byte(45);
      rest = -rest;
    }
    const digits = this.#digits;
    let n = 0;
    do {
      const next = Math.floor(rest / 10);
      digits[n++] = 48 + rest - 10 * next;
      rest = next;
    } while (rest > 0);
    while (n > 0) this.byte(digits[--n]!);
  }

  /** What was written since the last take. */
  take(): Buffer {
    const taken = this.#buffer.subarray(this.#mark, this.#at);
    this.#mark = this.#at;
    return taken;
  }
}

/** The longest text of a delay or a millisecond time, with a separator. */
const NUMBER_BYTES = 24;

/** `"$ping":delay` members, or `"$ping"` items, comma-separated. */
function pingListJson(
  out: JsonBytes,
  dictionary: PongDictionary,
  pings: readonly number[],
  delays?: readonly number[],
) {
  const { bytes, pingBytes } = dictionary;
  for (let j = 0; j < pings.length; j++) {
    const p = pings[j]!;
    out.reserve(pingBytes[2 * p + 1]! - pingBytes[2 * p]! + NUMBER_BYTES);
    if (j > 0) out.byte(44);
    out.copy(bytes, pingBytes[2 * p]!, pingBytes[2 * p + 1]!);
    if (delays) {
      out.byte(58);
      out.integer(delays[j]!);
    }
  }
  return out.take();
}

/**
 * What pingstatGroups reads from the database, from the hours instead: of
 * several pongs of one server to one ping, the first in the window's order
 * among those the delay filter keeps; excluded ping servers left out.
 * `hours` in ascending order.
 */
export function pingstatGroupsFromHours(
  hours: readonly PongHour[],
  dictionary: PongDictionary,
  window: PingstatWindow,
  filter: DelayFilter,
  excluded: readonly string[],
): PingstatGroups {
  const names = dictionary.names;
  const isExcluded = new Uint8Array(names.length);
  const excludedSet = new Set(excluded);
  for (const [i, name] of names.entries()) if (excludedSet.has(name)) isExcluded[i] = 1;
  const { ranges, rows } = rowsInWindow(hours, window);
  const kept = new PerPingPairs(dictionary.pings, rows);
  const pingsSeen = new PerPingPairs(dictionary.pings, rows);
  // By ping server, then responder server: arrays, as a lookup per row is the walk's main cost.
  const pairsOf: (PairBuilder | undefined)[][] = [];
  const pairs: PairBuilder[] = [];
  const pingsOf: (number[] | undefined)[] = [];
  const { minDelayMs, maxDelayMs } = filter;
  for (const [hour, first, last] of ranges) {
    const { delay, ping, pingServer, responderServer } = hour;
    for (let i = first; i < last; i++) {
      const ms = delay[i]!;
      const server = pingServer[i]!;
      if (ms < minDelayMs || ms > maxDelayMs || isExcluded[server] === 1) continue;
      const responder = responderServer[i]!;
      const p = ping[i]!;
      if (!kept.add(p, server, responder)) continue;
      const ofServer = pairsOf[server] ?? [];
      pairsOf[server] = ofServer;
      let pair = ofServer[responder];
      if (pair === undefined) {
        pair = { pingServer: server, responderServer: responder, pings: [], delays: [] };
        ofServer[responder] = pair;
        pairs.push(pair);
      }
      pair.pings.push(p);
      pair.delays.push(ms);
      // Rows come by pong time: a ping's first kept pong is its first sight, as the database orders them.
      if (pingsSeen.add(p, server, 0)) {
        const list = pingsOf[server] ?? [];
        pingsOf[server] = list;
        list.push(p);
      }
    }
  }
  const out = new JsonBytes(24 * rows);
  const pings = new Map<string, { count: number; json: Buffer }>();
  for (const [server, list] of pingsOf.entries())
    if (list !== undefined)
      pings.set(names[server]!, { count: list.length, json: pingListJson(out, dictionary, list) });
  const pairList: PingstatPair[] = pairs.map((pair) => ({
    pingServer: names[pair.pingServer]!,
    pongServer: names[pair.responderServer]!,
    pongs: pair.delays.length,
    delays: Float64Array.from(pair.delays),
    diffsJson: pingListJson(out, dictionary, pair.pings, pair.delays),
  }));
  return { pairs: pairList, pings };
}

/** Bytes per page of raw rows: enough to amortise a page, few enough for others to get a turn between pages. */
const RAW_PAGE_BYTES = 1 << 20;

const ascii = (text: string) => new Uint8Array(Buffer.from(text, 'latin1'));
const PONG_SERVER = ascii(',"pong_server":');
const PING_SERVER = ascii(',"ping_server":');
const RECEIVE_DIFF = ascii(',"receive_diff":');
const PONG_TIMESTAMP = ascii(',"pong_timestamp":');
const ROW_PUNCTUATION = PONG_SERVER.length + PING_SERVER.length + RECEIVE_DIFF.length + PONG_TIMESTAMP.length + 2;

/**
 * What eachRawRowsPage reads from the database, from the hours instead:
 * each row a JSON object, one per (room, ping, pong server), the first in
 * the window's order, in that order, every row naming `currentRoomId`. As
 * UTF-8 pages of rows separated by commas (a page after the first starts
 * with one).
 */
export function* rawRowsFromHours(
  hours: readonly PongHour[],
  dictionary: PongDictionary,
  window: PingstatWindow,
  currentRoomId: string,
): Generator<Buffer> {
  const head = new Uint8Array(Buffer.from(`{"room_id":${JSON.stringify(currentRoomId)},"ping_id":`));
  const { bytes, pingBytes, nameBytes } = dictionary;
  const { ranges, rows } = rowsInWindow(hours, window);
  const seen = new PerPingPairs(dictionary.pings, rows);
  const out = new JsonBytes(RAW_PAGE_BYTES);
  let written = 0;
  for (const [hour, first, last] of ranges) {
    const { pongMicros, delay, room, ping, pingServer, responderServer } = hour;
    for (let i = first; i < last; i++) {
      const p = ping[i]!;
      const responder = responderServer[i]!;
      if (!seen.add(p, responder, room[i]!)) continue;
      const server = pingServer[i]!;
      out.reserve(
        head.length +
          (pingBytes[2 * p + 1]! - pingBytes[2 * p]!) +
          (nameBytes[2 * responder + 1]! - nameBytes[2 * responder]!) +
          (nameBytes[2 * server + 1]! - nameBytes[2 * server]!) +
          ROW_PUNCTUATION +
          2 * NUMBER_BYTES,
      );
      if (written++ > 0) out.byte(44);
      out.copy(head, 0, head.length);
      out.copy(bytes, pingBytes[2 * p]!, pingBytes[2 * p + 1]!);
      out.copy(PONG_SERVER, 0, PONG_SERVER.length);
      out.copy(bytes, nameBytes[2 * responder]!, nameBytes[2 * responder + 1]!);
      out.copy(PING_SERVER, 0, PING_SERVER.length);
      out.copy(bytes, nameBytes[2 * server]!, nameBytes[2 * server + 1]!);
      out.copy(RECEIVE_DIFF, 0, RECEIVE_DIFF.length);
      out.integer(delay[i]!);
      out.copy(PONG_TIMESTAMP, 0, PONG_TIMESTAMP.length);
      out.integer(Math.floor(pongMicros[i]! / 1000));
      out.byte(125);
      if (out.written >= RAW_PAGE_BYTES) yield out.take();
    }
  }
  if (out.written > 0) yield out.take();
}
