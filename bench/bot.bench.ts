// Issue #3 scenario: the echo bot under load. The test homeserver and the
// service (as `pingboard serve` starts it, on PostgreSQL) each run in their
// own process, so neither the homeserver's work nor this driver's pinging
// shares the bot's event loop or shows in its memory. In a room of 10,000
// members the bot answers 10,000 pings from servers with known injected
// delays. Measures the bot's own overhead (sync response arrived → pong's
// send request made, and → that request's last byte written), the error of
// the recorded delays against the delays the homeserver injected, and the
// service's resident memory as pings accumulate.
import type { Database } from '../src/db/database.ts';
import type { ServiceReport } from './bot-service.ts';
import type { Figures } from './leaderboard.bench.ts';
import {
  BENCH_BOT as BOT,
  BENCH_BOT_PASSWORD,
  BENCH_DELAYS as DELAYS,
  startHomeserverProcess,
  startServiceProcess,
} from './processes.ts';

const SENDERS_PER_SERVER = 10;

export interface BotBenchOptions {
  readonly database: Database;
  readonly databaseUrl: string;
  readonly pings: number;
  /** Pings sent `paceMs` apart after the load, for the delay error. */
  readonly pacedPings: number;
  readonly paceMs: number;
  readonly members: number;
  readonly settleSeconds: number;
}

export function percentile(sorted: readonly number[], p: number): number {
  return sorted[Math.min(sorted.length - 1, Math.floor(p * sorted.length))]!;
}

function meanAbsolute(errors: readonly number[]): number {
  return Number((errors.reduce((a, b) => a + Math.abs(b), 0) / errors.length).toFixed(2));
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

export async function botBench(options: BotBenchOptions, report: (line: string) => void): Promise<Figures> {
  const homeserver = await startHomeserverProcess({ 'bot.example': 0, ...DELAYS });
  const { url, call } = homeserver;
  try {
    const senders = Object.keys(DELAYS).flatMap((server) =>
      Array.from({ length: SENDERS_PER_SERVER }, (_, i) => `@user${i}:${server}`),
    );
    for (const user of senders) await call('registerUser', user, {});
    const roomId = (await call('createRoom', senders[0], {
      room_alias_name: 'bench',
      preset: 'public_chat',
    })) as string;
    const creatorServer = senders[0]!.slice(senders[0]!.indexOf(':') + 1);
    for (const user of senders.slice(1)) await call('join', user, roomId, [creatorServer]);
    await call('addMembers', roomId, options.members, { server: 'crowd.example' });
    report(`room of ${options.members + senders.length} members ready`);

    const service = await startServiceProcess({
      DATABASE_URL: options.databaseUrl,
      PINGBOARD_PORT: '0',
      PINGBOARD_ROOMS: '#bench:near.example',
      PINGBOARD_HOMESERVER_URL: url,
      PINGBOARD_BOT_USER_ID: BOT,
      PINGBOARD_BOT_PASSWORD: BENCH_BOT_PASSWORD,
      PINGBOARD_ANSWERS_PER_MINUTE: '10000',
    });
    try {
      while (!['PREPARED', 'SYNCING'].includes((await service.report()).syncState ?? '')) await sleep(20);
      const samples = () =>
        options.database.db
          .selectFrom('samples')
          .select(['ping_event_id', 'ping_server', 'delay_ms'])
          .where('source', '=', 'echo')
          .execute();
      /** Sends `count` pings, `paceMs` apart, and waits until all are recorded; returns their event IDs. */
      const ping = async (
        count: number,
        paceMs: number,
        checkpoint?: (sent: number) => Promise<void>,
      ): Promise<Set<string>> => {
        const ids = new Set<string>();
        const before = (await samples()).length;
        for (let sent = 0; sent < count; sent++) {
          ids.add((await call('sendMessage', senders[sent % senders.length], roomId, `!ping ${sent}`)) as string);
          await sleep(paceMs);
          await checkpoint?.(sent + 1);
        }
        const deadline = Date.now() + 60_000;
        while ((await samples()).length < before + count && Date.now() < deadline) await sleep(100);
        return ids;
      };

      // Load: pings back to back (hundreds a second, far beyond a real ping
      // room), for the overhead and for memory as pings accumulate.
      const checkpoints: [number, ServiceReport][] = [[0, await service.report()]];
      const loadIds = await ping(options.pings, 2, async (sent) => {
        if (sent % Math.floor(options.pings / 4) !== 0) return;
        const state = await service.report();
        checkpoints.push([sent, state]);
        report(`${sent} pings sent, service rss ${Math.round(state.rss / 2 ** 20)} MB`);
      });
      const afterLoad = await service.report();
      report(`bot counts: ${JSON.stringify(afterLoad.counts)}`);
      // Accuracy: the same bot at a busy room's pace (still far above a real
      // room's), where the recorded delay is not queueing on two saturated cores.
      const pacedIds = await ping(options.pacedPings, options.paceMs);
      if (options.settleSeconds > 0) {
        report(`waiting ${options.settleSeconds} s with the room quiet`);
        await sleep(options.settleSeconds * 1000);
      }
      const settled = await service.report();

      const rows = await samples();
      const delivered = (await call('deliveries', roomId, 'bot.example')) as Record<string, number>;
      const sentAt = new Map(
        ((await call('events', roomId)) as { event_id: string; origin_server_ts: number }[]).map((e) => [
          e.event_id,
          e.origin_server_ts,
        ]),
      );
      // Against what the homeserver actually did (the delay the bot can see at best), and against the nominal delay (adds the homeserver's timer lateness).
      const errors = (ids: Set<string>) => {
        const picked = rows.filter((r) => ids.has(r.ping_event_id));
        const vsDelivery = picked.map((r) => r.delay_ms - (delivered[r.ping_event_id]! - sentAt.get(r.ping_event_id)!));
        const vsNominal = picked.map((r) => r.delay_ms - DELAYS[r.ping_server]!);
        return {
          vsDelivery: meanAbsolute(vsDelivery),
          vsNominal: meanAbsolute(vsNominal),
          max: Math.max(...vsNominal.map(Math.abs)),
        };
      };
      const figures = (series: 'overheadMs' | 'writtenMs') => {
        const sorted = (from: number, to: number) => [...settled[series].slice(from, to)].sort((a, b) => a - b);
        return {
          load: sorted(0, afterLoad[series].length),
          paced: sorted(afterLoad[series].length, settled[series].length),
        };
      };
      const overhead = figures('overheadMs');
      const written = figures('writtenMs');
      const load = errors(loadIds);
      const paced = errors(pacedIds);
      const mb = (bytes: number) => Math.round(bytes / 2 ** 20);
      const ms = (value: number) => Number(value.toFixed(3));
      const pace = `${Math.round(1000 / options.paceMs)}/s`;
      return {
        'pings answered': settled.counts['pingsAnswered']!,
        'samples recorded': rows.length,
        'overhead p50 (ms), back to back': ms(percentile(overhead.load, 0.5)),
        'overhead p99 (ms), back to back': ms(percentile(overhead.load, 0.99)),
        [`overhead p50 (ms), ${pace}`]: ms(percentile(overhead.paced, 0.5)),
        [`overhead p99 (ms), ${pace}`]: ms(percentile(overhead.paced, 0.99)),
        'until written, p50 (ms), back to back': ms(percentile(written.load, 0.5)),
        'until written, p99 (ms), back to back': ms(percentile(written.load, 0.99)),
        [`until written, p50 (ms), ${pace}`]: ms(percentile(written.paced, 0.5)),
        [`until written, p99 (ms), ${pace}`]: ms(percentile(written.paced, 0.99)),
        [`delay error vs delivery, mean abs. (ms), ${pace}`]: paced.vsDelivery,
        [`delay error vs nominal, mean abs. (ms), ${pace}`]: paced.vsNominal,
        [`delay error vs nominal, max (ms), ${pace}`]: paced.max,
        'delay error vs delivery, mean abs. (ms), back to back': load.vsDelivery,
        'delay error vs nominal, mean abs. (ms), back to back': load.vsNominal,
        'delay error vs nominal, max (ms), back to back': load.max,
        ...Object.fromEntries(
          checkpoints.flatMap(([pings, state]) => [
            [`after ${pings} pings: rss (MB)`, mb(state.rss)],
            [`after ${pings} pings: heap used (MB)`, mb(state.heapUsed)],
          ]),
        ),
        [`after the paced pings and ${options.settleSeconds} s: rss (MB)`]: mb(settled.rss),
        [`after the paced pings and ${options.settleSeconds} s: heap used (MB)`]: mb(settled.heapUsed),
      };
    } finally {
      await service.stop();
    }
  } finally {
    homeserver.stop();
  }
}
