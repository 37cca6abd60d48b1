// Answers that are large (the aggregator-compatible routes list every delay:
// 57 MB of JSON at a million samples) are written as they are made, and
// made once: every client that asks while one is being made, or after, reads
// the same bytes, from the first one on. Kept for a time like the other
// computed tables, within a byte budget, since query strings come from the
// internet. Ranges of files in the spill directory (raw rows of a busy
// room) join an answer as ranges, read for each client as it takes them.
import { open, type FileHandle } from 'node:fs/promises';
import { Readable, type Writable } from 'node:stream';
import { isFileRange, type FileRange, type SpilledBytes } from '../spill.ts';

/** Text is gathered into chunks of about this size before it is shared. */
const CHUNK_BYTES = 64 * 1024;
/**
 * Bytes at least this long join the answer as they are, not copied into a
 * chunk: a raw-rows answer is made of each hour's kept bytes, and copying
 * them made a cold answer at 10k rows half as slow again (29 ms, 18 without).
 */
const SHARED_AS_IS_BYTES = 4096;

/** A file range is sent in pieces of this size, each read when the client has taken the one before. */
const FILE_PIECE_BYTES = 128 * 1024;

export class SharedBody {
  readonly #chunks: (Buffer | FileRange)[] = [];
  #pending: (string | Buffer)[] = [];
  #pendingLength = 0;
  #bytes = 0;
  #fileBytes = 0;
  #done = false;
  #error: Error | undefined;
  #broken = false;
  #wake: (() => void)[] = [];

  /** Bytes kept in memory (a file range's are on disk). */
  get byteLength(): number {
    return this.#bytes;
  }

  /** Bytes of its file ranges. */
  get fileBytes(): number {
    return this.#fileBytes;
  }

  get done(): boolean {
    return this.#done;
  }

  /** A client's read of a spilled range failed, or one of its files is gone: the body is made again for the next. */
  get broken(): boolean {
    if (!this.#broken && this.#fileBytes > 0)
      this.#broken = this.#chunks.some((chunk) => isFileRange(chunk) && chunk.file.unreadable);
    return this.#broken;
  }

  /**
   * Text, text already encoded as UTF-8 (shared as it is from 4 kB, when
   * most of its buffer: it must not change after), or a range of a spilled
   * file (whose bytes must not change either; an appender's file grows
   * past them).
   */
  write(text: string | Buffer | FileRange): void {
    if (isFileRange(text)) {
      this.#flush();
      this.#chunks.push(text);
      this.#fileBytes += text.end - text.start;
      this.#notify();
      return;
    }
    if (typeof text !== 'string' && text.length >= SHARED_AS_IS_BYTES) {
      this.#flush();
      // A small part of a larger buffer is copied: kept as it is, it would keep the whole buffer alive, uncounted.
      this.#push(2 * text.length >= text.buffer.byteLength ? text : Buffer.from(text));
      return;
    }
    this.#pending.push(text);
    this.#pendingLength += text.length;
    if (this.#pendingLength >= CHUNK_BYTES) this.#flush();
  }

  end(): void {
    this.#flush();
    this.#done = true;
    this.#notify();
  }

  fail(error: Error): void {
    this.#error = error;
    this.#done = true;
    this.#notify();
  }

  #flush(): void {
    if (this.#pending.length === 0) return;
    const pending = this.#pending;
    const chunk = pending.every((part) => typeof part === 'string')
      ? Buffer.from(pending.join(''), 'utf8')
      : Buffer.concat(pending.map((part) => (typeof part === 'string' ? Buffer.from(part, 'utf8') : part)));
    this.#pending = [];
    this.#pendingLength = 0;
    this.#push(chunk);
  }

  #push(chunk: Buffer): void {
    this.#chunks.push(chunk);
    this.#bytes += chunk.length;
    this.#notify();
  }

  #notify(): void {
    const wake = this.#wake;
    this.#wake = [];
    for (const resolve of wake) resolve();
  }

  #changed(): Promise<void> {
    return new Promise((resolve) => this.#wake.push(resolve));
  }

  /**
   * Resolves once the first bytes are there (or the body is complete);
   * rejects if making it failed before: a reply can still be an error then.
   */
  async started(): Promise<void> {
    while (this.#chunks.length === 0 && !this.#done) await this.#changed();
    if (this.#chunks.length === 0 && this.#error) throw this.#error;
  }

  /**
   * The body from its first byte, waiting for what is still being made.
   * Every chunk in memory already there is handed over at once: a finished
   * body goes out in one pass, not a chunk per turn of the event loop. A
   * file range is read a piece at a time as the client takes them, into
   * buffers used again once `destination` (the response the stream is piped
   * to) has written them: a week of raw rows, 170 MB, is read for each
   * client without leaving as much to the collector.
   */
  stream(destination?: Writable): Readable {
    let index = 0;
    let waiting = false;
    let reading = false;
    let ended = false;
    /** Where the next piece of the current file range starts; undefined before its first. */
    let at: number | undefined;
    const file = new OpenFile();
    const pump = () => {
      if (ended || reading) return;
      while (index < this.#chunks.length) {
        const chunk = this.#chunks[index]!;
        if (Buffer.isBuffer(chunk)) {
          buffers.handed(chunk.length);
          readable.push(chunk);
          index++;
          continue;
        }
        const from = at ?? chunk.start;
        if (from < chunk.end) {
          reading = true;
          const buffer = buffers.take(readable.readableLength);
          file.read(chunk.file, buffer, Math.min(FILE_PIECE_BYTES, chunk.end - from), from).then(
            (piece) => {
              reading = false;
              at = from + piece.length;
              if (readable.destroyed) return;
              buffers.handed(piece.length, buffer);
              // The next piece waits for the next read: pushed now, the client's slowness would fill memory.
              readable.push(piece);
            },
            (err: unknown) => {
              // A file that cannot be read is taken for lost: the body is not handed to more clients, and its text
              // is written again. A passing shortage (too many open files, say) fails this client only.
              if (!PASSING_FAILURES.has((err as NodeJS.ErrnoException).code ?? '')) {
                chunk.file.lost();
                this.#broken = true;
              }
              readable.destroy(err instanceof Error ? err : new Error(String(err)));
            },
          );
          return;
        }
        at = undefined;
        index++;
      }
      if (this.#done) {
        ended = true;
        file.close();
        if (this.#error) readable.destroy(this.#error);
        else readable.push(null);
      } else if (!waiting) {
        waiting = true;
        void this.#changed().then(() => {
          waiting = false;
          pump();
        });
      }
    };
    const readable = new Readable({
      read: pump,
      destroy: (err, callback) => {
        ended = true;
        file.close();
        callback(err);
      },
    });
    const buffers = new PieceBuffers(readable, destination);
    return readable;
  }
}

/** Read failures of the moment, not of the file. */
const PASSING_FAILURES = new Set(['EMFILE', 'ENFILE', 'ENOMEM', 'EAGAIN', 'EINTR']);

class TruncatedFileError extends Error {
  override name = 'TruncatedFileError';
  constructor(file: string, length: number, position: number, read: number) {
    super(`${file}: ${length} bytes expected at ${position}, ${read} read`);
  }
}

/**
 * The file a stream reads, kept open while its ranges follow each other.
 * Handles are let go of without waiting (a handle closed while a read is
 * on it closes once the read is done), so none is left to the collector,
 * even when the stream ends while one is being opened.
 */
class OpenFile {
  #file: SpilledBytes | undefined;
  #handle: Promise<FileHandle> | undefined;

  async read(file: SpilledBytes, into: Buffer, length: number, position: number): Promise<Buffer> {
    if (this.#file !== file) {
      this.close();
      this.#file = file;
      this.#handle = open(file.path, 'r');
    }
    const { bytesRead } = await (await this.#handle!).read(into, 0, length, position);
    if (bytesRead < length) throw new TruncatedFileError(file.path, length, position, bytesRead);
    return into.subarray(0, bytesRead);
  }

  close(): void {
    const handle = this.#handle;
    this.#file = this.#handle = undefined;
    handle?.then(
      (opened) => opened.close().catch(() => {}),
      () => {},
    );
  }
}

/** Free buffers a stream keeps at most: two or three are in use at a time. */
const KEPT_FREE_PIECES = 4;

/**
 * The buffers a stream reads file pieces into. A piece handed to the stream
 * waits in the stream's own buffer, then is written to the destination;
 * once the destination has nothing left to write, every piece but those
 * still in the stream's buffer (the newest) is out, and its buffer free.
 * Only a destination the stream is piped into itself is asked: one behind a
 * transform (a compressor) may still hold what it was handed. Otherwise, and
 * without a destination, each piece gets a new buffer.
 */
class PieceBuffers {
  #destination: Writable | undefined;
  readonly #free: Buffer[] = [];
  /** Everything handed to the stream, oldest first, with the buffer to free once out. */
  readonly #handed: { readonly length: number; readonly buffer: Buffer | undefined }[] = [];

  constructor(readable: Readable, destination: Writable | undefined) {
    destination?.once('pipe', (source) => {
      if (source !== readable) return;
      this.#destination = destination;
      // A destination that has just written everything: also when no piece is asked for then.
      destination.on('drain', () => this.#recycle(readable.readableLength));
    });
  }

  /** `length` bytes handed to the stream; `buffer`, when given, is free again once they are out. */
  handed(length: number, buffer?: Buffer): void {
    if (this.#destination !== undefined) this.#handed.push({ length, buffer });
  }

  /** A buffer for the next piece; `inStream` bytes handed over are still in the stream's buffer. */
  take(inStream: number): Buffer {
    this.#recycle(inStream);
    return this.#free.pop() ?? Buffer.allocUnsafeSlow(FILE_PIECE_BYTES);
  }

  #recycle(inStream: number): void {
    if (this.#destination?.writableLength !== 0) return;
    let keep = this.#handed.length;
    for (let still = inStream; keep > 0 && still > 0; ) still -= this.#handed[--keep]!.length;
    for (const { buffer } of this.#handed.splice(0, keep))
      if (buffer !== undefined && this.#free.length < KEPT_FREE_PIECES) this.#free.push(buffer);
  }
}

/**
 * Bodies by key, each made once while it lives (single flight), the oldest
 * dropped first beyond either budget: bytes kept in memory, and bytes of the
 * spilled files the bodies' ranges keep (a file lives while a body refers to
 * it, and keys come from the internet). Expired bodies go at every request.
 */
export class SharedBodyCache {
  readonly #entries = new Map<string, { expires: number; body: SharedBody }>();
  readonly #ttlMs: number;
  readonly #maxBytes: number;
  readonly #maxFileBytes: number;

  constructor(ttlMs: number, maxBytes: number, maxFileBytes: number) {
    this.#ttlMs = ttlMs;
    this.#maxBytes = maxBytes;
    this.#maxFileBytes = maxFileBytes;
  }

  /** The body for `key`, started by `make` unless one lives already; `make` writes into it and ends it. */
  get(key: string, now: number, make: (body: SharedBody) => Promise<void>): SharedBody {
    this.#dropExpired(now);
    const entry = this.#entries.get(key);
    // Checked here too: the sweep stops at the first live body, and a clock set back breaks the order it relies on.
    if (entry && !entry.body.broken && (entry.expires > now || !entry.body.done)) return entry.body;
    this.#entries.delete(key);
    const body = new SharedBody();
    // Clients that ask while it is made share it even when the cache keeps nothing.
    this.#entries.set(key, { expires: now + Math.max(this.#ttlMs, 0), body });
    make(body).then(
      () => {
        body.end();
        if (this.#ttlMs <= 0) this.#forget(key, body);
        else this.#trim();
      },
      (err: unknown) => {
        this.#forget(key, body);
        body.fail(err instanceof Error ? err : new Error(String(err)));
      },
    );
    return body;
  }

  #forget(key: string, body: SharedBody): void {
    if (this.#entries.get(key)?.body === body) this.#entries.delete(key);
  }

  /** Entries are in the order they were made, with one TTL: the expired ones come first. */
  #dropExpired(now: number): void {
    for (const [key, { expires, body }] of this.#entries) {
      if (!body.done) continue;
      if (expires > now) break;
      this.#entries.delete(key);
    }
  }

  /** Drops the oldest finished bodies until the finished ones fit both budgets. */
  #trim(): void {
    let bytes = 0;
    let fileBytes = 0;
    for (const { body } of this.#entries.values()) {
      if (!body.done) continue;
      bytes += body.byteLength;
      fileBytes += body.fileBytes;
    }
    for (const [key, { body }] of this.#entries) {
      if (bytes <= this.#maxBytes && fileBytes <= this.#maxFileBytes) break;
      if (!body.done) continue;
      this.#entries.delete(key);
      bytes -= body.byteLength;
      fileBytes -= body.fileBytes;
    }
  }
}
