// Frozen in time: migrations never import application code.
import { sql, type Kysely } from 'kysely';

export async function up(db: Kysely<any>): Promise<void> {
  await db.schema
    .createTable('samples')
    .addColumn('room_id', 'text', (c) => c.notNull())
    .addColumn('ping_event_id', 'text', (c) => c.notNull())
    .addColumn('ping_server', 'text', (c) => c.notNull())
    .addColumn('pinger', 'text')
    // The responder's user ID; rows imported from pingstat only know its server.
    .addColumn('responder', 'text', (c) => c.notNull())
    .addColumn('responder_server', 'text', (c) => c.notNull())
    .addColumn('delay_ms', 'integer', (c) => c.notNull())
    .addColumn('ping_ts', 'timestamptz', (c) => c.notNull())
    .addColumn('measured_at', 'timestamptz', (c) => c.notNull())
    .addColumn('recorded_at', 'timestamptz', (c) => c.notNull().defaultTo(sql`now()`))
    .addColumn('source', 'text', (c) => c.notNull().check(sql`source in ('echo', 'pong', 'probe')`))
    .addColumn('rtt_ms', 'double precision')
    .addPrimaryKeyConstraint('samples_pkey', ['room_id', 'ping_event_id', 'responder'])
    .execute();
  await db.schema.createIndex('samples_room_window').on('samples').columns(['room_id', 'measured_at']).execute();
  await db.schema.createIndex('samples_server_time').on('samples').columns(['ping_server', 'measured_at']).execute();

  await db.schema
    .createTable('frozen_weeks')
    .addColumn('room_id', 'text', (c) => c.notNull())
    .addColumn('week', 'text', (c) => c.notNull())
    .addColumn('starts_at', 'timestamptz', (c) => c.notNull())
    .addColumn('ends_at', 'timestamptz', (c) => c.notNull())
    .addColumn('frozen_at', 'timestamptz', (c) => c.notNull().defaultTo(sql`now()`))
    .addColumn('filters', 'jsonb', (c) => c.notNull())
    .addColumn('ranking', 'jsonb', (c) => c.notNull())
    .addPrimaryKeyConstraint('frozen_weeks_pkey', ['room_id', 'week'])
    .execute();
}

export async function down(db: Kysely<any>): Promise<void> {
  await db.schema.dropTable('frozen_weeks').execute();
  await db.schema.dropTable('samples').execute();
}
