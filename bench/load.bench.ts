// Issue #7 scenario: the service as `pingboard serve` starts it, on
// PostgreSQL, with a realistic frozen week, under load from a second process
// (autocannon, 127.0.0.1 only, bounded in time): /leaderboard.md,
// /leaderboard.json and the page, each at 200 connections, as autocannon asks
// (no Accept-Encoding: every answer uncompressed); then the page once more
// with a browser's Accept-Encoding, which gets its brotli copy.
import { pino } from 'pino';
import { loadConfig } from '../src/config.ts';
import type { Database } from '../src/db/database.ts';
import { createLogger } from '../src/log.ts';
import { importFiles } from '../src/cli/import-files.ts';
import type { ImportCounts } from '../src/samples/import.ts';
import { start } from '../src/start.ts';
import { lastFreezableWeek } from '../src/stats/windows.ts';
import { writeNdjson } from './dataset.ts';
import type { Figures } from './leaderboard.bench.ts';
import { load } from './load.ts';

export interface LoadBenchOptions {
  readonly database: Database;
  readonly databaseUrl: string;
  readonly ndjsonPath: string;
  readonly samples: number;
  readonly servers: number;
  readonly connections: number;
  readonly seconds: number;
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
  await importFiles(options.database.db, [options.ndjsonPath], counts);
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
  } finally {
    await service.stop();
  }
  figures['peak RSS of the bench process (MB)'] = Math.round(process.resourceUsage().maxRSS / 1024);
  return figures;
}
