// The fastify application as a plugin-free builder: tests call buildApp()
// and inject requests; `start` adds listen() and shutdown.
import Fastify, {
  LogController,
  type FastifyError,
  type FastifyInstance,
  type FastifyReply,
  type FastifyRequest,
} from 'fastify';
import type { Logger } from '../log.ts';
import type { TypeBoxTypeProvider } from '@fastify/type-provider-typebox';
import { healthRoutes } from './routes/health.ts';
import { leaderboardRoutes } from './routes/leaderboard.ts';
import { pingstatRoutes } from './routes/pingstat.ts';
import { apiRoutes } from './routes/api.ts';
import { metricsRoutes } from './routes/metrics.ts';
import { adminRoutes } from './routes/admin.ts';
import { pageRoutes, sendPageNotFound } from './routes/pages.ts';
import { registerOpenApi, registerOpenApiViewer } from './openapi.ts';
import { refuseCoercedStrings } from './schemas.ts';
import { clientErrorOf } from './client-errors.ts';
import type { HttpDeps } from './deps.ts';
import { Views } from './views.ts';

const HTML_DEFAULT_CONTENT_SECURITY_POLICY =
  "default-src 'none'; style-src 'unsafe-inline'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'";

// biome-ignore lint/suspicious/noExplicitAny: fastify's server, request, reply and logger generics differ between the app and its plugins; only the type provider matters here
export type App = FastifyInstance<any, any, any, any, TypeBoxTypeProvider>;

const MAX_PATH_PARAMETER = 1000;
const METHODS = ['GET', 'HEAD', 'POST', 'PUT', 'DELETE'] as const;

/**
 * Error codes of a PostgreSQL server, or a socket, that is not there (any
 * more), or too slow to answer (57014: a statement cancelled by statement_timeout),
 * or a read a hot standby cancelled to replay its primary's changes (40001, a
 * recovery conflict: DATABASE_READ_URL): each worth trying again shortly.
 */
const UNAVAILABLE_CODES = new Set([
  'ECONNREFUSED',
  'ECONNRESET',
  'ETIMEDOUT',
  'EPIPE',
  '40001',
  '57014',
  '57P01',
  '57P02',
  '57P03',
  '08000',
  '08001',
  '08003',
  '08006',
]);

export function isDatabaseUnavailable(err: unknown): boolean {
  const e = err as { code?: unknown; message?: unknown; errors?: unknown[] };
  if (typeof e?.code === 'string' && UNAVAILABLE_CODES.has(e.code)) return true;
  if (Array.isArray(e?.errors) && e.errors.some(isDatabaseUnavailable)) return true;
  return (
    typeof e?.message === 'string' &&
    /Connection terminated|timeout exceeded when trying to connect|Query read timeout|PGlite is closed/i.test(e.message)
  );
}

/**
 * Every request is logged at debug, not fastify's info: the reverse proxy in
 * front keeps the access log, and at info two lines per request were a third
 * of what a cached answer costs under the newsletter's traffic. Errors are
 * logged as fastify logs them.
 */
class RequestLogs extends LogController {
  override incomingRequest(): void {}

  override requestCompleted(error: Error | null | undefined, request: FastifyRequest, reply: FastifyReply): void {
    if (error) super.requestCompleted(error, request, reply);
    else
      reply.log.debug(
        { req: request, statusCode: reply.statusCode, responseTimeMs: reply.elapsedTime },
        'request completed',
      );
  }
}

export async function buildApp(deps: HttpDeps, log?: Logger): Promise<App> {
  const app = Fastify({
    ...(log ? { loggerInstance: log } : { logger: false }),
    logController: new RequestLogs(),
    // Path parameters as long as the schemas allow (a server name may have 300 characters, percent-encoded up to three times that).
    routerOptions: { ignoreTrailingSlash: true, maxParamLength: MAX_PATH_PARAMETER },
    // Unknown parameters are refused where a schema says so (the API's routes: a misspelt
    // `week` would otherwise serve the rolling table in its place), not dropped.
    ajv: { customOptions: { coerceTypes: 'array', removeAdditional: false, useDefaults: true } },
    // A path that is not percent-encoded UTF-8, or a segment longer than the above, never reaches a route.
    frameworkErrors: (err, _request, reply) => {
      const message =
        err.code === 'FST_ERR_MAX_PARAM_LENGTH'
          ? `a path segment is longer than ${MAX_PATH_PARAMETER} characters`
          : 'the path is not valid percent-encoded UTF-8';
      return (reply as FastifyReply).code(400).send({ error: 'Bad Request', parameter: 'path', message });
    },
  }).withTypeProvider<TypeBoxTypeProvider>();

  app.setErrorHandler((err: FastifyError, request, reply) => {
    const client = clientErrorOf(err);
    if (client) return reply.code(client.statusCode).send(client.body);
    if (isDatabaseUnavailable(err)) {
      request.log.error({ err }, 'database unavailable');
      return reply
        .code(503)
        .header('retry-after', '5')
        .send({ error: 'Service Unavailable', message: 'the database is unavailable; try again shortly' });
    }
    request.log.error({ err, url: request.url }, 'request failed');
    return reply.code(500).send({ error: 'Internal Server Error', message: 'internal error; see the server log' });
  });
  app.setNotFoundHandler((request, reply) => {
    const path = request.url.split('?')[0]!;
    // A path that exists for other methods is a 405 naming them, not a 404.
    const allowed = METHODS.filter(
      (method) => method !== request.method && app.findRoute({ method, url: path }) !== null,
    );
    if (allowed.length > 0) {
      return reply
        .code(405)
        .header('allow', allowed.join(', '))
        .send({
          error: 'Method Not Allowed',
          message: `${request.method} is not allowed on ${path}; allowed: ${allowed.join(', ')}`,
        });
    }
    // A browser gets a page; the API, and any client that does not ask for HTML, the JSON error.
    if (!path.startsWith('/api/') && /\btext\/html\b/.test(request.headers.accept ?? ''))
      return sendPageNotFound(reply, path);
    return reply.code(404).send({ error: 'Not Found', message: `no route for ${request.method} ${path}` });
  });

  // JSON bodies are read as UTF-8 whatever the header says: any other charset is refused, not misread.
  app.addHook('onRequest', async (request, reply) => {
    const charset = /;\s*charset\s*=\s*"?([^";\s]+)/i.exec(request.headers['content-type'] ?? '')?.[1]?.toLowerCase();
    if (charset !== undefined && charset !== 'utf-8' && charset !== 'utf8' && charset !== 'us-ascii') {
      return reply
        .code(415)
        .send({ error: 'Unsupported Media Type', message: `charset=${charset}: bodies are read as UTF-8 only` });
    }
    return undefined;
  });
  app.addHook('preValidation', refuseCoercedStrings);
  // Every HTML answer gets a policy: the pages set their own (with their script's and style's hashes); the
  // pingstat-compatible table has neither, so nothing but its inline style may run or load.
  app.addHook('onSend', async (_request, reply, payload) => {
    reply.header('x-content-type-options', 'nosniff');
    if (
      String(reply.getHeader('content-type') ?? '').startsWith('text/html') &&
      !reply.hasHeader('content-security-policy')
    ) {
      reply.header('content-security-policy', HTML_DEFAULT_CONTENT_SECURITY_POLICY);
    }
    return payload;
  });

  const readerDeps = deps.reads ? { ...deps, ...deps.reads } : deps;
  await registerOpenApi(app);
  // The public routes read where DATABASE_READ_URL points (a replica); health, metrics and the operator's stay on the primary.
  const views = new Views(readerDeps);
  await app.register(healthRoutes, deps);
  await app.register(leaderboardRoutes, { ...readerDeps, views });
  await app.register(pingstatRoutes, { ...readerDeps, views });
  await app.register(apiRoutes, { ...readerDeps, views });
  await app.register(metricsRoutes, deps);
  const { operator } = deps;
  if (operator) await app.register(adminRoutes, { ...deps, views, operator });
  await app.register(pageRoutes, { ...readerDeps, views });
  await registerOpenApiViewer(app);
  return app;
}
