// Opens the embedded database, and creates new data directories as copies of
// one made once. Making one runs initdb, which took the process doing it
// from 180 to 590 MB resident for good (the WebAssembly memory never
// shrinks): it runs in a short-lived process of its own, once per installed
// PGlite (`npm install` runs it), and every new data directory after that is
// a copy of what it made, which costs no more memory than copying files.
// Run as a script, it is that process: `node create-pglite.ts DIR` makes a
// database in DIR, `node create-pglite.ts --template` the one kept for
// copies.
import { spawn } from 'node:child_process';
import { chmodSync, existsSync, mkdirSync, readdirSync, readFileSync, renameSync, rmSync, statSync } from 'node:fs';
import { copyFile, cp, mkdtemp, rm } from 'node:fs/promises';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import type { PGlite } from '@electric-sql/pglite';
import { StartupError } from '../errors.ts';

/**
 * PGlite's shared buffers, held in its WebAssembly memory, which never shrinks:
 * initdb's 128 MB kept an empty room's process near 300 MB. A week of a
 * million samples is larger than either 16 or 8 MB and is read from the
 * files through them either way; 8 MB left the service's peak 8-15 MB lower.
 */
const SHARED_BUFFERS = '8MB';

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

/** Where the database kept for copies is, unless told: npm's cache folder of this checkout's node_modules. */
export const DEFAULT_TEMPLATE_ROOT = fileURLToPath(new URL('../../node_modules/.cache/pingboard', import.meta.url));

/**
 * The kept database under `root`, named by what made it: another PGlite
 * version's files, or initdb's other settings, are not copied.
 */
function templateDir(root: string): string {
  return path.join(root, `pglite-${pgliteVersion()}-shared-buffers-${SHARED_BUFFERS}`);
}

function pgliteVersion(): string {
  let dir = path.dirname(fileURLToPath(import.meta.resolve('@electric-sql/pglite')));
  while (!existsSync(path.join(dir, 'package.json'))) {
    if (path.dirname(dir) === dir) throw new Error('cannot find the package.json of @electric-sql/pglite');
    dir = path.dirname(dir);
  }
  return (JSON.parse(readFileSync(path.join(dir, 'package.json'), 'utf8')) as { version: string }).version;
}

/** A template being made for this long is one whose maker was killed: making one takes seconds. */
const ABANDONED_BUILD_MS = 3_600_000;

/**
 * Removes what is no longer used under `root`, 40 MB each: the templates of
 * other PGlite versions or settings (an upgrade), and templates being made
 * whose maker was killed. One being made now, by another process, is left;
 * so is anything it cannot remove (the template is made all the same).
 */
function sweepTemplates(root: string, dir: string): void {
  const building = `${path.basename(dir)}.building-`;
  for (const name of readdirSync(root)) {
    if (!name.startsWith('pglite-') || name === path.basename(dir)) continue;
    const entry = path.join(root, name);
    try {
      if (name.startsWith(building) && Date.now() - statSync(entry).mtimeMs < ABANDONED_BUILD_MS) continue;
      rmSync(entry, { recursive: true, force: true });
    } catch {
      // Another user's, or gone meanwhile.
    }
  }
}

/**
 * The database kept under `root` for copies, made first if there is none, by
 * a process of its own. Undefined when `root` cannot be written (a read-only
 * install): each new data directory is then made where it is.
 */
export async function pgliteTemplate(root: string): Promise<string | undefined> {
  const dir = templateDir(root);
  if (existsSync(path.join(dir, 'PG_VERSION'))) return dir;
  let building: string;
  try {
    mkdirSync(root, { recursive: true });
    sweepTemplates(root, dir);
    building = await mkdtemp(`${dir}.building-`);
  } catch {
    return undefined;
  }
  try {
    await createDataDirInChild(building);
    // Readable by every user (mkdtemp made it the owner's only): the install's, and the service's own.
    chmodSync(building, 0o755);
    // Whole at once: no process sees a template that is still being made.
    renameSync(building, dir);
    return dir;
  } catch (err) {
    await rm(building, { recursive: true, force: true });
    // Two processes made one at once: the other one's is as good.
    if (existsSync(path.join(dir, 'PG_VERSION'))) return dir;
    throw err;
  }
}

/**
 * Creates the embedded database in `dataDir` (which may hold the lock file
 * already): a copy of the template under `templateRoot`, or, where none can
 * be kept, made there by a process of its own. Fails with one line naming
 * the setting.
 */
export async function createDataDir(dataDir: string, templateRoot = DEFAULT_TEMPLATE_ROOT): Promise<void> {
  const template = await pgliteTemplate(templateRoot);
  if (template === undefined) return createDataDirInChild(dataDir);
  try {
    // PG_VERSION last: it says the directory holds a database (isNewDataDir), so a copy cut short is made again.
    const version = path.join(template, 'PG_VERSION');
    await cp(template, dataDir, { recursive: true, filter: (source) => source !== version });
    await copyFile(version, path.join(dataDir, 'PG_VERSION'));
  } catch (err) {
    throw new StartupError(
      'PINGBOARD_DATA_DIR',
      `cannot create the embedded database in ${dataDir}: ${describe(err).replace(/\s*\n\s*/g, ' ')}`,
    );
  }
}

/** The last lines of the creating process's error output kept for the message. */
const STDERR_KEPT_BYTES = 4096;

/**
 * Creates the embedded database in `dataDir` in a child process, with the flags
 * of `npm start` that matter to its memory; fails with one line naming the
 * setting when that process fails.
 */
async function createDataDirInChild(dataDir: string): Promise<void> {
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
  const target = process.argv[2]!;
  if (target === '--template') {
    // An install without the template still works (each new data directory is made by initdb, in a
    // process of its own): said, not failed, so a PostgreSQL-only or small host installs all the same.
    let failure: string | undefined;
    try {
      if ((await pgliteTemplate(DEFAULT_TEMPLATE_ROOT)) === undefined) failure = 'cannot write there';
    } catch (err) {
      failure = describe(err).replace(/\s*\n\s*/g, ' ');
    }
    if (failure !== undefined)
      process.stderr.write(
        `pingboard: no template of the embedded database in ${DEFAULT_TEMPLATE_ROOT} (${failure}); each new data directory will be made by initdb\n`,
      );
  } else {
    try {
      await (await openPGlite(target)).close();
    } catch (err) {
      process.stderr.write(`${describe(err).replace(/\s*\n\s*/g, ' ')}\n`);
      process.exitCode = 1;
    }
  }
}
