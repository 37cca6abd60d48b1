// A drop-in for the existing aggregator's endpoints, under /rooms/{roomId}/.
// Their answers list every delay of the window (57 MB of JSON at a million
// samples): the database groups them and writes them as JSON text
// (stats/pingstat-data.ts), the reply is written as it is made, and each
// answer is made once for every client that asks for it (shared-body.ts).
import { Readable } from 'node:stream';
import type { FastifyReply } from 'fastify';
import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox';
import { Type } from '@fastify/type-provider-typebox';
import type { PingstatAges } from '../../stats/pingstat-window.ts';
import type { PingstatAnswer, RouteDeps } from '../views.ts';
import { errorResponses, RoomParam } from '../schemas.ts';
import type { SharedBody } from '../shared-body.ts';

const Params = Type.Object({ roomId: RoomParam });
// Read as pingstat reads them (see stats/pingstat-window.ts): any text, what is not an integer
// to Python means the default; a repeated parameter counts by its first value, as aiohttp's query does.
// Like pingstat, which ignores what it does not know (a caller moved over may still send its room_id).
const Age = (description: string) =>
  Type.Optional(Type.Union([Type.String(), Type.Array(Type.String())], { description }));
const Ages = Type.Object({
  max_age: Age('Seconds, an integer as Python reads it; the window starts this long ago (default one week)'),
  min_age: Age('Seconds, an integer as Python reads it; the window ends this long ago (default 0)'),
});
type AgesQuery = { max_age?: string | string[] | undefined; min_age?: string | string[] | undefined };

function firstValues(query: AgesQuery): PingstatAges {
  const first = (value: string | string[] | undefined) => (Array.isArray(value) ? value[0] : value);
  return { max_age: first(query.max_age), min_age: first(query.min_age) };
}

const Pong = Type.Object({
  diffs: Type.Record(Type.String(), Type.Number()),
  mean: Type.Number(),
  median: Type.Number(),
  gmean: Type.Number(),
});
const StatsBody = Type.Object({
  disclaimer: Type.String(),
  pings: Type.Record(
    Type.String(),
    Type.Object({
      pongs: Type.Record(Type.String(), Pong),
      pings: Type.Array(Type.String()),
      mean: Type.Number(),
      median: Type.Number(),
      gmean: Type.Number(),
    }),
  ),
  mean: Type.Number(),
  pongservers: Type.Array(Type.String()),
});
const RawBody = Type.Array(
  Type.Object({
    room_id: Type.String(),
    ping_id: Type.String(),
    pong_server: Type.String(),
    ping_server: Type.String(),
    receive_diff: Type.Integer(),
    pong_timestamp: Type.Integer(),
  }),
);

/** True when the client prefers JSON to HTML (the aggregator answers JSON on request). */
function wantsJson(accept: string | undefined): boolean {
  if (!accept) return false;
  const json = accept.indexOf('application/json');
  const html = accept.indexOf('text/html');
  return json >= 0 && (html < 0 || json < html);
}

export const pingstatRoutes: FastifyPluginAsyncTypebox<RouteDeps> = async (app, deps) => {
  /** The answer, shared with every client that asks for the same, once its first bytes are made. */
  const shared = (roomId: string, query: AgesQuery, answer: PingstatAnswer) =>
    deps.views.pingstat(roomId, firstValues(query), answer);

  const JSON_TYPE = 'application/json; charset=utf-8';

  // Written as a stream, past the response schema's serializer: the body is JSON text already. (A HEAD gets
  // the headers alone: fastify would read the whole body, from spilled files too, to throw it away.)
  function send(reply: FastifyReply, type: string, body: SharedBody): void {
    reply.type(type).send(reply.request.method === 'HEAD' ? Readable.from([]) : body.stream(reply.raw));
  }

  app.get(
    '/rooms/:roomId/stats.json',
    {
      schema: {
        summary: "Statistics in the existing aggregator's stats.json shape",
        params: Params,
        querystring: Ages,
        response: { 200: StatsBody, ...errorResponses },
      },
    },
    async (request, reply) => {
      send(reply, JSON_TYPE, await shared(request.params.roomId, request.query, 'stats.json'));
      return reply;
    },
  );

  app.get(
    '/rooms/:roomId/stats.raw.json',
    {
      schema: {
        summary: 'The raw pongs of the window, as the existing aggregator lists them',
        params: Params,
        querystring: Ages,
        response: { 200: RawBody, ...errorResponses },
      },
    },
    async (request, reply) => {
      send(reply, JSON_TYPE, await shared(request.params.roomId, request.query, 'stats.raw.json'));
      return reply;
    },
  );

  app.get(
    '/rooms/:roomId/stats',
    {
      schema: {
        summary: "The existing aggregator's HTML table, or its JSON when Accept asks for JSON",
        params: Params,
        querystring: Ages,
        response: {
          200: { content: { 'text/html': { schema: Type.String() }, 'application/json': { schema: StatsBody } } },
          ...errorResponses,
        },
      },
    },
    async (request, reply) => {
      const json = wantsJson(request.headers.accept);
      const body = await shared(request.params.roomId, request.query, json ? 'stats.json' : 'stats.html');
      reply.header('vary', 'accept');
      send(reply, json ? JSON_TYPE : 'text/html; charset=utf-8', body);
      return reply;
    },
  );
};
