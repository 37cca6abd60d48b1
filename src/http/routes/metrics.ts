// GET /metrics: the Prometheus text format.
import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox';
import { Type } from '@fastify/type-provider-typebox';
import { CONTENT_TYPE } from '../../metrics/registry.ts';
import type { HttpDeps } from '../deps.ts';

export const metricsRoutes: FastifyPluginAsyncTypebox<HttpDeps> = async (app, deps) => {
  app.get(
    '/metrics',
    {
      schema: {
        summary: 'Counters, gauges and histograms in the Prometheus text format',
        response: { 200: { content: { 'text/plain': { schema: Type.String() } } } },
      },
    },
    async (_request, reply) => {
      reply.type(CONTENT_TYPE).header('cache-control', 'no-store');
      return deps.metrics?.() ?? '';
    },
  );
};
