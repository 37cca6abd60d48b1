// Frozen in time: migrations never import application code.
import { sql, type Kysely } from 'kysely';

// Each stored digest gets a number no other digest ever had, so a process
// that keeps decoded digests in memory can tell, by reading the numbers
// alone, which of them are still the stored ones: a digest the trigger
// dropped and a build stored again (here or in another process) has a new
// number. A bare timestamp could repeat; a sequence does not.
//
// The sequence belongs to no column on purpose: `truncate ... restart
// identity` restarts the sequences owned by the truncated tables' columns,
// and a restarted one would hand out numbers that processes may still hold.
export async function up(db: Kysely<any>): Promise<void> {
  await sql`create sequence hourly_digest_generation`.execute(db);
  // The default is volatile, so the rows already stored get one number each.
  await sql`alter table hourly_digests add column generation bigint not null default nextval('hourly_digest_generation')`.execute(
    db,
  );
}

export async function down(db: Kysely<any>): Promise<void> {
  await db.schema.alterTable('hourly_digests').dropColumn('generation').execute();
  await sql`drop sequence hourly_digest_generation`.execute(db);
}
