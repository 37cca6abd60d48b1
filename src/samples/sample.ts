// A sample is one measured delay of one ping, as seen by one responder.
// Everything that enters storage passes through `sampleFromRecord` or is built
// by the bot from values it has already checked.
import { SAMPLE_SOURCES, type SampleSource } from '../db/schema.ts';
import { isValidEventId, isValidRoomId, isValidServerName, isValidUserId, serverOfUserId } from '../matrix-ids.ts';

export type { SampleSource };

export interface Sample {
  readonly roomId: string;
  readonly pingEventId: string;
  /** Server part of the pinger's user ID, port kept. */
  readonly pingServer: string;
  readonly pinger: string | null;
  /** The responder's user ID, or its server name when only that is known (pingstat imports). */
  readonly responder: string;
  readonly responderServer: string;
  /** Integer milliseconds; negative when the pinger's clock runs ahead. */
  readonly delayMs: number;
  /** The ping's origin_server_ts. */
  readonly pingTs: Date;
  /** When the responder measured the delay (for pongs: the pong's origin_server_ts). */
  readonly measuredAt: Date;
  readonly source: SampleSource;
  /** Round trip on the probe's monotonic clock, for `probe` samples. */
  readonly rttMs: number | null;
  /**
   * The bot's own samples: the ping event's `unsigned.age` (ms it had been on
   * the bot's homeserver when the sync brought it), where the event carried
   * one. Kept as measured; no figure rests on it.
   */
  readonly pingAgeMs?: number | null;
}

export type RecordResult = { ok: true; sample: Sample } | { ok: false; error: string };

const INT32_MIN = -(2 ** 31);
const INT32_MAX = 2 ** 31 - 1;
// Timestamps outside these bounds are typos (seconds for milliseconds) or junk.
const EARLIEST_TS = Date.UTC(2014, 0, 1);
const LATEST_TS = Date.UTC(2100, 0, 1);

class RecordError extends Error {}

function field(record: Record<string, unknown>, key: string): unknown {
  return Object.hasOwn(record, key) ? record[key] : undefined;
}

function requireString(
  record: Record<string, unknown>,
  key: string,
  valid: (v: string) => boolean,
  what: string,
): string {
  const value = field(record, key);
  if (typeof value !== 'string') throw new RecordError(`${key}: expected ${what}, got ${describe(value)}`);
  if (!valid(value)) throw new RecordError(`${key}: not ${what}: ${JSON.stringify(value.slice(0, 100))}`);
  return value;
}

function optionalString(
  record: Record<string, unknown>,
  key: string,
  valid: (v: string) => boolean,
  what: string,
): string | undefined {
  const value = field(record, key);
  return value === undefined || value === null ? undefined : requireString(record, key, valid, what);
}

function requireInteger(record: Record<string, unknown>, key: string): number {
  const value = field(record, key);
  if (typeof value !== 'number' || !Number.isInteger(value) || value < INT32_MIN || value > INT32_MAX) {
    throw new RecordError(`${key}: expected an integer number of milliseconds, got ${describe(value)}`);
  }
  return value;
}

function timestamp(record: Record<string, unknown>, key: string): Date | undefined {
  const value = field(record, key);
  if (value === undefined || value === null) return undefined;
  const ms = typeof value === 'number' ? value : typeof value === 'string' ? Date.parse(value) : Number.NaN;
  if (!Number.isFinite(ms) || ms < EARLIEST_TS || ms > LATEST_TS) {
    throw new RecordError(
      `${key}: expected milliseconds since 1970 or an ISO 8601 time between 2014 and 2100, got ${describe(value)}`,
    );
  }
  return new Date(ms);
}

function describe(value: unknown): string {
  if (value === undefined) return 'nothing';
  let text: string;
  try {
    text = JSON.stringify(value) ?? String(value);
  } catch (err) {
    // JSON.parse reads nesting of any depth; JSON.stringify recurses, and overflows the stack on 20,000 levels.
    if (!(err instanceof RangeError)) throw err;
    return `${Array.isArray(value) ? 'an array' : 'an object'} nested too deeply to show`;
  }
  return text.length > 100 ? `${text.slice(0, 100)}…` : text;
}

const SERVER = 'a valid server name';

/** A sample in Pingboard's own NDJSON schema (see docs/operations.md, "Import"). */
function fromPingboardRecord(record: Record<string, unknown>): Sample {
  const pinger = optionalString(record, 'pinger', isValidUserId, 'a user ID') ?? null;
  const pingServer =
    optionalString(record, 'ping_server', isValidServerName, SERVER) ?? (pinger && serverOfUserId(pinger));
  if (!pingServer) throw new RecordError('ping_server: required when pinger is not given');
  if (pinger && serverOfUserId(pinger) !== pingServer)
    throw new RecordError(`ping_server: ${pingServer} is not the server of pinger ${pinger}`);
  const responder = requireString(
    record,
    'responder',
    (v) => isValidUserId(v) || isValidServerName(v),
    'a user ID or server name',
  );
  const responderServer =
    optionalString(record, 'responder_server', isValidServerName, SERVER) ?? serverOfUserId(responder) ?? responder;
  const ownServer = serverOfUserId(responder) ?? responder;
  if (responderServer !== ownServer)
    throw new RecordError(`responder_server: ${responderServer} is not the server of responder ${responder}`);
  const delayMs = requireInteger(record, 'delay_ms');
  const pingTs = timestamp(record, 'ping_ts');
  if (!pingTs) throw new RecordError('ping_ts: required');
  const source = field(record, 'source') ?? 'pong';
  if (!SAMPLE_SOURCES.includes(source as SampleSource)) {
    throw new RecordError(`source: expected one of ${SAMPLE_SOURCES.join(', ')}, got ${describe(source)}`);
  }
  const rtt = field(record, 'rtt_ms') ?? null;
  if (rtt !== null && (typeof rtt !== 'number' || !Number.isFinite(rtt) || rtt < 0 || source !== 'probe')) {
    throw new RecordError(`rtt_ms: expected a non-negative number on probe samples only, got ${describe(rtt)}`);
  }
  const age = field(record, 'ping_age_ms') ?? null;
  if (
    age !== null &&
    (typeof age !== 'number' || !Number.isInteger(age) || age < 0 || age > INT32_MAX || source !== 'echo')
  ) {
    throw new RecordError(
      `ping_age_ms: expected a non-negative integer number of milliseconds on echo samples only, got ${describe(age)}`,
    );
  }
  const measuredAt = timestamp(record, 'measured_at') ?? new Date(pingTs.getTime() + delayMs);
  if (measuredAt.getTime() > LATEST_TS)
    throw new RecordError(`measured_at: ping_ts + delay_ms is past 2100 (${measuredAt.toISOString()})`);
  return {
    roomId: requireString(record, 'room_id', isValidRoomId, 'a room ID'),
    pingEventId: requireString(record, 'ping_event_id', isValidEventId, 'an event ID'),
    pingServer,
    pinger,
    responder,
    responderServer,
    delayMs,
    pingTs,
    measuredAt,
    source: source as SampleSource,
    rttMs: rtt as number | null,
    ...(age === null ? {} : { pingAgeMs: age as number }),
  };
}

/** A row of pingstat's stats.raw.json: one pong, keyed by its server only. */
function fromPingstatRow(record: Record<string, unknown>): Sample {
  const pongServer = requireString(record, 'pong_server', isValidServerName, SERVER);
  const delayMs = requireInteger(record, 'receive_diff');
  const pongTs = timestamp(record, 'pong_timestamp');
  if (!pongTs) throw new RecordError('pong_timestamp: required');
  return {
    roomId: requireString(record, 'room_id', isValidRoomId, 'a room ID'),
    pingEventId: requireString(record, 'ping_id', isValidEventId, 'an event ID'),
    pingServer: requireString(record, 'ping_server', isValidServerName, SERVER),
    pinger: null,
    responder: pongServer,
    responderServer: pongServer,
    delayMs,
    // The delay was measured as pong time minus ping origin_server_ts.
    pingTs: new Date(pongTs.getTime() - delayMs),
    measuredAt: pongTs,
    source: 'pong',
    rttMs: null,
  };
}

/** Validates one imported record, in either Pingboard's or pingstat's shape. */
export function sampleFromRecord(record: unknown): RecordResult {
  if (typeof record !== 'object' || record === null || Array.isArray(record)) {
    return { ok: false, error: `expected a JSON object, got ${describe(record)}` };
  }
  const fields = record as Record<string, unknown>;
  try {
    const sample = Object.hasOwn(fields, 'receive_diff') ? fromPingstatRow(fields) : fromPingboardRecord(fields);
    return { ok: true, sample };
  } catch (err) {
    if (err instanceof RecordError) return { ok: false, error: err.message };
    throw err;
  }
}

/** The NDJSON/JSON form of a sample, the inverse of `sampleFromRecord`. */
export function sampleToRecord(sample: Sample): Record<string, unknown> {
  return {
    room_id: sample.roomId,
    ping_event_id: sample.pingEventId,
    ping_server: sample.pingServer,
    pinger: sample.pinger,
    responder: sample.responder,
    responder_server: sample.responderServer,
    delay_ms: sample.delayMs,
    ping_ts: sample.pingTs.toISOString(),
    measured_at: sample.measuredAt.toISOString(),
    source: sample.source,
    rtt_ms: sample.rttMs,
    ping_age_ms: sample.pingAgeMs ?? null,
  };
}
