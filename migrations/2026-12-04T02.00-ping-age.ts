// Frozen in time: migrations never import application code.
import { sql, type Kysely } from 'kysely';

// A ping event may carry `unsigned.age`: how long it had been on the
// answering bot's homeserver when the sync brought it, a duration on that
// server's one clock. Synapse 1.67 sends it only for events created on the
// reading server, Dendrite never: it is kept as measured (null where the
// event had none) beside the bot's own sample of the ping, and nothing is
// computed from it.
export async function up(db: Kysely<any>): Promise<void> {
  await db.schema
    .alterTable('samples')
    .addColumn('ping_age_ms', 'integer', (c) => c.check(sql`ping_age_ms >= 0`))
    .execute();
}

export async function down(db: Kysely<any>): Promise<void> {
  await db.schema.alterTable('samples').dropColumn('ping_age_ms').execute();
}
