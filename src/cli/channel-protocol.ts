// What the command line and a running `serve` say to each other over the
// data directory's socket (channel.ts serves it, remote.ts calls it). Apart
// from both, so the command line loads nothing else to find the service.
import path from 'node:path';
import type { Invocation } from './args.ts';

export const SOCKET_FILE = 'pingboard.sock';

/**
 * The commands that run in the service that holds the database: those that
 * need only the database, and `backfill`, whose bot account the service's
 * configuration has.
 */
export const CHANNEL_COMMANDS: ReadonlySet<Invocation['command']> = new Set([
  'backfill',
  'import',
  'leaderboard',
  'refreeze',
  'migrate',
]);

export interface ChannelRequest {
  /** The command line as typed; the service parses it again, as the caller did. */
  readonly argv: readonly string[];
  /** The caller's directory, where relative file names are. */
  readonly cwd: string;
  /** Whether the caller's stderr is a terminal: progress lines are written only there. */
  readonly stderrIsTTY: boolean;
}

export type Frame = { readonly stdout: string } | { readonly stderr: string } | { readonly exit: number };

export function channelPath(dataDir: string): string {
  return path.join(dataDir, SOCKET_FILE);
}
