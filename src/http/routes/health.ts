import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox';
import { Type } from '@fastify/type-provider-typebox';
import { pingDatabase } from '../../db/database.ts';
import type { HttpDeps } from '../app.ts';

const HealthBody = Type.Object({
  status: Type.Union([Type.Literal('ok'), Type.Literal('unavailable')]),
  database: Type.Object({ engine: Type.String(), ok: Type.Boolean(), latency_ms: Type.Number(), error: Type.Optional(Type.String()) }),
});

export const healthRoutes: FastifyPluginAsyncTypebox<HttpDeps> = async (app, deps) => {
  app.get('/healthz', {
    schema: { summary: 'Liveness and the database\'s state', response: { 200: HealthBody, 503: HealthBody } },
  }, async (request, reply) => {
    const started = performance.now();
    const { engine } = deps.database;
    try {
      await pingDatabase(deps.database);
      return { status: 'ok' as const, database: { engine, ok: true, latency_ms: performance.now() - started } };
    } catch (err) {
      request.log.warn({ err }, 'health check: database unavailable');
      return reply.code(503).send({
        status: 'unavailable' as const,
        database: { engine, ok: false, latency_ms: performance.now() - started, error: (err as Error).message || String(err) },
      });
    }
  });
};
