// Samples measured live go through a bounded queue: when the database is
// unreachable they wait and are written when it returns. A full queue refuses
// new samples with a log line and a count, never silently. Writes are
// grouped: while samples keep coming, a write starts at most once per
// `lingerMs` (a sample waits that long at most for others to share its write,
// or for the write in progress), so a busy room costs the database (and the
// bot's event loop, which a write's round trips also take time from) one
// transaction per interval, not one per ping.
import type { Db } from '../db/database.ts';
import type { Logger } from '../log.ts';
import { retentionCutoff } from './retention.ts';
import { recordSamples } from './repository.ts';
import type { Sample } from './sample.ts';

export interface SampleWriterOptions {
  readonly db: Db;
  readonly log: Logger;
  /** Samples held at most while the database is away. */
  readonly capacity: number;
  readonly retryMs?: number;
  readonly maxRetryMs?: number;
  /** How long the first queued sample waits for others before a write starts (default 100 ms). */
  readonly lingerMs?: number;
  /** Called after each write: what was written may have dropped digests, which the service builds again at once. */
  readonly onWritten?: () => void;
  /**
   * PINGBOARD_RETENTION_DAYS: a sample measured before then (an old pong in
   * the backlog of a quiet room's first sync) is refused with a count, as the
   * daily clean-up would delete it soon after. Absent: no limit.
   */
  readonly retentionDays?: number | undefined;
}

export interface WriterCounts {
  readonly written: number;
  readonly duplicate: number;
  readonly failedWrites: number;
  readonly dropped: number;
  /** Samples refused because they were older than the retention. */
  readonly expired: number;
  readonly queued: number;
}

const BATCH = 500;

/**
 * How long samples that came in during a write wait for company once it has
 * ended: what is left of the interval since the write began, and nothing
 * when the write outlasted it (they have waited long enough behind it).
 */
export function lingerLeft(lingerMs: number, writeMs: number): number {
  return Math.max(0, lingerMs - writeMs);
}

export class SampleWriter {
  readonly #db: Db;
  readonly #log: Logger;
  readonly #capacity: number;
  readonly #retryMs: number;
  readonly #maxRetryMs: number;
  readonly #lingerMs: number;
  readonly #onWritten: (() => void) | undefined;
  #queue: Sample[] = [];
  #writing: Promise<void> | undefined;
  /** Set while a write waits: for more samples (linger) or for the database (retry). */
  #timer: NodeJS.Timeout | undefined;
  #flushing = false;
  #failures = 0;
  readonly #retentionDays: number | undefined;
  #counts = { written: 0, duplicate: 0, failedWrites: 0, dropped: 0, expired: 0 };
  #idle: (() => void)[] = [];
  #newestMs: number | undefined;

  constructor(options: SampleWriterOptions) {
    this.#db = options.db;
    this.#log = options.log;
    this.#capacity = options.capacity;
    this.#retryMs = options.retryMs ?? 500;
    this.#maxRetryMs = options.maxRetryMs ?? 30_000;
    this.#lingerMs = options.lingerMs ?? 100;
    this.#onWritten = options.onWritten;
    this.#retentionDays = options.retentionDays;
  }

  get counts(): WriterCounts {
    return { ...this.#counts, queued: this.#queue.length };
  }

  /** measured_at (wall-clock ms) of the newest sample written since the start; undefined before the first. */
  get newestWrittenMs(): number | undefined {
    return this.#newestMs;
  }

  /** Queues a sample; returns false (and counts it) when the queue is full or the sample older than the retention. */
  record(sample: Sample): boolean {
    if (this.#retentionDays !== undefined && sample.measuredAt < retentionCutoff(new Date(), this.#retentionDays)) {
      this.#counts.expired++;
      // A room's first sync may bring dozens: the first, then every hundredth, is worth a line.
      if (this.#counts.expired % 100 === 1) {
        this.#log.info(
          {
            room: sample.roomId,
            ping: sample.pingEventId,
            measuredAt: sample.measuredAt,
            retentionDays: this.#retentionDays,
            expired: this.#counts.expired,
          },
          'sample older than PINGBOARD_RETENTION_DAYS not recorded (the clean-up would delete it)',
        );
      }
      return false;
    }
    if (this.#queue.length >= this.#capacity) {
      this.#counts.dropped++;
      this.#log.error(
        { room: sample.roomId, ping: sample.pingEventId, responder: sample.responder, dropped: this.#counts.dropped },
        'sample queue full: sample dropped',
      );
      return false;
    }
    this.#queue.push(sample);
    if (!this.#writing && !this.#timer) this.#drainAfter(this.#lingerMs);
    return true;
  }

  /** Resolves when every queued sample is written (or immediately, when none is). */
  async flushed(): Promise<void> {
    if (this.#queue.length === 0 && !this.#writing) return;
    await new Promise<void>((resolve) => this.#idle.push(resolve));
  }

  /** Tries to write everything queued now, skipping any wait (used at shutdown). */
  async flushNow(): Promise<void> {
    this.#flushing = true;
    try {
      this.stop();
      if (!this.#writing && this.#queue.length > 0) this.#writing = this.#drain();
      await this.#writing;
    } finally {
      this.#flushing = false;
    }
  }

  /** Cancels any wait (for company or for the database). */
  stop(): void {
    clearTimeout(this.#timer);
    this.#timer = undefined;
  }

  #drainAfter(ms: number): void {
    this.#timer = setTimeout(() => {
      this.#timer = undefined;
      if (!this.#writing) this.#writing = this.#drain();
    }, ms);
  }

  async #drain(): Promise<void> {
    while (this.#queue.length > 0) {
      const batch = this.#queue.slice(0, BATCH);
      const started = performance.now();
      try {
        const written = await recordSamples(this.#db, batch);
        this.#queue.splice(0, batch.length);
        this.#counts.written += written.stored;
        this.#counts.duplicate += written.duplicate;
        for (const sample of batch) this.#newestMs = Math.max(this.#newestMs ?? -Infinity, sample.measuredAt.getTime());
        if (this.#failures > 0)
          this.#log.info({ after: this.#failures }, 'database reachable again: queued samples written');
        this.#failures = 0;
        this.#onWritten?.();
      } catch (err) {
        this.#failures++;
        this.#counts.failedWrites++;
        const delay = Math.min(this.#maxRetryMs, this.#retryMs * 2 ** Math.min(this.#failures - 1, 10));
        if (this.#failures === 1 || this.#failures % 10 === 0) {
          this.#log.warn(
            { err, queued: this.#queue.length, retryInMs: delay },
            'writing samples failed; they stay queued',
          );
        }
        this.#writing = undefined;
        // At shutdown there is no later: what is left is counted as queued.
        if (!this.#flushing) this.#drainAfter(delay);
        return;
      }
      // Less than a full batch came in meanwhile: it waits for company, as the
      // first sample did, for what is left of the interval since this write began.
      if (this.#queue.length > 0 && this.#queue.length < BATCH && !this.#flushing) {
        this.#writing = undefined;
        this.#drainAfter(lingerLeft(this.#lingerMs, performance.now() - started));
        return;
      }
    }
    this.#writing = undefined;
    for (const resolve of this.#idle.splice(0)) resolve();
  }
}
