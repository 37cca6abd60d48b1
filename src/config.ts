// Configuration is read once, at start, from environment variables and an
// optional JSON file (PINGBOARD_CONFIG). Environment variables win over the
// file. Every error names the setting and what it allows, so an operator can
// fix a typo without reading the code.
import { readFileSync } from 'node:fs';
import { isValidRoomAlias, isValidRoomId, isValidUserId } from './matrix/ids.ts';

export const LOG_LEVELS = ['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'] as const;
export type LogLevel = (typeof LOG_LEVELS)[number];

export const WEEKDAYS = ['monday', 'tuesday', 'wednesday', 'thursday', 'friday', 'saturday', 'sunday'] as const;

export interface RoomConfig {
  /** A room ID (`!opaque:server`) or alias (`#ping:server`). */
  readonly id: string;
  readonly disclaimer: string;
}

export interface StatsConfig {
  readonly minDelayMs: number;
  readonly maxDelayMs: number;
  readonly minPings: number;
}

export interface WeekConfig {
  readonly timeZone: string;
  /** ISO weekday on which a week closes: 1 = Monday … 7 = Sunday. */
  readonly closeWeekday: number;
  readonly closeHour: number;
  readonly graceMinutes: number;
}

export interface BotConfig {
  readonly homeserverUrl: string;
  readonly userId: string;
  /** One of the two is set: a token, or a password to log in with once (the token is then kept in the database). */
  readonly accessToken: string | undefined;
  readonly password: string | undefined;
  readonly pingPrefix: string;
  /** Responders whose pongs are recorded; empty means every sender of a well-formed pong. */
  readonly trustedResponders: readonly string[];
  readonly maxPingAgeSeconds: number;
  readonly answersPerMinute: number;
  readonly queueCapacity: number;
}

export interface Config {
  readonly database: { readonly url: string | undefined; readonly dataDir: string };
  readonly http: { readonly host: string; readonly port: number };
  readonly logLevel: LogLevel;
  readonly rooms: readonly RoomConfig[];
  readonly stats: StatsConfig;
  readonly weeks: WeekConfig;
  readonly cacheSeconds: number;
  /** The echo bot; undefined when no homeserver is configured (HTTP only). */
  readonly bot: BotConfig | undefined;
}

export class ConfigError extends Error {
  override name = 'ConfigError';
}

export const DEFAULT_DISCLAIMER =
  'Delays are one-way: the time from the ping\'s origin_server_ts, stamped by the sender\'s homeserver, ' +
  'to its arrival at the measuring bot. They include federation delay, sync delay and clock differences between servers.';

/** Where a setting lives in each source; `doc` feeds error messages. */
interface Source {
  readonly env: NodeJS.ProcessEnv;
  readonly file: Record<string, unknown>;
  readonly fileName: string | undefined;
}

interface Lookup {
  readonly label: string;
  readonly raw: unknown;
}

function lookup(src: Source, envName: string, fileKey: string): Lookup | undefined {
  const fromEnv = src.env[envName];
  if (fromEnv !== undefined && fromEnv !== '') return { label: envName, raw: fromEnv };
  if (fileKey in src.file) return { label: `${src.fileName}: ${fileKey}`, raw: src.file[fileKey] };
  return undefined;
}

function fail(label: string, allowed: string, raw: unknown): never {
  throw new ConfigError(`${label}: expected ${allowed}, got ${JSON.stringify(raw)}`);
}

function integer(src: Source, envName: string, fileKey: string, def: number, min: number, max: number): number {
  const found = lookup(src, envName, fileKey);
  if (!found) return def;
  const allowed = `an integer from ${min} to ${max}`;
  const text = typeof found.raw === 'number' ? String(found.raw) : found.raw;
  if (typeof text !== 'string' || !/^-?\d+$/.test(text.trim())) fail(found.label, allowed, found.raw);
  const value = Number(text);
  if (!Number.isSafeInteger(value) || value < min || value > max) fail(found.label, allowed, found.raw);
  return value;
}

function text(src: Source, envName: string, fileKey: string, def: string): string {
  const found = lookup(src, envName, fileKey);
  if (!found) return def;
  if (typeof found.raw !== 'string' || found.raw.trim() === '') fail(found.label, 'a non-empty string', found.raw);
  return found.raw;
}

function oneOf<T extends string>(src: Source, envName: string, fileKey: string, def: T, allowed: readonly T[]): T {
  const found = lookup(src, envName, fileKey);
  if (!found) return def;
  const value = typeof found.raw === 'string' ? found.raw.trim().toLowerCase() : found.raw;
  if (!allowed.includes(value as T)) fail(found.label, `one of ${allowed.join(', ')}`, found.raw);
  return value as T;
}

function timeZone(src: Source, envName: string, fileKey: string, def: string): string {
  const found = lookup(src, envName, fileKey);
  if (!found) return def;
  const allowed = 'an IANA time zone such as UTC or Europe/Berlin';
  if (typeof found.raw !== 'string') fail(found.label, allowed, found.raw);
  try {
    return new Intl.DateTimeFormat('en-US', { timeZone: found.raw }).resolvedOptions().timeZone;
  } catch {
    return fail(found.label, allowed, found.raw);
  }
}

function databaseUrl(src: Source): string | undefined {
  const found = lookup(src, 'DATABASE_URL', 'database_url');
  if (!found) return undefined;
  const allowed = 'a postgres:// or postgresql:// URL';
  if (typeof found.raw !== 'string') fail(found.label, allowed, found.raw);
  let url: URL;
  try {
    url = new URL(found.raw);
  } catch {
    // The URL may hold a password: never echo it.
    throw new ConfigError(`${found.label}: expected ${allowed}, got a value that is not a URL`);
  }
  if (url.protocol !== 'postgres:' && url.protocol !== 'postgresql:') {
    throw new ConfigError(`${found.label}: expected ${allowed}, got a ${url.protocol} URL`);
  }
  // `postgres:user:secret@host/db` parses as a URL too, but pg reads everything
  // after the scheme as a database name, so the password would end up in errors.
  if (!/^postgres(?:ql)?:\/\//i.test(found.raw.trim())) {
    throw new ConfigError(`${found.label}: expected ${allowed}, got a ${url.protocol} value without "//"`);
  }
  return found.raw;
}

function roomReference(label: string, raw: unknown): string {
  const allowed = 'room IDs (!id or !id:server) or aliases (#alias:server)';
  const id = typeof raw === 'string' ? raw.trim() : '';
  if (!isValidRoomId(id) && !isValidRoomAlias(id)) fail(label, allowed, raw);
  return id;
}

function rooms(src: Source, disclaimer: string): RoomConfig[] {
  const found = lookup(src, 'PINGBOARD_ROOMS', 'rooms');
  if (!found) return [];
  let list: RoomConfig[];
  if (typeof found.raw === 'string') {
    list = found.raw.split(',').filter((part) => part.trim() !== '')
      .map((part) => ({ id: roomReference(found.label, part), disclaimer }));
  } else if (Array.isArray(found.raw)) {
    // In the file a room is either a string or { id, disclaimer }.
    list = found.raw.map((entry, index) => {
      const label = `${found.label}[${index}]`;
      if (typeof entry === 'string') return { id: roomReference(label, entry), disclaimer };
      if (typeof entry !== 'object' || entry === null) fail(label, 'a room ID or { "id", "disclaimer" }', entry);
      const { id, disclaimer: own } = entry as { id?: unknown; disclaimer?: unknown };
      if (own !== undefined && (typeof own !== 'string' || own.trim() === '')) fail(`${label}.disclaimer`, 'a non-empty string', own);
      return { id: roomReference(`${label}.id`, id), disclaimer: own ?? disclaimer };
    });
  } else {
    return fail(found.label, 'a comma-separated list of room IDs or aliases', found.raw);
  }
  const seen = new Set<string>();
  for (const room of list) {
    if (seen.has(room.id)) throw new ConfigError(`${found.label}: room ${room.id} is listed twice`);
    seen.add(room.id);
  }
  return list;
}

function readConfigFile(path: string | undefined): { file: Record<string, unknown>; fileName: string | undefined } {
  if (path === undefined || path === '') return { file: {}, fileName: undefined };
  let parsed: unknown;
  try {
    parsed = JSON.parse(readFileSync(path, 'utf8'));
  } catch (err) {
    throw new ConfigError(`PINGBOARD_CONFIG: cannot read ${path} as JSON: ${(err as Error).message}`);
  }
  if (typeof parsed !== 'object' || parsed === null || Array.isArray(parsed)) {
    throw new ConfigError(`PINGBOARD_CONFIG: ${path} must hold a JSON object`);
  }
  return { file: parsed as Record<string, unknown>, fileName: path };
}

/** The documented keys of the config file, to reject typos instead of ignoring them. */
const FILE_KEYS = new Set([
  'database_url', 'data_dir', 'host', 'port', 'log_level', 'rooms', 'disclaimer', 'min_delay_ms', 'max_delay_ms',
  'min_pings', 'week_time_zone', 'week_close_day', 'week_close_hour', 'freeze_grace_minutes', 'cache_seconds',
  'homeserver_url', 'bot_user_id', 'bot_access_token', 'bot_password', 'ping_prefix', 'trusted_responders',
  'max_ping_age_seconds', 'answers_per_minute', 'queue_capacity',
]);

function optionalText(src: Source, envName: string, fileKey: string): string | undefined {
  return lookup(src, envName, fileKey) ? text(src, envName, fileKey, '') : undefined;
}

function homeserverUrl(src: Source): string | undefined {
  const found = lookup(src, 'PINGBOARD_HOMESERVER_URL', 'homeserver_url');
  if (!found) return undefined;
  const allowed = 'an http:// or https:// URL';
  if (typeof found.raw !== 'string') fail(found.label, allowed, found.raw);
  try {
    const url = new URL(found.raw);
    if (url.protocol !== 'http:' && url.protocol !== 'https:') fail(found.label, allowed, found.raw);
  } catch {
    fail(found.label, allowed, found.raw);
  }
  return found.raw.replace(/\/+$/, '');
}

function bot(src: Source): BotConfig | undefined {
  const url = homeserverUrl(src);
  if (url === undefined) return undefined;
  const userId = text(src, 'PINGBOARD_BOT_USER_ID', 'bot_user_id', '');
  if (!isValidUserId(userId)) fail('PINGBOARD_BOT_USER_ID', 'a user ID such as @pingboard:example.org (required with PINGBOARD_HOMESERVER_URL)', userId || undefined);
  const accessToken = optionalText(src, 'PINGBOARD_BOT_ACCESS_TOKEN', 'bot_access_token');
  const password = optionalText(src, 'PINGBOARD_BOT_PASSWORD', 'bot_password');
  if (accessToken === undefined && password === undefined) {
    throw new ConfigError('PINGBOARD_BOT_ACCESS_TOKEN: expected an access token, or PINGBOARD_BOT_PASSWORD to log in with, when PINGBOARD_HOMESERVER_URL is set');
  }
  const trusted = lookup(src, 'PINGBOARD_TRUSTED_RESPONDERS', 'trusted_responders');
  let trustedResponders: string[] = [];
  if (trusted) {
    const list = typeof trusted.raw === 'string' ? trusted.raw.split(',').map((s) => s.trim()).filter(Boolean) : trusted.raw;
    if (!Array.isArray(list) || !list.every((id) => typeof id === 'string' && isValidUserId(id))) {
      fail(trusted.label, 'a comma-separated list of user IDs', trusted.raw);
    }
    trustedResponders = list as string[];
  }
  const pingPrefix = text(src, 'PINGBOARD_PING_PREFIX', 'ping_prefix', '!ping');
  if (/\s/.test(pingPrefix)) fail('PINGBOARD_PING_PREFIX', 'a prefix without white space', pingPrefix);
  return {
    homeserverUrl: url,
    userId,
    accessToken,
    password,
    pingPrefix,
    trustedResponders,
    maxPingAgeSeconds: integer(src, 'PINGBOARD_MAX_PING_AGE_SECONDS', 'max_ping_age_seconds', 300, 1, 86_400),
    answersPerMinute: integer(src, 'PINGBOARD_ANSWERS_PER_MINUTE', 'answers_per_minute', 5, 1, 10_000),
    queueCapacity: integer(src, 'PINGBOARD_QUEUE_CAPACITY', 'queue_capacity', 10_000, 1, 10_000_000),
  };
}

/**
 * Parses and validates the whole configuration. `configPath` (from `--config`)
 * takes the place of PINGBOARD_CONFIG when given.
 */
export function loadConfig(env: NodeJS.ProcessEnv, configPath?: string): Config {
  const { file, fileName } = readConfigFile(configPath ?? env['PINGBOARD_CONFIG']);
  for (const key of Object.keys(file)) {
    if (!FILE_KEYS.has(key)) throw new ConfigError(`${fileName}: unknown setting "${key}"; known: ${[...FILE_KEYS].join(', ')}`);
  }
  const src: Source = { env, file, fileName };
  const disclaimer = text(src, 'PINGBOARD_DISCLAIMER', 'disclaimer', DEFAULT_DISCLAIMER);
  const minDelayMs = integer(src, 'PINGBOARD_MIN_DELAY_MS', 'min_delay_ms', 10, 1, 86_400_000);
  const maxDelayMs = integer(src, 'PINGBOARD_MAX_DELAY_MS', 'max_delay_ms', 600_000, 1, 86_400_000);
  if (maxDelayMs < minDelayMs) {
    throw new ConfigError(`PINGBOARD_MAX_DELAY_MS: expected at least PINGBOARD_MIN_DELAY_MS (${minDelayMs}), got ${maxDelayMs}`);
  }
  const config: Config = {
    database: { url: databaseUrl(src), dataDir: text(src, 'PINGBOARD_DATA_DIR', 'data_dir', './data') },
    http: {
      host: text(src, 'PINGBOARD_HOST', 'host', '127.0.0.1'),
      port: integer(src, 'PINGBOARD_PORT', 'port', 8080, 0, 65535),
    },
    logLevel: oneOf(src, 'PINGBOARD_LOG_LEVEL', 'log_level', 'info', LOG_LEVELS),
    rooms: rooms(src, disclaimer),
    stats: { minDelayMs, maxDelayMs, minPings: integer(src, 'PINGBOARD_MIN_PINGS', 'min_pings', 1, 1, 1_000_000) },
    weeks: {
      timeZone: timeZone(src, 'PINGBOARD_WEEK_TIME_ZONE', 'week_time_zone', 'UTC'),
      closeWeekday: WEEKDAYS.indexOf(oneOf(src, 'PINGBOARD_WEEK_CLOSE_DAY', 'week_close_day', 'monday', WEEKDAYS)) + 1,
      closeHour: integer(src, 'PINGBOARD_WEEK_CLOSE_HOUR', 'week_close_hour', 0, 0, 23),
      graceMinutes: integer(src, 'PINGBOARD_FREEZE_GRACE_MINUTES', 'freeze_grace_minutes', 60, 0, 10_080),
    },
    cacheSeconds: integer(src, 'PINGBOARD_CACHE_SECONDS', 'cache_seconds', 60, 0, 3600),
    bot: bot(src),
  };
  return deepFreeze(config);
}

function deepFreeze<T>(value: T): T {
  if (typeof value === 'object' && value !== null) {
    for (const inner of Object.values(value)) deepFreeze(inner);
    Object.freeze(value);
  }
  return value;
}
