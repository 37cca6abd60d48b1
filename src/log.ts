// One structured logger (pino, as fastify uses) for the whole process.
import { pino, type Logger } from 'pino';
import type { LogLevel } from './config.ts';

export type { Logger };

/** Paths whose values never reach the log, wherever they appear. */
export const REDACTED_PATHS = [
  'req.headers.authorization', 'headers.authorization', '*.accessToken', '*.access_token', '*.password', '*.token',
  'config.database.url',
];

/** Query parameters that carry credentials: a client may put its token in the URL of any request. */
const SECRET_QUERY = /([?&](?:access_token|token|password)=)[^&#]*/gi;

/** A request as fastify logs it, with credentials in its query string censored. */
function requestForLog(request: { method?: string; url?: string; host?: string; ip?: string; socket?: { remotePort?: number } }) {
  return {
    method: request.method,
    url: request.url?.replace(SECRET_QUERY, '$1[redacted]'),
    host: request.host,
    remoteAddress: request.ip,
    remotePort: request.socket?.remotePort,
  };
}

export function createLogger(level: LogLevel, destination?: pino.DestinationStream): Logger {
  return pino({ level, redact: { paths: REDACTED_PATHS, censor: '[redacted]' }, serializers: { req: requestForLog } }, destination);
}
