// Frozen in time: migrations never import application code.
import type { Kysely } from 'kysely';

// Hourly digests now hold one figure per (ping, pong server), that server's
// first pong, as the aggregator counts (issue 13), where they held every
// responder account's sample. They are rebuilt from samples on first use
// (and by the five-minute job), so the old ones are dropped. Frozen weeks
// keep their published figures until an operator freezes them again
// (`pingboard refreeze`).
export async function up(db: Kysely<any>): Promise<void> {
  await db.deleteFrom('hourly_digests').execute();
}

// Digests of the new rule are no digests of the old: dropped again.
export async function down(db: Kysely<any>): Promise<void> {
  await db.deleteFrom('hourly_digests').execute();
}
