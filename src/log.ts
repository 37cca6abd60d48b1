// One structured logger (pino, as fastify uses) for the whole process.
import { pino, type Logger } from 'pino';
import type { LogLevel } from './config.ts';

export type { Logger };

/** Paths whose values never reach the log, wherever they appear. */
export const REDACTED_PATHS = [
  'req.headers.authorization',
  'headers.authorization',
  '*.accessToken',
  '*.access_token',
  '*.password',
  '*.token',
  'config.database.url',
];

/** Query parameters that carry credentials: a client may put its token in the URL of any request. */
const SECRET_QUERY = /([?&](?:access_token|token|password)=)[^&#]*/gi;

/** A request as fastify logs it, with credentials in its query string censored. */
function requestForLog(request: {
  method?: string;
  url?: string;
  host?: string;
  ip?: string;
  socket?: { remotePort?: number };
}) {
  return {
    method: request.method,
    url: request.url?.replace(SECRET_QUERY, '$1[redacted]'),
    host: request.host,
    remoteAddress: request.ip,
    remotePort: request.socket?.remotePort,
  };
}

export function createLogger(level: LogLevel, destination?: pino.DestinationStream): Logger {
  return pino(
    { level, redact: { paths: REDACTED_PATHS, censor: '[redacted]' }, serializers: { req: requestForLog } },
    destination,
  );
}

const LEVEL_NAMES: Record<number, string> = {
  10: 'TRACE',
  20: 'DEBUG',
  30: 'INFO',
  40: 'WARN',
  50: 'ERROR',
  60: 'FATAL',
};

/**
 * What a terminal must not be sent raw: control characters (an escape
 * sequence in a room name could rewrite the screen) and bidirectional
 * controls (which reorder the line). JSON escapes the first; neither is
 * left here.
 */
const UNPRINTABLE = /[\u0000-\u001f\u007f-\u009f\u061c\u200e\u200f\u2028\u2029\u202a-\u202e\u2066-\u2069]/g;

function printable(text: string): string {
  return text.replace(UNPRINTABLE, (ch) => `\\u${ch.charCodeAt(0).toString(16).padStart(4, '0')}`);
}

/**
 * One pino record (a JSON line) as a person reads it on a terminal:
 * `21:03:04.123Z INFO  pingboard started url=http://… engine=pglite`, an
 * error's stack indented below. pid, hostname and what the message says are left out.
 */
export function formatLogLine(line: string): string {
  let record: Record<string, unknown>;
  try {
    record = JSON.parse(line) as Record<string, unknown>;
  } catch {
    return `${printable(line.trimEnd())}\n`;
  }
  const { time, level, msg, pid: _pid, hostname: _hostname, err, ...fields } = record;
  const when = typeof time === 'number' ? new Date(time).toISOString().slice(11) : '';
  const head = `${when} ${(LEVEL_NAMES[level as number] ?? String(level)).padEnd(5)} ${typeof msg === 'string' ? msg : ''}`;
  // A value the message already says (`applying migration X`, migration=X) is not repeated.
  const rest = Object.entries(fields)
    .filter(([, value]) => !(typeof value === 'string' && typeof msg === 'string' && msg.includes(value)))
    .map(
      ([key, value]) =>
        `${key}=${typeof value === 'string' && /^[^\s"=]+$/.test(value) ? value : JSON.stringify(value)}`,
    );
  const error = err as { type?: string; message?: string; stack?: string } | undefined;
  const stack = error
    ? (error.stack ?? `${error.type ?? 'Error'}: ${error.message ?? ''}`)
        .split('\n')
        .map((l) => `\n    ${printable(l.trim())}`)
        .join('')
    : '';
  return `${printable([head, ...rest].join(' '))}${stack}\n`;
}

/**
 * The log for a command's stream: pretty (one human line per record) when
 * the stream is a terminal, JSON lines otherwise (pipes, files, log
 * collectors), so what a program reads stays JSON.
 */
export function createStreamLogger(level: LogLevel, stream: NodeJS.WriteStream): Logger {
  if (!stream.isTTY) return createLogger(level, stream === process.stdout ? undefined : (stream as never));
  return createLogger(level, { write: (line: string) => stream.write(formatLogLine(line)) });
}
