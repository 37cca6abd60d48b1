// Issue #19 scenarios. Failover: three `pingboard serve` processes on one
// PostgreSQL, the test homeserver in a process of its own; the leader is
// killed (SIGKILL) `kills` times, a new instance started after each kill so
// three stay up. Failover time: from the kill until the first pong to a ping
// sent after it, pings going out every 100 ms; and until an instance's
// /healthz says it leads. Throughput: /leaderboard.md served by 1, 2 and 3
// `serve` processes on one PostgreSQL, under load from a second process
// (autocannon) that spreads its connections over them, and again through the
// compose file's proxy (deploy/haproxy.cfg run by HAProxy) when it is installed.
import { percentile } from './bot.bench.ts';
import type { Figures } from './leaderboard.bench.ts';
import { loadavg } from 'node:os';
import { migrateToLatest, openDatabase } from '../src/db/database.ts';
import { loadConfig } from '../src/config.ts';
import { createStatistics } from '../src/open.ts';
import { importFiles } from '../src/cli/import-files.ts';
import type { ImportCounts } from '../src/samples/import.ts';
import { haproxySkip, startProxy } from '../test/helpers/haproxy.ts';
import { startHomeserverProcess } from '../test/helpers/homeserver-process.ts';
import { ROOT, servePingboard, type Server } from '../test/helpers/process.ts';
import { writeNdjson } from './dataset.ts';
import { load, type LoadResult } from './load.ts';

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

export interface ThroughputBenchOptions {
  readonly databaseUrl: string;
  readonly ndjsonPath: string;
  readonly samples: number;
  readonly servers: number;
  readonly connections: number;
  readonly seconds: number;
  /** Each round loads 1, 2 and 3 instances in turn. */
  readonly rounds: number;
}

const THROUGHPUT_ROOM = '!instances:pingboard.example';
const INSTANCE_COUNTS = [1, 2, 3] as const;

export async function instancesThroughputBench(
  options: ThroughputBenchOptions,
  report: (line: string) => void,
): Promise<Figures> {
  // The rolling week /leaderboard.md shows by default.
  await writeNdjson(options.ndjsonPath, {
    servers: options.servers,
    samples: options.samples,
    responders: 4,
    roomId: THROUGHPUT_ROOM,
    end: new Date(),
    seed: 19,
  });
  const counts: ImportCounts = { read: 0, stored: 0, duplicate: 0, rejected: 0 };
  const database = await openDatabase({ url: options.databaseUrl, dataDir: '' });
  try {
    await migrateToLatest(database.db);
    await importFiles(
      database.db,
      createStatistics(loadConfig({}), database, { keepBuiltDigests: false }),
      [options.ndjsonPath],
      counts,
    );
  } finally {
    await database.destroy();
  }
  report(`imported ${counts.stored} samples`);
  const teardowns: (() => unknown)[] = [];
  const figures: Figures = { samples: counts.stored, connections: options.connections, rounds: options.rounds };
  try {
    const env = { DATABASE_URL: options.databaseUrl, PINGBOARD_ROOMS: THROUGHPUT_ROOM };
    const instances: Server[] = [];
    for (const _ of INSTANCE_COUNTS)
      instances.push(await servePingboard({ teardown: (fn) => void teardowns.push(fn) }, ROOT, env));
    const proxySkipped = haproxySkip();
    // The machine is shared: its load moves between runs. Rounds that take every count in turn
    // put each count under the same moves, and the median of each count is what is compared.
    const results = new Map<string, LoadResult[]>();
    const record = (label: string, result: LoadResult) => {
      results.set(label, [...(results.get(label) ?? []), result]);
      report(
        `${label}: ${Math.round(result.requestsPerSecond)} req/s, p50 ${result.p50Ms} ms, p99 ${result.p99Ms} ms, ${result.errors + result.non2xx} failed (load average ${loadavg()[0]!.toFixed(1)})`,
      );
    };
    for (let round = 1; round <= options.rounds; round++) {
      for (const count of INSTANCE_COUNTS) {
        const serving = instances.slice(0, count);
        // Each computes its table once; the load measures serving it, as under a newsletter's traffic.
        for (const instance of serving) {
          const res = await fetch(`${instance.url}/leaderboard.md`);
          if (res.status !== 200) throw new Error(`${instance.url}/leaderboard.md answered ${res.status}`);
          await res.arrayBuffer();
        }
        const label = `${count} instance${count > 1 ? 's' : ''}`;
        record(
          `${label}, direct`,
          await load(
            serving.map((instance) => `${instance.url}/leaderboard.md`),
            options.connections,
            options.seconds,
          ),
        );
        if (proxySkipped) continue;
        const proxy = await startProxy(serving.map((instance) => instance.url));
        try {
          record(
            `${label}, through HAProxy`,
            await load(`${proxy.url}/leaderboard.md`, options.connections, options.seconds),
          );
        } finally {
          proxy.stop();
        }
      }
    }
    const median = (values: number[]) =>
      percentile(
        [...values].sort((x, y) => x - y),
        0.5,
      );
    for (const [label, runs] of results) {
      figures[`${label} req/s (median)`] = Math.round(median(runs.map((r) => r.requestsPerSecond)));
      figures[`${label} p99 ms (median)`] = Math.round(median(runs.map((r) => r.p99Ms)));
      const failed = runs.reduce((sum, r) => sum + r.errors + r.non2xx, 0);
      if (failed > 0) figures[`${label} failed`] = failed;
    }
    if (proxySkipped) figures['through HAProxy'] = proxySkipped;
  } finally {
    for (const teardown of teardowns) await teardown();
  }
  return figures;
}
