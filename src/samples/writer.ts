// Samples measured live go through a bounded queue: when the database is
// unreachable they wait and are written when it returns. A full queue refuses
// new samples with a log line and a count, never silently.
import type { Db } from '../db/database.ts';
import type { Logger } from '../log.ts';
import { recordSamples } from './repository.ts';
import type { Sample } from './sample.ts';

export interface SampleWriterOptions {
  readonly db: Db;
  readonly log: Logger;
  /** Samples held at most while the database is away. */
  readonly capacity: number;
  readonly retryMs?: number;
  readonly maxRetryMs?: number;
}

export interface WriterCounts {
  readonly written: number;
  readonly duplicate: number;
  readonly failedWrites: number;
  readonly dropped: number;
  readonly queued: number;
}

const BATCH = 500;

export class SampleWriter {
  readonly #db: Db;
  readonly #log: Logger;
  readonly #capacity: number;
  readonly #retryMs: number;
  readonly #maxRetryMs: number;
  #queue: Sample[] = [];
  #writing: Promise<void> | undefined;
  #retryTimer: NodeJS.Timeout | undefined;
  #failures = 0;
  #counts = { written: 0, duplicate: 0, failedWrites: 0, dropped: 0 };
  #idle: (() => void)[] = [];

  constructor(options: SampleWriterOptions) {
    this.#db = options.db;
    this.#log = options.log;
    this.#capacity = options.capacity;
    this.#retryMs = options.retryMs ?? 500;
    this.#maxRetryMs = options.maxRetryMs ?? 30_000;
  }

  get counts(): WriterCounts {
    return { ...this.#counts, queued: this.#queue.length };
  }

  /** Queues a sample; returns false (and counts it) when the queue is full. */
  record(sample: Sample): boolean {
    if (this.#queue.length >= this.#capacity) {
      this.#counts.dropped++;
      this.#log.error({ room: sample.roomId, ping: sample.pingEventId, responder: sample.responder, dropped: this.#counts.dropped },
        'sample queue full: sample dropped');
      return false;
    }
    this.#queue.push(sample);
    if (!this.#writing && !this.#retryTimer) this.#writing = this.#drain();
    return true;
  }

  /** Resolves when every queued sample is written (or immediately, when none is). */
  async flushed(): Promise<void> {
    if (this.#queue.length === 0 && !this.#writing) return;
    await new Promise<void>((resolve) => this.#idle.push(resolve));
  }

  /** Tries to write what is queued now, skipping any retry wait (used at shutdown). */
  async flushNow(): Promise<void> {
    if (this.#retryTimer) {
      clearTimeout(this.#retryTimer);
      this.#retryTimer = undefined;
    }
    if (!this.#writing && this.#queue.length > 0) this.#writing = this.#drain();
    await this.#writing;
  }

  stop(): void {
    if (this.#retryTimer) clearTimeout(this.#retryTimer);
    this.#retryTimer = undefined;
  }

  async #drain(): Promise<void> {
    while (this.#queue.length > 0) {
      const batch = this.#queue.slice(0, BATCH);
      try {
        const written = await recordSamples(this.#db, batch);
        this.#queue.splice(0, batch.length);
        this.#counts.written += written.stored;
        this.#counts.duplicate += written.duplicate;
        if (this.#failures > 0) this.#log.info({ after: this.#failures }, 'database reachable again: queued samples written');
        this.#failures = 0;
      } catch (err) {
        this.#failures++;
        this.#counts.failedWrites++;
        const delay = Math.min(this.#maxRetryMs, this.#retryMs * 2 ** Math.min(this.#failures - 1, 10));
        // Log the first failure of an outage and then every tenth, not every retry.
        if (this.#failures === 1 || this.#failures % 10 === 0) {
          this.#log.warn({ err, queued: this.#queue.length, retryInMs: delay }, 'writing samples failed; they stay queued');
        }
        this.#writing = undefined;
        this.#retryTimer = setTimeout(() => {
          this.#retryTimer = undefined;
          if (!this.#writing) this.#writing = this.#drain();
        }, delay);
        return;
      }
    }
    this.#writing = undefined;
    for (const resolve of this.#idle.splice(0)) resolve();
  }
}
