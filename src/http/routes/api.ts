// /api/v1: frozen weeks and per-server history.
import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox';
import { Type, type TSchema } from '@fastify/type-provider-typebox';
import { InputError, NotFoundError } from '../../errors.ts';
import { isValidServerName } from '../../matrix-ids.ts';
import { exclusionJson, probeFieldsJson, rankedServerJson } from '../../render/leaderboard-json.ts';
import { latestSamplesOfServer } from '../../samples/repository.ts';
import { sampleToRecord } from '../../samples/sample.ts';
import { findFrozenWeek, frozenWeekHistory, listFrozenWeeks, type FrozenWeek } from '../../stats/frozen-weeks.ts';
import { DEFAULT_CLOCK_OFFSET_THRESHOLD_MS } from '../../config.ts';
import { ROLLING_WEEK } from '../../stats/leaderboard.ts';
import {
  matrixInWindow,
  serverIsKnown,
  serverProbeFiguresPerBucket,
  weekBoundaries,
} from '../../stats/probe-figures.ts';
import { resolveRoom } from '../../stats/selection.ts';
import { rollingWindow, weekWindow, type TimeWindow } from '../../stats/windows.ts';
import type { RouteDeps } from '../deps.ts';
import {
  errorResponses,
  ExclusionBody,
  MatrixBody,
  MatrixQuerystring,
  ProbeFields,
  RankedServerBody,
  refuseNonDecimalIntegers,
  RoomParam,
  ServerParam,
  WeekParam,
} from '../schemas.ts';

const Timestamp = Type.String({ format: 'date-time' });
const Nullable = <T extends TSchema>(t: T) => Type.Union([t, Type.Null()]);

const WeeksBody = Type.Object({
  room: Type.String(),
  weeks: Type.Array(
    Type.Object({
      week: Type.String(),
      start: Timestamp,
      end: Timestamp,
      frozen_at: Timestamp,
      servers: Type.Integer(),
      version: Type.Integer(),
    }),
  ),
});

const frozenVersionFields = {
  version: Type.Integer(),
  frozen_at: Timestamp,
  rows: Type.Array(RankedServerBody),
  excluded: Type.Array(ExclusionBody),
};

const WeekHistoryBody = Type.Object({
  room: Type.String(),
  week: Type.String(),
  start: Timestamp,
  end: Timestamp,
  current: Type.Object(frozenVersionFields),
  /** The versions it replaced, newest first, each with who replaced it and why. */
  superseded: Type.Array(
    Type.Object({
      ...frozenVersionFields,
      superseded_at: Timestamp,
      superseded_by: Type.String(),
      reason: Type.String(),
    }),
  ),
});

const SampleBody = Type.Object({
  room_id: Type.String(),
  ping_event_id: Type.String(),
  ping_server: Type.String(),
  pinger: Type.Union([Type.String(), Type.Null()]),
  responder: Type.String(),
  responder_server: Type.String(),
  delay_ms: Type.Integer(),
  ping_ts: Timestamp,
  measured_at: Timestamp,
  source: Type.String(),
  rtt_ms: Nullable(Type.Number()),
});

const ServerBody = Type.Object({
  server: Type.String(),
  room: Type.String(),
  weeks: Type.Array(
    Type.Object({
      week: Type.String(),
      start: Timestamp,
      end: Timestamp,
      frozen: Type.Boolean(),
      rank: Nullable(Type.Integer()),
      median_ms: Nullable(Type.Number()),
      mean_ms: Nullable(Type.Number()),
      pings: Type.Integer(),
      samples: Type.Integer(),
      ...ProbeFields,
      probe_pings_sent: Type.Integer(),
      probe_pings_lost: Type.Integer(),
    }),
  ),
  latest_samples: Type.Array(SampleBody),
});

export const apiRoutes: FastifyPluginAsyncTypebox<RouteDeps> = async (app, deps) => {
  app.addHook('preValidation', refuseNonDecimalIntegers);
  const selectionDeps = deps.views.selection;
  const thresholdMs = deps.clockOffsetThresholdMs ?? DEFAULT_CLOCK_OFFSET_THRESHOLD_MS;

  /** The week asked for, or the rolling window of the last `days` days (7 by default), as the leaderboard takes them. */
  const matrixWindow = (week: string | undefined, days: number | undefined): TimeWindow => {
    if (week !== undefined && days !== undefined) throw new InputError('week', 'give either week or days, not both');
    if (week === undefined)
      return rollingWindow(deps.statistics.now(), { ...ROLLING_WEEK, maxAgeSeconds: (days ?? 7) * 86_400 });
    const window = weekWindow(week, deps.statistics.weekConfig);
    if (!window) throw new InputError('week', `expected an ISO week such as 2026-W47, got ${JSON.stringify(week)}`);
    return window;
  };

  app.get(
    '/api/v1/matrix',
    {
      schema: {
        summary: "Delivery times between the probed servers, on one clock, and each server's measured clock offset",
        querystring: MatrixQuerystring,
        response: { 200: MatrixBody, ...errorResponses },
      },
    },
    async (request) => {
      const { week, days } = request.query;
      const window = matrixWindow(week, days);
      const room = await resolveRoom(selectionDeps, request.query.room);
      const matrix = await matrixInWindow(deps.database.db, room, window, thresholdMs);
      return {
        room: room.id,
        start: window.start.toISOString(),
        end: window.end.toISOString(),
        threshold_ms: thresholdMs,
        servers: matrix.servers,
        pairs: matrix.pairs.map((p) => ({
          from: p.from,
          to: p.to,
          median_ms: p.medianMs,
          p90_ms: p.p90Ms,
          count: p.count,
        })),
        offsets: matrix.offsets.map((o) => ({
          server: o.server,
          offset_ms: o.offsetMs,
          bound_ms: o.boundMs,
          samples: o.samples,
          flagged: o.flagged,
        })),
      };
    },
  );

  app.get(
    '/api/v1/weeks',
    {
      schema: {
        summary: 'The frozen weeks of a room, newest first',
        querystring: Type.Object({ room: Type.Optional(RoomParam) }, { additionalProperties: false }),
        response: { 200: WeeksBody, ...errorResponses },
      },
    },
    async (request) => {
      const room = await resolveRoom(selectionDeps, request.query.room);
      const weeks = await listFrozenWeeks(deps.database.db, room.id);
      return {
        room: room.id,
        weeks: weeks.map((w) => ({
          week: w.week,
          start: w.start.toISOString(),
          end: w.end.toISOString(),
          frozen_at: w.frozenAt.toISOString(),
          servers: w.servers,
          version: w.version,
        })),
      };
    },
  );

  app.get(
    '/api/v1/weeks/:week',
    {
      schema: {
        summary: 'One frozen week as published now, and every version it replaced (after exclusions)',
        params: Type.Object({ week: WeekParam }),
        querystring: Type.Object({ room: Type.Optional(RoomParam) }, { additionalProperties: false }),
        response: { 200: WeekHistoryBody, ...errorResponses },
      },
    },
    async (request) => {
      const room = await resolveRoom(selectionDeps, request.query.room);
      const current = await findFrozenWeek(deps.database.db, room.id, request.params.week);
      if (!current) throw new NotFoundError(`${request.params.week} is not frozen in ${room.id}`);
      const version = (w: FrozenWeek) => ({
        version: w.version,
        frozen_at: w.frozenAt.toISOString(),
        rows: w.servers.map((s) => rankedServerJson(s)),
        excluded: w.exclusions.map(exclusionJson),
      });
      const history = await frozenWeekHistory(deps.database.db, room.id, request.params.week);
      return {
        room: room.id,
        week: current.week,
        start: current.start.toISOString(),
        end: current.end.toISOString(),
        current: version(current),
        superseded: history.map((w) => ({
          ...version(w),
          superseded_at: w.supersededAt.toISOString(),
          superseded_by: w.supersededBy,
          reason: w.reason,
        })),
      };
    },
  );

  app.get(
    '/api/v1/servers/:server',
    {
      schema: {
        summary: 'One ping server: its weekly figures over time and its latest samples',
        params: Type.Object({ server: ServerParam }),
        querystring: Type.Object(
          {
            room: Type.Optional(RoomParam),
            weeks: Type.Integer({ minimum: 1, maximum: 104, default: 12 }),
            samples: Type.Integer({ minimum: 0, maximum: 500, default: 50 }),
          },
          { additionalProperties: false },
        ),
        response: { 200: ServerBody, ...errorResponses },
      },
    },
    async (request) => {
      const { server } = request.params;
      if (!isValidServerName(server))
        throw new InputError('server', `not a valid server name: ${JSON.stringify(server.slice(0, 100))}`);
      const room = await resolveRoom(selectionDeps, request.query.room);
      if (!(await serverIsKnown(deps.database.db, room, server)))
        throw new NotFoundError(`no samples from ${server} in ${room.id}`);
      const weeks = await deps.statistics.serverWeeks(room, server, request.query.weeks);
      const probes = await serverProbeFiguresPerBucket(deps.database.db, room, server, weekBoundaries(weeks));
      const latest = await latestSamplesOfServer(deps.database.db, room.roomIds, server, request.query.samples);
      return {
        server,
        room: room.id,
        weeks: weeks.map((w, index) => ({
          week: w.week,
          start: w.start.toISOString(),
          end: w.end.toISOString(),
          frozen: w.frozen,
          rank: w.rank,
          median_ms: w.medianMs,
          mean_ms: w.meanMs,
          pings: w.pings,
          samples: w.samples,
          ...probeFieldsJson(probes.get(index)),
          probe_pings_sent: probes.get(index)?.pingsSent ?? 0,
          probe_pings_lost: probes.get(index)?.pingsLost ?? 0,
        })),
        latest_samples: latest.map(sampleToRecord) as never,
      };
    },
  );
};
