// The operator's routes, behind a bearer token (PINGBOARD_ADMIN_TOKEN; without
// it they are not registered at all): exclusions, deleting a ping's samples,
// freezing a week again.
import { createHash, timingSafeEqual } from 'node:crypto';
import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox';
import { Type } from '@fastify/type-provider-typebox';
import { listExclusions } from '../../stats/exclusions.ts';
import { exclusionJson } from '../../render/leaderboard-json.ts';
import { resolveRoom } from '../../stats/selection.ts';
import type { OperatorDeps } from '../deps.ts';
import type { RouteDeps } from '../views.ts';
import { ErrorBody, errorResponses, ExclusionBody, PRINTABLE, RoomParam, ServerParam, WeekParam } from '../schemas.ts';

/** Who did it, in exclusions and in a week's history. */
export const OPERATOR = 'operator';

const digest = (text: string) => createHash('sha256').update(text).digest();

const RoomQuery = Type.Object({ room: Type.Optional(RoomParam) }, { additionalProperties: false });
const ReasonBody = Type.Object(
  { reason: Type.String({ minLength: 1, maxLength: 1000 }) },
  { additionalProperties: false },
);
const adminErrors = { ...errorResponses, 401: ErrorBody };

export const adminRoutes: FastifyPluginAsyncTypebox<RouteDeps & { operator: OperatorDeps }> = async (app, deps) => {
  const selectionDeps = deps.views.selection;
  const { controls } = deps.operator;
  // Compared as digests, in constant time: the answer says nothing about how close a guess was.
  const expected = digest(`Bearer ${deps.operator.token}`);

  app.addHook('onRequest', async (request, reply) => {
    const given = request.headers.authorization;
    if (given !== undefined && timingSafeEqual(digest(given), expected)) return;
    await reply.code(401).header('www-authenticate', 'Bearer realm="pingboard"').send({
      error: 'Unauthorized',
      message: "these routes need the operator's bearer token (Authorization: Bearer …)",
    });
  });

  app.get(
    '/api/v1/admin/exclusions',
    {
      schema: {
        summary: "Servers excluded from the room's rankings (operator)",
        security: [{ bearer: [] }],
        querystring: RoomQuery,
        response: { 200: Type.Object({ room: Type.String(), exclusions: Type.Array(ExclusionBody) }), ...adminErrors },
      },
    },
    async (request) => {
      const room = await resolveRoom(selectionDeps, request.query.room);
      return { room: room.id, exclusions: (await listExclusions(deps.database.db, room.id)).map(exclusionJson) };
    },
  );

  app.put(
    '/api/v1/admin/exclusions/:server',
    {
      schema: {
        summary: "Exclude a server from the room's rankings, with a reason shown beside them (operator)",
        security: [{ bearer: [] }],
        params: Type.Object({ server: ServerParam }),
        querystring: RoomQuery,
        body: ReasonBody,
        response: { 200: ExclusionBody, ...adminErrors },
      },
    },
    async (request) => {
      const room = await resolveRoom(selectionDeps, request.query.room);
      const exclusion = await controls.exclude(room, request.params.server, request.body.reason, OPERATOR);
      request.log.info({ room: room.id, server: exclusion.server }, 'server excluded by the operator');
      return exclusionJson(exclusion);
    },
  );

  app.delete(
    '/api/v1/admin/exclusions/:server',
    {
      schema: {
        summary: 'Rank an excluded server again (operator)',
        security: [{ bearer: [] }],
        params: Type.Object({ server: ServerParam }),
        querystring: RoomQuery,
        response: { 204: Type.Null(), ...adminErrors },
      },
    },
    async (request, reply) => {
      const room = await resolveRoom(selectionDeps, request.query.room);
      if (!(await controls.include(room, request.params.server))) {
        return reply
          .code(404)
          .send({ error: 'Not Found', message: `${request.params.server} is not excluded in ${room.id}` });
      }
      request.log.info({ room: room.id, server: request.params.server }, 'server included again by the operator');
      return reply.code(204).send(null);
    },
  );

  app.delete(
    '/api/v1/admin/pings/:eventId',
    {
      schema: {
        summary: 'Delete every sample of one ping (operator)',
        security: [{ bearer: [] }],
        params: Type.Object({ eventId: Type.String({ minLength: 2, maxLength: 255, pattern: PRINTABLE }) }),
        querystring: RoomQuery,
        response: {
          200: Type.Object({ room: Type.String(), ping_event_id: Type.String(), deleted: Type.Integer() }),
          ...adminErrors,
        },
      },
    },
    async (request, reply) => {
      const room = await resolveRoom(selectionDeps, request.query.room);
      const deleted = await controls.deletePing(room, request.params.eventId);
      if (deleted === 0)
        return reply
          .code(404)
          .send({ error: 'Not Found', message: `no samples of ${request.params.eventId} in ${room.id}` });
      request.log.info(
        { room: room.id, ping: request.params.eventId, deleted },
        'samples of a ping deleted by the operator',
      );
      return { room: room.id, ping_event_id: request.params.eventId, deleted };
    },
  );

  app.post(
    '/api/v1/admin/weeks/:week/refreeze',
    {
      schema: {
        summary:
          "Compute a closed week again and publish it as its next version; the replaced one stays in the week's history (operator)",
        security: [{ bearer: [] }],
        params: Type.Object({ week: WeekParam }),
        querystring: RoomQuery,
        body: ReasonBody,
        response: {
          200: Type.Object({
            room: Type.String(),
            week: Type.String(),
            version: Type.Integer(),
            frozen_at: Type.String({ format: 'date-time' }),
            servers: Type.Integer(),
          }),
          ...adminErrors,
        },
      },
    },
    async (request) => {
      const room = await resolveRoom(selectionDeps, request.query.room);
      const frozen = await controls.refreeze(room, request.params.week, OPERATOR, request.body.reason);
      request.log.info(
        { room: room.id, week: frozen.week, version: frozen.version },
        'week frozen again by the operator',
      );
      return {
        room: room.id,
        week: frozen.week,
        version: frozen.version,
        frozen_at: frozen.frozenAt.toISOString(),
        servers: frozen.servers.length,
      };
    },
  );
};
