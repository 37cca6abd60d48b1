import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox';
import { Type } from '@fastify/type-provider-typebox';
import { pingDatabase } from '../../db/database.ts';
import type { NotFollowedRoom } from '../../matrix/follow.ts';
import type { HttpDeps } from '../app.ts';

/** The bot's own description of a room it is not in (a type only: HTTP never calls the bot). */
export type RoomNotFollowed = NotFollowedRoom;

const NotFollowed = Type.Object({
  room: Type.String({ description: 'The configured room (ID or alias)' }),
  room_id: Type.Union([Type.String(), Type.Null()], { description: 'The room the bot cannot join: the configured one, or its replacement after an upgrade; null while an alias does not resolve' }),
  reason: Type.Union([Type.Literal('join'), Type.Literal('upgrade')]),
  since: Type.String({ format: 'date-time' }),
  attempts: Type.Integer(),
  last_failure: Type.String({ description: 'A Matrix error code, http_<status> or no_response' }),
});

const HealthBody = Type.Object({
  status: Type.Union([Type.Literal('ok'), Type.Literal('degraded'), Type.Literal('unavailable')], {
    description: 'degraded: the bot is not in a room it should watch (see rooms.not_followed); it keeps trying, a restart would not help',
  }),
  database: Type.Object({ engine: Type.String(), ok: Type.Boolean(), latency_ms: Type.Number(), error: Type.Optional(Type.String()) }),
  rooms: Type.Object({ not_followed: Type.Array(NotFollowed) }),
});

export const healthRoutes: FastifyPluginAsyncTypebox<HttpDeps> = async (app, deps) => {
  app.get('/healthz', {
    schema: { summary: 'Liveness, the database\'s state, and rooms the bot is not in', response: { 200: HealthBody, 503: HealthBody } },
  }, async (request, reply) => {
    const started = performance.now();
    const { engine } = deps.database;
    const notFollowed = (deps.roomsNotFollowed?.() ?? []).map((r) => ({
      room: r.room, room_id: r.roomId ?? null, reason: r.reason, since: r.since.toISOString(), attempts: r.attempts, last_failure: r.lastFailure,
    }));
    const rooms = { not_followed: notFollowed };
    try {
      await pingDatabase(deps.database);
      const status = notFollowed.length > 0 ? 'degraded' as const : 'ok' as const;
      return { status, database: { engine, ok: true, latency_ms: performance.now() - started }, rooms };
    } catch (err) {
      request.log.warn({ err }, 'health check: database unavailable');
      return reply.code(503).send({
        status: 'unavailable' as const,
        database: { engine, ok: false, latency_ms: performance.now() - started, error: (err as Error).message || String(err) },
        rooms,
      });
    }
  });
};
