// A drop-in for the existing aggregator's endpoints, under /rooms/{roomId}/.
import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox';
import { Type } from '@fastify/type-provider-typebox';
import { pingstatRawRows, pingstatStats, renderPingstatHtml } from '../../render/pingstat.ts';
import { listExclusions } from '../../operator/exclusions.ts';
import { samplesInWindow } from '../../samples/repository.ts';
import { resolveRoom } from '../../stats/selection.ts';
import { PINGSTAT_WEEK_MS, pingstatWindow, type PingstatAges } from '../../stats/pingstat-window.ts';
import type { HttpDeps } from '../app.ts';
import { errorResponses, RoomParam } from '../schemas.ts';

const Params = Type.Object({ roomId: RoomParam });
// Read as pingstat reads them (see stats/pingstat-window.ts): any text, what is not an integer
// to Python means the default; a repeated parameter counts by its first value, as aiohttp's query does.
// Like pingstat, which ignores what it does not know (a caller moved over may still send its room_id).
const Age = (description: string) => Type.Optional(Type.Union([Type.String(), Type.Array(Type.String())], { description }));
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
  pings: Type.Record(Type.String(), Type.Object({
    pongs: Type.Record(Type.String(), Pong),
    pings: Type.Array(Type.String()),
    mean: Type.Number(),
    median: Type.Number(),
    gmean: Type.Number(),
  })),
  mean: Type.Number(),
  pongservers: Type.Array(Type.String()),
});
const RawBody = Type.Array(Type.Object({
  room_id: Type.String(),
  ping_id: Type.String(),
  pong_server: Type.String(),
  ping_server: Type.String(),
  receive_diff: Type.Integer(),
  pong_timestamp: Type.Integer(),
}));

/** True when the client prefers JSON to HTML (the aggregator answers JSON on request). */
function wantsJson(accept: string | undefined): boolean {
  if (!accept) return false;
  const json = accept.indexOf('application/json');
  const html = accept.indexOf('text/html');
  return json >= 0 && (html < 0 || json < html);
}

export const pingstatRoutes: FastifyPluginAsyncTypebox<HttpDeps> = async (app, deps) => {
  const selectionDeps = { db: deps.database.db, statistics: deps.statistics, rooms: deps.rooms };

  // The statistics span one week at most; the raw rows have no cap (pingstat's stats_raw_json passes max_delta=0).
  async function windowSamples(roomId: string, ages: AgesQuery, maxSpanMs: bigint) {
    const room = await resolveRoom(selectionDeps, roomId);
    const window = pingstatWindow(deps.statistics.now(), firstValues(ages), maxSpanMs);
    return { room, samples: await samplesInWindow(deps.database.db, room.roomIds, window.start, window.end) };
  }

  // The newsletter tooling builds its table from these figures: excluded servers are left out here too.
  // (The raw rows stay complete: they are the samples as measured.)
  async function stats(roomId: string, ages: AgesQuery) {
    const { room, samples } = await windowSamples(roomId, ages, PINGSTAT_WEEK_MS);
    const excluded = new Set((await listExclusions(deps.database.db, room.id)).map((e) => e.server));
    return { room, stats: pingstatStats(samples.filter((s) => !excluded.has(s.pingServer)), deps.statistics.filters, room.disclaimer) };
  }

  app.get('/rooms/:roomId/stats.json', {
    schema: { summary: 'Statistics in the existing aggregator\'s stats.json shape', params: Params, querystring: Ages, response: { 200: StatsBody, ...errorResponses } },
  }, async (request) => (await stats(request.params.roomId, request.query)).stats);

  app.get('/rooms/:roomId/stats.raw.json', {
    schema: { summary: 'The raw pongs of the window, as the existing aggregator lists them', params: Params, querystring: Ages, response: { 200: RawBody, ...errorResponses } },
  }, async (request) => pingstatRawRows((await windowSamples(request.params.roomId, request.query, 0n)).samples));

  app.get('/rooms/:roomId/stats', {
    schema: {
      summary: 'The existing aggregator\'s HTML table, or its JSON when Accept asks for JSON',
      params: Params,
      querystring: Ages,
      response: { 200: { content: { 'text/html': { schema: Type.String() }, 'application/json': { schema: StatsBody } } }, ...errorResponses },
    },
  }, async (request, reply) => {
    const { room, stats: data } = await stats(request.params.roomId, request.query);
    reply.header('vary', 'accept');
    if (wantsJson(request.headers.accept)) return reply.type('application/json; charset=utf-8').send(JSON.stringify(data));
    return reply.type('text/html; charset=utf-8').send(renderPingstatHtml(data, room.id));
  });
};
