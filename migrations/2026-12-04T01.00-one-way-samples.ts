// Frozen in time: migrations never import application code.
import { sql, type Kysely } from 'kysely';

export async function up(db: Kysely<any>): Promise<void> {
  // One row per probe ping that another probe of the same process saw in its
  // sync: the one-way delivery time sender server → receiver server on the
  // process's one monotonic clock, beside the two-clock figure of the same
  // event and the sender's send round trip, which bounds the clock-offset
  // estimate derived from them (stored with it, as measured).
  await db.schema
    .createTable('one_way_samples')
    .addColumn('room_id', 'text', (c) => c.notNull())
    .addColumn('ping_event_id', 'text', (c) => c.notNull())
    .addColumn('sender_probe', 'text', (c) => c.notNull())
    .addColumn('sender_server', 'text', (c) => c.notNull())
    .addColumn('receiver_probe', 'text', (c) => c.notNull())
    .addColumn('receiver_server', 'text', (c) => c.notNull())
    .addColumn('origin_ts', 'timestamptz', (c) => c.notNull())
    .addColumn('measured_at', 'timestamptz', (c) => c.notNull())
    .addColumn('one_way_ms', 'double precision', (c) => c.notNull().check(sql`one_way_ms >= 0`))
    .addColumn('two_clock_ms', 'double precision', (c) => c.notNull())
    .addColumn('send_rtt_ms', 'double precision', (c) => c.notNull().check(sql`send_rtt_ms >= 0`))
    .addColumn('offset_ms', 'double precision', (c) => c.notNull())
    .addColumn('offset_bound_ms', 'double precision', (c) => c.notNull().check(sql`offset_bound_ms >= 0`))
    .addPrimaryKeyConstraint('one_way_samples_pkey', ['ping_event_id', 'receiver_probe'])
    .execute();
  await db.schema
    .createIndex('one_way_samples_room_time')
    .on('one_way_samples')
    .columns(['room_id', 'measured_at'])
    .execute();
  await db.schema.createIndex('one_way_samples_time').on('one_way_samples').column('measured_at').execute();
}

export async function down(db: Kysely<any>): Promise<void> {
  await db.schema.dropTable('one_way_samples').execute();
}
