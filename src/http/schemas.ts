// Schemas shared by routes: fastify validates requests and serializes
// responses with them, so the API cannot drift from its description.
import type { FastifyRequest } from 'fastify';
import { Type } from '@fastify/type-provider-typebox';
import { isDecimalInteger } from '../decimal.ts';
import { InputError } from '../errors.ts';
import { MAX_DAYS } from '../stats/selection.ts';

export const ErrorBody = Type.Object({
  error: Type.String(),
  message: Type.String(),
  parameter: Type.Optional(Type.String()),
});

export const errorResponses = { 400: ErrorBody, 404: ErrorBody, 500: ErrorBody, 503: ErrorBody };

interface IntegerSchema {
  readonly type?: unknown;
  readonly minimum?: number;
  readonly maximum?: number;
}

/**
 * A preValidation hook for a plugin's routes: every integer query parameter
 * must be written in plain decimal digits before ajv coerces it, as ajv reads
 * `1e400` as Infinity and `0x10` as 16. What passes is then converted exactly
 * once, by ajv, so the value validated is the value used and cached.
 */
export async function refuseNonDecimalIntegers(request: FastifyRequest): Promise<void> {
  const properties =
    (request.routeOptions.schema?.querystring as { properties?: Record<string, IntegerSchema> } | undefined)
      ?.properties ?? {};
  const query = request.query as Record<string, unknown>;
  for (const [name, schema] of Object.entries(properties)) {
    if (schema.type !== 'integer' || !Object.hasOwn(query, name)) continue;
    const raw = query[name];
    for (const value of Array.isArray(raw) ? raw : [raw]) {
      if (typeof value === 'string' && isDecimalInteger(value)) continue;
      const range =
        schema.maximum === undefined
          ? ` of at least ${schema.minimum ?? 0}`
          : ` from ${schema.minimum ?? 0} to ${schema.maximum}`;
      throw new InputError(name, `expected a decimal integer${range}, got ${JSON.stringify(value)}`);
    }
  }
}

/**
 * A preValidation hook: a body field the schema declares a string must be
 * one as sent. ajv's coercion (on for query strings, where everything is
 * text) would store `{"reason": 1}` as "1".
 */
export async function refuseCoercedStrings(request: FastifyRequest): Promise<void> {
  const properties = (
    request.routeOptions.schema?.body as { properties?: Record<string, { type?: unknown }> } | undefined
  )?.properties;
  const body = request.body;
  if (!properties || typeof body !== 'object' || body === null || Array.isArray(body)) return;
  for (const [name, schema] of Object.entries(properties)) {
    const value = (body as Record<string, unknown>)[name];
    if (schema.type === 'string' && Object.hasOwn(body, name) && typeof value !== 'string') {
      throw new InputError(
        name,
        `expected a string, got ${value === null ? 'null' : Array.isArray(value) ? 'an array' : typeof value}`,
      );
    }
  }
}

/**
 * No control characters in names a request carries: none belongs in a room,
 * server, week or event, and PostgreSQL refuses NUL outright.
 */
export const PRINTABLE = '^[^\\u0000-\\u001f\\u007f]*$';

export const RoomParam = Type.String({
  minLength: 2,
  maxLength: 255,
  pattern: PRINTABLE,
  description: 'A room ID (!id:server) or a configured alias',
});

/** A ping server's name in a path: any name that holds samples, so wider than the server-name grammar. */
export const ServerParam = Type.String({ minLength: 1, maxLength: 300, pattern: PRINTABLE });

/** An ISO week in a path, checked by the route (its message names the expected form). */
export const WeekParam = Type.String({ minLength: 1, maxLength: 20, pattern: PRINTABLE });

/**
 * Rows of /leaderboard.md and /leaderboard.json unless `limit` says otherwise:
 * the newsletter's top 10. The page's copy button copies exactly what /leaderboard.md returns.
 */
export const NEWSLETTER_ROWS = 10;

/** A room and a window: a calendar week or the last days. */
const WindowParams = {
  room: Type.Optional(RoomParam),
  week: Type.Optional(Type.String({ pattern: '^\\d{4}-W\\d{2}$', description: 'ISO week, e.g. 2026-W47' })),
  days: Type.Optional(Type.Integer({ minimum: 1, maximum: MAX_DAYS, description: 'Rolling window length; default 7' })),
};

export const LeaderboardQuerystring = Type.Object(
  {
    ...WindowParams,
    limit: Type.Integer({ minimum: 1, maximum: 1000, default: NEWSLETTER_ROWS, description: 'Number of rows' }),
  },
  { additionalProperties: false },
);

const FigureFields = {
  median_ms: Type.Number(),
  mean_ms: Type.Number(),
  gmean_ms: Type.Number(),
  p90_ms: Type.Number(),
  min_ms: Type.Number(),
  max_ms: Type.Number(),
  pings: Type.Integer(),
  samples: Type.Integer(),
};

/** Null where no probe measured the server (the clock: where no other probe of the process saw its probe's pings). */
export const ProbeFields = {
  median_rtt_ms: Type.Union([Type.Number(), Type.Null()]),
  loss_rate: Type.Union([Type.Number(), Type.Null()]),
  /** How far the server's clock runs ahead of Pingboard's (negative: behind), within ± clock_offset_bound_ms. */
  clock_offset_ms: Type.Union([Type.Number(), Type.Null()]),
  clock_offset_bound_ms: Type.Union([Type.Number(), Type.Null()]),
  /** The offset is beyond its bound by more than the threshold (PINGBOARD_CLOCK_OFFSET_THRESHOLD_MS). */
  clock_skew_suspected: Type.Union([Type.Boolean(), Type.Null()]),
};

export const RankedServerBody = Type.Object({
  rank: Type.Integer(),
  server: Type.String(),
  ...FigureFields,
  ...ProbeFields,
  responders: Type.Array(Type.Object({ server: Type.String(), ...FigureFields })),
});

export const WindowBody = Type.Object({
  kind: Type.Union([Type.Literal('rolling'), Type.Literal('week')]),
  week: Type.Union([Type.String(), Type.Null()]),
  start: Type.String({ format: 'date-time' }),
  end: Type.String({ format: 'date-time' }),
  end_inclusive: Type.Boolean(),
  frozen: Type.Boolean(),
  frozen_at: Type.Union([Type.String({ format: 'date-time' }), Type.Null()]),
  /** Frozen weeks: 1, then one more each time the week was frozen again. */
  version: Type.Union([Type.Integer({ minimum: 1 }), Type.Null()]),
});

export const ExclusionBody = Type.Object({
  server: Type.String(),
  reason: Type.String(),
  excluded_by: Type.String(),
  excluded_at: Type.String({ format: 'date-time' }),
});

export const LeaderboardBody = Type.Object({
  room: Type.String(),
  room_ids: Type.Array(Type.String()),
  disclaimer: Type.String(),
  window: WindowBody,
  generated_at: Type.String({ format: 'date-time' }),
  filters: Type.Object({ min_delay_ms: Type.Integer(), max_delay_ms: Type.Integer(), min_pings: Type.Integer() }),
  servers_ranked: Type.Integer(),
  rows: Type.Array(RankedServerBody),
  /** Servers left out of the ranking, with the reason. */
  excluded: Type.Array(ExclusionBody),
  probes: Type.Array(
    Type.Object({
      server: Type.String(),
      pings_sent: Type.Integer(),
      pings_lost: Type.Integer(),
      send_failures: Type.Integer(),
      ...ProbeFields,
    }),
  ),
});

export const MatrixQuerystring = Type.Object(WindowParams, { additionalProperties: false });

export const MatrixBody = Type.Object({
  room: Type.String(),
  start: Type.String({ format: 'date-time' }),
  end: Type.String({ format: 'date-time' }),
  /** An offset is flagged once it is beyond its bound by more than this. */
  threshold_ms: Type.Number(),
  servers: Type.Array(Type.String()),
  /** Per ordered pair of servers: from a probe's send request going out to another probe's sync bringing the ping. */
  pairs: Type.Array(
    Type.Object({
      from: Type.String(),
      to: Type.String(),
      median_ms: Type.Number(),
      p90_ms: Type.Number(),
      count: Type.Integer(),
    }),
  ),
  /** Per sender server: how far its clock runs ahead of Pingboard's (negative: behind), within ± bound_ms. */
  offsets: Type.Array(
    Type.Object({
      server: Type.String(),
      offset_ms: Type.Number(),
      bound_ms: Type.Number(),
      samples: Type.Integer(),
      flagged: Type.Boolean(),
    }),
  ),
});
