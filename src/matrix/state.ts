// The bot's small persistent state: sync position and access token.
import type { Db } from '../db/database.ts';

export async function readBotState(db: Db, key: string): Promise<string | undefined> {
  const row = await db.selectFrom('bot_state').select('value').where('key', '=', key).executeTakeFirst();
  return row?.value;
}

export async function writeBotState(db: Db, key: string, value: string): Promise<void> {
  await db
    .insertInto('bot_state')
    .values({ key, value })
    .onConflict((oc) => oc.column('key').doUpdateSet({ value, updated_at: new Date() }))
    .execute();
}
