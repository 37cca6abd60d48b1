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
import { SpilledBytes, type FileRange, type SpillDirectory } from '../spill.ts';
import { indexColumnFor, type IndexColumn } from './columns.ts';
import { ownedBytes, type PingstatPair, type PingstatPings } from './pingstat-data.ts';
import type { PingstatWindow } from './pingstat-window.ts';
import type { DelayFilter } from './repository.ts';
import { HOUR_MS } from './windows.ts';

const HOUR_MICROS = HOUR_MS * 1000;

let lastDictionaryId = 0;

/**
 * Ping event IDs and server names, numbered, with their JSON text as
 * JSON.stringify writes it (what the answers print; PostgreSQL's to_json
 * writes the same but for escaped characters). Only ever grows: hours read
 * at different times share it; a store starts a new one when too much of it
 * is no longer used.
 */
export class PongDictionary {
  /** Unique in the process: what is computed in one dictionary's numbers says which. */
  readonly id = ++lastDictionaryId;
  // A ping's JSON text is kept once, as UTF-8 in `bytes`, and found again through a table of its hash:
  // a string of it, a Map entry keyed by that string and its span in an array of numbers took 150-190
  // bytes a ping beside those bytes (15 MB of a week of 111,000 pings with Matrix's 44-character IDs).
  #pingCount = 0;
  /** Open addressing: a ping's number + 1 in the first free slot from its text's hash; 0 is free. */
  #pingSlots = new Int32Array(1024);
  readonly #nameIndex = new Map<string, number>();
  readonly nameJson: string[] = [];
  readonly names: string[] = [];
  /** The JSON texts in UTF-8, one after another, for answers written as bytes. */
  bytes = Buffer.alloc(64 * 1024);
  #byteLength = 0;
  /** Where each ping's JSON text starts in `bytes`, and where it ends: [start, end, start, end, …]. */
  pingBytes = new Int32Array(2048);
  /** The same for each name. */
  readonly nameBytes: number[] = [];

  /** Appends text to `bytes`; returns where it ends (it starts at the length before). */
  #append(json: string): number {
    const length = Buffer.byteLength(json);
    if (this.#byteLength + length > this.bytes.length) {
      const larger = Buffer.alloc(2 * Math.max(this.bytes.length, length));
      this.bytes.copy(larger, 0, 0, this.#byteLength);
      this.bytes = larger;
    }
    this.#byteLength += this.bytes.write(json, this.#byteLength);
    return this.#byteLength;
  }

  get pings(): number {
    return this.#pingCount;
  }

  /** A ping's event ID as JSON text, quotes included. */
  pingText(ping: number): string {
    return this.bytes.toString('utf8', this.pingBytes[2 * ping], this.pingBytes[2 * ping + 1]);
  }

  /**
   * The number of a ping by its JSON text. Kept as JSON.stringify writes it, as the answers print it: the
   * database's to_json writes the same text unless it escapes a character (a backslash), which is written
   * as JSON.stringify would before it is looked up.
   */
  ping(text: string): number {
    const json = text.includes('\\') ? JSON.stringify(JSON.parse(text) as string) : text;
    const slots = this.#pingSlots;
    const mask = slots.length - 1;
    let slot = textHash(json) & mask;
    for (let entry = slots[slot]!; entry !== 0; entry = slots[slot]!) {
      if (this.#pingTextIs(entry - 1, json)) return entry - 1;
      slot = (slot + 1) & mask;
    }
    const index = this.#pingCount++;
    if (2 * this.#pingCount > this.pingBytes.length) {
      const larger = new Int32Array(2 * this.pingBytes.length);
      larger.set(this.pingBytes);
      this.pingBytes = larger;
    }
    this.pingBytes[2 * index] = this.#byteLength;
    this.pingBytes[2 * index + 1] = this.#append(json);
    slots[slot] = index + 1;
    // At most half full, so a look-up meets few others.
    if (2 * this.#pingCount > slots.length) this.#rehashPings(2 * slots.length);
    return index;
  }

  #pingTextIs(ping: number, json: string): boolean {
    const start = this.pingBytes[2 * ping]!;
    const end = this.pingBytes[2 * ping + 1]!;
    const { bytes } = this;
    for (let i = 0; i < json.length; i++) {
      const code = json.charCodeAt(i);
      // Beyond ASCII, characters and bytes no longer pair one to one.
      if (code >= 128) return bytes.toString('utf8', start, end) === json;
      if (start + i >= end || bytes[start + i] !== code) return false;
    }
    return start + json.length === end;
  }

  #rehashPings(size: number): void {
    const slots = new Int32Array(size);
    const mask = size - 1;
    for (let ping = 0; ping < this.#pingCount; ping++) {
      let slot = bytesHash(this.bytes, this.pingBytes[2 * ping]!, this.pingBytes[2 * ping + 1]!) & mask;
      while (slots[slot] !== 0) slot = (slot + 1) & mask;
      slots[slot] = ping + 1;
    }
    this.#pingSlots = slots;
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
      this.nameBytes.push(this.#byteLength, this.#append(copy));
    }
    return index;
  }
}

// FNV-1a over a text's UTF-8 bytes: the same for a string (while it is ASCII) and for its bytes.
const FNV_OFFSET = 0x811c9dc5;
const FNV_PRIME = 0x01000193;

function textHash(text: string): number {
  let hash = FNV_OFFSET;
  for (let i = 0; i < text.length; i++) {
    const code = text.charCodeAt(i);
    if (code >= 128) {
      const bytes = Buffer.from(text, 'utf8');
      return bytesHash(bytes, 0, bytes.length);
    }
    hash = Math.imul(hash ^ code, FNV_PRIME);
  }
  return hash >>> 0;
}

function bytesHash(bytes: Buffer, start: number, end: number): number {
  let hash = FNV_OFFSET;
  for (let i = start; i < end; i++) hash = Math.imul(hash ^ bytes[i]!, FNV_PRIME);
  return hash >>> 0;
}

/** One hour of a lineage's samples, every one, in the window's order. */
export interface PongHour {
  /** The hour's start, ms since the epoch. */
  readonly hour: number;
  /**
   * The pong's time (coalesce(pong_ts, measured_at)) in µs since the hour's
   * start: an hour is 3.6e9 µs, which 32 bits hold (a time since the epoch
   * took twice the bytes, 8 MB a week of a million rows).
   */
  readonly pongMicros: Uint32Array;
  readonly delay: Int32Array;
  /**
   * Index of the sample's room in the lineage's room IDs. This, the server
   * names' and the rows' numbers are each as wide as the hour's largest
   * needs (a week of a million rows, 7 MB less than in 32 bits).
   */
  readonly room: IndexColumn;
  /** Into the dictionary's pings and names. */
  readonly ping: Int32Array;
  readonly pingServer: IndexColumn;
  readonly responderServer: IndexColumn;
  /** The hour's ping servers, each once: its slots. */
  readonly servers: Int32Array;
  /** The rows by slot, each slot's in the hour's order: slot k's are serverRows[serverStart[k]] to serverRows[serverStart[k + 1] - 1]. */
  readonly serverStart: Int32Array;
  readonly serverRows: IndexColumn;
  /**
   * Per slot, an ID of its rows as read: an hour read again keeps a slot's
   * ID while its rows are the same (carrySlices), so answers computed per
   * ping server know which servers a new pong left unchanged.
   */
  readonly sliceIds: Float64Array;
}

/** The numbers (none negative) in the narrowest column that holds them. */
export function narrowed(numbers: Int32Array): IndexColumn {
  let largest = 0;
  for (const n of numbers) if (n > largest) largest = n;
  const Column = indexColumnFor(largest + 1);
  if (Column === Int32Array) return numbers;
  const column = new Column(numbers.length);
  column.set(numbers);
  return column;
}

/** Slice IDs, unique in the process: a dictionary made again keeps the hours' IDs. */
let lastSliceId = 0;

/** The per-server index of an hour's rows (those of PongHour after `pingServer`). */
export function indexByServer(
  pingServer: IndexColumn,
): Pick<PongHour, 'servers' | 'serverStart' | 'serverRows' | 'sliceIds'> {
  let largest = -1;
  for (const server of pingServer) if (server > largest) largest = server;
  const slotOf = new Int32Array(largest + 1).fill(-1);
  const counts: number[] = [];
  const servers: number[] = [];
  for (const server of pingServer) {
    if (slotOf[server] === -1) {
      slotOf[server] = servers.length;
      servers.push(server);
      counts.push(0);
    }
    counts[slotOf[server]!]!++;
  }
  const serverStart = new Int32Array(servers.length + 1);
  for (let k = 0; k < servers.length; k++) serverStart[k + 1] = serverStart[k]! + counts[k]!;
  const next = serverStart.slice(0, -1);
  const serverRows = new Int32Array(pingServer.length);
  for (let i = 0; i < pingServer.length; i++) serverRows[next[slotOf[pingServer[i]!]!]!++] = i;
  return {
    servers: Int32Array.from(servers),
    serverStart,
    serverRows: narrowed(serverRows),
    sliceIds: Float64Array.from(servers, () => ++lastSliceId),
  };
}

/**
 * Gives each slot of `fresh` the ID it had in `previous` (the same hour read
 * before, numbered in the same dictionary) where its rows are the same ones.
 */
export function carrySlices(fresh: PongHour, previous: PongHour): void {
  const slotBefore = new Map<number, number>();
  for (const [slot, server] of previous.servers.entries()) slotBefore.set(server, slot);
  for (const [slot, server] of fresh.servers.entries()) {
    const before = slotBefore.get(server);
    if (before === undefined) continue;
    const from = fresh.serverStart[slot]!;
    const count = fresh.serverStart[slot + 1]! - from;
    const fromBefore = previous.serverStart[before]!;
    if (previous.serverStart[before + 1]! - fromBefore !== count) continue;
    let same = true;
    for (let j = 0; same && j < count; j++) {
      const i = fresh.serverRows[from + j]!;
      const b = previous.serverRows[fromBefore + j]!;
      same =
        fresh.pongMicros[i] === previous.pongMicros[b] &&
        fresh.delay[i] === previous.delay[b] &&
        fresh.room[i] === previous.room[b] &&
        fresh.ping[i] === previous.ping[b] &&
        fresh.responderServer[i] === previous.responderServer[b];
    }
    if (same) fresh.sliceIds[slot] = previous.sliceIds[before]!;
  }
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
    pongMicros: new Uint32Array(count),
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
  const hourMicros = hour * 1000;
  for (let i = 0; i < count; i++) {
    const micros = integer() - hourMicros;
    // The database put the row in this hour by its time: one outside it is not a row of this hour.
    if (!(micros >= 0 && micros < HOUR_MICROS))
      throw new Error(`hour ${new Date(hour).toISOString()}: a row of another hour (${micros} µs from its start)`);
    read.pongMicros[i] = micros;
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
  const decodedPings = new Map<number, string>();
  const pingId = (p: number) => getOrInsert(decodedPings, p, () => JSON.parse(dictionary.pingText(p)) as string);
  const order = Array.from({ length: count }, (_, i) => i).sort(
    (a, b) =>
      pongMicros[a]! - pongMicros[b]! ||
      (ping[a] === ping[b] ? 0 : compareCodePoints(pingId(ping[a]!), pingId(ping[b]!))) ||
      compareCodePoints(raw(responders[a]!), raw(responders[b]!)),
  );
  const sorted = <T extends Uint32Array | Int32Array>(column: T): T => column.map((_, i) => column[order[i]!]!) as T;
  const pingServer = narrowed(sorted(read.pingServer));
  return {
    hour,
    pongMicros: sorted(read.pongMicros),
    delay: sorted(read.delay),
    room: narrowed(sorted(read.room)),
    ping: sorted(read.ping),
    pingServer,
    responderServer: narrowed(sorted(read.responderServer)),
    ...indexByServer(pingServer),
  };
}

/**
 * Which (second, third) numbers a walk has met with each ping. The first 32
 * pairs met are each given a bit, and a ping's pairs among them are a
 * 32-bit mask: a room has pongs from a few servers, so a walk over a week's
 * million rows takes 4 bytes a ping, where a list entry per row took 12
 * MB. Pairs past those go to a short list per ping, its entries in typed
 * arrays. Pings read in the same hour have nearby numbers, so a walk in
 * time order touches nearby memory; a hash table over a million keys cost a
 * cache miss per row. Cleared between walks by a round number, not by
 * filling: one serves the walks of every ping server of a request.
 */
class PerPingPairs {
  readonly #head: Int32Array;
  readonly #bits: Int32Array;
  /** The round in which each ping's mask and list were last started: older ones are empty. */
  readonly #round: Int32Array;
  #currentRound = 1;
  /** Each pair's bit, by third, then second + 1 (a second may be -1); 0 for none. */
  readonly #bitOf: Int32Array[] = [];
  #bitsGiven = 0;
  #next = new Int32Array(16);
  #second = new Int32Array(16);
  #third = new Int32Array(16);
  #size = 0;

  constructor(pings: number) {
    this.#head = new Int32Array(pings);
    this.#bits = new Int32Array(pings);
    this.#round = new Int32Array(pings);
  }

  /** Forgets every pair met. */
  clear(): void {
    this.#currentRound++;
    this.#size = 0;
  }

  /** The pair's bit, given now if one is left; 0 once all 32 are taken. */
  #bit(second: number, third: number): number {
    let row = this.#bitOf[third];
    if (row === undefined || row.length <= second + 1) {
      const wider = new Int32Array(Math.max(2 * (row?.length ?? 0), second + 2, 16));
      if (row !== undefined) wider.set(row);
      this.#bitOf[third] = row = wider;
    }
    let bit = row[second + 1]!;
    if (bit === 0 && this.#bitsGiven < 32) row[second + 1] = bit = 1 << this.#bitsGiven++;
    return bit;
  }

  /** True if the ping had not been met with this pair (and now has). */
  add(ping: number, second: number, third: number): boolean {
    if (this.#round[ping] !== this.#currentRound) {
      this.#round[ping] = this.#currentRound;
      this.#head[ping] = -1;
      this.#bits[ping] = 0;
    }
    const bit = this.#bit(second, third);
    if (bit !== 0) {
      if ((this.#bits[ping]! & bit) !== 0) return false;
      this.#bits[ping] = this.#bits[ping]! | bit;
      return true;
    }
    for (let e = this.#head[ping]!; e !== -1; e = this.#next[e]!)
      if (this.#second[e] === second && this.#third[e] === third) return false;
    if (this.#size === this.#next.length) {
      const grow = (column: Int32Array) => {
        const larger = new Int32Array(2 * column.length);
        larger.set(column);
        return larger;
      };
      this.#next = grow(this.#next);
      this.#second = grow(this.#second);
      this.#third = grow(this.#third);
    }
    const e = this.#size++;
    this.#second[e] = second;
    this.#third[e] = third;
    this.#next[e] = this.#head[ping]!;
    this.#head[ping] = e;
    return true;
  }
}

/** A ping server's rows inside a window. */
export interface ServerRowsInWindow {
  readonly server: number;
  /** [hour, from, to]: its rows serverRows[from] to serverRows[to - 1] of each hour, hours in order. */
  readonly ranges: [PongHour, number, number][];
  /**
   * Per range, its slice ID and how many of the slot's rows the window cut
   * at either end: two walks over equal signatures walk the same rows.
   */
  readonly signature: number[];
}

/** The rows of each hour inside the window (inclusive at both ends), as ranges, in order. */
function rowsInWindow(hours: readonly PongHour[], window: PingstatWindow): [PongHour, number, number][] {
  const start = window.start.getTime() * 1000;
  const end = window.end.getTime() * 1000;
  const ranges: [PongHour, number, number][] = [];
  for (const hour of hours) {
    if ((hour.hour + HOUR_MS) * 1000 <= start || hour.hour * 1000 > end) continue;
    const micros = hour.pongMicros;
    const from = start - hour.hour * 1000;
    const to = end - hour.hour * 1000;
    let first = 0;
    while (first < micros.length && micros[first]! < from) first++;
    let last = micros.length;
    while (last > first && micros[last - 1]! > to) last--;
    if (first < last) ranges.push([hour, first, last]);
  }
  return ranges;
}

/**
 * Each ping server's rows inside the window (inclusive at both ends): of
 * each hour's rows in the window (rowsInWindow), those of its slot.
 * `hours` in ascending order.
 */
export function serverRowsInWindow(
  hours: readonly PongHour[],
  window: PingstatWindow,
): Map<number, ServerRowsInWindow> {
  const byServer = new Map<number, ServerRowsInWindow>();
  for (const [hour, first, last] of rowsInWindow(hours, window)) {
    const { serverRows, serverStart } = hour;
    const whole = first === 0 && last === hour.delay.length;
    for (let slot = 0; slot < hour.servers.length; slot++) {
      const slotFirst = serverStart[slot]!;
      const slotLast = serverStart[slot + 1]!;
      let from = slotFirst;
      let to = slotLast;
      // A slot's rows are in the hour's order, so those in the window are a run of them.
      if (!whole) {
        while (from < to && serverRows[from]! < first) from++;
        while (to > from && serverRows[to - 1]! >= last) to--;
        if (from === to) continue;
      }
      const server = hour.servers[slot]!;
      let rows = byServer.get(server);
      if (rows === undefined) {
        rows = { server, ranges: [], signature: [] };
        byServer.set(server, rows);
      }
      rows.ranges.push([hour, from, to]);
      rows.signature.push(hour.sliceIds[slot]!, from - slotFirst, slotLast - to);
    }
  }
  return byServer;
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

  /** Written into `into` when it is at least `bytes` long (a scratch buffer whose text is copied out at once). */
  constructor(bytes: number, into?: Buffer) {
    this.#capacity = Math.max(bytes, 1024);
    this.#buffer = into !== undefined && into.length >= this.#capacity ? into : Buffer.allocUnsafe(this.#capacity);
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

interface PairBuilder {
  readonly responderServer: number;
  readonly pings: number[];
  readonly delays: number[];
}

/** A walk's scratch, for the dictionary's pings: made once per request, shared by its walks. */
export class PingServerWalk {
  readonly #met: PerPingPairs;
  readonly dictionary: PongDictionary;

  constructor(dictionary: PongDictionary) {
    this.dictionary = dictionary;
    this.#met = new PerPingPairs(dictionary.pings);
  }

  /**
   * What pingstatGroups reads from the database for one ping server, from
   * its rows in the window instead: of several pongs of one server to one
   * ping, the first in the window's order among those the delay filter
   * keeps. Undefined when the filter keeps none.
   */
  group(rows: ServerRowsInWindow, filter: DelayFilter): { pairs: PingstatPair[]; pings: PingstatPings } | undefined {
    const met = this.#met;
    met.clear();
    const { minDelayMs, maxDelayMs } = filter;
    // By responder server: an array, as a lookup per row is the walk's main cost.
    const pairOf: (PairBuilder | undefined)[] = [];
    const pairs: PairBuilder[] = [];
    const pings: number[] = [];
    const { pingBytes } = this.dictionary;
    /** The bytes the lists take, exactly: the buffer they are written to lives as long as any of them. */
    let bytes = 0;
    for (const [hour, from, to] of rows.ranges) {
      const { delay, ping, responderServer, serverRows } = hour;
      for (let j = from; j < to; j++) {
        const i = serverRows[j]!;
        const ms = delay[i]!;
        if (ms < minDelayMs || ms > maxDelayMs) continue;
        const responder = responderServer[i]!;
        const p = ping[i]!;
        if (!met.add(p, responder, 0)) continue;
        let pair = pairOf[responder];
        if (pair === undefined) {
          pair = { responderServer: responder, pings: [], delays: [] };
          pairOf[responder] = pair;
          pairs.push(pair);
        }
        pair.pings.push(p);
        pair.delays.push(ms);
        const idBytes = pingBytes[2 * p + 1]! - pingBytes[2 * p]!;
        bytes += idBytes + 2 + String(ms).length;
        // Rows come by pong time: a ping's first kept pong is its first sight, as the database orders them.
        if (met.add(p, -1, 0)) {
          pings.push(p);
          bytes += idBytes + 1;
        }
      }
    }
    if (pings.length === 0) return undefined;
    const { names } = this.dictionary;
    // Room for the longest number past the end: pingListJson reserves that much for each entry.
    const out = new JsonBytes(bytes + NUMBER_BYTES);
    const pingServer = names[rows.server]!;
    return {
      pairs: pairs.map((pair) => ({
        pingServer,
        pongServer: names[pair.responderServer]!,
        pongs: pair.delays.length,
        delays: Float64Array.from(pair.delays),
        diffsJson: pingListJson(out, this.dictionary, pair.pings, pair.delays),
      })),
      pings: { count: pings.length, json: pingListJson(out, this.dictionary, pings) },
    };
  }
}

const ascii = (text: string) => new Uint8Array(Buffer.from(text, 'latin1'));
const PONG_SERVER = ascii(',"pong_server":');
const PING_SERVER = ascii(',"ping_server":');
const RECEIVE_DIFF = ascii(',"receive_diff":');
const PONG_TIMESTAMP = ascii(',"pong_timestamp":');
/** The keys after the head, and the closing brace: JsonBytes writes without bounds checks, so every byte is counted. */
const ROW_PUNCTUATION = PONG_SERVER.length + PING_SERVER.length + RECEIVE_DIFF.length + PONG_TIMESTAMP.length + 1;

/** An hour's rows as raw-row JSON objects, each after a comma: row i is bytes[ends[i - 1] (0 for the first)] to bytes[ends[i] - 1]. */
interface RawRowsText {
  readonly currentRoomId: string;
  /** In memory, or in a file of a spill directory. */
  readonly bytes: Buffer | SpilledBytes;
  readonly ends: Int32Array;
}

/**
 * Each hour's rows written once as raw rows, kept while the hour is: an
 * answer after a new pong writes the changed hour and passes the others'
 * bytes along (a week of a busy room is 170 MB of them).
 */
const rawRowsTextOf = new WeakMap<PongHour, RawRowsText>();

/**
 * Raw-row bytes kept in memory at most, over every hour of every lineage
 * kept, when there is no spill directory (or it takes no more): past it,
 * an hour's rows are written for each answer again (a lineage may keep four
 * million rows, 700 MB of them).
 */
export const RAW_ROWS_KEPT_BYTES = 256 * 1024 * 1024;
let rawRowsKeptBytes = 0;
const rawRowsDropped = new FinalizationRegistry<number>((bytes) => {
  rawRowsKeptBytes -= bytes;
});

/**
 * Where an hour's rows are written before they are copied to their file or
 * their own buffer: one buffer for every hour, not a new one left to the
 * collector each time (a week's first answer writes 170 MB of them).
 */
let rowsScratch = Buffer.allocUnsafeSlow(0);
/** Larger hours get a buffer of their own, not kept. */
const ROWS_SCRATCH_KEPT_BYTES = 8 * 1024 * 1024;

function scratchFor(bytes: number): Buffer | undefined {
  if (bytes > ROWS_SCRATCH_KEPT_BYTES) return undefined;
  if (rowsScratch.length < bytes) rowsScratch = Buffer.allocUnsafeSlow(Math.min(2 * bytes, ROWS_SCRATCH_KEPT_BYTES));
  return rowsScratch;
}

const isUnreadable = (text: RawRowsText) => text.bytes instanceof SpilledBytes && text.bytes.unreadable;

function rawRowsText(
  hour: PongHour,
  dictionary: PongDictionary,
  currentRoomId: string,
  keptAtMost: number,
  spill: SpillDirectory | undefined,
): RawRowsText {
  const kept = rawRowsTextOf.get(hour);
  if (kept?.currentRoomId === currentRoomId && !isUnreadable(kept)) return kept;
  const head = new Uint8Array(Buffer.from(`,{"room_id":${JSON.stringify(currentRoomId)},"ping_id":`));
  const { bytes, pingBytes, nameBytes } = dictionary;
  const { pongMicros, delay, ping, pingServer, responderServer } = hour;
  const count = delay.length;
  let size = 0;
  for (let i = 0; i < count; i++) {
    const p = ping[i]!;
    const responder = responderServer[i]!;
    const server = pingServer[i]!;
    size +=
      head.length +
      (pingBytes[2 * p + 1]! - pingBytes[2 * p]!) +
      (nameBytes[2 * responder + 1]! - nameBytes[2 * responder]!) +
      (nameBytes[2 * server + 1]! - nameBytes[2 * server]!) +
      ROW_PUNCTUATION +
      2 * NUMBER_BYTES;
  }
  const out = new JsonBytes(size, scratchFor(size));
  const ends = new Int32Array(count);
  for (let i = 0; i < count; i++) {
    const p = ping[i]!;
    const responder = responderServer[i]!;
    const server = pingServer[i]!;
    out.copy(head, 0, head.length);
    out.copy(bytes, pingBytes[2 * p]!, pingBytes[2 * p + 1]!);
    out.copy(PONG_SERVER, 0, PONG_SERVER.length);
    out.copy(bytes, nameBytes[2 * responder]!, nameBytes[2 * responder + 1]!);
    out.copy(PING_SERVER, 0, PING_SERVER.length);
    out.copy(bytes, nameBytes[2 * server]!, nameBytes[2 * server + 1]!);
    out.copy(RECEIVE_DIFF, 0, RECEIVE_DIFF.length);
    out.integer(delay[i]!);
    out.copy(PONG_TIMESTAMP, 0, PONG_TIMESTAMP.length);
    out.integer(hour.hour + Math.floor(pongMicros[i]! / 1000));
    out.byte(125);
    ends[i] = out.written;
  }
  const written = out.take();
  // Kept once, for one room (the lineage's newest), or again where its file could not be read.
  // (A dictionary made again makes new hours too, so the numbers the bytes were written from are the hour's.)
  const keep = kept === undefined || isUnreadable(kept);
  const file = keep ? spill?.keep(written) : undefined;
  if (file !== undefined) {
    const text = { currentRoomId, bytes: file, ends };
    rawRowsTextOf.set(hour, text);
    return text;
  }
  // The exact size, in a buffer of its own: the scratch buffer is written again by the next hour.
  const text = { currentRoomId, bytes: ownedBytes([written]), ends };
  // An hour's bytes are counted until the hour is collected (once: a text kept in memory is not written again).
  const keptBytes = text.bytes.length + text.ends.byteLength;
  if (keep && rawRowsKeptBytes + keptBytes <= keptAtMost) {
    rawRowsTextOf.set(hour, text);
    rawRowsKeptBytes += keptBytes;
    rawRowsDropped.register(hour, keptBytes);
  }
  return text;
}

/**
 * What eachRawRowsPage reads from the database, from the hours instead:
 * each row a JSON object, one per (room, ping, pong server), the first in
 * the window's order, in that order, every row naming `currentRoomId`. As
 * UTF-8 pieces of rows separated by commas (a piece after the first starts
 * with one), each a run of an hour's rows: the kept bytes themselves, not a
 * copy, or their range in the spill directory's file. Hours are kept in
 * `spill` while it takes them, else in memory while `keptAtMost` bytes are.
 */
export function* rawRowsFromHours(
  hours: readonly PongHour[],
  dictionary: PongDictionary,
  window: PingstatWindow,
  currentRoomId: string,
  spill: SpillDirectory | undefined,
  keptAtMost = RAW_ROWS_KEPT_BYTES,
): Generator<Buffer | FileRange> {
  const ranges = rowsInWindow(hours, window);
  const seen = new PerPingPairs(dictionary.pings);
  let written = false;
  for (const [hour, first, last] of ranges) {
    const { bytes, ends } = rawRowsText(hour, dictionary, currentRoomId, keptAtMost, spill);
    const run = (from: number, to: number): Buffer | FileRange => {
      // The first row of the answer goes without its comma.
      const start = (from > 0 ? ends[from - 1]! : 0) + (written ? 0 : 1);
      written = true;
      const end = ends[to - 1]!;
      return bytes instanceof SpilledBytes ? { file: bytes, start, end } : bytes.subarray(start, end);
    };
    const { ping, responderServer, room } = hour;
    let runStart = -1;
    for (let i = first; i < last; i++) {
      if (seen.add(ping[i]!, responderServer[i]!, room[i]!)) {
        if (runStart < 0) runStart = i;
      } else if (runStart >= 0) {
        yield run(runStart, i);
        runStart = -1;
      }
    }
    if (runStart >= 0) yield run(runStart, last);
  }
}
