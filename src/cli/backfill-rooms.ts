// What a backfill reads: the bot's account and the rooms, or the error that
// refuses the run. Apart from backfill.ts, which loads the Matrix SDK: a
// service with no Matrix account refuses a backfill through its channel
// without loading the SDK (20 MB, kept once loaded) only to say no.
import { ConfigError, type Config } from '../config.ts';
import { InputError } from '../errors.ts';

export interface BackfillCommandOptions {
  /** A room ID or alias; undefined: every configured room. */
  readonly room: string | undefined;
  /** How far back (`--since`, checked). */
  readonly since: Date;
  /** Aborted on Ctrl-C: the run stops after the page in hand, and the next one continues there. */
  readonly signal: AbortSignal;
}

/** The bot's account and the rooms to read, or the error that refuses the run. */
export function backfillRoomsOf(
  config: Config,
  options: BackfillCommandOptions,
): { bot: NonNullable<Config['bot']>; rooms: string[] } {
  if (!config.bot) {
    throw new ConfigError(
      "PINGBOARD_HOMESERVER_URL: backfill reads the rooms through the bot's account; " +
        'set PINGBOARD_HOMESERVER_URL, PINGBOARD_BOT_USER_ID and PINGBOARD_BOT_ACCESS_TOKEN (or PINGBOARD_BOT_PASSWORD)',
    );
  }
  const rooms = options.room !== undefined ? [options.room] : config.rooms.map((r) => r.id);
  if (rooms.length === 0) throw new InputError('--room', 'no room given and PINGBOARD_ROOMS names none');
  return { bot: config.bot, rooms };
}
