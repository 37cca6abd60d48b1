import { sql, type Transaction } from 'kysely';
import type { Tables } from './schema.ts';

/**
 * A transaction-scoped lock on one room: digest builds and sample writes of
 * the same room take it, so a digest can never be built from a snapshot that
 * misses a sample written meanwhile.
 */
export async function lockRoom(tx: Transaction<Tables>, roomId: string): Promise<void> {
  await sql`select pg_advisory_xact_lock(7291, hashtext(${roomId}))`.execute(tx);
}
