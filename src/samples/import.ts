// Import of samples from files: Pingboard's NDJSON (one sample per line) or
// pingstat's stats.raw.json (one JSON array). Files are streamed, so a dump of
// any size imports in bounded memory; every bad record is reported with its
// line and skipped, every good one is stored.
import { createReadStream } from 'node:fs';
import path from 'node:path';
import type { Db } from '../db/database.ts';
import { retentionCutoff } from './retention.ts';
import { recordSamples, WRITE_BATCH_SIZE } from './repository.ts';
import { sampleFromRecord, type Sample } from './sample.ts';

export interface ImportCounts {
  read: number;
  stored: number;
  duplicate: number;
  rejected: number;
}

export interface Rejection {
  readonly file: string;
  readonly line: number;
  readonly error: string;
}

export interface ImportHooks {
  onRejected?(rejection: Rejection): void;
  onProgress?(counts: Readonly<ImportCounts>): void;
  /** Aborted (Ctrl-C, SIGTERM): no record is read after it, and those read are stored before the import returns. */
  signal?: AbortSignal;
}

/** Where an interrupted import stopped: the records up to this line of this file were read (and stored, if valid). */
export interface StopPosition {
  readonly file: string;
  readonly line: number;
}

export interface ImportOptions extends ImportHooks {
  /**
   * PINGBOARD_RETENTION_DAYS, and the time it counts back from: a sample
   * measured before then is rejected, as the daily clean-up would delete it
   * soon after storing it. Absent: every age is stored.
   */
  readonly retention?: { readonly days: number; readonly now: Date } | undefined;
  /** Where relative file names are read from (default: this process's directory); reports name files as given. */
  readonly cwd?: string | undefined;
}

/**
 * The longest record read: a sample takes a few hundred characters. A longer
 * one is rejected whole, without being kept in memory: a file of one 500 MB
 * line imports in the time it takes to read, in the memory of a chunk.
 */
export const MAX_RECORD_LENGTH = 65_536;

/** A record's text, or `text: undefined` for one longer than MAX_RECORD_LENGTH. */
interface RawRecord {
  readonly line: number;
  readonly text: string | undefined;
}

/** Lines of a stream, numbered from 1. */
async function* ndjsonRecords(chunks: AsyncIterable<string>, firstChunk: string): AsyncGenerator<RawRecord> {
  let line = 0;
  // The current line's pieces, up to MAX_RECORD_LENGTH; past it, only that it was too long.
  let pieces: string[] = [];
  let length = 0;
  const take = (): RawRecord | undefined => {
    line++;
    const text = length > MAX_RECORD_LENGTH ? undefined : pieces.join('');
    pieces = [];
    length = 0;
    return text?.trim() === '' ? undefined : { line, text };
  };
  for await (const chunk of prepend(firstChunk, chunks)) {
    for (let from = 0; ; ) {
      const newline = chunk.indexOf('\n', from);
      const end = newline < 0 ? chunk.length : newline;
      length += end - from;
      if (length <= MAX_RECORD_LENGTH) pieces.push(chunk.slice(from, end));
      else pieces = [];
      if (newline < 0) break;
      const record = take();
      if (record) yield record;
      from = newline + 1;
    }
  }
  const record = take();
  if (record) yield record;
}

export class MalformedFileError extends Error {
  readonly line: number;
  constructor(line: number, message: string) {
    super(message);
    this.line = line;
  }
}

/**
 * The elements of a top-level JSON array, each with the line it starts on,
 * without parsing the whole array at once.
 */
async function* jsonArrayRecords(chunks: AsyncIterable<string>, firstChunk: string): AsyncGenerator<RawRecord> {
  let line = 1;
  let depth = 0;
  let inString = false;
  let escaped = false;
  let closed = false;
  let element = '';
  let tooLong = false;
  let started = false;
  let elementLine = 0;
  const append = (text: string) => {
    if (tooLong) return;
    element += text;
    if (element.length > MAX_RECORD_LENGTH) {
      tooLong = true;
      element = '';
    }
  };
  for await (const chunk of prepend(firstChunk, chunks)) {
    let from = 0;
    for (let i = 0; i < chunk.length; i++) {
      const ch = chunk[i]!;
      if (ch === '\n') line++;
      if (closed) {
        if (ch.trim() !== '') throw new MalformedFileError(line, 'unexpected text after the closing ]');
        continue;
      }
      if (inString) {
        if (escaped) escaped = false;
        else if (ch === '\\') escaped = true;
        else if (ch === '"') inString = false;
        continue;
      }
      if (depth === 0) {
        if (ch === '[') depth = 1;
        else if (ch.trim() !== '') throw new MalformedFileError(line, 'expected a JSON array');
        from = i + 1;
        continue;
      }
      if (depth === 1 && (ch === ',' || ch === ']')) {
        append(chunk.slice(from, i));
        from = i + 1;
        if (started) yield { line: elementLine, text: tooLong ? undefined : element };
        else if (ch === ',') throw new MalformedFileError(line, 'empty array element');
        element = '';
        tooLong = false;
        started = false;
        if (ch === ']') {
          depth = 0;
          closed = true;
        }
        continue;
      }
      if (!started && ch.trim() !== '') {
        started = true;
        elementLine = line;
      }
      if (ch === '"') inString = true;
      else if (ch === '{' || ch === '[') depth++;
      else if (ch === '}' || ch === ']') depth--;
    }
    if (!closed && depth > 0) append(chunk.slice(from));
  }
  if (!closed) throw new MalformedFileError(line, 'the JSON array is not closed (is the file truncated?)');
}

/**
 * The iterator's next value; done as soon as `signal` is aborted, leaving a
 * read that waits on a pipe behind. Each call listens for the abort only
 * until its read ends: racing every read against one promise that stays
 * pending (the import's whole life, or the service's) kept every record read,
 * with the text it was cut from, reachable from that promise. An import of a
 * million samples through a service's channel left the service at 1.5 GB.
 */
async function nextUnlessStopped<T>(
  iterator: AsyncIterator<T>,
  signal: AbortSignal | undefined,
): Promise<IteratorResult<T, undefined>> {
  if (signal?.aborted) return { done: true, value: undefined };
  const next = iterator.next() as Promise<IteratorResult<T, undefined>>;
  if (!signal) return next;
  // What the abandoned read ends with (the stream is destroyed) concerns no one.
  next.catch(() => {});
  return new Promise((resolve, reject) => {
    const stop = () => resolve({ done: true, value: undefined });
    signal.addEventListener('abort', stop, { once: true });
    next.then(resolve, reject).finally(() => signal.removeEventListener('abort', stop));
  });
}

/**
 * The text of a stream of bytes, chunk by chunk. TextDecoder drops a UTF-8 byte order mark (Windows
 * editors write one), so it is not part of the first record. It decodes in a third of the time the
 * stream's own decoder took, which was an eighth of the importing process's CPU (0.53 s of 4.2 s for
 * 300,000 samples, against 0.17 s now).
 */
async function* decodeUtf8(bytes: AsyncIterable<Buffer>): AsyncGenerator<string> {
  const decoder = new TextDecoder();
  for await (const chunk of bytes) {
    const text = decoder.decode(chunk, { stream: true });
    if (text !== '') yield text;
  }
  const rest = decoder.decode();
  if (rest !== '') yield rest;
}

async function* prepend(first: string, rest: AsyncIterable<string>): AsyncGenerator<string> {
  yield first;
  yield* rest;
}

const WRITES_IN_FLIGHT = 4;

/**
 * Imports one file; counts accumulate into `counts`, and the rooms of its
 * samples into `rooms`. Returns where it stopped when `hooks.signal` was aborted.
 */
export async function importFile(
  db: Db,
  file: string,
  counts: ImportCounts,
  hooks: ImportOptions = {},
  rooms = new Set<string>(),
): Promise<StopPosition | undefined> {
  const { signal } = hooks;
  if (signal?.aborted) return { file, line: 0 };
  const keptFrom = hooks.retention && retentionCutoff(hooks.retention.now, hooks.retention.days);
  const stream = createReadStream(path.resolve(hooks.cwd ?? '', file), { highWaterMark: 1 << 20 });
  /** The line of the last record read. */
  let lastLine = 0;

  let batch: Sample[] = [];
  // Batches are written while the next is parsed, several at a time: inserts
  // into one room share its lock (see lockRoom), so PostgreSQL works on them
  // side by side while the parser fills the next. Measured on two cores: one
  // at a time about 30,000 samples/s, four about 45,000-60,000. At most
  // WRITES_IN_FLIGHT + 1 batches are in memory.
  const writes = new Set<Promise<void>>();
  // The first failed write stops the import; the writes still in flight end before it reports.
  let failure: { error: unknown } | undefined;
  const flush = async () => {
    while (failure === undefined && writes.size >= WRITES_IN_FLIGHT) await Promise.race(writes);
    if (failure) throw failure.error;
    const full = batch;
    batch = [];
    for (const sample of full) rooms.add(sample.roomId);
    const write: Promise<void> = recordSamples(db, full)
      .then(
        (written) => {
          counts.stored += written.stored;
          counts.duplicate += written.duplicate;
          hooks.onProgress?.(counts);
        },
        (error: unknown) => {
          failure ??= { error };
        },
      )
      .finally(() => writes.delete(write));
    writes.add(write);
  };
  const reject = (line: number, error: string) => {
    counts.rejected++;
    hooks.onRejected?.({ file, line, error });
  };

  try {
    await readRecords();
    await flush();
  } finally {
    stream.destroy();
    await Promise.all(writes);
  }
  if (failure) throw failure.error;
  return signal?.aborted ? { file, line: lastLine } : undefined;

  async function readRecords(): Promise<void> {
    // The chunks after the first are read on from the same generator.
    const chunks = decodeUtf8(stream);
    // A read waiting for data (a pipe, a slow disk) is not waited for: the records read so far are stored below.
    const first = await nextUnlessStopped(chunks, signal);
    if (first.done) return;
    // A pingstat dump is one JSON array; anything else is read as NDJSON.
    const records = first.value.trimStart().startsWith('[')
      ? jsonArrayRecords(chunks, first.value)
      : ndjsonRecords(chunks, first.value);
    try {
      for (
        let next = await nextUnlessStopped(records, signal);
        !next.done;
        next = await nextUnlessStopped(records, signal)
      ) {
        const record = next.value;
        counts.read++;
        lastLine = record.line;
        if (record.text === undefined) {
          reject(
            record.line,
            `longer than ${MAX_RECORD_LENGTH} characters (a sample takes a few hundred): skipped unread`,
          );
          continue;
        }
        let parsed: unknown;
        try {
          parsed = JSON.parse(record.text);
        } catch (err) {
          reject(record.line, `not valid JSON: ${(err as Error).message}`);
          continue;
        }
        const result = sampleFromRecord(parsed);
        if (!result.ok) {
          reject(record.line, result.error);
          continue;
        }
        if (keptFrom && result.sample.measuredAt < keptFrom) {
          reject(
            record.line,
            `measured_at: ${result.sample.measuredAt.toISOString()} is older than the ${hooks.retention!.days} days kept ` +
              `(PINGBOARD_RETENTION_DAYS: from ${keptFrom.toISOString()}); the daily clean-up would delete it`,
          );
          continue;
        }
        batch.push(result.sample);
        if (batch.length >= WRITE_BATCH_SIZE) await flush();
      }
    } catch (err) {
      if (!(err instanceof MalformedFileError)) throw err;
      reject(err.line, err.message);
    }
  }
}
