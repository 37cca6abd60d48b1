// Frozen in time: migrations never import application code.
import { sql, type Kysely } from 'kysely';

export async function up(db: Kysely<any>): Promise<void> {
  // Servers the operator or a room admin took out of a room's rankings, and why.
  await db.schema
    .createTable('server_exclusions')
    .addColumn('room_id', 'text', (c) => c.notNull())
    .addColumn('server', 'text', (c) => c.notNull())
    .addColumn('reason', 'text', (c) => c.notNull())
    .addColumn('excluded_by', 'text', (c) => c.notNull())
    .addColumn('excluded_at', 'timestamptz', (c) => c.notNull().defaultTo(sql`now()`))
    .addPrimaryKeyConstraint('server_exclusions_pkey', ['room_id', 'server'])
    .execute();

  // A frozen week can be frozen again (after an exclusion): it keeps a version
  // number and the exclusions it was computed with, and each version it
  // replaced stays readable in the history.
  await db.schema
    .alterTable('frozen_weeks')
    .addColumn('version', 'integer', (c) => c.notNull().defaultTo(1))
    .execute();
  await db.schema
    .alterTable('frozen_weeks')
    .addColumn('exclusions', 'jsonb', (c) => c.notNull().defaultTo(sql`'[]'::jsonb`))
    .execute();
  await db.schema
    .createTable('frozen_week_history')
    .addColumn('room_id', 'text', (c) => c.notNull())
    .addColumn('week', 'text', (c) => c.notNull())
    .addColumn('version', 'integer', (c) => c.notNull())
    .addColumn('starts_at', 'timestamptz', (c) => c.notNull())
    .addColumn('ends_at', 'timestamptz', (c) => c.notNull())
    .addColumn('frozen_at', 'timestamptz', (c) => c.notNull())
    .addColumn('filters', 'jsonb', (c) => c.notNull())
    .addColumn('ranking', 'jsonb', (c) => c.notNull())
    .addColumn('exclusions', 'jsonb', (c) => c.notNull())
    .addColumn('superseded_at', 'timestamptz', (c) => c.notNull().defaultTo(sql`now()`))
    .addColumn('superseded_by', 'text', (c) => c.notNull())
    .addColumn('reason', 'text', (c) => c.notNull())
    .addPrimaryKeyConstraint('frozen_week_history_pkey', ['room_id', 'week', 'version'])
    .execute();
}

export async function down(db: Kysely<any>): Promise<void> {
  await db.schema.dropTable('frozen_week_history').execute();
  await db.schema.alterTable('frozen_weeks').dropColumn('exclusions').execute();
  await db.schema.alterTable('frozen_weeks').dropColumn('version').execute();
  await db.schema.dropTable('server_exclusions').execute();
}
