// Frozen in time: migrations never import application code.
import { sql, type Kysely } from 'kysely';

// The bot measures a ping when the sync carrying it arrives, but the
// aggregator keeps the time its homeserver stamped on the pong (the pong
// event's origin_server_ts), some milliseconds later. For the bot's own
// answers that time is learnt when the pong comes back (in a sync, or from
// history in a backfill): `pong_ts`, null until then and for every sample
// read from a pong, whose measured_at already is its pong's time. The
// aggregator-compatible routes window on coalesce(pong_ts, measured_at),
// hence the index on that expression.
export async function up(db: Kysely<any>): Promise<void> {
  await db.schema.alterTable('samples').addColumn('pong_ts', 'timestamptz').execute();
  await db.schema
    .createIndex('samples_room_pong_time')
    .on('samples')
    .expression(sql`room_id, coalesce(pong_ts, measured_at)`)
    .execute();
}

export async function down(db: Kysely<any>): Promise<void> {
  await db.schema.dropIndex('samples_room_pong_time').execute();
  await db.schema.alterTable('samples').dropColumn('pong_ts').execute();
}
