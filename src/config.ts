// Configuration is read once, at start, from environment variables and an
// optional JSON file (PINGBOARD_CONFIG). Environment variables win over the
// file. Every error names the setting and what it allows, so an operator can
// fix a typo without reading the code.
import { readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import cron from 'node-cron';
import { isValidRoomAlias, isValidRoomId, isValidUserId } from './matrix-ids.ts';

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
  readonly maxPingAgeSeconds: number;
  /** Answers a sender may have at once, and earns back each minute (src/matrix/rate-limit.ts). */
  readonly answersPerMinute: number;
  /** `serve` backfills this many days of the rooms' history at start (0: never). */
  readonly backfillDays: number;
}

/** What a ping and a pong are, for everything that measures: the bot, the probes and backfill. */
export interface PingConfig {
  readonly prefix: string;
  /** Responders whose pongs are recorded; empty means every sender of a well-formed pong. */
  readonly trustedResponders: readonly string[];
}

/** One probe: an account on some homeserver that pings the room on a schedule. */
export interface ProbeAccount {
  readonly id: string;
  readonly homeserverUrl: string;
  readonly userId: string;
  /** One of the two is set, as for the bot. */
  readonly accessToken: string | undefined;
  readonly password: string | undefined;
  /** The room it pings: a configured room (ID or alias); the first configured room by default. */
  readonly room: string;
}

export interface ProbesConfig {
  readonly accounts: readonly ProbeAccount[];
  /** node-cron expression of the ticks. */
  readonly schedule: string;
  /** Each probe waits a random 0…jitter seconds after a tick before it sends. */
  readonly jitterSeconds: number;
  /** A ping without any pong after this long is lost. */
  readonly timeoutSeconds: number;
  /** Responders expected to answer; once all have, a probe stops waiting early. Empty: wait for the timeout. */
  readonly responders: readonly string[];
  /** A server's measured clock offset is flagged once it exceeds its error bound by more than this (ms). */
  readonly clockOffsetThresholdMs: number;
}

export const DEFAULT_CLOCK_OFFSET_THRESHOLD_MS = 250;

export interface Config {
  readonly database: DatabaseConfig;
  readonly http: { readonly host: string; readonly port: number };
  readonly logLevel: LogLevel;
  readonly rooms: readonly RoomConfig[];
  readonly stats: StatsConfig;
  readonly weeks: WeekConfig;
  readonly cacheSeconds: number;
  readonly pings: PingConfig;
  /** Samples measured live that may wait for the database (the bot's and the probes'). */
  readonly queueCapacity: number;
  /** The echo bot; undefined when no homeserver is configured (HTTP only). */
  readonly bot: BotConfig | undefined;
  readonly probes: ProbesConfig;
  /** Ping servers that get their own label in /metrics; the rest share `other`. */
  readonly metricsServerLabels: number;
  /**
   * PINGBOARD_LEADER_LOCK: `on`, several `serve` may share the PostgreSQL
   * database and the lock holder leads (docs/instances.md); `off`, this is the
   * only one: it leads without the lock, and keeps measuring through a
   * database outage. PGlite never takes the lock.
   */
  readonly leaderLock: boolean;
  /** Raw samples and probe pings older than this are deleted (frozen weeks are kept). */
  readonly retentionDays: number;
  readonly operator: OperatorConfig;
  readonly spill: SpillConfig;
}

/** Where `serve` keeps large answers' text on disk rather than in its memory (src/spill.ts). */
export interface SpillConfig {
  /** The parent of the process's own spill directory. */
  readonly dir: string;
  /** Bytes kept there at most; 0 keeps everything in memory. */
  readonly maxBytes: number;
}

export interface DatabaseConfig {
  readonly url: string | undefined;
  /**
   * A read replica of `url` (DATABASE_READ_URL): the public HTTP routes read
   * there; writes, the leader's work, migrations and locks stay on `url`.
   */
  readonly readUrl: string | undefined;
  readonly dataDir: string;
  /** PostgreSQL: a statement of `serve` taking longer fails, so a hung database is a quick 503, not a hung request. */
  readonly queryTimeoutMs: number;
  /** PostgreSQL: how long to wait for a connection. */
  readonly connectTimeoutMs: number;
}

export interface OperatorConfig {
  /** The bearer token of the operator's HTTP routes; undefined turns them off. */
  readonly token: string | undefined;
  /** Room members with at least this power level may use `!pingboard …` in the room. */
  readonly adminPowerLevel: number;
}

export class ConfigError extends Error {
  override name = 'ConfigError';
}

export const DEFAULT_DISCLAIMER =
  "Delays are one-way: the time from the ping's origin_server_ts, stamped by the sender's homeserver, " +
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

function databaseUrl(src: Source, envName: string, fileKey: string): string | undefined {
  const found = lookup(src, envName, fileKey);
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

/** DATABASE_READ_URL: a replica of DATABASE_URL's PostgreSQL, so meaningless without it. */
function readDatabaseUrl(src: Source, primaryUrl: string | undefined): string | undefined {
  const url = databaseUrl(src, 'DATABASE_READ_URL', 'database_read_url');
  if (url !== undefined && primaryUrl === undefined) {
    throw new ConfigError(
      `${lookup(src, 'DATABASE_READ_URL', 'database_read_url')!.label}: a read replica of the PostgreSQL database in DATABASE_URL, which is unset: set DATABASE_URL too (the embedded PGlite database has no replicas)`,
    );
  }
  return url;
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
    list = found.raw
      .split(',')
      .filter((part) => part.trim() !== '')
      .map((part) => ({ id: roomReference(found.label, part), disclaimer }));
  } else if (Array.isArray(found.raw)) {
    // In the file a room is either a string or { id, disclaimer }.
    list = found.raw.map((entry, index) => {
      const label = `${found.label}[${index}]`;
      if (typeof entry === 'string') return { id: roomReference(label, entry), disclaimer };
      if (typeof entry !== 'object' || entry === null) fail(label, 'a room ID or { "id", "disclaimer" }', entry);
      const { id, disclaimer: own } = entry as { id?: unknown; disclaimer?: unknown };
      if (own !== undefined && (typeof own !== 'string' || own.trim() === ''))
        fail(`${label}.disclaimer`, 'a non-empty string', own);
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

/**
 * Every setting, as an environment variable and as a key of the config file:
 * the file's known keys, and what docs/configuration.md must list (test/docs.test.ts).
 * PINGBOARD_CONFIG, the file's own path, is not one of them.
 */
export const SETTINGS: readonly { readonly env: string; readonly key: string }[] = [
  { env: 'DATABASE_URL', key: 'database_url' },
  { env: 'DATABASE_READ_URL', key: 'database_read_url' },
  { env: 'PINGBOARD_DATA_DIR', key: 'data_dir' },
  { env: 'PINGBOARD_HOST', key: 'host' },
  { env: 'PINGBOARD_PORT', key: 'port' },
  { env: 'PINGBOARD_LOG_LEVEL', key: 'log_level' },
  { env: 'PINGBOARD_ROOMS', key: 'rooms' },
  { env: 'PINGBOARD_DISCLAIMER', key: 'disclaimer' },
  { env: 'PINGBOARD_MIN_DELAY_MS', key: 'min_delay_ms' },
  { env: 'PINGBOARD_MAX_DELAY_MS', key: 'max_delay_ms' },
  { env: 'PINGBOARD_MIN_PINGS', key: 'min_pings' },
  { env: 'PINGBOARD_WEEK_TIME_ZONE', key: 'week_time_zone' },
  { env: 'PINGBOARD_WEEK_CLOSE_DAY', key: 'week_close_day' },
  { env: 'PINGBOARD_WEEK_CLOSE_HOUR', key: 'week_close_hour' },
  { env: 'PINGBOARD_FREEZE_GRACE_MINUTES', key: 'freeze_grace_minutes' },
  { env: 'PINGBOARD_CACHE_SECONDS', key: 'cache_seconds' },
  { env: 'PINGBOARD_SPILL_DIR', key: 'spill_dir' },
  { env: 'PINGBOARD_SPILL_MAX_MB', key: 'spill_max_mb' },
  { env: 'PINGBOARD_LEADER_LOCK', key: 'leader_lock' },
  { env: 'PINGBOARD_HOMESERVER_URL', key: 'homeserver_url' },
  { env: 'PINGBOARD_BOT_USER_ID', key: 'bot_user_id' },
  { env: 'PINGBOARD_BOT_ACCESS_TOKEN', key: 'bot_access_token' },
  { env: 'PINGBOARD_BOT_PASSWORD', key: 'bot_password' },
  { env: 'PINGBOARD_PING_PREFIX', key: 'ping_prefix' },
  { env: 'PINGBOARD_TRUSTED_RESPONDERS', key: 'trusted_responders' },
  { env: 'PINGBOARD_MAX_PING_AGE_SECONDS', key: 'max_ping_age_seconds' },
  { env: 'PINGBOARD_ANSWERS_PER_MINUTE', key: 'answers_per_minute' },
  { env: 'PINGBOARD_QUEUE_CAPACITY', key: 'queue_capacity' },
  { env: 'PINGBOARD_BACKFILL_DAYS', key: 'backfill_days' },
  { env: 'PINGBOARD_PROBES', key: 'probes' },
  { env: 'PINGBOARD_PROBE_SCHEDULE', key: 'probe_schedule' },
  { env: 'PINGBOARD_PROBE_JITTER_SECONDS', key: 'probe_jitter_seconds' },
  { env: 'PINGBOARD_PROBE_TIMEOUT_SECONDS', key: 'probe_timeout_seconds' },
  { env: 'PINGBOARD_PROBE_RESPONDERS', key: 'probe_responders' },
  { env: 'PINGBOARD_CLOCK_OFFSET_THRESHOLD_MS', key: 'clock_offset_threshold_ms' },
  { env: 'PINGBOARD_METRICS_SERVER_LABELS', key: 'metrics_server_labels' },
  { env: 'PINGBOARD_RETENTION_DAYS', key: 'retention_days' },
  { env: 'PINGBOARD_ADMIN_TOKEN', key: 'admin_token' },
  { env: 'PINGBOARD_ADMIN_POWER_LEVEL', key: 'admin_power_level' },
  { env: 'PINGBOARD_DB_QUERY_TIMEOUT_MS', key: 'db_query_timeout_ms' },
  { env: 'PINGBOARD_DB_CONNECT_TIMEOUT_MS', key: 'db_connect_timeout_ms' },
];

/** To reject typos in the file instead of ignoring them. */
const FILE_KEYS = new Set(SETTINGS.map((setting) => setting.key));

function optionalText(src: Source, envName: string, fileKey: string): string | undefined {
  return lookup(src, envName, fileKey) ? text(src, envName, fileKey, '') : undefined;
}

/** An http(s) URL without its trailing slashes, or undefined when `raw` is none. */
function httpUrl(raw: unknown): string | undefined {
  if (typeof raw !== 'string') return undefined;
  try {
    const { protocol } = new URL(raw);
    return protocol === 'http:' || protocol === 'https:' ? raw.replace(/\/+$/, '') : undefined;
  } catch {
    return undefined;
  }
}

const HTTP_URL = 'an http:// or https:// URL';

function homeserverUrl(src: Source): string | undefined {
  const found = lookup(src, 'PINGBOARD_HOMESERVER_URL', 'homeserver_url');
  if (!found) return undefined;
  return httpUrl(found.raw) ?? fail(found.label, HTTP_URL, found.raw);
}

function bot(src: Source): BotConfig | undefined {
  const url = homeserverUrl(src);
  const backfillDays = integer(src, 'PINGBOARD_BACKFILL_DAYS', 'backfill_days', 0, 0, 365);
  if (url === undefined) {
    if (backfillDays > 0)
      throw new ConfigError(
        `PINGBOARD_BACKFILL_DAYS: backfilling reads the rooms through the bot's homeserver; set PINGBOARD_HOMESERVER_URL too, or 0`,
      );
    return undefined;
  }
  const userId = text(src, 'PINGBOARD_BOT_USER_ID', 'bot_user_id', '');
  if (!isValidUserId(userId))
    fail(
      'PINGBOARD_BOT_USER_ID',
      'a user ID such as @pingboard:example.org (required with PINGBOARD_HOMESERVER_URL)',
      userId || undefined,
    );
  const accessToken = optionalText(src, 'PINGBOARD_BOT_ACCESS_TOKEN', 'bot_access_token');
  const password = optionalText(src, 'PINGBOARD_BOT_PASSWORD', 'bot_password');
  if (accessToken === undefined && password === undefined) {
    throw new ConfigError(
      'PINGBOARD_BOT_ACCESS_TOKEN: expected an access token, or PINGBOARD_BOT_PASSWORD to log in with, when PINGBOARD_HOMESERVER_URL is set',
    );
  }
  return {
    homeserverUrl: url,
    userId,
    accessToken,
    password,
    maxPingAgeSeconds: integer(src, 'PINGBOARD_MAX_PING_AGE_SECONDS', 'max_ping_age_seconds', 300, 1, 86_400),
    answersPerMinute: integer(src, 'PINGBOARD_ANSWERS_PER_MINUTE', 'answers_per_minute', 20, 1, 10_000),
    backfillDays,
  };
}

function pings(src: Source): PingConfig {
  const prefix = text(src, 'PINGBOARD_PING_PREFIX', 'ping_prefix', '!ping');
  if (/\s/.test(prefix)) fail('PINGBOARD_PING_PREFIX', 'a prefix without white space', prefix);
  return { prefix, trustedResponders: userIdList(src, 'PINGBOARD_TRUSTED_RESPONDERS', 'trusted_responders') };
}

function userIdList(src: Source, envName: string, fileKey: string): string[] {
  const found = lookup(src, envName, fileKey);
  if (!found) return [];
  const list =
    typeof found.raw === 'string'
      ? found.raw
          .split(',')
          .map((s) => s.trim())
          .filter(Boolean)
      : found.raw;
  if (!Array.isArray(list) || !list.every((id) => typeof id === 'string' && isValidUserId(id))) {
    fail(found.label, 'a comma-separated list of user IDs', found.raw);
  }
  return list as string[];
}

const PROBE_KEYS = new Set(['id', 'homeserver_url', 'user_id', 'access_token', 'password', 'room']);

/** One probe of the list; messages never echo a token or password. */
function probeAccount(label: string, entry: unknown, rooms: readonly RoomConfig[]): ProbeAccount {
  if (typeof entry !== 'object' || entry === null || Array.isArray(entry)) {
    throw new ConfigError(`${label}: expected an object with id, homeserver_url, user_id and access_token or password`);
  }
  const fields = entry as Record<string, unknown>;
  for (const key of Object.keys(fields)) {
    if (!PROBE_KEYS.has(key))
      throw new ConfigError(`${label}: unknown key "${key}"; known: ${[...PROBE_KEYS].join(', ')}`);
  }
  const { id, homeserver_url: url, user_id: userId, access_token: token, password, room } = fields;
  if (typeof id !== 'string' || !/^[A-Za-z0-9._-]{1,64}$/.test(id))
    fail(`${label}.id`, '1 to 64 letters, digits, ".", "_" or "-"', id);
  const homeserverUrl = httpUrl(url) ?? fail(`${label}.homeserver_url`, HTTP_URL, url);
  if (typeof userId !== 'string' || !isValidUserId(userId))
    fail(`${label}.user_id`, 'a user ID such as @probe:example.org', userId);
  for (const [key, value] of [
    ['access_token', token],
    ['password', password],
  ] as const) {
    if (value !== undefined && (typeof value !== 'string' || value.trim() === '')) {
      throw new ConfigError(`${label}.${key}: expected a non-empty string`);
    }
  }
  if (token === undefined && password === undefined)
    throw new ConfigError(`${label}: expected access_token or password`);
  if (rooms.length === 0) throw new ConfigError(`${label}: probes need a room to ping: set PINGBOARD_ROOMS`);
  if (room !== undefined && !rooms.some((r) => r.id === room)) {
    fail(`${label}.room`, `one of the configured rooms (${rooms.map((r) => r.id).join(', ')})`, room);
  }
  return {
    id,
    homeserverUrl,
    userId,
    accessToken: token as string | undefined,
    password: password as string | undefined,
    room: (room as string | undefined) ?? rooms[0]!.id,
  };
}

function probes(src: Source, rooms: readonly RoomConfig[], botUserId: string | undefined): ProbesConfig {
  const found = lookup(src, 'PINGBOARD_PROBES', 'probes');
  let list: unknown = [];
  if (found) {
    if (typeof found.raw === 'string') {
      try {
        list = JSON.parse(found.raw);
      } catch {
        throw new ConfigError(`${found.label}: expected a JSON list of probes, got text that is not JSON`);
      }
    } else {
      list = found.raw;
    }
    if (!Array.isArray(list)) throw new ConfigError(`${found.label}: expected a list of probes`);
  }
  const accounts = (list as unknown[]).map((entry, index) => probeAccount(`${found!.label}[${index}]`, entry, rooms));
  const ids = new Set<string>();
  const users = new Set<string>(botUserId ? [botUserId] : []);
  for (const probe of accounts) {
    if (ids.has(probe.id)) throw new ConfigError(`${found!.label}: probe id ${probe.id} is listed twice`);
    // The bot ignores its own messages, and two probes on one account would read each other's pongs.
    if (users.has(probe.userId))
      throw new ConfigError(`${found!.label}: ${probe.userId} is used twice (probes and the bot need an account each)`);
    ids.add(probe.id);
    users.add(probe.userId);
  }
  const schedule = text(src, 'PINGBOARD_PROBE_SCHEDULE', 'probe_schedule', '*/10 * * * *');
  if (!cron.validate(schedule)) fail('PINGBOARD_PROBE_SCHEDULE', 'a cron expression such as "*/10 * * * *"', schedule);
  return {
    accounts,
    schedule,
    jitterSeconds: integer(src, 'PINGBOARD_PROBE_JITTER_SECONDS', 'probe_jitter_seconds', 60, 0, 3600),
    timeoutSeconds: integer(src, 'PINGBOARD_PROBE_TIMEOUT_SECONDS', 'probe_timeout_seconds', 60, 1, 3600),
    responders: userIdList(src, 'PINGBOARD_PROBE_RESPONDERS', 'probe_responders'),
    clockOffsetThresholdMs: integer(
      src,
      'PINGBOARD_CLOCK_OFFSET_THRESHOLD_MS',
      'clock_offset_threshold_ms',
      DEFAULT_CLOCK_OFFSET_THRESHOLD_MS,
      0,
      3_600_000,
    ),
  };
}

/**
 * Parses and validates the whole configuration. `configPath` (from `--config`)
 * takes the place of PINGBOARD_CONFIG when given.
 */
export function loadConfig(env: NodeJS.ProcessEnv, configPath?: string): Config {
  const { file, fileName } = readConfigFile(configPath ?? env['PINGBOARD_CONFIG']);
  for (const key of Object.keys(file)) {
    if (!FILE_KEYS.has(key))
      throw new ConfigError(`${fileName}: unknown setting "${key}"; known: ${[...FILE_KEYS].join(', ')}`);
  }
  const src: Source = { env, file, fileName };
  const disclaimer = text(src, 'PINGBOARD_DISCLAIMER', 'disclaimer', DEFAULT_DISCLAIMER);
  const minDelayMs = integer(src, 'PINGBOARD_MIN_DELAY_MS', 'min_delay_ms', 10, 1, 86_400_000);
  const maxDelayMs = integer(src, 'PINGBOARD_MAX_DELAY_MS', 'max_delay_ms', 600_000, 1, 86_400_000);
  if (maxDelayMs < minDelayMs) {
    throw new ConfigError(
      `PINGBOARD_MAX_DELAY_MS: expected at least PINGBOARD_MIN_DELAY_MS (${minDelayMs}), got ${maxDelayMs}`,
    );
  }
  const roomList = rooms(src, disclaimer);
  const botConfig = bot(src);
  const url = databaseUrl(src, 'DATABASE_URL', 'database_url');
  const config: Config = {
    database: {
      url,
      readUrl: readDatabaseUrl(src, url),
      dataDir: text(src, 'PINGBOARD_DATA_DIR', 'data_dir', './data'),
      // Both well under the 6 s after which a client waiting on a page gives up.
      queryTimeoutMs: integer(src, 'PINGBOARD_DB_QUERY_TIMEOUT_MS', 'db_query_timeout_ms', 5000, 100, 3_600_000),
      connectTimeoutMs: integer(src, 'PINGBOARD_DB_CONNECT_TIMEOUT_MS', 'db_connect_timeout_ms', 3000, 100, 600_000),
    },
    http: {
      host: text(src, 'PINGBOARD_HOST', 'host', '127.0.0.1'),
      port: integer(src, 'PINGBOARD_PORT', 'port', 8080, 0, 65535),
    },
    logLevel: oneOf(src, 'PINGBOARD_LOG_LEVEL', 'log_level', 'info', LOG_LEVELS),
    rooms: roomList,
    stats: { minDelayMs, maxDelayMs, minPings: integer(src, 'PINGBOARD_MIN_PINGS', 'min_pings', 1, 1, 1_000_000) },
    weeks: {
      timeZone: timeZone(src, 'PINGBOARD_WEEK_TIME_ZONE', 'week_time_zone', 'UTC'),
      closeWeekday: WEEKDAYS.indexOf(oneOf(src, 'PINGBOARD_WEEK_CLOSE_DAY', 'week_close_day', 'monday', WEEKDAYS)) + 1,
      closeHour: integer(src, 'PINGBOARD_WEEK_CLOSE_HOUR', 'week_close_hour', 0, 0, 23),
      graceMinutes: integer(src, 'PINGBOARD_FREEZE_GRACE_MINUTES', 'freeze_grace_minutes', 60, 0, 10_080),
    },
    cacheSeconds: integer(src, 'PINGBOARD_CACHE_SECONDS', 'cache_seconds', 60, 0, 3600),
    pings: pings(src),
    queueCapacity: integer(src, 'PINGBOARD_QUEUE_CAPACITY', 'queue_capacity', 10_000, 1, 10_000_000),
    bot: botConfig,
    probes: probes(src, roomList, botConfig?.userId),
    metricsServerLabels: integer(src, 'PINGBOARD_METRICS_SERVER_LABELS', 'metrics_server_labels', 100, 1, 10_000),
    leaderLock: oneOf(src, 'PINGBOARD_LEADER_LOCK', 'leader_lock', 'on', ['on', 'off']) === 'on',
    retentionDays: integer(src, 'PINGBOARD_RETENTION_DAYS', 'retention_days', 400, 1, 36_500),
    operator: {
      token: adminToken(src),
      adminPowerLevel: integer(src, 'PINGBOARD_ADMIN_POWER_LEVEL', 'admin_power_level', 50, 1, 1_000_000),
    },
    spill: {
      dir: text(src, 'PINGBOARD_SPILL_DIR', 'spill_dir', tmpdir()),
      maxBytes: integer(src, 'PINGBOARD_SPILL_MAX_MB', 'spill_max_mb', 2048, 0, 1_048_576) * 1024 * 1024,
    },
  };
  return deepFreeze(config);
}

/** The operator's token: long enough not to be guessed, and never echoed in an error. */
function adminToken(src: Source): string | undefined {
  const found = lookup(src, 'PINGBOARD_ADMIN_TOKEN', 'admin_token');
  if (!found) return undefined;
  if (typeof found.raw !== 'string' || found.raw.length < 32 || /\s/.test(found.raw)) {
    throw new ConfigError(
      `${found.label}: expected at least 32 characters without spaces (e.g. openssl rand -hex 32); the value given is not shown`,
    );
  }
  return found.raw;
}

function deepFreeze<T>(value: T): T {
  if (typeof value === 'object' && value !== null) {
    for (const inner of Object.values(value)) deepFreeze(inner);
    Object.freeze(value);
  }
  return value;
}
