// /leaderboard.md and /leaderboard.json: the same selection in two formats.
import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox';
import { Type } from '@fastify/type-provider-typebox';
import { renderLeaderboardJson } from '../../render/leaderboard-json.ts';
import { renderNewsletterTable } from '../../render/markdown.ts';
import { selectLeaderboard } from '../../stats/selection.ts';
import type { HttpDeps } from '../app.ts';
import { sendCacheable } from '../caching.ts';
import { errorResponses, LeaderboardBody, LeaderboardQuerystring } from '../schemas.ts';

export const leaderboardRoutes: FastifyPluginAsyncTypebox<HttpDeps> = async (app, deps) => {
  const selectionDeps = { db: deps.database.db, statistics: deps.statistics, rooms: deps.rooms };

  app.get('/leaderboard.md', {
    schema: {
      summary: 'The newsletter table ("Dept of Ping"), in markdown',
      querystring: LeaderboardQuerystring,
      response: { 200: { content: { 'text/markdown': { schema: Type.String() } } }, ...errorResponses },
    },
  }, async (request, reply) => {
    const { limit, ...query } = request.query;
    const board = await selectLeaderboard(selectionDeps, query);
    reply.type('text/markdown; charset=utf-8');
    return sendCacheable(request, reply, renderNewsletterTable(board.servers, limit), board.frozenAt !== null, deps.cacheSeconds);
  });

  app.get('/leaderboard.json', {
    schema: {
      summary: 'The ranking with every figure, for dashboards',
      querystring: LeaderboardQuerystring,
      response: { 200: LeaderboardBody, ...errorResponses },
    },
  }, async (request, reply) => {
    const { limit, ...query } = request.query;
    const board = await selectLeaderboard(selectionDeps, query);
    reply.type('application/json; charset=utf-8');
    return sendCacheable(request, reply, JSON.stringify(renderLeaderboardJson(board, limit)), board.frozenAt !== null, deps.cacheSeconds);
  });
};
