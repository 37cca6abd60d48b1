// Opens the embedded database, and creates a new data directory in a process
// of its own. Creating one runs initdb, which took the opening process from
// 180 to 590 MB resident for good (the WebAssembly memory never shrinks);
// in a short-lived process that memory goes back when it exits, and the
// service or command that opens the directory next never carries it.
// Run as a script (`node create-pglite.ts DIR`), it is that process.
import { spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import type { PGlite } from '@electric-sql/pglite';
import { StartupError } from '../errors.ts';

/**
 * PGlite's shared buffers, held in its WebAssembly memory, which never shrinks:
 * initdb's 128 MB kept an empty room's process near 300 MB; a room's week of
 * samples is read in far less.
 */
const SHARED_BUFFERS = '16MB';

/** The embedded database in `dataDir` (a directory, or `memory://`), created there if it is new. */
export async function openPGlite(dataDir: string): Promise<PGlite> {
  const { PGlite } = await import('@electric-sql/pglite');
  return PGlite.create(dataDir, {
    startParams: [...PGlite.defaultStartParams, '-c', `shared_buffers=${SHARED_BUFFERS}`],
    // initdb runs PostgreSQL in a second WebAssembly instance, with 128 MB of shared buffers unless
    // told: the creating process's peak was 583 MB with them, 543 MB with these (medians of 5).
    initDbStartParams: ['--set', `shared_buffers=${SHARED_BUFFERS}`],
  });
}

/** A directory PGlite has not initialised yet (initdb writes PG_VERSION). */
export function isNewDataDir(dataDir: string): boolean {
  return !dataDir.startsWith('memory://') && !existsSync(path.join(dataDir, 'PG_VERSION'));
}

/** The last lines of the creating process's error output kept for the message. */
const STDERR_KEPT_BYTES = 4096;

/**
 * Creates the embedded database in `dataDir` in a child process, with the flags
 * of `npm start` that matter to its memory; fails with one line naming the
 * setting when that process fails.
 */
export async function createDataDirInChild(dataDir: string): Promise<void> {
  const child = spawn(process.execPath, ['--liftoff-only', fileURLToPath(import.meta.url), dataDir], {
    stdio: ['ignore', 'ignore', 'pipe'],
  });
  let stderr = '';
  child.stderr.setEncoding('utf8');
  child.stderr.on('data', (chunk: string) => {
    stderr = (stderr + chunk).slice(-STDERR_KEPT_BYTES);
  });
  const [code, signal] = await new Promise<[number | null, NodeJS.Signals | null]>((resolve, reject) => {
    child.once('error', reject);
    child.once('close', (exitCode, exitSignal) => resolve([exitCode, exitSignal]));
  });
  if (code === 0) return;
  const lastLine = stderr.trim().split('\n').at(-1)?.trim();
  const how = signal !== null ? `was killed by ${signal}` : `exited with code ${code}`;
  throw new StartupError(
    'PINGBOARD_DATA_DIR',
    `cannot create the embedded database in ${dataDir}: the process creating it ${how}${lastLine ? ` (${lastLine})` : ''}`,
  );
}

/** One line for what PGlite threw: its file system throws plain objects with an errno (Emscripten's numbering). */
function describe(err: unknown): string {
  if (err instanceof Error) return err.message;
  const errno = (err as { errno?: unknown } | null)?.errno;
  return typeof errno === 'number' ? `file system error ${errno} (Emscripten errno)` : String(err);
}

if (import.meta.main) {
  const dataDir = process.argv[2]!;
  try {
    await (await openPGlite(dataDir)).close();
  } catch (err) {
    process.stderr.write(`${describe(err).replace(/\s*\n\s*/g, ' ')}\n`);
    process.exitCode = 1;
  }
}
