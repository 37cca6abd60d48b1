// The exit codes of `pingboard`, as `pingboard help` lists them.

/** A command that failed: a rejected record, an unknown room, a homeserver that refused. */
export const FAILED = 1;
/** Bad arguments or settings: nothing was done. */
export const BAD_USAGE = 2;
/** `leaderboard` found no data for the room and window: an empty table is not a result to publish. */
export const EMPTY_TABLE = 3;
/** Stopped by SIGINT or SIGTERM (128 + SIGINT, as shells report Ctrl-C): what was done is kept. */
export const INTERRUPTED = 130;
