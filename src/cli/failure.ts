// How a failed command reads and exits: the same whether it ran in this
// process or through the running service (channel.ts).
import { ConfigError } from '../config.ts';
import { DataDirLockedError } from '../db/data-dir-lock.ts';
import { InputError, NotFoundError, StartupError } from '../errors.ts';
import { UsageError, usageErrorText } from './args.ts';
import { BAD_USAGE, FAILED } from './exit-codes.ts';

export interface Failure {
  /** What goes to stderr, ending in a newline. */
  readonly text: string;
  readonly code: number;
}

/** Errors that say what to fix are one line; anything else is a bug, printed with its stack. */
export function describeFailure(err: unknown): Failure {
  if (err instanceof UsageError) return { text: usageErrorText(err), code: BAD_USAGE };
  if (
    err instanceof InputError ||
    err instanceof StartupError ||
    err instanceof ConfigError ||
    err instanceof DataDirLockedError
  )
    return { text: `pingboard: ${err.message}\n`, code: BAD_USAGE };
  if (err instanceof NotFoundError) return { text: `pingboard: ${err.message}\n`, code: FAILED };
  return { text: `pingboard: ${(err as Error)?.stack ?? err}\n`, code: FAILED };
}
