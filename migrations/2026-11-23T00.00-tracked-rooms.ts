// Frozen in time: migrations never import application code.
import { sql, type Kysely } from 'kysely';

// What the bot learnt about each configured room: the ID an alias names and
// the rooms of its upgrade lineage. Kept so that a service without a bot (or
// before its bot has joined) ranks an aliased room, and an upgraded room with
// its predecessors, as the bot does.
export async function up(db: Kysely<any>): Promise<void> {
  await db.schema
    .createTable('tracked_rooms')
    .addColumn('reference', 'text', (c) => c.primaryKey())
    .addColumn('room_id', 'text', (c) => c.notNull())
    .addColumn('room_ids', sql`text[]`, (c) => c.notNull())
    .addColumn('updated_at', 'timestamptz', (c) => c.notNull().defaultTo(sql`now()`))
    .execute();
}

export async function down(db: Kysely<any>): Promise<void> {
  await db.schema.dropTable('tracked_rooms').execute();
}
