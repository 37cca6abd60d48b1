// Frozen in time: migrations never import application code.
import { sql, type Kysely } from 'kysely';

// A pong known by its server only (its responder is the server's name: a
// pingstat row, or a record that names no account) and the same pong known
// by an account of that server must not both be stored: an insert checks
// each account's pong for the other form, an index probe per row. Where the
// rooms of a batch hold no server-only row at all, those probes can find
// nothing: this index holds only such rows, so an insert asks it once and
// skips them (rooms that imported pingstat's history keep the probes).
// Building it scans the table once, holding off writes (not reads) meanwhile.
export async function up(db: Kysely<any>): Promise<void> {
  await sql`create index samples_server_only on samples (room_id) where responder = responder_server`.execute(db);
}

export async function down(db: Kysely<any>): Promise<void> {
  await sql`drop index samples_server_only`.execute(db);
}
