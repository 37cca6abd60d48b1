// Frozen in time: migrations never import application code.
import { sql, type Kysely } from 'kysely';

// Digests name servers by their id in server_names, and a process keeps the
// names of the ids it has read. The application only ever adds names, so a
// known id keeps its name, and a process need only ask for the ids it does not
// know yet, unless server_names lost or changed rows (emptied by hand, say,
// and filled again: an id may come back with another name). Every statement
// that updates, deletes or truncates server_names adds one to this row's
// epoch; a process reads it with the digests and asks for every id again
// when it has moved since it last asked. A row, not a sequence: a sequence
// moves before the change commits (a reader would ask again too early, and
// not after) and reaches a read replica only every 32 moves. Like the other
// triggers, it does not fire for a session with session_replication_role =
// replica (pg_restore --disable-triggers): such a writer must move it itself.
export async function up(db: Kysely<any>): Promise<void> {
  await sql`create table server_names_epoch (epoch bigint not null)`.execute(db);
  await sql`insert into server_names_epoch (epoch) values (1)`.execute(db);
  await sql`create function move_server_names_epoch() returns trigger language plpgsql as $body$
begin
  update server_names_epoch set epoch = epoch + 1;
  return null;
end$body$`.execute(db);
  await sql`create trigger server_names_changed after update or delete or truncate on server_names
    for each statement execute function move_server_names_epoch()`.execute(db);
}

export async function down(db: Kysely<any>): Promise<void> {
  await sql`drop trigger server_names_changed on server_names`.execute(db);
  await sql`drop function move_server_names_epoch()`.execute(db);
  await sql`drop table server_names_epoch`.execute(db);
}
