import { sql, type Transaction } from 'kysely';
import type { Tables } from './schema.ts';

/** The first key of every room's advisory lock (the second is the room ID's hash). */
export const ROOM_LOCKS = 7291;

/**
 * A transaction-scoped lock on one room. Digest builds take it exclusively,
 * so a digest can never be built from a snapshot that misses a sample
 * written meanwhile. Plain sample inserts take it shared: they only add rows
 * (the primary key settles races between them) and drop digests, so they may
 * run side by side; writes that delete samples take it exclusively. The
 * triggers that drop digests take it shared too (see the migration
 * digests-dropped-by-trigger), so a statement that did not still waits for a
 * build. Reads never take it.
 */
export async function lockRoom(tx: Transaction<Tables>, roomId: string, mode: 'shared' | 'exclusive'): Promise<void> {
  await (mode === 'shared'
    ? sql`select pg_advisory_xact_lock_shared(${ROOM_LOCKS}, hashtext(${roomId}))`
    : sql`select pg_advisory_xact_lock(${ROOM_LOCKS}, hashtext(${roomId}))`
  ).execute(tx);
}
