// How the costs grow with the samples of a week (issue 14: 10k, 100k, 1M and
// 10M rows on PostgreSQL): a room shaped like the real one (300 ping
// servers, 10 responders, Matrix-like event IDs) written by the database from
// generate_series, with its triggers on, then the hourly digests built, the
// leaderboard's rolling table and pingstat's stats.json, each the first time
// and after a new pong, and the sizes that grow with it.
import { sql } from 'kysely';
import type { Database } from '../src/db/database.ts';
import { buildApp } from '../src/http/app.ts';
import { recordSamples } from '../src/samples/repository.ts';
import { buildRecentDigests } from '../src/stats/digests.ts';
import { Statistics } from '../src/stats/leaderboard.ts';
import { RoomRegistry } from '../src/stats/rooms.ts';
import type { Figures } from './leaderboard.bench.ts';
import { median, newPong, timed, timedFetch } from './measure.ts';

export interface GrowthBenchOptions {
  readonly database: Database;
  readonly roomId: string;
  readonly samples: number;
  readonly now: Date;
}

const WEEKS = { timeZone: 'UTC', closeWeekday: 1, closeHour: 0, graceMinutes: 60 };
const STATS = { minDelayMs: 10, maxDelayMs: 600_000, minPings: 1 };
const ROLLING = { maxAgeSeconds: 7 * 86_400, minAgeSeconds: 0, capSpanToWeek: false };
/** Rows per statement of the fill. */
const FILL_CHUNK = 1_000_000;
const RESPONDERS = 10;

export async function growthBench(options: GrowthBenchOptions, log: (line: string) => void): Promise<Figures> {
  const { database, roomId, samples, now } = options;
  const { db } = database;
  const figures: Figures = {};
  const pings = Math.ceil(samples / RESPONDERS);
  const spacingMs = (7 * 86_400_000 - 60_000) / pings;
  const [fillMs] = await timed(async () => {
    for (let from = 0; from < samples; from += FILL_CHUNK) {
      const to = Math.min(samples, from + FILL_CHUNK) - 1;
      // Ping g / 10 from one of 300 servers, answered by each responder 80 ms to 2 s later.
      await sql`insert into samples (room_id, ping_event_id, ping_server, pinger, responder, responder_server,
          delay_ms, ping_ts, measured_at, source)
        select ${roomId}, '$' || translate(encode(sha256(('growth' || (g / ${RESPONDERS}))::bytea), 'base64'), '+/=', '-_'),
          'hs' || (g / ${RESPONDERS}) % 300 || '.example', '@user:hs' || (g / ${RESPONDERS}) % 300 || '.example',
          '@echo:responder' || g % ${RESPONDERS} || '.example', 'responder' || g % ${RESPONDERS} || '.example',
          delay, sent, sent + delay * interval '1 ms', 'pong'
        from generate_series(${from}::bigint, ${to}::bigint) g,
          lateral (select 80 + ((g * 7919) % 1920)::int as delay,
            ${now}::timestamptz - interval '7 days' + (g / ${RESPONDERS}) * ${spacingMs}::float8 * interval '1 ms' as sent) t`.execute(
        db,
      );
    }
  });
  await sql`vacuum analyze samples`.execute(db);
  figures['rows written per second by the database (triggers on)'] = Math.round(samples / (fillMs / 1000));
  log(`${samples} rows written in ${(fillMs / 1000).toFixed(1)} s`);
  const [digestMs] = await timed(() => buildRecentDigests(db, [roomId], now));
  figures['hourly digests of the week built (s)'] = Number((digestMs / 1000).toFixed(2));
  const sizes = await sql<{ samples: string; digests: string }>`select
      pg_total_relation_size('samples')::text as samples, pg_total_relation_size('hourly_digests')::text as digests`.execute(
    db,
  );
  figures['samples table with indexes (MB)'] = Math.round(Number(sizes.rows[0]!.samples) / 2 ** 20);
  figures['hourly digests (MB)'] = Math.round(Number(sizes.rows[0]!.digests) / 2 ** 20);

  const room = RoomRegistry.untracked(roomId);
  const statistics = new Statistics({ db, stats: STATS, weeks: WEEKS, cacheSeconds: 0, now: () => now });
  globalThis.gc?.();
  figures['leaderboard: first rolling table, reading the digests (ms)'] = Math.round(
    (await timed(() => statistics.rolling(room, ROLLING)))[0],
  );
  let newPongs = 0;
  const again: number[] = [];
  for (let i = 0; i < 3; i++) {
    await recordSamples(db, [newPong(roomId, now, ++newPongs)]);
    again.push((await timed(() => statistics.rolling(room, ROLLING)))[0]);
  }
  figures['leaderboard: rolling table after a new pong, median of 3 (ms)'] = Math.round(median(again));

  const served = new Statistics({ db, stats: STATS, weeks: WEEKS, cacheSeconds: 60, now: () => now });
  const app = await buildApp({
    database,
    statistics: served,
    rooms: new RoomRegistry([{ id: roomId, disclaimer: 'Bench.' }]),
    cacheSeconds: 60,
  });
  const url = `${await app.listen({ host: '127.0.0.1', port: 0 })}/rooms/${encodeURIComponent(roomId)}/stats.json`;
  try {
    figures['stats.json: first request, the week read (s)'] = Number(((await timedFetch(url)).ms / 1000).toFixed(3));
    const cold: number[] = [];
    for (let i = 0; i < (samples > 2_000_000 ? 1 : 3); i++) {
      await recordSamples(db, [newPong(roomId, now, ++newPongs)]);
      served.forgetLiveTables();
      cold.push((await timedFetch(url)).ms / 1000);
    }
    figures['stats.json: after a new pong (s)'] = Number(median(cold).toFixed(3));
  } finally {
    await app.close();
  }
  globalThis.gc?.();
  figures['bench process RSS at the end (MB)'] = Math.round(process.memoryUsage().rss / 2 ** 20);
  return figures;
}
