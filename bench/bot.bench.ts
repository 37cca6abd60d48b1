// Issue #3 scenario: the echo bot under load. The test homeserver runs in its
// own process (so its work does not share the bot's event loop); the service
// runs here on PostgreSQL, in a room of 10,000 members, and answers 10,000
// pings from servers with known injected delays. Measures the bot's own
// overhead (sync response arrived → pong send request started), the error of
// the recorded delay against the injected one, and resident memory as pings
// accumulate.
import { spawn, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import { loadConfig } from '../src/config.ts';
import type { Database } from '../src/db/database.ts';
import { createLogger } from '../src/log.ts';
import { start } from '../src/start.ts';
import type { Figures } from './leaderboard.bench.ts';

const HOMESERVER = fileURLToPath(new URL('../test/homeserver/main.ts', import.meta.url));
const ADMIN_TOKEN = 'bench-admin';
const BOT = '@pingboard:bot.example';
const DELAYS: Record<string, number> = { 'near.example': 25, 'mid.example': 120, 'far.example': 300 };
const SENDERS_PER_SERVER = 10;

export interface BotBenchOptions {
  readonly database: Database;
  readonly databaseUrl: string;
  readonly pings: number;
  readonly members: number;
  readonly settleSeconds: number;
}

async function startHomeserverProcess(): Promise<{ url: string; child: ChildProcess }> {
  const args = [HOMESERVER, '--port', '0', '--admin-token', ADMIN_TOKEN, '--server', 'bot.example=0', '--user', `${BOT}=bench-password`];
  for (const [server, delay] of Object.entries(DELAYS)) args.push('--server', `${server}=${delay}`);
  const child = spawn(process.execPath, args, { stdio: ['ignore', 'pipe', 'inherit'] });
  const [line] = await once(createInterface({ input: child.stdout! }), 'line') as [string];
  return { url: (JSON.parse(line) as { url: string }).url, child };
}

function percentile(sorted: number[], p: number): number {
  return sorted[Math.min(sorted.length - 1, Math.floor(p * sorted.length))]!;
}

export async function botBench(options: BotBenchOptions, report: (line: string) => void): Promise<Figures> {
  const { url, child } = await startHomeserverProcess();
  const call = async (operation: string, ...args: unknown[]): Promise<unknown> => {
    const response = await fetch(`${url}/_test/${operation}`, {
      method: 'POST', headers: { authorization: `Bearer ${ADMIN_TOKEN}`, 'content-type': 'application/json' }, body: JSON.stringify({ args }),
    });
    if (!response.ok) throw new Error(`${operation}: ${response.status} ${await response.text()}`);
    return ((await response.json()) as { result: unknown }).result;
  };
  try {
    const senders = Object.keys(DELAYS).flatMap((server) => Array.from({ length: SENDERS_PER_SERVER }, (_, i) => `@user${i}:${server}`));
    for (const user of senders) await call('registerUser', user, {});
    const roomId = await call('createRoom', senders[0], { room_alias_name: 'bench', preset: 'public_chat' }) as string;
    for (const user of senders.slice(1)) await call('join', user, roomId);
    await call('addMembers', roomId, options.members, { server: 'crowd.example' });
    report(`room of ${options.members + senders.length} members ready`);

    const config = loadConfig({
      DATABASE_URL: options.databaseUrl, PINGBOARD_PORT: '0', PINGBOARD_ROOMS: '#bench:near.example', PINGBOARD_HOMESERVER_URL: url,
      PINGBOARD_BOT_USER_ID: BOT, PINGBOARD_BOT_PASSWORD: 'bench-password', PINGBOARD_ANSWERS_PER_MINUTE: '10000',
    });
    const service = await start(config, createLogger('silent'), { database: options.database });
    try {
      const bot = service.bot!;
      while (!['PREPARED', 'SYNCING'].includes(bot.client.getSyncState() ?? '')) await new Promise((r) => setTimeout(r, 20));
      const memory = (): [number, number] => {
        global.gc?.();
        return [process.memoryUsage().rss, process.memoryUsage().heapUsed];
      };
      const checkpoints: [number, [number, number]][] = [[0, memory()]];
      // Pings arrive paced, a few per sync at most, as in a busy ping room.
      for (let sent = 0; sent < options.pings; sent++) {
        await call('sendMessage', senders[sent % senders.length], roomId, `!ping ${sent}`);
        await new Promise((r) => setTimeout(r, 2));
        if ((sent + 1) % Math.floor(options.pings / 4) === 0) {
          checkpoints.push([sent + 1, memory()]);
          report(`${sent + 1} pings sent, rss ${Math.round(process.memoryUsage().rss / 2 ** 20)} MB`);
        }
      }
      const deadline = Date.now() + 60_000;
      while (bot.counts.pingsAnswered < options.pings && Date.now() < deadline) await new Promise((r) => setTimeout(r, 20));
      await service.writer!.flushed();
      report(`bot counts: ${JSON.stringify(bot.counts)}; memory ${JSON.stringify(process.memoryUsage())}`);
      checkpoints.push([options.pings, memory()]);
      // matrix-js-sdk arms a timer per request that holds it for 110 s (never
      // cleared); at this bench's request rate they pile up, then expire.
      // Memory after they have expired shows what the bot itself keeps.
      if (options.settleSeconds > 0) {
        report(`waiting ${options.settleSeconds} s for the SDK's request timers to expire`);
        await new Promise((r) => setTimeout(r, options.settleSeconds * 1000));
      }
      const settled = memory();

      const overhead = [...bot.overheadMs].sort((a, b) => a - b);
      const rows = await options.database.db.selectFrom('samples').select(['ping_server', 'delay_ms']).where('source', '=', 'echo').execute();
      const errors = rows.map((r) => Math.abs(r.delay_ms - DELAYS[r.ping_server]!));
      const mb = (bytes: number) => Math.round(bytes / 2 ** 20);
      return {
        'pings answered': bot.counts.pingsAnswered,
        'samples recorded': rows.length,
        'overhead p50 (ms)': Number(percentile(overhead, 0.5).toFixed(3)),
        'overhead p99 (ms)': Number(percentile(overhead, 0.99).toFixed(3)),
        'delay error, mean absolute (ms)': Number((errors.reduce((a, b) => a + b, 0) / errors.length).toFixed(2)),
        'delay error, max (ms)': Math.max(...errors),
        ...Object.fromEntries(checkpoints.flatMap(([pings, [rss, heap]]) => [
          [`after ${pings} pings: rss (MB)`, mb(rss)], [`after ${pings} pings: heap used (MB)`, mb(heap)],
        ])),
        [`${options.settleSeconds} s later: rss (MB)`]: mb(settled[0]),
        [`${options.settleSeconds} s later: heap used (MB)`]: mb(settled[1]),
        'active timers at the end': process.getActiveResourcesInfo().filter((r) => r === 'Timeout').length,
      };
    } finally {
      await service.stop();
    }
  } finally {
    child.kill('SIGTERM');
  }
}
