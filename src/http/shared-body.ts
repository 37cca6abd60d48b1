// Answers that are large (the aggregator-compatible routes list every delay:
// 57 MB of JSON at a million samples) are written as they are made, and
// made once: every client that asks while one is being made, or after, reads
// the same bytes, from the first one on. Kept for a time like the other
// computed tables, within a byte budget, since query strings come from the
// internet.
import { Readable } from 'node:stream';

/** Text is gathered into chunks of about this size before it is shared. */
const CHUNK_BYTES = 64 * 1024;
/**
 * Bytes at least this long join the answer as they are, not copied into a
 * chunk: a raw-rows answer is made of each hour's kept bytes, and copying
 * them made a cold answer at 10k rows half as slow again (29 ms, 18 without).
 */
const SHARED_AS_IS_BYTES = 4096;

export class SharedBody {
  readonly #chunks: Buffer[] = [];
  #pending: (string | Buffer)[] = [];
  #pendingLength = 0;
  #bytes = 0;
  #done = false;
  #error: Error | undefined;
  #wake: (() => void)[] = [];

  get byteLength(): number {
    return this.#bytes;
  }

  get done(): boolean {
    return this.#done;
  }

  /** Text, or text already encoded as UTF-8 (shared as it is from 4 kB, when most of its buffer: it must not change after). */
  write(text: string | Buffer): void {
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
   * Every chunk already there is handed over at once: a finished body goes
   * out in one pass, not a chunk per turn of the event loop.
   */
  stream(): Readable {
    let index = 0;
    let waiting = false;
    let ended = false;
    // The chunks are in memory already: handing them over regardless of backpressure costs nothing more.
    const pump = () => {
      if (ended) return;
      while (index < this.#chunks.length) readable.push(this.#chunks[index++]);
      if (this.#done) {
        ended = true;
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
    const readable = new Readable({ read: pump });
    return readable;
  }
}

/** Bodies by key, each made once while it lives (single flight), the oldest dropped first beyond the budget. */
export class SharedBodyCache {
  readonly #entries = new Map<string, { expires: number; body: SharedBody }>();
  readonly #ttlMs: number;
  readonly #maxBytes: number;

  constructor(ttlMs: number, maxBytes: number) {
    this.#ttlMs = ttlMs;
    this.#maxBytes = maxBytes;
  }

  /** The body for `key`, started by `make` unless one lives already; `make` writes into it and ends it. */
  get(key: string, now: number, make: (body: SharedBody) => Promise<void>): SharedBody {
    const entry = this.#entries.get(key);
    if (entry && (entry.expires > now || !entry.body.done)) return entry.body;
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

  /** Drops the oldest finished bodies until the finished ones fit the budget. */
  #trim(): void {
    let bytes = 0;
    for (const { body } of this.#entries.values()) if (body.done) bytes += body.byteLength;
    for (const [key, { body }] of this.#entries) {
      if (bytes <= this.#maxBytes) break;
      if (!body.done) continue;
      this.#entries.delete(key);
      bytes -= body.byteLength;
    }
  }
}
