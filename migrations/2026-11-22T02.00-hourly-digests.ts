// Frozen in time: migrations never import application code.
import { sql, type Kysely } from 'kysely';

export async function up(db: Kysely<any>): Promise<void> {
  // The samples of one closed hour of one room, packed: dictionaries of
  // names as newline-separated text, and the numeric columns as little-endian
  // int32 arrays, one after the other. Rebuilt from samples when dropped.
  await db.schema
    .createTable('hourly_digests')
    .addColumn('room_id', 'text', (c) => c.notNull())
    .addColumn('hour', 'timestamptz', (c) => c.notNull())
    .addColumn('samples', 'integer', (c) => c.notNull())
    .addColumn('servers', 'text', (c) => c.notNull())
    .addColumn('responders', 'text', (c) => c.notNull())
    .addColumn('pings', 'text', (c) => c.notNull())
    .addColumn('columns', 'bytea', (c) => c.notNull())
    .addColumn('built_at', 'timestamptz', (c) => c.notNull().defaultTo(sql`now()`))
    .addPrimaryKeyConstraint('hourly_digests_pkey', ['room_id', 'hour'])
    .execute();
}

export async function down(db: Kysely<any>): Promise<void> {
  await db.schema.dropTable('hourly_digests').execute();
}
