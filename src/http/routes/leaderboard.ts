// /leaderboard.md and /leaderboard.json: the same selection in two formats.
import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox';
import { Type } from '@fastify/type-provider-typebox';
import type { RouteDeps } from '../views.ts';
import { sendCacheable } from '../caching.ts';
import { errorResponses, LeaderboardBody, LeaderboardQuerystring, refuseNonDecimalIntegers } from '../schemas.ts';

export const leaderboardRoutes: FastifyPluginAsyncTypebox<RouteDeps> = async (app, deps) => {
  app.addHook('preValidation', refuseNonDecimalIntegers);

  app.get(
    '/leaderboard.md',
    {
      schema: {
        summary: 'The newsletter table ("Dept of Ping"), in markdown',
        querystring: LeaderboardQuerystring,
        response: { 200: { content: { 'text/markdown': { schema: Type.String() } } }, ...errorResponses },
      },
    },
    async (request, reply) => {
      const { limit, ...query } = request.query;
      const { text, frozen } = await deps.views.newsletterTable(query, limit);
      reply.type('text/markdown; charset=utf-8');
      return sendCacheable(request, reply, text, frozen, deps.cacheSeconds);
    },
  );

  app.get(
    '/leaderboard.json',
    {
      schema: {
        summary: 'The ranking with every figure, for dashboards',
        querystring: LeaderboardQuerystring,
        response: { 200: LeaderboardBody, ...errorResponses },
      },
    },
    async (request, reply) => {
      const { limit, ...query } = request.query;
      const { body, frozen } = await deps.views.leaderboardJson(query, limit);
      reply.type('application/json; charset=utf-8');
      return sendCacheable(request, reply, body, frozen, deps.cacheSeconds);
    },
  );
};
