// Frozen in time: migrations never import application code.
import { sql, type Kysely } from 'kysely';

// The aggregator-compatible routes list every pong of the window, which a
// process keeps in memory by hour of pong time (coalesce(pong_ts,
// measured_at)) so that it reads again only the hours that changed. Every
// statement that changes samples gives each (room, hour) it touched a
// version no other ever had; an hour that holds samples has a row. A process
// compares the versions alone and reads again the hours whose version is not
// the one it read them at, whichever process wrote them. A row whose hour no
// longer holds samples stays, with its new version: the reader finds the
// hour empty.
//
// Hours come from the changed rows only (not, as for the digests, the other
// pongs of their pings): what is kept is every row, the first pongs are
// picked per request. An update counts only if it changes a column the routes
// read (ROW_COLUMNS), as the digests' trigger does. A reader reads the
// versions before the samples, so a version it read is never newer than the
// rows it read with it. Rows are written in (room, hour) order so that two
// statements touching the same hours wait for each other rather than
// deadlock; across the statements of one transaction the order is the
// writer's, and a deadlock is retried as any other (samples/repository.ts).
// The triggers are named to fire after the digests' ones (PostgreSQL fires
// a table's triggers of one event in name order), which take the room's
// advisory lock first. Like those, they do not fire for a session with
// session_replication_role = replica: such a writer (a logical replication
// subscriber, pg_restore --disable-triggers) must version the hours it
// writes itself. The sequence belongs to no column: `truncate ... restart
// identity` must not make numbers that processes may still hold come back.

const ROW_COLUMNS = 'room_id, ping_event_id, responder, responder_server, ping_server, delay_ms, measured_at, pong_ts';
const HOUR = `date_bin('1 hour', coalesce(pong_ts, measured_at), timestamptz '2000-01-01 00:00:00+00')`;

function bumpHoursOf(changed: string): string {
  return `
begin
  insert into sample_hours (room_id, hour, version)
    select room_id, hour, nextval('sample_hour_version')
    from (select distinct room_id, ${HOUR} as hour from (${changed}) changed) touched
    order by room_id, hour
  on conflict (room_id, hour) do update set version = excluded.version;
  return null;
end`;
}

const FUNCTIONS = {
  version_sample_hours_after_insert: bumpHoursOf('select * from new_samples'),
  version_sample_hours_after_delete: bumpHoursOf('select * from old_samples'),
  version_sample_hours_after_update: bumpHoursOf(`
    (select ${ROW_COLUMNS} from new_samples except select ${ROW_COLUMNS} from old_samples)
    union all
    (select ${ROW_COLUMNS} from old_samples except select ${ROW_COLUMNS} from new_samples)`),
};

const TRANSITION_TABLES = {
  insert: 'new table as new_samples',
  delete: 'old table as old_samples',
  update: 'old table as old_samples new table as new_samples',
};

export async function up(db: Kysely<any>): Promise<void> {
  // Writers wait until the triggers exist: a row committed between the versions written below and
  // the triggers would have neither (the migration's transaction alone does not hold them off).
  await sql`lock table samples in share row exclusive mode`.execute(db);
  await sql`create sequence sample_hour_version`.execute(db);
  await sql`create table sample_hours (
    room_id text not null,
    hour timestamptz not null,
    version bigint not null,
    primary key (room_id, hour)
  )`.execute(db);
  await sql
    .raw(`insert into sample_hours (room_id, hour, version)
    select room_id, hour, nextval('sample_hour_version')
    from (select distinct room_id, ${HOUR} as hour from samples) hours order by room_id, hour`)
    .execute(db);
  for (const [name, body] of Object.entries(FUNCTIONS)) {
    await sql.raw(`create function ${name}() returns trigger language plpgsql as $body$${body}$body$`).execute(db);
  }
  for (const [event, referencing] of Object.entries(TRANSITION_TABLES)) {
    await sql
      .raw(`create trigger samples_${event}_versions_hours after ${event} on samples
      referencing ${referencing} for each statement execute function version_sample_hours_after_${event}()`)
      .execute(db);
  }
  await sql
    .raw(`create function version_sample_hours_after_truncate() returns trigger language plpgsql as $body$
begin
  delete from sample_hours;
  return null;
end$body$`)
    .execute(db);
  await sql`create trigger samples_truncate_versions_hours after truncate on samples
    for each statement execute function version_sample_hours_after_truncate()`.execute(db);
}

export async function down(db: Kysely<any>): Promise<void> {
  for (const event of ['insert', 'delete', 'update', 'truncate']) {
    await sql.raw(`drop trigger samples_${event}_versions_hours on samples`).execute(db);
    await sql.raw(`drop function version_sample_hours_after_${event}()`).execute(db);
  }
  await sql`drop table sample_hours`.execute(db);
  await sql`drop sequence sample_hour_version`.execute(db);
}
