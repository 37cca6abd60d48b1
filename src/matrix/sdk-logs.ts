// matrix-js-sdk's log lines, into our pino logger. Its components log through
// loglevel's "matrix" logger and its children, which ignore the logger a
// client is given; and some of its modules take a method of that logger once,
// when they load: event-timeline-set.js binds `logger.log` into its
// `debuglog`, with which it reports "EventTimelineSet.addLiveEvent: ignoring
// duplicate event …" (timeline-window.js does the same). A method replaced
// after they loaded never reaches them: they keep the SDK's own, which calls
// console.debug and writes plain text into the JSON log on stdout.
//
// So this module replaces the methods as soon as the SDK's logger module has
// loaded and before any other SDK module does, with methods that write to
// whichever logger `routeSdkLogs` names later (nothing until then). For that
// it must be evaluated before anything imports matrix-js-sdk: main.ts imports
// it first.
import { logger as sdkRootLogger } from 'matrix-js-sdk/lib/logger.js';
import type { Logger } from '../log.ts';

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

let routed: Logger | undefined;

interface LoglevelLogger {
  methodFactory: (method: string) => (this: { prefix?: string }, ...args: unknown[]) => void;
  rebuild(): void;
}

const root = sdkRootLogger as unknown as LoglevelLogger;
root.methodFactory = (method) => {
  // Its warnings are mostly about defaults it fills in itself (push rules): debug for us; its errors, warnings.
  const level = method === 'error' ? 'warn' : 'debug';
  return function (...args) {
    const child = routed;
    if (!child?.isLevelEnabled(level)) return;
    // A child logger's name (`getChild`) comes first, as the SDK writes it.
    child[level](line(this.prefix ? [this.prefix, ...args] : args));
  };
};
root.rebuild();

/** Sends the SDK's own log lines (those not written through a client's logger) to `log`, errors as warnings and the rest as debug. */
export function routeSdkLogs(log: Logger): void {
  routed = log.child({ library: 'matrix-js-sdk' });
}
