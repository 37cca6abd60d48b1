// Issue #14 scenario: the aggregator-compatible routes (stats.json,
// stats.raw.json, the HTML table) on a room shaped like the real one (about
// 300 ping servers, 10 responders, seven days, log-normal delays around
// 300 ms, Matrix's event IDs) at each size, next to the anchor: maubot's pingstat measured on
// this machine kind (issue 14). Ratios are against that anchor, never against
// a re-implementation of it.
import { writeFileSync } from 'node:fs';
import { Writable } from 'node:stream';
import path from 'node:path';
import { pino } from 'pino';
import { runThroughService } from '../src/cli/remote.ts';
import type { Database } from '../src/db/database.ts';
import { analyzeSamples, recordSamples } from '../src/samples/repository.ts';
import type { Sample } from '../src/samples/sample.ts';
import { buildRecentDigests } from '../src/stats/digests.ts';
import { generateSamples } from './dataset.ts';
import { load } from './load.ts';
import type { Figures } from './leaderboard.bench.ts';
import { median, newPong, timedFetch } from './measure.ts';
import { BENCH_BOT, BENCH_BOT_PASSWORD, startServe, type HomeserverProcess } from './processes.ts';
import { until } from '../test/helpers/until.ts';

/** pingstat's stats.json, cold, seconds (issue 14: medians of 9 requests; at 1M the fastest of its range). */
export const PINGSTAT_ANCHOR_SECONDS: Readonly<Record<number, number>> = { 10000: 0.079, 100000: 0.56, 1000000: 6.2 };
/** Answers per route before the timed ones. */
const WARM_UP_ANSWERS = 5;
/** The targets of issue 14: this many times faster than the anchor. */
const TARGET_SPEED_UP: Readonly<Record<number, number>> = { 10000: 5, 100000: 10, 1000000: 10 };

export interface PingstatBenchOptions {
  /** Opened and migrated: the bench imports the samples into it, then `serve` runs on the same data. */
  readonly database: Database;
  /** PostgreSQL's URL, or undefined for PGlite in `dataDir` (closed here once the samples are in, for `serve` to open). */
  readonly url: string | undefined;
  readonly dataDir: string;
  readonly roomId: string;
  readonly samples: number;
  /** Cold requests per route; the median is reported. */
  readonly runs: number;
  /** Seconds of 50 concurrent clients per route (0: none). */
  readonly loadSeconds: number;
  /**
   * The service's bot (its homeserver and account settings), in the room of
   * `roomId` on that homeserver; undefined: a service with no Matrix account.
   */
  readonly botEnv?: Readonly<Record<string, string>> | undefined;
}

const ROUTES = ['stats.json', 'stats.raw.json', 'stats'] as const;

/**
 * The room's samples stored, then `pingboard serve` in a process of its own,
 * as `npm start` runs it: its time and memory are the service's alone, not
 * shared with the import or the bench. Its answers are not cached
 * (PINGBOARD_CACHE_SECONDS=0), so every request computes, from what the
 * service keeps of the week and what changed since.
 */
export async function pingstatBench(options: PingstatBenchOptions, report: (line: string) => void): Promise<Figures> {
  let open = true;
  const close = async () => {
    if (open) await options.database.destroy();
    open = false;
  };
  try {
    return await measure(options, report, close);
  } finally {
    await close();
  }
}

async function measure(
  options: PingstatBenchOptions,
  report: (line: string) => void,
  close: () => Promise<void>,
): Promise<Figures> {
  const { database, roomId } = options;
  const figures: Figures = {};
  let batch: Sample[] = [];
  for (const sample of generateSamples({
    servers: 300,
    samples: options.samples,
    responders: 10,
    roomId,
    end: new Date(),
    seed: 14,
    matrixEventIds: true,
  })) {
    batch.push(sample);
    if (batch.length >= 20_000) {
      await recordSamples(database.db, batch);
      batch = [];
    }
  }
  await recordSamples(database.db, batch);
  await analyzeSamples(database.db);
  // What a running service's scheduler has done already: its first run would otherwise share the timed requests.
  await buildRecentDigests(database.db, [roomId], new Date());
  report(`${options.samples} samples stored, digests built`);
  if (options.url === undefined) await close();

  let newPongs = 0;
  /** A new pong in the current hour, stored by another process as the bot would store it. */
  const storeNewPong = async () => {
    const pong = newPong(roomId, new Date(), ++newPongs);
    if (options.url !== undefined) {
      await recordSamples(database.db, [pong]);
      return;
    }
    // The embedded database is the service's: the pong goes in through `pingboard import`'s channel.
    const file = path.join(options.dataDir, '..', 'new-pong.ndjson');
    writeFileSync(
      file,
      `${JSON.stringify({
        room_id: pong.roomId,
        ping_event_id: pong.pingEventId,
        pinger: pong.pinger,
        responder: pong.responder,
        delay_ms: pong.delayMs,
        ping_ts: pong.pingTs.toISOString(),
        measured_at: pong.measuredAt.toISOString(),
      })}\n`,
    );
    const discard = new Writable({ write: (_chunk, _encoding, done) => done() });
    const code = await runThroughService(options.dataDir, ['import', file], pino({ level: 'silent' }), {
      stdout: discard,
      stderr: discard,
    });
    if (code !== 0) throw new Error(`the new pong's import through the service ended with ${code}`);
  };

  const serviceEnv = {
    ...(options.url === undefined ? { PINGBOARD_DATA_DIR: options.dataDir } : { DATABASE_URL: options.url }),
    PINGBOARD_ROOMS: roomId,
    PINGBOARD_DISCLAIMER: 'Bench.',
    PINGBOARD_MIN_DELAY_MS: '10',
    PINGBOARD_MAX_DELAY_MS: '600000',
    PINGBOARD_MIN_PINGS: '1',
    ...options.botEnv,
  };
  const service = await startServe({ ...serviceEnv, PINGBOARD_CACHE_SECONDS: '0' });
  if (options.botEnv) await botFollowing(service.base);
  const base = `${service.base}/rooms/${encodeURIComponent(roomId)}`;
  try {
    // The scheduler's first run ends with the rolling table: asking for it waits for that run (or does it).
    await timedFetch(`${service.base}/leaderboard.md`);
    figures['service RSS before the requests (MB)'] = service.peakRssMb();
    const anchor = PINGSTAT_ANCHOR_SECONDS[options.samples];
    // The service has read nothing of the room yet: this request reads the whole week.
    figures['stats.json, first request after the start (s)'] = Number(
      ((await timedFetch(`${base}/stats.json`)).ms / 1000).toFixed(3),
    );
    const afterNewPong = async (route: string) => {
      await storeNewPong();
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
      figures[`${route} again, nothing new (ms)`] = Math.round((await timedFetch(`${base}/${route}`)).ms);
      report(`${route}: cold ${seconds.toFixed(3)} s, ${(bytes / 2 ** 20).toFixed(1)} MB`);
      // Where the peak comes from: the routes are asked one after the other.
      figures[`service peak RSS after ${route} (MB)`] = service.peakRssMb();
    }
    figures['service peak RSS (MB; target < 300 at 1M)'] = service.peakRssMb();
  } finally {
    await service.stop();
  }
  if (options.loadSeconds > 0) {
    // As deployed: answers cached (the default PINGBOARD_CACHE_SECONDS), each made once for every client asking.
    const cached = await startServe({ ...serviceEnv, PINGBOARD_CACHE_SECONDS: '60' });
    if (options.botEnv) await botFollowing(cached.base);
    const cachedBase = `${cached.base}/rooms/${encodeURIComponent(roomId)}`;
    try {
      let failures = 0;
      for (const route of ROUTES) {
        await storeNewPong();
        const [routeLoad, health] = await Promise.all([
          load(`${cachedBase}/${route}`, 50, options.loadSeconds),
          load(`${cached.base}/healthz`, 1, options.loadSeconds),
        ]);
        // A client that could not read 50 answers of 17 MB in time counts its own timeouts: shown apart from the service's failures.
        figures[`50 clients on ${route}: answers, 5xx, other failures, client timeouts`] =
          `${routeLoad.requests}, ${routeLoad.status5xx}, ${routeLoad.non2xx - routeLoad.status5xx + routeLoad.errors - routeLoad.timeouts}, ${routeLoad.timeouts}`;
        figures['/healthz p99 meanwhile (ms; target < 50)'] = Math.max(
          Number(figures['/healthz p99 meanwhile (ms; target < 50)'] ?? 0),
          health.p99Ms,
        );
        failures += routeLoad.non2xx + routeLoad.errors - routeLoad.timeouts + health.non2xx + health.errors;
        report(`50 clients on ${route}: ${routeLoad.requests} requests, healthz p99 ${health.p99Ms} ms`);
      }
      figures['failed requests under load (client timeouts aside)'] = failures;
      figures['service peak RSS with the load (MB)'] = cached.peakRssMb();
    } finally {
      await cached.stop();
    }
  }
  return figures;
}

/** Waits until the service's bot has synced and follows its room, as a deployed service's does before anyone asks. */
async function botFollowing(base: string): Promise<void> {
  await until(
    "the service's bot to sync in its room",
    async () => {
      const health = (await (await fetch(`${base}/healthz`)).json()) as {
        bot: { status: string };
        rooms: { not_followed: unknown[] };
      };
      return health.bot.status === 'ok' && health.rooms.not_followed.length === 0;
    },
    120_000,
  );
}

/** The bench's room on the test homeserver, and the settings that give the service its bot there. */
export async function botRoom(
  homeserver: HomeserverProcess,
): Promise<{ roomId: string; botEnv: Record<string, string> }> {
  const admin = '@admin:ping.example';
  await homeserver.call('registerUser', admin, {});
  const roomId = (await homeserver.call('createRoom', admin, {
    room_alias_name: 'ping',
    preset: 'public_chat',
  })) as string;
  return {
    roomId,
    botEnv: {
      PINGBOARD_HOMESERVER_URL: homeserver.url,
      PINGBOARD_BOT_USER_ID: BENCH_BOT,
      PINGBOARD_BOT_PASSWORD: BENCH_BOT_PASSWORD,
    },
  };
}
