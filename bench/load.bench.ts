// Issue #7 scenario: the service as `pingboard serve` starts it, on
// PostgreSQL, with a realistic frozen week, under load from a second process
// (autocannon, 127.0.0.1 only, bounded in time): /leaderboard.md,
// /leaderboard.json and the page, each at 200 connections, as autocannon asks
// (no Accept-Encoding: every answer uncompressed); then the page once more
// with a browser's Accept-Encoding, which gets its brotli copy; then every GET
// route at 50 connections in turn, with /healthz asked throughout (issue 14).
import { pino } from 'pino';
import { loadConfig } from '../src/config.ts';
import type { Database } from '../src/db/database.ts';
import { createLogger } from '../src/log.ts';
import { createStatistics } from '../src/open.ts';
import { importFiles } from '../src/cli/import-files.ts';
import type { ImportCounts } from '../src/samples/import.ts';
import { start } from '../src/start.ts';
import { lastFreezableWeek } from '../src/stats/windows.ts';
import { writeNdjson } from './dataset.ts';
import type { Figures } from './leaderboard.bench.ts';
import { load } from './load.ts';

/** Issue 14's target: 50 clients on each route in turn, while one more asks /healthz again and again. */
const EVERY_ROUTE_CLIENTS = 50;

async function everyRoute(
  base: string,
  week: string,
  options: LoadBenchOptions,
  figures: Figures,
  report: (line: string) => void,
): Promise<void> {
  const top = (await (await fetch(`${base}/leaderboard.json?week=${week}&limit=1`)).json()) as {
    rows: { server: string }[];
  };
  const server = encodeURIComponent(top.rows[0]!.server);
  const room = encodeURIComponent(ROOM);
  const routes = [
    `/leaderboard.md?week=${week}`,
    `/leaderboard.json?week=${week}`,
    `/?week=${week}`,
    `/servers/${server}?week=${week}`,
    `/api/v1/weeks`,
    `/api/v1/weeks/${week}`,
    `/api/v1/servers/${server}`,
    `/api/v1/matrix?week=${week}`,
    `/rooms/${room}/stats.json?max_age=31536000`,
    `/rooms/${room}/stats.raw.json?max_age=31536000`,
    `/rooms/${room}/stats?max_age=31536000`,
    '/metrics',
  ];
  let failures = 0;
  let timeouts = 0;
  let healthP99 = 0;
  for (const route of routes) {
    const [routeLoad, health] = await Promise.all([
      load(`${base}${route}`, EVERY_ROUTE_CLIENTS, options.everyRouteSeconds),
      load(`${base}/healthz`, 1, options.everyRouteSeconds),
    ]);
    // The client's own timeouts (it cannot read 50 answers of 34 MB in time) are counted apart from the service's failures.
    const failed = routeLoad.errors - routeLoad.timeouts + routeLoad.non2xx + health.errors + health.non2xx;
    report(
      `${EVERY_ROUTE_CLIENTS} clients on ${route}: ${routeLoad.requests} answers, p99 ${routeLoad.p99Ms} ms, ${failed} failed (${routeLoad.status5xx} 5xx), ${routeLoad.timeouts} client timeouts; /healthz p99 ${health.p99Ms} ms`,
    );
    failures += failed;
    timeouts += routeLoad.timeouts;
    healthP99 = Math.max(healthP99, health.p99Ms);
  }
  figures[`every GET route at ${EVERY_ROUTE_CLIENTS} clients: routes`] = routes.length;
  figures[`every GET route at ${EVERY_ROUTE_CLIENTS} clients: errors + non-2xx`] = failures;
  figures[`every GET route at ${EVERY_ROUTE_CLIENTS} clients: the client's own timeouts`] = timeouts;
  figures[`every GET route at ${EVERY_ROUTE_CLIENTS} clients: /healthz p99, worst route (ms)`] = healthP99;
}

export interface LoadBenchOptions {
  readonly database: Database;
  readonly databaseUrl: string;
  readonly ndjsonPath: string;
  readonly samples: number;
  readonly servers: number;
  readonly connections: number;
  readonly seconds: number;
  /** How long each route of the every-route round is loaded. */
  readonly everyRouteSeconds: number;
}

const ROOM = '!load:pingboard.example';
/** What Chromium and Firefox send. */
const BROWSER_ACCEPT_ENCODING = 'gzip, deflate, br, zstd';
const UTC_MONDAY_WEEKS = { timeZone: 'UTC', closeWeekday: 1, closeHour: 0, graceMinutes: 60 };

export async function loadBench(options: LoadBenchOptions, report: (line: string) => void): Promise<Figures> {
  // Every sample in the last closed week, so it is frozen at the first request.
  const week = lastFreezableWeek(new Date(), UTC_MONDAY_WEEKS);
  await writeNdjson(options.ndjsonPath, {
    servers: options.servers,
    samples: options.samples,
    responders: 4,
    roomId: ROOM,
    end: new Date(week.end.getTime() - 1),
    seed: 7,
  });
  const counts: ImportCounts = { read: 0, stored: 0, duplicate: 0, rejected: 0 };
  await importFiles(
    options.database.db,
    createStatistics(loadConfig({}), options.database, { keepBuiltDigests: false }),
    [options.ndjsonPath],
    counts,
  );
  report(`imported ${counts.stored} samples into ${week.week}`);

  const config = loadConfig({ DATABASE_URL: options.databaseUrl, PINGBOARD_PORT: '0', PINGBOARD_ROOMS: ROOM });
  // Logging at the default level (info: every request), as the service logs, into a file nobody reads.
  const service = await start(
    config,
    createLogger(config.logLevel, pino.destination({ dest: '/dev/null', sync: false })),
    { database: options.database },
  );
  const figures: Figures = { samples: counts.stored, week: week.week };
  try {
    const first = await fetch(`${service.url}/leaderboard.json?week=${week.week}&limit=1`);
    figures['ranked servers'] = ((await first.json()) as { servers_ranked: number }).servers_ranked;
    let failures = 0;
    const targets: [string, string, Record<string, string>][] = [
      ['/leaderboard.md', `/leaderboard.md?week=${week.week}`, {}],
      ['/leaderboard.json', `/leaderboard.json?week=${week.week}`, {}],
      ['/ (page)', `/?week=${week.week}`, {}],
      ["/ (page, browser's Accept-Encoding)", `/?week=${week.week}`, { 'accept-encoding': BROWSER_ACCEPT_ENCODING }],
    ];
    for (const [name, path, headers] of targets) {
      report(`${name}: ${options.connections} connections for ${options.seconds} s`);
      const cpu = process.cpuUsage();
      const result = await load(`${service.url}${path}`, options.connections, options.seconds, headers);
      const used = process.cpuUsage(cpu);
      figures[`${name} req/s`] = Math.round(result.requestsPerSecond);
      figures[`${name} p50 (ms)`] = result.p50Ms;
      figures[`${name} p99 (ms)`] = result.p99Ms;
      figures[`${name} errors + non-2xx`] = result.errors + result.non2xx;
      figures[`${name} KB per answer, headers included`] = Math.round(result.meanBytes / 102.4) / 10;
      // The service's own cost, which other work on the machine barely changes, unlike the latencies.
      figures[`${name} service CPU per answer (µs)`] = Math.round((used.user + used.system) / result.requests);
      failures += result.errors + result.non2xx;
    }
    if (failures > 0) throw new Error(`${failures} failed requests under load`);
    // Measured against issue 14's target and printed, failures included, rather than stopping the bench.
    await everyRoute(service.url, week.week, options, figures, report);
  } finally {
    await service.stop();
  }
  figures['peak RSS of the bench process (MB)'] = Math.round(process.resourceUsage().maxRSS / 1024);
  return figures;
}
