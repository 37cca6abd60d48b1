// One structured logger (pino, as fastify uses) for the whole process.
import { pino, type Logger } from 'pino';
import type { LogLevel } from './config.ts';

export type { Logger };

/** Paths whose values never reach the log, wherever they appear. */
export const REDACTED_PATHS = [
  'req.headers.authorization', 'headers.authorization', '*.accessToken', '*.access_token', '*.password', '*.token',
  'config.database.url',
];

export function createLogger(level: LogLevel, destination?: pino.DestinationStream): Logger {
  return pino({ level, redact: { paths: REDACTED_PATHS, censor: '[redacted]' } }, destination);
}
