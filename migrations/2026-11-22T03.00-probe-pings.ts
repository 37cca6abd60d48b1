// Frozen in time: migrations never import application code.
import { sql, type Kysely } from 'kysely';

export async function up(db: Kysely<any>): Promise<void> {
  // One row per ping a probe tried to send: answered (its pongs are samples
  // with source 'probe'), lost (no pong within the timeout) or send_failed
  // (the probe could not reach its own homeserver; not a lost ping).
  await db.schema
    .createTable('probe_pings')
    .addColumn('probe_id', 'text', (c) => c.notNull())
    .addColumn('sent_at', 'timestamptz', (c) => c.notNull())
    .addColumn('seq', 'integer', (c) => c.notNull())
    .addColumn('room_id', 'text', (c) => c.notNull())
    .addColumn('ping_server', 'text', (c) => c.notNull())
    .addColumn('ping_event_id', 'text')
    .addColumn('outcome', 'text', (c) => c.notNull().check(sql`outcome in ('answered', 'lost', 'send_failed')`))
    .addColumn('pongs', 'integer', (c) => c.notNull().defaultTo(0))
    .addColumn('error', 'text')
    .addPrimaryKeyConstraint('probe_pings_pkey', ['probe_id', 'sent_at'])
    .execute();
  await db.schema.createIndex('probe_pings_room_time').on('probe_pings').columns(['room_id', 'sent_at']).execute();
  // Round trips are read per window without scanning every other sample of it.
  await db.schema
    .createIndex('samples_probe_window')
    .on('samples')
    .columns(['room_id', 'measured_at'])
    .where(sql.ref('source'), '=', 'probe')
    .execute();
}

export async function down(db: Kysely<any>): Promise<void> {
  await db.schema.dropIndex('samples_probe_window').execute();
  await db.schema.dropTable('probe_pings').execute();
}
