// The import command's work over several files: each file is stored by
// samples/import.ts; what a large import leaves behind (stale planner
// statistics, hours without digests) is dealt with here, above both the
// samples and the statistics it touches.
import type { Db } from '../db/database.ts';
import { importFile, type ImportCounts, type ImportOptions, type StopPosition } from '../samples/import.ts';
import { analyzeSamples } from '../samples/repository.ts';
import type { Statistics } from '../stats/leaderboard.ts';
import type { TrackedRoom } from '../stats/rooms.ts';

/** A bulk import this large changes the table enough to mislead the planner until analysed. */
const ANALYZE_AFTER_SAMPLES = 10_000;

/**
 * Imports files one after the other, then refreshes the planner's statistics
 * once if much was stored, and builds the digests the import dropped or
 * made possible, the hour going on included, so the first leaderboard after
 * it reads them instead of the samples (the service's scheduler would only get
 * to the closed hours within five minutes, and never builds the hour going
 * on): through `statistics`, which keep them, so a service that imports
 * through its channel does not read them back either.
 */
export async function importFiles(
  db: Db,
  statistics: Statistics,
  files: readonly string[],
  counts: ImportCounts,
  hooks: ImportOptions & {
    onUnreadable?(file: string, err: Error): void;
    /** The files are read and stored; what follows (statistics, digests) takes seconds after a large import. */
    onFinishing?(): void;
    /** The lineage a room ID belongs to (the rooms the process knows), whose tables the digest build prepares. */
    roomOf?(roomId: string): Pick<TrackedRoom, 'roomIds'> | undefined;
  } = {},
): Promise<{ readonly stoppedAt: StopPosition | undefined }> {
  const rooms = new Set<string>();
  let stoppedAt: StopPosition | undefined;
  for (const file of files) {
    try {
      stoppedAt = await importFile(db, file, counts, hooks, rooms);
      if (stoppedAt) break;
    } catch (err) {
      const code = (err as NodeJS.ErrnoException).code;
      if (code !== 'ENOENT' && code !== 'EISDIR' && code !== 'EACCES') throw err;
      hooks.onUnreadable?.(file, err as Error);
    }
  }
  hooks.onFinishing?.();
  // Interrupted, the ANALYZE can wait for the next run; the digests of what was stored cannot (reads do not build them).
  if (!stoppedAt && counts.stored > ANALYZE_AFTER_SAMPLES) await analyzeSamples(db);
  await statistics.buildDigests(
    [...rooms].sort().map((roomId) => hooks.roomOf?.(roomId) ?? { roomIds: [roomId] }),
    { currentHour: true },
  );
  return { stoppedAt };
}
