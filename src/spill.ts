// Texts the service writes once and sends many times, too large to keep in
// its heap: a busy room's raw rows are 170 MB a week. They are kept in files
// of a private directory instead, and read back by range for each client:
// the operating system's page cache holds them while memory is plentiful and
// lets them go when it is not, so the process's own memory stays its working
// set (issue 14: a service under 300 MB at a million rows).
import { mkdirSync, mkdtempSync, rmSync, unlink, writeFileSync } from 'node:fs';
import path from 'node:path';

/** Bytes written to a file of their own; the file is deleted once nothing refers to this object. */
export class SpilledBytes {
  readonly path: string;
  readonly length: number;
  readonly #directory: SpillDirectory;
  readonly #losses: number;

  constructor(path: string, length: number, directory: SpillDirectory) {
    this.path = path;
    this.length = length;
    this.#directory = directory;
    this.#losses = directory.losses;
  }

  /** Whether its file may be gone: a read of it, or of another file, failed since it was written. */
  get unreadable(): boolean {
    return this.#losses < this.#directory.losses;
  }

  /**
   * A read of its file failed: something removes the directory's files (a
   * cleaner of temporary files, say), so every file written so far is
   * written again when next needed, not found missing one answer at a time.
   */
  lost(): void {
    this.#directory.lost();
  }
}

/** A range of spilled bytes that an answer passes along as it is. */
export interface FileRange {
  readonly file: SpilledBytes;
  readonly start: number;
  readonly end: number;
}

export function isFileRange(piece: unknown): piece is FileRange {
  return typeof piece === 'object' && piece !== null && (piece as FileRange).file instanceof SpilledBytes;
}

/**
 * Smaller texts stay in memory: each file costs a client an open and a read
 * or two, and a week of small hours in files made a room of 10,000 pongs'
 * raw rows three times slower (27 ms, 8 in memory). At this size an hour's
 * rows in memory are few (a week of them 43 MB at most), and files cost
 * little beside the bytes sent.
 */
export const SPILL_MIN_BYTES = 256 * 1024;

export class SpillDirectory {
  readonly path: string;
  readonly #maxBytes: number;
  readonly #minBytes: number;
  readonly #onError: (err: unknown) => void;
  #bytes = 0;
  #next = 0;
  #losses = 0;
  #closed = false;
  /** Whether the last write failed: a full disk is reported once, not for every text. */
  #failing = false;
  readonly #dropped = new FinalizationRegistry<{ readonly path: string; readonly length: number }>((file) => {
    this.#bytes -= file.length;
    unlink(file.path, () => {});
  });

  /**
   * A new directory of this process's own under `parent`, keeping at most
   * `maxBytes` in its files at once. Throws when it cannot be made.
   */
  constructor(parent: string, maxBytes: number, onError: (err: unknown) => void, minBytes = SPILL_MIN_BYTES) {
    this.path = mkdtempSync(path.join(parent, 'pingboard-spill-'));
    this.#maxBytes = maxBytes;
    this.#minBytes = minBytes;
    this.#onError = onError;
  }

  /** Reads of its files that failed: the files written before the last one may be gone. */
  get losses(): number {
    return this.#losses;
  }

  lost(): void {
    this.#losses++;
  }

  /** Bytes kept in the directory's files now (files of collected texts are deleted, and uncounted, later). */
  get bytes(): number {
    return this.#bytes;
  }

  /**
   * The bytes, written to a new file; undefined when they are not (fewer
   * than `minBytes`, past the budget, a full disk): the caller keeps them in
   * memory.
   */
  keep(bytes: Uint8Array): SpilledBytes | undefined {
    if (this.#closed || bytes.length < this.#minBytes || this.#bytes + bytes.length > this.#maxBytes) return undefined;
    const file = path.join(this.path, String(this.#next++));
    try {
      try {
        writeFileSync(file, bytes, { flag: 'wx' });
      } catch (err) {
        if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw err;
        // The directory itself was removed: made again, as this process's own.
        mkdirSync(this.path, { recursive: true, mode: 0o700 });
        writeFileSync(file, bytes, { flag: 'wx' });
      }
    } catch (err) {
      unlink(file, () => {});
      if (!this.#failing) this.#onError(err);
      this.#failing = true;
      return undefined;
    }
    this.#failing = false;
    const spilled = new SpilledBytes(file, bytes.length, this);
    this.#bytes += bytes.length;
    this.#dropped.register(spilled, { path: file, length: bytes.length });
    return spilled;
  }

  /** Removes the directory and its files; answers still being sent from them fail. */
  close(): void {
    this.#closed = true;
    rmSync(this.path, { recursive: true, force: true });
  }
}
