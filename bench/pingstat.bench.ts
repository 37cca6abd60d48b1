// Issue #14 scenario: the aggregator-compatible routes (stats.json,
// stats.raw.json, the HTML table) on a room shaped like the real one (about
// 300 ping servers, 10 responders, seven days, log-normal delays around
// 300 ms) at each size, next to the anchor: maubot's pingstat measured on
// this machine kind (issue 14). Ratios are against that anchor, never against
// a re-implementation of it.
import type { Database } from '../src/db/database.ts';
import { buildApp } from '../src/http/app.ts';
import { analyzeSamples, recordSamples } from '../src/samples/repository.ts';
import type { Sample } from '../src/samples/sample.ts';
import { Statistics } from '../src/stats/leaderboard.ts';
import { RoomRegistry } from '../src/stats/rooms.ts';
import { generateSamples } from './dataset.ts';
import { load } from './load.ts';
import type { Figures } from './leaderboard.bench.ts';
import { median, newPong, timedFetch } from './measure.ts';

/** pingstat's stats.json, cold, seconds (issue 14: medians of 9 requests; at 1M the fastest of its range). */
export const PINGSTAT_ANCHOR_SECONDS: Readonly<Record<number, number>> = { 10000: 0.079, 100000: 0.56, 1000000: 6.2 };
/** Answers per route before the timed ones. */
const WARM_UP_ANSWERS = 5;
/** The targets of issue 14: this many times faster than the anchor. */
const TARGET_SPEED_UP: Readonly<Record<number, number>> = { 10000: 5, 100000: 10, 1000000: 10 };

export interface PingstatBenchOptions {
  readonly database: Database;
  readonly roomId: string;
  readonly samples: number;
  readonly now: Date;
  /** Cold requests per route; the median is reported. */
  readonly runs: number;
  /** Seconds of 50 concurrent clients per route (0: none). */
  readonly loadSeconds: number;
}

const WEEKS = { timeZone: 'UTC', closeWeekday: 1, closeHour: 0, graceMinutes: 60 };
const STATS = { minDelayMs: 10, maxDelayMs: 600_000, minPings: 1 };
const ROUTES = ['stats.json', 'stats.raw.json', 'stats'] as const;

export async function pingstatBench(options: PingstatBenchOptions, report: (line: string) => void): Promise<Figures> {
  const { database, roomId, now } = options;
  const figures: Figures = {};
  let batch: Sample[] = [];
  for (const sample of generateSamples({
    servers: 300,
    samples: options.samples,
    responders: 10,
    roomId,
    end: now,
    seed: 14,
  })) {
    batch.push(sample);
    if (batch.length >= 20_000) {
      await recordSamples(database.db, batch);
      batch = [];
    }
  }
  await recordSamples(database.db, batch);
  await analyzeSamples(database.db);
  report(`${options.samples} samples stored`);

  const statistics = new Statistics({ db: database.db, stats: STATS, weeks: WEEKS, cacheSeconds: 60, now: () => now });
  const app = await buildApp({
    database,
    statistics,
    rooms: new RoomRegistry([{ id: roomId, disclaimer: 'Bench.' }]),
    cacheSeconds: 60,
  });
  const base = `${await app.listen({ host: '127.0.0.1', port: 0 })}/rooms/${encodeURIComponent(roomId)}`;
  globalThis.gc?.();
  let peakRss = process.memoryUsage().rss;
  const rssBefore = peakRss;
  const sampler = setInterval(() => (peakRss = Math.max(peakRss, process.memoryUsage().rss)), 10);
  try {
    const anchor = PINGSTAT_ANCHOR_SECONDS[options.samples];
    // The service has read nothing of the room yet: this request reads the whole week.
    figures['stats.json, first request after the import (s)'] = Number(
      ((await timedFetch(`${base}/stats.json`)).ms / 1000).toFixed(3),
    );
    let newPongs = 0;
    // A new pong, as the bot stores one: the next request computes the answer again.
    const afterNewPong = async (route: string) => {
      await recordSamples(database.db, [newPong(roomId, now, ++newPongs)]);
      statistics.forgetLiveTables();
      return timedFetch(`${base}/${route}`);
    };
    for (const route of ROUTES) {
      // A running service has answered before: V8 has compiled the route's code (the first few
      // answers of a new process run it interpreted, several times slower). Not timed.
      for (let i = 0; i < WARM_UP_ANSWERS; i++) await afterNewPong(route);
      const runs: number[] = [];
      let bytes = 0;
      for (let i = 0; i < options.runs; i++) {
        const result = await afterNewPong(route);
        runs.push(result.ms);
        bytes = result.bytes;
      }
      const seconds = median(runs) / 1000;
      figures[`${route} cold (s)`] = Number(seconds.toFixed(3));
      figures[`${route} answer (MB)`] = Number((bytes / 2 ** 20).toFixed(1));
      if (anchor !== undefined) {
        const speedUp = anchor / seconds;
        figures[`${route} vs pingstat ${anchor} s (×; target ≥ ${TARGET_SPEED_UP[options.samples]})`] = Number(
          speedUp.toFixed(1),
        );
      }
      figures[`${route} warm (ms)`] = Math.round((await timedFetch(`${base}/${route}`)).ms);
      report(`${route}: cold ${seconds.toFixed(3)} s, ${(bytes / 2 ** 20).toFixed(1)} MB`);
    }
    // The service runs in the bench process, after the import: these hold the import's leftovers too.
    figures['bench process RSS before the requests (MB)'] = Math.round(rssBefore / 2 ** 20);
    figures['bench process peak RSS during the requests (MB)'] = Math.round(peakRss / 2 ** 20);

    if (options.loadSeconds > 0) {
      let failures = 0;
      for (const route of ROUTES) {
        statistics.forgetLiveTables();
        const [routeLoad, health] = await Promise.all([
          load(`${base}/${route}`, 50, options.loadSeconds),
          load(`${base.replace(/\/rooms\/.*$/, '')}/healthz`, 1, options.loadSeconds),
        ]);
        figures[`50 clients on ${route}: answers (non-2xx or unfinished)`] =
          `${routeLoad.requests} (${routeLoad.non2xx + routeLoad.errors})`;
        figures[`/healthz p99 meanwhile (ms)`] = Math.max(
          Number(figures['/healthz p99 meanwhile (ms)'] ?? 0),
          health.p99Ms,
        );
        failures += routeLoad.non2xx + routeLoad.errors + health.non2xx + health.errors;
        report(`50 clients on ${route}: ${routeLoad.requests} requests, healthz p99 ${health.p99Ms} ms`);
      }
      figures['failed requests under load'] = failures;
      figures['bench process peak RSS with the load (MB)'] = Math.round(peakRss / 2 ** 20);
    }
  } finally {
    clearInterval(sampler);
    await app.close();
  }
  return figures;
}
