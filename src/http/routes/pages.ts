// The web pages: `/` (the leaderboard) and `/servers/{server}`.
import type { FastifyError, FastifyReply } from 'fastify';
import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox';
import { Type } from '@fastify/type-provider-typebox';
import { InputError, NotFoundError } from '../../errors.ts';
import { DEFAULT_CLOCK_OFFSET_THRESHOLD_MS } from '../../config.ts';
import { renderNewsletterTable } from '../../render/markdown.ts';
import { matrixSection, serverMatrixSection } from '../../render/matrix.ts';
import {
  PAGE_CONTENT_SECURITY_POLICY,
  RANKING_PAGE_ROWS,
  rankingPages,
  renderErrorPage,
  renderLeaderboardPage,
  renderNothingYetPage,
  renderServerPage,
} from '../../render/page.ts';
import { latestSamplesOfServer, mostRecentRoom } from '../../samples/repository.ts';
import { TtlCache } from '../../stats/cache.ts';
import { listFrozenWeeks } from '../../stats/frozen-weeks.ts';
import type { Leaderboard, Statistics } from '../../stats/leaderboard.ts';
import {
  matrixInWindow,
  probeFiguresInWindow,
  serverIsKnown,
  serverProbeFiguresPerBucket,
  weekBoundaries,
} from '../../stats/probe-figures.ts';
import { selectLeaderboard } from '../../stats/selection.ts';
import { delayHistogram } from '../../stats/server-detail.ts';
import { shiftWeek, weekContaining } from '../../stats/windows.ts';
import { clientErrorOf } from '../client-errors.ts';
import type { HttpDeps } from '../deps.ts';
import { encodeBody, sendCacheable, type EncodedBody } from '../caching.ts';
import { ErrorBody, NEWSLETTER_ROWS, refuseNonDecimalIntegers, RoomParam, ServerParam } from '../schemas.ts';

/** Weeks of history on a server's page: half a year. */
const SERVER_PAGE_WEEKS = 26;
/**
 * The latest samples are picked per responder from the server's newest ones:
 * an index scan, where a per-responder query would read all of the server's
 * history. Every responder active lately is among them.
 */
const LATEST_SAMPLES = 500;

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

/** Each ranked server's median in the calendar week before the board's window (the last closed week for a rolling one). */
async function previousWeekMedians(statistics: Statistics, board: Leaderboard) {
  const week = shiftWeek(board.week ?? weekContaining(board.window.end, statistics.weekConfig).week, -1);
  const previous = await statistics.week(board.room, week);
  return { week, medians: new Map(previous.servers.map((s) => [s.server, s.medianMs])) };
}

function setPageHeaders(reply: FastifyReply): void {
  reply
    .type('text/html; charset=utf-8')
    .header('content-security-policy', PAGE_CONTENT_SECURITY_POLICY)
    .header('x-content-type-options', 'nosniff');
}

export const pageRoutes: FastifyPluginAsyncTypebox<HttpDeps> = async (app, deps) => {
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
  const selectionDeps = { db: deps.database.db, statistics: deps.statistics, rooms: deps.rooms };
  const thresholdMs = deps.clockOffsetThresholdMs ?? DEFAULT_CLOCK_OFFSET_THRESHOLD_MS;
  const { db } = deps.database;
  // A page is kept as long as the live table it shows (and clients may keep it): probe figures and
  // the week list are read per page, so without this every request would query them again.
  const rendered = new TtlCache<EncodedBody>(deps.cacheSeconds * 1000, 256);
  /** `key` names the page by its route and parameters; as JSON, since a server name or room reference may contain any separator. */
  function cachedPage(key: readonly unknown[], render: () => Promise<string>): Promise<EncodedBody> {
    return rendered.getOrCompute(
      JSON.stringify([deps.statistics.generation, ...key]),
      deps.statistics.now().getTime(),
      async () => encodeBody(await render()),
    );
  }

  /** The room that links may leave out: the one `/` shows without a room parameter. */
  const defaultRoomId = (asked: string | undefined, board: Leaderboard) =>
    asked === undefined ? board.room.id : (deps.rooms.default()?.id ?? null);

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
      const html = await cachedPage(['/', room, week, page], async () => {
        if (room === undefined && deps.rooms.default() === undefined && (await mostRecentRoom(db)) === undefined)
          return renderNothingYetPage();
        const board = await selectLeaderboard(selectionDeps, { room, week });
        const pages = rankingPages(board.servers.length);
        if (page > pages)
          throw new InputError(
            'page',
            `there is no page ${page}: this ranking has ${pages === 1 ? '1 page' : `${pages} pages`}`,
          );
        const probes = await probeFiguresInWindow(db, board.room, board.window);
        const previous = await previousWeekMedians(deps.statistics, board);
        const weeks = await listFrozenWeeks(db, board.room.id);
        const matrix = await matrixInWindow(db, board.room, board.window, thresholdMs);
        return renderLeaderboardPage({
          board,
          probes,
          previous,
          weeks,
          matrixHtml: matrixSection(matrix),
          rooms: deps.rooms.list().map((r) => ({ id: r.id, label: r.reference })),
          defaultRoomId: defaultRoomId(room, board),
          newsletterMarkdown: renderNewsletterTable(board.servers, NEWSLETTER_ROWS),
          page,
        });
      });
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
      const html = await cachedPage(['servers', server, room, week], async () => {
        const board = await selectLeaderboard(selectionDeps, { room, week });
        // Any name that holds samples gets its page, valid or not: every row of the ranking links here.
        if (!(await serverIsKnown(db, board.room, server)))
          throw new NotFoundError(`no samples from ${server} in ${board.room.id}`);
        const [probe] = await probeFiguresInWindow(db, board.room, board.window, server);
        const weeks = await deps.statistics.serverWeeks(board.room, server, SERVER_PAGE_WEEKS);
        const weekProbes = await serverProbeFiguresPerBucket(db, board.room, server, weekBoundaries(weeks));
        return renderServerPage({
          server,
          board,
          probe,
          weeks: weeks.map((w, index) => ({ week: w, probe: weekProbes.get(index) })),
          histogram: await delayHistogram(db, board.room.roomIds, server, board.window, deps.statistics.filters),
          latest: await latestSamplesOfServer(db, board.room.roomIds, server, LATEST_SAMPLES),
          defaultRoomId: defaultRoomId(room, board),
          matrixHtml: serverMatrixSection(await matrixInWindow(db, board.room, board.window, thresholdMs), server),
          now: deps.statistics.now(),
        });
      });
      setPageHeaders(reply);
      return sendCacheable(request, reply, html, false, deps.cacheSeconds);
    },
  );
};
