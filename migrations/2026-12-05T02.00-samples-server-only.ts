// Frozen in time: migrations never import application code.
import { sql, type Kysely } from 'kysely';

// A pong known by its server only (a row imported from pingstat, whose
// responder is its server's name) and the same pong known by its account
// must not both be stored: each insert checks every row against the other
// form, an index probe per row that, in a room holding no server-only row,
// can find nothing. This index holds only those rows, so an insert asks
// once whether its rooms hold any and skips the probes when none do. Most
// rooms hold none: the index stays small.
export async function up(db: Kysely<any>): Promise<void> {
  await sql`create index samples_server_only on samples (room_id) where responder = responder_server`.execute(db);
}

export async function down(db: Kysely<any>): Promise<void> {
  await sql`drop index samples_server_only`.execute(db);
}
