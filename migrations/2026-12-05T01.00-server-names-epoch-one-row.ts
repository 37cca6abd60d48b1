// Frozen in time: migrations never import application code.
import { sql, type Kysely } from 'kysely';

// server_names_epoch is read as one value with every digest (a scalar
// subquery): a second row, inserted by hand, would make that read fail and
// every table with it. The table now refuses one.
export async function up(db: Kysely<any>): Promise<void> {
  await sql`create unique index server_names_epoch_one_row on server_names_epoch ((true))`.execute(db);
}

export async function down(db: Kysely<any>): Promise<void> {
  await sql`drop index server_names_epoch_one_row`.execute(db);
}
