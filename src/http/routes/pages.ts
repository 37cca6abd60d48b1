// The web pages: `/` (the leaderboard) and `/servers/{server}`.
import type { FastifyError, FastifyReply } from 'fastify';
import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox';
import { Type } from '@fastify/type-provider-typebox';
import { PAGE_CONTENT_SECURITY_POLICY, RANKING_PAGE_ROWS, renderErrorPage } from '../../render/page.ts';
import { clientErrorOf } from '../client-errors.ts';
import type { RouteDeps } from '../views.ts';
import { sendCacheable } from '../caching.ts';
import { ErrorBody, refuseNonDecimalIntegers, RoomParam, ServerParam } from '../schemas.ts';

// Pages take links as people share them: parameters they do not know (a tracker's, say) are ignored.
const PageQuerystring = Type.Object({
  room: Type.Optional(RoomParam),
  // Empty is the rolling week: the week picker's first option, as a plain GET form sends it.
  week: Type.Optional(
    Type.String({
      pattern: '^(\\d{4}-W\\d{2})?$',
      description: 'ISO week, e.g. 2026-W47; empty or absent: the rolling week',
    }),
  ),
});

const LeaderboardPageQuerystring = Type.Object({
  ...PageQuerystring.properties,
  page: Type.Integer({
    minimum: 1,
    default: 1,
    description: `Which ${RANKING_PAGE_ROWS} rows of the ranking: 1 is ranks 1–${RANKING_PAGE_ROWS}; past the last page is a 400`,
  }),
});

const HtmlPage = { content: { 'text/html': { schema: Type.String() } } };
/** A page's own mistakes are pages too (a person reads them); the service's failures stay JSON, as everywhere. */
const pageResponses = {
  200: HtmlPage,
  400: { description: 'A parameter the page cannot use, as an HTML page saying which', ...HtmlPage },
  404: { description: 'No such room or server, as an HTML page', ...HtmlPage },
  500: ErrorBody,
  503: ErrorBody,
};

/** What a person reads for a refused parameter: the page's own words where the validator's would be a regular expression. */
function pageErrorSentence(err: FastifyError, parameter: string | undefined, value: unknown, message: string): string {
  if (parameter === 'week' && typeof value === 'string') {
    return `"${value}" is not a week: write it as year and ISO week, like 2026-W47, or leave it out for the rolling week.`;
  }
  // Anything but a page number as it would be written (`05`, `1e1`, `0`; the validator may have made a number of it already).
  if (
    parameter === 'page' &&
    value !== undefined &&
    !(String(Number(value)) === String(value) && Number.isSafeInteger(Number(value)) && Number(value) >= 1)
  ) {
    return `"${value}" is not a page number: pages are counted from 1.`;
  }
  const words =
    parameter !== undefined && message.startsWith(`${parameter}: `) ? message.slice(parameter.length + 2) : message;
  // The validator's words ("must not contain control characters") need the parameter they are about.
  if (err.validation && parameter !== undefined) return `The ${parameter} in the address ${words}.`;
  return `${words.charAt(0).toUpperCase()}${words.slice(1)}.`;
}

/** The week picker sends an empty week for the rolling one: one page, one cache entry, whichever way it is asked for. */
const rollingIfEmpty = (week: string | undefined) => week || undefined;

function setPageHeaders(reply: FastifyReply): void {
  reply
    .type('text/html; charset=utf-8')
    .header('content-security-policy', PAGE_CONTENT_SECURITY_POLICY)
    .header('x-content-type-options', 'nosniff');
}

/** An address no route takes, asked for by a browser: a page saying so, as for an unknown server. */
export function sendPageNotFound(reply: FastifyReply, path: string): FastifyReply {
  setPageHeaders(reply);
  return reply.code(404).send(renderErrorPage(404, 'Not found', `There is no page at ${path}.`));
}

export const pageRoutes: FastifyPluginAsyncTypebox<RouteDeps> = async (app, deps) => {
  app.addHook('preValidation', refuseNonDecimalIntegers);
  // Only these routes' errors: the JSON routes keep their JSON ones. Anything not the client's goes on to the app's handler.
  app.setErrorHandler((err: FastifyError, request, reply) => {
    const client = clientErrorOf(err);
    if (client === undefined) throw err;
    const { parameter, message } = client.body;
    const value = parameter === undefined ? undefined : (request.query as Record<string, unknown>)[parameter];
    const title = client.statusCode === 404 ? 'Not found' : 'Not a valid address';
    setPageHeaders(reply);
    return reply
      .code(client.statusCode)
      .send(renderErrorPage(client.statusCode, title, pageErrorSentence(err, parameter, value, message)));
  });

  app.get(
    '/',
    {
      schema: {
        summary: 'The leaderboard page (HTML): ranking, podium, trends, room and week pickers',
        querystring: LeaderboardPageQuerystring,
        response: pageResponses,
      },
    },
    async (request, reply) => {
      const { room, page } = request.query;
      const week = rollingIfEmpty(request.query.week);
      const html = await deps.views.leaderboardPage(room, week, page);
      setPageHeaders(reply);
      return sendCacheable(request, reply, html, false, deps.cacheSeconds);
    },
  );

  app.get(
    '/servers/:server',
    {
      schema: {
        summary:
          "One ping server's page (HTML): weekly medians as a chart, this week's delay distribution, latest samples per responder",
        params: Type.Object({ server: ServerParam }),
        querystring: PageQuerystring,
        response: pageResponses,
      },
    },
    async (request, reply) => {
      const { server } = request.params;
      const { room } = request.query;
      const week = rollingIfEmpty(request.query.week);
      const html = await deps.views.serverPage(server, room, week);
      setPageHeaders(reply);
      return sendCacheable(request, reply, html, false, deps.cacheSeconds);
    },
  );
};
