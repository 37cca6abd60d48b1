// Issue #19 scenario: failover. Three `pingboard serve` processes on one
// PostgreSQL, the test homeserver in a process of its own; the leader is
// killed (SIGKILL) `kills` times, a new instance started after each kill so
// three stay up. Failover time: from the kill until the first pong to a ping
// sent after it, pings going out every 100 ms; and until an instance's
// /healthz says it leads.
import { percentile } from './bot.bench.ts';
import type { Figures } from './leaderboard.bench.ts';
import { startHomeserverProcess } from '../test/helpers/homeserver-process.ts';
import { ROOT, servePingboard, type Server } from '../test/helpers/process.ts';

export interface InstancesBenchOptions {
  readonly databaseUrl: string;
  readonly kills: number;
}

const BOT = '@pingboard:bot.example';
const PINGER = '@alice:ping.example';
const PING_EVERY_MS = 100;
const POLL_MS = 20;

interface StoredEvent {
  sender: string;
  content: { pong?: { ping?: string } };
}

const pause = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

async function role(server: Server): Promise<string | undefined> {
  try {
    return ((await (await fetch(`${server.url}/healthz`)).json()) as { instance?: { role: string } }).instance?.role;
  } catch {
    return undefined;
  }
}

export async function instancesBench(options: InstancesBenchOptions, report: (line: string) => void): Promise<Figures> {
  const teardowns: (() => unknown)[] = [];
  const hs = await startHomeserverProcess({ tokens: { [BOT]: 'bot-token', [PINGER]: 'alice-token' } });
  try {
    const roomId = await hs.call<string>('createRoom', PINGER, { room_alias_name: 'instances', preset: 'public_chat' });
    const env = {
      DATABASE_URL: options.databaseUrl,
      PINGBOARD_ROOMS: '#instances:ping.example',
      PINGBOARD_HOMESERVER_URL: hs.url,
      PINGBOARD_BOT_USER_ID: BOT,
      PINGBOARD_BOT_ACCESS_TOKEN: 'bot-token',
      PINGBOARD_ANSWERS_PER_MINUTE: '10000',
    };
    const serve = () => servePingboard({ teardown: (fn) => void teardowns.push(fn) }, ROOT, env);
    const alive = new Set(await Promise.all([serve(), serve(), serve()]));
    const answeredPings = async () =>
      new Set(
        (await hs.call<StoredEvent[]>('events', roomId))
          .filter((e) => e.sender === BOT)
          .map((e) => e.content.pong?.ping),
      );
    const leader = async () => {
      for (;;) {
        for (const s of alive) if ((await role(s)) === 'leader') return s;
        await pause(POLL_MS);
      }
    };
    const toPong: number[] = [];
    const toLead: number[] = [];
    for (let kill = 0; kill <= options.kills; kill++) {
      const current = await leader();
      if (kill === options.kills) break;
      const killedAt = performance.now();
      current.child.kill('SIGKILL');
      alive.delete(current);
      const sent: string[] = [];
      let led: number | undefined;
      let lastPing = -Infinity;
      for (;;) {
        if (performance.now() - lastPing >= PING_EVERY_MS) {
          lastPing = performance.now();
          sent.push(await hs.call<string>('sendMessage', PINGER, roomId, `!ping ${kill}-${sent.length}`));
        }
        if (led === undefined) {
          for (const s of alive) if ((await role(s)) === 'leader') led = performance.now() - killedAt;
        }
        const answered = await answeredPings();
        if (sent.some((p) => answered.has(p))) break;
        await pause(POLL_MS);
      }
      toPong.push(performance.now() - killedAt);
      if (led !== undefined) toLead.push(led);
      report(
        `kill ${kill + 1}: a new leader after ${Math.round(led ?? NaN)} ms, its first pong after ${Math.round(toPong.at(-1)!)} ms`,
      );
      alive.add(await serve());
    }
    const ms = (values: number[], p: number) =>
      Math.round(
        percentile(
          [...values].sort((a, b) => a - b),
          p,
        ),
      );
    return {
      kills: options.kills,
      'to a new leader p50 (ms)': ms(toLead, 0.5),
      'to a new leader max (ms)': Math.round(Math.max(...toLead)),
      'to its first pong p50 (ms)': ms(toPong, 0.5),
      'to its first pong max (ms)': Math.round(Math.max(...toPong)),
    };
  } finally {
    for (const teardown of teardowns) await teardown();
    hs.stop();
  }
}
