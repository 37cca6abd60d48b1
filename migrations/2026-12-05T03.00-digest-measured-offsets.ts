// Frozen in time: migrations never import application code.
import { sql, type Kysely } from 'kysely';

// Each figure of an hourly digest gets its measured_at (whole milliseconds
// from the hour's start, base64 int32s in the figures' order), so the hour a
// window begins or ends in partway can be taken from its digest rather than
// read again from the samples with a probe of the primary key for each of
// its pings. In a column of its own: a table reads the times of those one or
// two hours only. Digests stored before have none (null); the build of the
// last seven days builds those again.
//
// A process of the version before neither writes nor reads the times, but
// its build, meeting a digest stored meanwhile, replaces the figures and
// would leave the times of the ones replaced: a trigger clears the times
// whenever the figures change and the times do not.
export async function up(db: Kysely<any>): Promise<void> {
  await db.schema.alterTable('hourly_digests').addColumn('measured_offsets', 'text').execute();
  await sql`alter table hourly_digests alter column measured_offsets set storage external`.execute(db);
  await sql`create function clear_stale_measured_offsets() returns trigger language plpgsql as $body$
    begin
      if new.columns is distinct from old.columns and new.measured_offsets is not distinct from old.measured_offsets then
        new.measured_offsets := null;
      end if;
      return new;
    end
  $body$`.execute(db);
  await sql`create trigger hourly_digests_stale_measured_offsets before update on hourly_digests
    for each row execute function clear_stale_measured_offsets()`.execute(db);
}

export async function down(db: Kysely<any>): Promise<void> {
  await sql`drop trigger hourly_digests_stale_measured_offsets on hourly_digests`.execute(db);
  await sql`drop function clear_stale_measured_offsets()`.execute(db);
  await db.schema.alterTable('hourly_digests').dropColumn('measured_offsets').execute();
}
