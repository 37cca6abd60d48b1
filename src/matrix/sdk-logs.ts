// matrix-js-sdk's log lines, into our pino logger: a client's own logging
// (createClient's `logger`), and the lines of the SDK's root logger, which its
// components use whatever logger a client is given. The root logger's methods
// are replaced in sdk-internals.ts, which must load before the SDK: main.ts
// (and the command channel, for a backfill) imports this module before any
// module that loads the SDK.
import type { Logger } from '../log.ts';
import { routeRootLogger } from './sdk-internals.ts';

type SdkLevel = 'trace' | 'debug' | 'warn' | 'error';

/** The text of the SDK's arguments: built only when the level is logged (it logs several debug lines per request). */
function line(args: readonly unknown[]): string {
  return args.map((a) => (a instanceof Error ? a.message : String(a))).join(' ');
}

/** A method in the shape the SDK expects, writing at `level` to `child`. */
function lineAt(child: Logger, level: SdkLevel) {
  return (...args: unknown[]) => {
    if (child.isLevelEnabled(level)) child[level](line(args));
  };
}

/** A quiet, structured logger for a client's own logging (createClient's `logger`). */
export function sdkLogger(log: Logger) {
  const child = log.child({ library: 'matrix-js-sdk' });
  const logger = {
    trace: lineAt(child, 'trace'),
    debug: lineAt(child, 'debug'),
    info: lineAt(child, 'debug'),
    warn: lineAt(child, 'warn'),
    error: lineAt(child, 'error'),
    getChild: () => logger,
  };
  return logger;
}

/**
 * Sends the SDK's own log lines (those not written through a client's
 * logger) to `log`, errors as warnings and the rest as debug (its warnings
 * are mostly about defaults it fills in itself: push rules). Once per
 * process: the first call decides (the service's start; a command's first
 * client).
 */
export function routeSdkLogs(log: Logger): void {
  const child = log.child({ library: 'matrix-js-sdk' });
  routeRootLogger((method, prefix, args) => {
    const level = method === 'error' ? 'warn' : 'debug';
    if (!child.isLevelEnabled(level)) return;
    // A child logger's name (`getChild`) comes first, as the SDK writes it.
    child[level](line(prefix ? [prefix, ...args] : args));
  });
}
