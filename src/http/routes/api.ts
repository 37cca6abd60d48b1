// /api/v1: frozen weeks and per-server history.
import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox';
import { Type, type TSchema } from '@fastify/type-provider-typebox';
import type { FastifyReply, FastifyRequest } from 'fastify';
import { sendCacheable } from '../caching.ts';
import type { Answer, RouteDeps } from '../views.ts';
import {
  errorResponses,
  ExclusionBody,
  MatrixBody,
  MatrixQuerystring,
  ProbeFields,
  RankedServerBody,
  refuseNonDecimalIntegers,
  RoomParam,
  ServerParam,
  WeekParam,
} from '../schemas.ts';

const Timestamp = Type.String({ format: 'date-time' });
const Nullable = <T extends TSchema>(t: T) => Type.Union([t, Type.Null()]);

const WeeksBody = Type.Object({
  room: Type.String(),
  weeks: Type.Array(
    Type.Object({
      week: Type.String(),
      start: Timestamp,
      end: Timestamp,
      frozen_at: Timestamp,
      servers: Type.Integer(),
      version: Type.Integer(),
    }),
  ),
});

const frozenVersionFields = {
  version: Type.Integer(),
  frozen_at: Timestamp,
  rows: Type.Array(RankedServerBody),
  excluded: Type.Array(ExclusionBody),
};

const WeekHistoryBody = Type.Object({
  room: Type.String(),
  week: Type.String(),
  start: Timestamp,
  end: Timestamp,
  current: Type.Object(frozenVersionFields),
  /** The versions it replaced, newest first, each with who replaced it and why. */
  superseded: Type.Array(
    Type.Object({
      ...frozenVersionFields,
      superseded_at: Timestamp,
      superseded_by: Type.String(),
      reason: Type.String(),
    }),
  ),
});

const SampleBody = Type.Object({
  room_id: Type.String(),
  ping_event_id: Type.String(),
  ping_server: Type.String(),
  pinger: Type.Union([Type.String(), Type.Null()]),
  responder: Type.String(),
  responder_server: Type.String(),
  delay_ms: Type.Integer(),
  ping_ts: Timestamp,
  measured_at: Timestamp,
  source: Type.String(),
  rtt_ms: Nullable(Type.Number()),
  /** The bot's own samples: the ping event's unsigned.age as the bot's sync carried it; null where it had none. */
  ping_age_ms: Nullable(Type.Integer()),
});

const ServerBody = Type.Object({
  server: Type.String(),
  room: Type.String(),
  weeks: Type.Array(
    Type.Object({
      week: Type.String(),
      start: Timestamp,
      end: Timestamp,
      frozen: Type.Boolean(),
      rank: Nullable(Type.Integer()),
      median_ms: Nullable(Type.Number()),
      mean_ms: Nullable(Type.Number()),
      pings: Type.Integer(),
      samples: Type.Integer(),
      ...ProbeFields,
      probe_pings_sent: Type.Integer(),
      probe_pings_lost: Type.Integer(),
    }),
  ),
  latest_samples: Type.Array(SampleBody),
});

/** An answer the views wrote once, sent as written: its schema documents it, and the tests hold it to it. */
function sendApiAnswer(request: FastifyRequest, reply: FastifyReply, answer: Answer, cacheSeconds: number) {
  reply.type('application/json; charset=utf-8');
  return sendCacheable(request, reply, answer.body, answer.frozen, cacheSeconds);
}

export const apiRoutes: FastifyPluginAsyncTypebox<RouteDeps> = async (app, deps) => {
  app.addHook('preValidation', refuseNonDecimalIntegers);

  app.get(
    '/api/v1/matrix',
    {
      schema: {
        summary: "Delivery times between the probed servers, on one clock, and each server's measured clock offset",
        querystring: MatrixQuerystring,
        response: { 200: MatrixBody, ...errorResponses },
      },
    },
    async (request, reply) =>
      sendApiAnswer(request, reply, await deps.views.deliveryMatrix(request.query), deps.cacheSeconds),
  );

  app.get(
    '/api/v1/weeks',
    {
      schema: {
        summary: 'The frozen weeks of a room, newest first',
        querystring: Type.Object({ room: Type.Optional(RoomParam) }, { additionalProperties: false }),
        response: { 200: WeeksBody, ...errorResponses },
      },
    },
    async (request, reply) =>
      sendApiAnswer(request, reply, await deps.views.frozenWeeks(request.query), deps.cacheSeconds),
  );

  app.get(
    '/api/v1/weeks/:week',
    {
      schema: {
        summary: 'One frozen week as published now, and every version it replaced (after exclusions)',
        params: Type.Object({ week: WeekParam }),
        querystring: Type.Object({ room: Type.Optional(RoomParam) }, { additionalProperties: false }),
        response: { 200: WeekHistoryBody, ...errorResponses },
      },
    },
    async (request, reply) =>
      sendApiAnswer(request, reply, await deps.views.frozenWeek(request.params.week, request.query), deps.cacheSeconds),
  );

  app.get(
    '/api/v1/servers/:server',
    {
      schema: {
        summary: 'One ping server: its weekly figures over time and its latest samples',
        params: Type.Object({ server: ServerParam }),
        querystring: Type.Object(
          {
            room: Type.Optional(RoomParam),
            weeks: Type.Integer({ minimum: 1, maximum: 104, default: 12 }),
            samples: Type.Integer({ minimum: 0, maximum: 500, default: 50 }),
          },
          { additionalProperties: false },
        ),
        response: { 200: ServerBody, ...errorResponses },
      },
    },
    async (request, reply) =>
      sendApiAnswer(
        request,
        reply,
        await deps.views.serverHistory(request.params.server, request.query),
        deps.cacheSeconds,
      ),
  );
};
