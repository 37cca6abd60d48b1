import { backfillRooms } from '../src/backfill/backfill.ts';
import { loadConfig } from '../src/config.ts';
import type { Database } from '../src/db/database.ts';
import { createLogger } from '../src/log.ts';
import { createAccountClient } from '../src/matrix/client.ts';
import { buildPong } from '../src/matrix/pong.ts';
import type { Figures } from './leaderboard.bench.ts';
import { BENCH_BOT as BOT, BENCH_BOT_PASSWORD, startHomeserverProcess } from './processes.ts';

const PINGERS = ['@alice:near.example', '@bob:mid.example', '@carol:far.example', '@dave:example.org:8448'];
const RESPONDERS = ['@echo:maunium.net', '@echo2:other-bot.example'];
/** Events per addHistory call: the admin API takes bodies up to 16 MB. */
const SEED_CHUNK = 10_000;
const DAY = 86_400_000;

export interface BackfillBenchOptions {
  /** A fresh, migrated database per history size. */
  readonly openDatabase: () => Promise<Database>;
  readonly sizes: readonly number[];
}

/** Five messages per ping: the ping, two pongs, a malformed pong, chatter. */
function historyEvents(roomId: string, first: number, count: number, startMs: number, stepMs: number) {
  const events = [];
  for (let c = first; events.length < count; c++) {
    const pinger = PINGERS[c % PINGERS.length]!;
    const ts = startMs + c * stepMs;
    const ping = `$bench-ping-${c}`;
    events.push({ sender: pinger, content: '!ping', ts });
    RESPONDERS.forEach((responder, i) => {
      const delayMs = 40 + ((c * (31 + i * 17)) % 600);
      events.push({
        sender: responder,
        ts: ts + delayMs,
        content: buildPong({ roomId, pingEventId: ping, pinger, text: '', delayMs }),
      });
    });
    events.push({
      sender: RESPONDERS[1]!,
      ts: ts + 900,
      content: {
        msgtype: 'm.notice',
        body: `${pinger}: Pong! (ping took 1 ms to arrive)`,
        pong: { ms: 'one', from: 'x', ping },
      },
    });
    events.push({ sender: pinger, ts: ts + 1000, content: 'thanks' });
  }
  return events.slice(0, count);
}

export async function backfillBench(options: BackfillBenchOptions, report: (line: string) => void): Promise<Figures> {
  const figures: Figures = {};
  const mb = (bytes: number) => Math.round(bytes / 2 ** 20);
  for (const size of options.sizes) {
    const homeserver = await startHomeserverProcess();
    const { url, call } = homeserver;
    const database = await options.openDatabase();
    try {
      for (const user of [...PINGERS, ...RESPONDERS]) await call('registerUser', user, {});
      // Three rooms, each replacing the one before; the history spreads over 30 days.
      const rooms: string[] = [];
      for (let r = 0; r < 3; r++) {
        rooms.push(
          (await call('createRoom', PINGERS[0], {
            preset: 'public_chat',
            ...(r === 2 ? { room_alias_name: 'bench' } : {}),
            ...(r > 0 ? { creation_content: { predecessor: { room_id: rooms[r - 1] } } } : {}),
          })) as string,
        );
      }
      const stepMs = Math.floor((30 * DAY) / (size / 5));
      const startMs = Date.now() - 31 * DAY;
      for (let r = 0; r < 3; r++) {
        const from = Math.floor((size * r) / 3 / 5) * 5;
        const to = r === 2 ? size : Math.floor((size * (r + 1)) / 3 / 5) * 5;
        for (let at = from; at < to; at += SEED_CHUNK) {
          await call(
            'addHistory',
            rooms[r],
            historyEvents(rooms[r]!, at / 5, Math.min(SEED_CHUNK, to - at), startMs, stepMs),
          );
        }
        if (r < 2)
          await call('setState', PINGERS[0], rooms[r], 'm.room.tombstone', '', {
            body: 'upgraded',
            replacement_room: rooms[r + 1],
          });
      }
      report(`${size} events in 3 rooms seeded`);

      // The database is passed in; the configuration only names the room and the bot.
      const config = loadConfig({
        PINGBOARD_ROOMS: '#bench:near.example',
        PINGBOARD_HOMESERVER_URL: url,
        PINGBOARD_BOT_USER_ID: BOT,
        PINGBOARD_BOT_PASSWORD: BENCH_BOT_PASSWORD,
      });
      const log = createLogger('warn', process.stderr as never);
      const { client } = await createAccountClient(config.bot!, database.db, log);
      global.gc?.();
      const rssBefore = process.memoryUsage().rss;
      let peakRss = rssBefore;
      let peakHeap = 0;
      const sampler = setInterval(() => {
        const memory = process.memoryUsage();
        peakRss = Math.max(peakRss, memory.rss);
        peakHeap = Math.max(peakHeap, memory.heapUsed);
      }, 20);
      const started = performance.now();
      const result = await backfillRooms(config.rooms, {
        client,
        db: database.db,
        log,
        since: new Date(Date.now() - 40 * DAY),
        trustedResponders: [],
      });
      const seconds = (performance.now() - started) / 1000;
      clearInterval(sampler);
      peakRss = Math.max(peakRss, process.memoryUsage().rss);
      if (!result.completed || result.counts.events !== size)
        throw new Error(`backfill of ${size} events incomplete: ${JSON.stringify(result)}`);
      report(
        `${size} events: ${Math.round(size / seconds)} events/s, ${result.counts.stored} samples, peak rss ${mb(peakRss)} MB`,
      );
      figures[`${size} events: events/s`] = Math.round(size / seconds);
      figures[`${size} events: samples stored`] = result.counts.stored;
      figures[`${size} events: samples/s`] = Math.round(result.counts.stored / seconds);
      figures[`${size} events: seconds`] = Number(seconds.toFixed(1));
      figures[`${size} events: rss before (MB)`] = mb(rssBefore);
      figures[`${size} events: peak rss during (MB)`] = mb(peakRss);
      figures[`${size} events: peak heap used during (MB)`] = mb(peakHeap);
      global.gc?.();
      figures[`${size} events: heap used after (MB)`] = mb(process.memoryUsage().heapUsed);
    } finally {
      await database.destroy();
      homeserver.stop();
    }
  }
  return figures;
}
