// /leaderboard.md and /leaderboard.json: the same selection in two formats.
import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox';
import { Type } from '@fastify/type-provider-typebox';
import { renderLeaderboardJson } from '../../render/leaderboard-json.ts';
import { renderNewsletterTable } from '../../render/markdown.ts';
import { TtlCache } from '../../stats/cache.ts';
import { selectTable } from '../../stats/selection.ts';
import type { HttpDeps } from '../deps.ts';
import { encodeBody, sendCacheable, type EncodedBody } from '../caching.ts';
import { errorResponses, LeaderboardBody, LeaderboardQuerystring, refuseNonDecimalIntegers } from '../schemas.ts';

export const leaderboardRoutes: FastifyPluginAsyncTypebox<HttpDeps> = async (app, deps) => {
  app.addHook('preValidation', refuseNonDecimalIntegers);
  const selectionDeps = { db: deps.database.db, statistics: deps.statistics, rooms: deps.rooms };
  // The JSON carries probe figures, read from the database: kept as long as a live table, so a
  // dashboard polled by many, or the newsletter week's traffic, costs one query per period.
  const json = new TtlCache<{ body: EncodedBody; frozen: boolean }>(deps.cacheSeconds * 1000, 256);

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
      const { board } = await selectTable(selectionDeps, query, false);
      reply.type('text/markdown; charset=utf-8');
      return sendCacheable(
        request,
        reply,
        renderNewsletterTable(board.servers, limit),
        board.frozenAt !== null,
        deps.cacheSeconds,
      );
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
      // As JSON: a room reference may contain any separator.
      const key = JSON.stringify([deps.statistics.generation, query.room, query.week, query.days, limit]);
      const { body, frozen } = await json.getOrCompute(key, deps.statistics.now().getTime(), async () => {
        const { board, probes } = await selectTable(selectionDeps, query, true);
        return {
          body: encodeBody(JSON.stringify(renderLeaderboardJson(board, limit, probes))),
          frozen: board.frozenAt !== null,
        };
      });
      reply.type('application/json; charset=utf-8');
      return sendCacheable(request, reply, body, frozen, deps.cacheSeconds);
    },
  );
};
