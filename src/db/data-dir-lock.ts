// Who holds the embedded database's data directory. Apart from database.ts,
// which loads Kysely and pg: the command line asks this before anything heavy
// loads, to run a command through the `serve` that holds the directory.
import { mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import path from 'node:path';

export class DataDirLockedError extends Error {
  override name = 'DataDirLockedError';
}

const LOCK_FILE = 'pingboard.lock';

/**
 * PGlite is a single-process database: two processes on one data directory
 * corrupt it. A lock file with the owner's PID keeps a second one out; a
 * lock left by a process that is gone is taken over.
 */
export function lockDataDir(dataDir: string): () => void {
  mkdirSync(dataDir, { recursive: true });
  const lockPath = path.join(dataDir, LOCK_FILE);
  for (let attempt = 0; attempt < 2; attempt++) {
    try {
      writeFileSync(lockPath, String(process.pid), { flag: 'wx' });
      return () => rmSync(lockPath, { force: true });
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err;
      const owner = dataDirHolder(dataDir);
      if (owner !== undefined && owner !== process.pid) {
        throw new DataDirLockedError(
          `the embedded database in ${dataDir} is in use by process ${owner}; stop it first, or use PostgreSQL (DATABASE_URL) to share the data`,
        );
      }
      rmSync(lockPath, { force: true });
    }
  }
  throw new DataDirLockedError(`cannot lock ${lockPath}`);
}

/** The process holding `dataDir`, if one is alive (a lock left by a process that is gone holds nothing). */
export function dataDirHolder(dataDir: string): number | undefined {
  let owner: number;
  try {
    owner = Number(readFileSync(path.join(dataDir, LOCK_FILE), 'utf8'));
  } catch {
    // No lock to read (none yet, or a path that is no directory): no service to reach. The command's
    // own open of the directory then says what is wrong with it, naming the setting.
    return undefined;
  }
  return Number.isInteger(owner) && owner > 0 && isAlive(owner) ? owner : undefined;
}

function isAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'EPERM';
  }
}
