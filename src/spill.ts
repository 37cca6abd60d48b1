// Texts the service writes once and sends many times, too large to keep in
// its heap: a busy room's raw rows are 170 MB a week. They are kept in files
// of a private directory instead, and read back by range for each client:
// the operating system's page cache holds them while memory is plentiful and
// lets them go when it is not, so the process's own memory stays its working
// set (issue 14: a service under 300 MB at a million rows).
import {
  closeSync,
  existsSync,
  lstatSync,
  mkdtempSync,
  openSync,
  readdirSync,
  readFileSync,
  readlinkSync,
  rmSync,
  unlink,
  writeFileSync,
  writeSync,
} from 'node:fs';
import { hostname } from 'node:os';
import path from 'node:path';

/** A spilled file's path and size: what the directory deletes and uncounts once its SpilledBytes is collected. */
interface FileRecord {
  readonly path: string;
  length: number;
}

/** A file the directory made, and its record (which an appender grows). */
interface SpilledFile {
  readonly spilled: SpilledBytes;
  readonly record: FileRecord;
}

/**
 * Writes `bytes` at `position` of the file, if it is there: false if it is
 * gone. Never made again here: a file removed behind the directory's back and
 * made anew would hold only these bytes, and the ranges before them would
 * read others.
 */
function writeIfThere(file: string, bytes: Uint8Array, position: number): boolean {
  let fd: number;
  try {
    fd = openSync(file, 'r+');
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return false;
    throw err;
  }
  try {
    writeSync(fd, bytes, 0, bytes.length, position);
  } finally {
    closeSync(fd);
  }
  return true;
}

/** Bytes written to a file (of their own, or an appender's); the file is deleted once nothing refers to this object. */
export class SpilledBytes {
  readonly #record: FileRecord;
  readonly #directory: SpillDirectory;
  /** The directory's count of files found gone when this one was last looked for. */
  #checkedAt: number;
  #gone = false;

  constructor(record: FileRecord, directory: SpillDirectory) {
    this.#record = record;
    this.#directory = directory;
    this.#checkedAt = directory.losses;
  }

  get path(): string {
    return this.#record.path;
  }

  /** Its bytes so far (an appender's file grows). */
  get length(): number {
    return this.#record.length;
  }

  /**
   * Whether its file is gone. Looked for again once after each file of the
   * directory was found gone (something removes them: a cleaner of
   * temporary files), so that every text whose file went is written again
   * when next needed, not found missing one answer at a time, and none that
   * is still there.
   */
  get unreadable(): boolean {
    if (this.#checkedAt !== this.#directory.losses) {
      this.#checkedAt = this.#directory.losses;
      this.#gone ||= !existsSync(this.path);
    }
    return this.#gone;
  }

  /** A read found its file gone or cut short. */
  lost(): void {
    this.#gone = true;
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
 * raw rows three times slower (27 ms, 7 in memory). At this size an hour's
 * rows in memory are few (a week of them 43 MB at most), and files cost
 * little beside the bytes sent.
 */
export const SPILL_MIN_BYTES = 256 * 1024;

const PREFIX = 'pingboard-spill-';

/** When a process started, in clock ticks since the machine booted (Linux): a PID taken again has another. */
function processStart(pid: number): string | undefined {
  try {
    // The fields after the command name, which may hold spaces and parentheses; the start time is the 20th.
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    return stat.slice(stat.lastIndexOf(')') + 2).split(' ')[19];
  } catch {
    return undefined;
  }
}

/** This process's PID namespace (Linux): PIDs name processes within one only (containers sharing a directory). */
function pidNamespace(): string | undefined {
  try {
    return /^pid:\[(\d+)\]$/.exec(readlinkSync('/proc/self/ns/pid'))?.[1];
  } catch {
    return undefined;
  }
}

/**
 * Who makes directories here: this machine and PID namespace, for the sweep
 * of a later start to tell its processes' directories from others'; none
 * where /proc does not say (no sweep then).
 */
function owner(): { readonly processes: string; readonly start: string } | undefined {
  const namespace = pidNamespace();
  const start = processStart(process.pid);
  return namespace === undefined || start === undefined
    ? undefined
    : { processes: `${PREFIX}${hostname()}-${namespace}-`, start };
}

/**
 * Removes the directories of this machine's processes that are gone (killed
 * before they could remove their own): a container restarted in place keeps
 * its /tmp, with a directory as large as the week's raw rows from each run.
 * Only directories of this user, named as this namespace's processes name
 * them; nothing it cannot remove stops the start.
 */
function sweepDeadOwners(parent: string, processes: string): void {
  let names: string[];
  try {
    names = readdirSync(parent);
  } catch {
    return;
  }
  for (const name of names) {
    if (!name.startsWith(processes)) continue;
    const [, pid, start] = /^(\d+)-(\d+)-[A-Za-z0-9]{6}$/.exec(name.slice(processes.length)) ?? [];
    if (pid === undefined || processStart(Number(pid)) === start) continue;
    const dir = path.join(parent, name);
    try {
      const stat = lstatSync(dir);
      if (stat.isDirectory() && stat.uid === process.getuid?.()) rmSync(dir, { recursive: true, force: true });
    } catch {
      // Another user's, or going meanwhile: left.
    }
  }
}

export class SpillDirectory {
  readonly #parent: string;
  readonly #prefix: string;
  #path: string;
  readonly #maxBytes: number;
  readonly #minBytes: number;
  readonly #onError: (err: unknown) => void;
  #bytes = 0;
  #next = 0;
  #losses = 0;
  #closed = false;
  /** Whether the last write failed: a full disk is reported once, not for every text. */
  #failing = false;
  readonly #dropped = new FinalizationRegistry<FileRecord>((file) => {
    this.#bytes -= file.length;
    unlink(file.path, () => {});
  });

  /**
   * A new directory of this process's own under `parent`, keeping at most
   * `maxBytes` in its files at once (those of `minBytes` or more); those of
   * this machine's processes that are gone are removed first. Throws when it
   * cannot be made.
   */
  constructor(parent: string, maxBytes: number, onError: (err: unknown) => void, minBytes = SPILL_MIN_BYTES) {
    const made = owner();
    if (made !== undefined) sweepDeadOwners(parent, made.processes);
    this.#prefix = made === undefined ? PREFIX : `${made.processes}${process.pid}-${made.start}-`;
    this.#parent = parent;
    this.#path = this.#make();
    this.#maxBytes = maxBytes;
    this.#minBytes = minBytes;
    this.#onError = onError;
  }

  get path(): string {
    return this.#path;
  }

  /** Bytes kept in the directory's files now (files of collected texts are deleted, and uncounted, later). */
  get bytes(): number {
    return this.#bytes;
  }

  /** Files of its found gone so far. */
  get losses(): number {
    return this.#losses;
  }

  lost(): void {
    this.#losses++;
  }

  /**
   * The bytes, written to a new file; undefined when they are not (fewer
   * than `minBytes`, past the budget, a full disk): the caller keeps them
   * in memory.
   */
  keep(bytes: Uint8Array): SpilledBytes | undefined {
    return this.#takes(bytes, this.#minBytes) ? this.#newFile(bytes)?.spilled : undefined;
  }

  /**
   * Keeps texts in one file, one after another, each as its range: many
   * texts of a few kB (a week's stats.json members) cost a client one file
   * to open, not one each, and follow each other in it. The file lives
   * while a range of it does; a text not taken (as for keep) is undefined.
   */
  appender(minBytes = this.#minBytes): (bytes: Uint8Array) => FileRange | undefined {
    let file: SpilledFile | undefined;
    return (bytes) => {
      if (!this.#takes(bytes, minBytes)) return undefined;
      if (file !== undefined && !file.spilled.unreadable) {
        const { spilled, record } = file;
        let appended = false;
        if (!this.#attempt(() => (appended = writeIfThere(record.path, bytes, record.length)))) {
          file = undefined;
          return undefined;
        }
        if (appended) {
          const start = record.length;
          record.length += bytes.length;
          this.#bytes += bytes.length;
          return { file: spilled, start, end: record.length };
        }
        spilled.lost();
      }
      file = this.#newFile(bytes);
      return file && { file: file.spilled, start: 0, end: bytes.length };
    };
  }

  /** The bytes in a new file of the directory; undefined where they could not be written. */
  #newFile(bytes: Uint8Array): SpilledFile | undefined {
    let path: string | undefined;
    if (!this.#attempt(() => (path = this.#write(bytes)))) return undefined;
    const record = { path: path!, length: bytes.length };
    const spilled = new SpilledBytes(record, this);
    this.#bytes += record.length;
    this.#dropped.register(spilled, record);
    return { spilled, record };
  }

  #takes(bytes: Uint8Array, minBytes: number): boolean {
    return !this.#closed && bytes.length >= minBytes && this.#bytes + bytes.length <= this.#maxBytes;
  }

  /** Whether `write` did not throw; a failure (a full disk) is reported once, not for every text. */
  #attempt(write: () => unknown): boolean {
    try {
      write();
    } catch (err) {
      if (!this.#failing) this.#onError(err);
      this.#failing = true;
      return false;
    }
    this.#failing = false;
    return true;
  }

  /** Removes the directory and its files; answers still being sent from them fail. */
  close(): void {
    this.#closed = true;
    rmSync(this.#path, { recursive: true, force: true });
  }

  /** The file the bytes were written to; throws when they could not be. */
  #write(bytes: Uint8Array): string {
    try {
      return this.#writeNew(bytes);
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw err;
    }
    // The directory itself was removed: a new one (not the old name made again, which another user of a shared
    // /tmp could have taken meanwhile), and every file of the old one is gone.
    this.lost();
    this.#path = this.#make();
    return this.#writeNew(bytes);
  }

  /** A new file of the directory holding the bytes; none left behind when they could not be written. */
  #writeNew(bytes: Uint8Array): string {
    const file = path.join(this.#path, String(this.#next++));
    try {
      writeFileSync(file, bytes, { flag: 'wx' });
      return file;
    } catch (err) {
      unlink(file, () => {});
      throw err;
    }
  }

  #make(): string {
    return mkdtempSync(path.join(this.#parent, this.#prefix));
  }
}
