// Frozen in time: migrations never import application code.
import { sql, type Kysely } from 'kysely';

// An hourly digest is only ever right if every statement that changes
// samples drops the digests of the hours it touched. The application used to
// do so in each of its statements; these triggers do it in the database, so a
// statement written later, or typed by hand in psql, cannot forget it.
//
// The hours touched are those of the changed rows, and those of the other
// pongs of the same servers to the same pings: a digest holds a server's
// first pong to a ping (in PONG_ORDER: coalesce(pong_ts, measured_at), then
// responder), which a change may move to another hour. After the statement
// the table no longer holds deleted rows and already holds inserted ones, but
// those are in the transition tables, so the hours are the same as before it.
//
// An update touches a digest only if it changes a column a digest is built
// from or ordered by (DIGEST_COLUMNS): a probe's round trip (rtt_ms, source)
// does not. (PostgreSQL allows no column list on a trigger with transition
// tables, hence the comparison.) Should a digest come to hold another column,
// a migration must add it here.
//
// Each trigger takes the rooms' advisory lock, shared (db/locks.ts: the first
// key 7291, the second the room ID's hash), as every write of the application
// already does, so even a statement that did not take it cannot drop a digest
// while a build of the same room, which holds it exclusively, is about to
// store one from a snapshot that misses the change.
//
// One trigger per event: PostgreSQL allows transition tables only on
// triggers of a single event. TRUNCATE has no rows to tell: it drops every
// digest.

const DIGEST_COLUMNS =
  'room_id, ping_event_id, responder, responder_server, ping_server, delay_ms, measured_at, pong_ts';
const hourOf = (column: string) => `date_bin('1 hour', ${column}, timestamptz '2000-01-01 00:00:00+00')`;

/**
 * A plpgsql body dropping the digests of the hours `changed` (a query over
 * the transition tables giving room_id, ping_event_id, responder_server and
 * measured_at) touched. The lock is taken by a statement of its own: the
 * delete's snapshot, taken after it, then sees a digest that a build it
 * waited for stored.
 */
function dropDigestsOf(changed: string): string {
  return `
begin
  perform pg_advisory_xact_lock_shared(7291, hashtext(room_id))
    from (select distinct room_id collate "C" as room_id from (${changed}) changed order by 1) rooms;
  delete from hourly_digests d using (
    select room_id, ${hourOf('measured_at')} as hour from (${changed}) changed
    union
    select s.room_id, ${hourOf('s.measured_at')}
    from (select distinct room_id, ping_event_id, responder_server from (${changed}) changed) c
    join samples s on s.room_id = c.room_id and s.ping_event_id = c.ping_event_id and s.responder_server = c.responder_server
  ) touched
  where d.room_id = touched.room_id and d.hour = touched.hour;
  return null;
end`;
}

const FUNCTIONS = {
  drop_digests_after_samples_insert: dropDigestsOf('select * from new_samples'),
  drop_digests_after_samples_delete: dropDigestsOf('select * from old_samples'),
  drop_digests_after_samples_update: dropDigestsOf(`
    (select ${DIGEST_COLUMNS} from new_samples except select ${DIGEST_COLUMNS} from old_samples)
    union all
    (select ${DIGEST_COLUMNS} from old_samples except select ${DIGEST_COLUMNS} from new_samples)`),
};

export async function up(db: Kysely<any>): Promise<void> {
  for (const [name, body] of Object.entries(FUNCTIONS)) {
    await sql.raw(`create function ${name}() returns trigger language plpgsql as $body$${body}$body$`).execute(db);
  }
  await sql`create trigger samples_insert_drops_digests after insert on samples
    referencing new table as new_samples for each statement execute function drop_digests_after_samples_insert()`.execute(
    db,
  );
  await sql`create trigger samples_delete_drops_digests after delete on samples
    referencing old table as old_samples for each statement execute function drop_digests_after_samples_delete()`.execute(
    db,
  );
  await sql`create trigger samples_update_drops_digests after update on samples
    referencing old table as old_samples new table as new_samples for each statement execute function drop_digests_after_samples_update()`.execute(
    db,
  );
  await sql
    .raw(`create function drop_digests_after_samples_truncate() returns trigger language plpgsql as $body$
begin
  delete from hourly_digests;
  return null;
end$body$`)
    .execute(db);
  await sql`create trigger samples_truncate_drops_digests after truncate on samples
    for each statement execute function drop_digests_after_samples_truncate()`.execute(db);
}

export async function down(db: Kysely<any>): Promise<void> {
  for (const event of ['insert', 'delete', 'update', 'truncate']) {
    await sql.raw(`drop trigger samples_${event}_drops_digests on samples`).execute(db);
    await sql.raw(`drop function drop_digests_after_samples_${event}()`).execute(db);
  }
}
