// Frozen in time: migrations never import application code.
import { sql, type Kysely } from 'kysely';

// Each figure of an hourly digest gets its measured_at (whole milliseconds
// from the hour's start, base64 int32s in the figures' order),
// so the hour a window starts or ends in partway can be taken from its digest
// rather than read again from the samples with a probe of the primary key for
// each of its pings. In a column of its own: a table reads the times of those
// one or two hours only, and a process of the version before, which neither
// writes nor reads them, reads `columns` as it did. Digests stored before
// have none (null), and their partial hours are read from the samples as
// before, until they are built again.
export async function up(db: Kysely<any>): Promise<void> {
  await db.schema.alterTable('hourly_digests').addColumn('measured_offsets', 'text').execute();
  await sql`alter table hourly_digests alter column measured_offsets set storage external`.execute(db);
}

export async function down(db: Kysely<any>): Promise<void> {
  await db.schema.alterTable('hourly_digests').dropColumn('measured_offsets').execute();
}
