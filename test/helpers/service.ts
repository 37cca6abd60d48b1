// The service as `pingboard serve` starts it, in this process, with its bot on
// the test homeserver: for tests that drive the bot and read what it stored.
import { loadConfig } from '../../src/config.ts';
import { createLogger } from '../../src/log.ts';
import { start, type Service } from '../../src/start.ts';
import type { TestHomeserver } from '../homeserver/index.ts';
import type { Test, TestDatabase } from './database.ts';
import { until } from './until.ts';

/** The bot's account on the test homeserver; register it with this password. */
export const TEST_BOT = '@pingboard:bot.example';
export const TEST_BOT_PASSWORD = 'bot-password';

/** Starts the service watching `roomAlias`, stopped at the test's end; resolves once the bot has synced. */
export async function startBotService(
  t: Test,
  hs: TestHomeserver,
  database: TestDatabase,
  roomAlias: string,
  env: Record<string, string> = {},
): Promise<Service> {
  const config = loadConfig({
    ...(database.url ? { DATABASE_URL: database.url } : {}),
    PINGBOARD_PORT: '0',
    PINGBOARD_ROOMS: roomAlias,
    PINGBOARD_HOMESERVER_URL: hs.url,
    PINGBOARD_BOT_USER_ID: TEST_BOT,
    PINGBOARD_BOT_PASSWORD: TEST_BOT_PASSWORD,
    PINGBOARD_CACHE_SECONDS: '0',
    ...env,
  });
  const service = await start(config, createLogger('silent'), { database });
  t.teardown(() => service.stop());
  await until('the bot to finish its first sync', () =>
    ['PREPARED', 'SYNCING'].includes(service.bot!.client.getSyncState() ?? ''),
  );
  return service;
}
