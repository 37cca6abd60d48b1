// Small values the service keeps across restarts (table bot_state, one value
// per key): each account's sync position and access token (client.ts, for the
// bot and the probe accounts alike), and the backfill's coverage of each room.
import type { Db } from '../db/database.ts';

export async function readStateValue(db: Db, key: string): Promise<string | undefined> {
  const row = await db.selectFrom('bot_state').select('value').where('key', '=', key).executeTakeFirst();
  return row?.value;
}

export async function writeStateValue(db: Db, key: string, value: string): Promise<void> {
  await db
    .insertInto('bot_state')
    .values({ key, value })
    .onConflict((oc) => oc.column('key').doUpdateSet({ value, updated_at: new Date() }))
    .execute();
}
