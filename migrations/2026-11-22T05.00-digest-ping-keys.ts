// Frozen in time: migrations never import application code.
import { sql, type Kysely } from 'kysely';

// Hourly digests become numbers only: server names by their id in
// server_names (interning a week's names from text cost more than the
// statistics), pings as 64-bit keys instead of event IDs, and no measurement
// times (a digest only serves hours wholly inside a window). The numbers
// travel as base64 text rather than bytea: PostgreSQL sends bytea as hex,
// and encoding a week of digests to hex and back cost more than reading
// them; stored uncompressed (EXTERNAL), as compressing them saved little
// and cost every read. Digests are rebuilt from samples on demand, so the
// old ones are simply dropped.
export async function up(db: Kysely<any>): Promise<void> {
  await db.schema
    .createTable('server_names')
    .addColumn('id', 'integer', (c) => c.primaryKey().generatedAlwaysAsIdentity())
    .addColumn('name', 'text', (c) => c.notNull().unique())
    .execute();
  await db.deleteFrom('hourly_digests').execute();
  await db.schema
    .alterTable('hourly_digests')
    .dropColumn('servers')
    .dropColumn('responders')
    .dropColumn('pings')
    .dropColumn('columns')
    .execute();
  await db.schema
    .alterTable('hourly_digests')
    .addColumn('columns', 'text', (c) => c.notNull())
    .execute();
  await sql`alter table hourly_digests alter column columns set storage external`.execute(db);
}

export async function down(db: Kysely<any>): Promise<void> {
  await db.deleteFrom('hourly_digests').execute();
  await db.schema.alterTable('hourly_digests').dropColumn('columns').execute();
  await db.schema
    .alterTable('hourly_digests')
    .addColumn('servers', 'text', (c) => c.notNull())
    .addColumn('responders', 'text', (c) => c.notNull())
    .addColumn('pings', 'text', (c) => c.notNull())
    .addColumn('columns', 'bytea', (c) => c.notNull())
    .execute();
  await db.schema.dropTable('server_names').execute();
}
