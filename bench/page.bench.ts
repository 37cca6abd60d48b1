// Issue #6 scenario: the web pages. Two weeks of samples from 200 ping
// servers (some probed), the week before frozen; then the server time of `/`
// (rolling and frozen week) and of a server's page, each assembled anew and
// from the page cache, measured with fastify's inject (no network: the time is
// the server's own), and the size each page transfers: as it is, and as the
// app sends it compressed to a client that accepts brotli or gzip.
import type { Database } from '../src/db/database.ts';
import { buildApp } from '../src/http/app.ts';
import { recordProbePing } from '../src/stats/probe-pings.ts';
import { analyzeSamples, recordSamples } from '../src/samples/repository.ts';
import type { Sample } from '../src/samples/sample.ts';
import { Statistics } from '../src/stats/leaderboard.ts';
import { RoomRegistry } from '../src/stats/rooms.ts';
import { lastFreezableWeek } from '../src/stats/windows.ts';
import { generateSamples, random } from './dataset.ts';
import type { Figures } from './leaderboard.bench.ts';
import { load } from './load.ts';

export interface PageBenchOptions {
  readonly database: Database;
  readonly roomId: string;
  readonly servers: number;
  readonly samples: number;
  readonly requests: number;
  readonly loadSeconds: number;
  readonly now: Date;
}

const WEEKS = { timeZone: 'UTC', closeWeekday: 1, closeHour: 0, graceMinutes: 60 };
const STATS = { minDelayMs: 10, maxDelayMs: 600_000, minPings: 1 };

function percentile(sorted: readonly number[], p: number): number {
  return sorted[Math.min(sorted.length - 1, Math.floor(sorted.length * p))]!;
}

const round2 = (n: number) => Number(n.toFixed(2));

export async function pageBench(options: PageBenchOptions, report: (line: string) => void): Promise<Figures> {
  const { database, roomId, now } = options;
  const figures: Figures = {};
  // Two weeks, so the previous week has medians to compare with (the trend column).
  const twoWeeks = [now, new Date(now.getTime() - 7 * 86_400_000)];
  for (const [i, end] of twoWeeks.entries()) {
    let batch: Sample[] = [];
    for (const sample of generateSamples({
      servers: options.servers,
      samples: options.samples / 2,
      responders: 4,
      roomId,
      end,
      seed: 7 + i,
    })) {
      batch.push(i === 0 ? sample : { ...sample, pingEventId: `${sample.pingEventId}-previous` });
      if (batch.length === 5000) {
        await recordSamples(database.db, batch);
        batch = [];
      }
    }
    await recordSamples(database.db, batch);
  }
  // Probes on a quarter of the servers: round trips and losses for their columns.
  const rand = random(11);
  for (let server = 0; server < options.servers; server += 4) {
    for (let seq = 1; seq <= 20; seq++) {
      await recordProbePing(database.db, {
        probeId: `probe-hs${server}`,
        seq,
        sentAt: new Date(now.getTime() - seq * 3_600_000),
        roomId,
        pingServer: `hs${server}.example`,
        pingEventId: `$probe-${server}-${seq}`,
        outcome: rand() < 0.05 ? 'lost' : 'answered',
        pongs: 1,
        error: null,
      });
    }
  }
  await analyzeSamples(database.db); // as an import does: the planner needs the table's statistics
  report(`seeded ${options.samples} samples over ${options.servers} servers`);

  const statistics = new Statistics({ db: database.db, stats: STATS, weeks: WEEKS, cacheSeconds: 60, now: () => now });
  const rooms = new RoomRegistry([{ id: roomId, disclaimer: 'Bench room.' }]);
  // cacheSeconds 0 keeps no rendered page, so every request assembles its page (the table itself stays cached, as in service).
  const uncached = await buildApp({ database, statistics, rooms, cacheSeconds: 0 });
  const app = await buildApp({ database, statistics, rooms, cacheSeconds: 60 });
  const frozenWeek = lastFreezableWeek(now, WEEKS).week;
  try {
    const pages: [string, string][] = [
      ['/ rolling week', '/'],
      [`/ frozen week`, `/?week=${frozenWeek}`],
      ['/servers/{server}', '/servers/hs0.example'],
    ];
    const serverTimes = async (target: typeof app, url: string) => {
      const times: number[] = [];
      for (let i = 0; i < options.requests; i++) {
        const started = performance.now();
        const res = await target.inject(url);
        times.push(performance.now() - started);
        if (res.statusCode !== 200) throw new Error(`${url}: ${res.statusCode}`);
      }
      return times.sort((a, b) => a - b);
    };
    for (const [name, url] of pages) {
      const first = await uncached.inject(url);
      if (first.statusCode !== 200) throw new Error(`${url}: ${first.statusCode} ${first.body.slice(0, 200)}`);
      if (name === '/ rolling week')
        figures['servers on the first page'] = (first.body.match(/<tr><td>\d+<\/td>/g) ?? []).length;
      const assembled = await serverTimes(uncached, url);
      figures[`${name}: server time p50 (ms)`] = round2(percentile(assembled, 0.5));
      figures[`${name}: server time p99 (ms)`] = round2(percentile(assembled, 0.99));
      const cached = await serverTimes(app, url);
      figures[`${name}: server time, page cached, p50 (ms)`] = round2(percentile(cached, 0.5));
      figures[`${name}: size (KB)`] = round2(Buffer.byteLength(first.body) / 1024);
      for (const encoding of ['br', 'gzip']) {
        const compressed = await app.inject({ url, headers: { 'accept-encoding': encoding } });
        if (compressed.headers['content-encoding'] !== encoding)
          throw new Error(`${url}: asked for ${encoding}, got ${compressed.headers['content-encoding']}`);
        figures[`${name}: size sent with ${encoding} (KB)`] = round2(compressed.rawPayload.length / 1024);
      }
      report(`${name}: p50 ${figures[`${name}: server time p50 (ms)`]} ms, ${figures[`${name}: size (KB)`]} KB`);
    }
    const base = await app.listen({ host: '127.0.0.1', port: 0 });
    const rolling = await load(`${base}/`, 10, options.loadSeconds);
    if (rolling.errors + rolling.non2xx > 0)
      throw new Error(`${rolling.errors + rolling.non2xx} failed requests under load`);
    figures['/ rolling week under load, 10 connections (req/s)'] = Math.round(rolling.requestsPerSecond);
    figures['/ rolling week under load, p99 (ms)'] = rolling.p99Ms;
  } finally {
    await uncached.close();
    await app.close();
  }
  return figures;
}
