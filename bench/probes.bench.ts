// Issue #4 scenario: probes. The test homeserver and the responding service
// (Pingboard's bot, as `pingboard serve` runs it) each run in their own
// process; the probes run here, so this process's CPU time and memory are
// the probes' own.
//
// 1. Accuracy: three probes on servers with 25, 120 and 300 ms of injected
//    delay ping in rounds, 10 ms apart. The probe's round trip is held
//    against the one the homeserver made (it records when the ping was
//    created and when the pong reached the probe's server): that error is
//    the probe's own plus the request's and the response's ways over
//    loopback and through the homeserver's HTTP layer. Also shown: the round
//    trip minus twice the injected delay (adding the responder's turn-around
//    and two long-poll wake-ups), and the one-way delay reported in the pong
//    minus the injected delay.
// 2. Cost: 100 probes, connected, fire at once: CPU time and wall time of the
//    burst, and memory before and after.
import { setTimeout as sleep } from 'node:timers/promises';
import { loadConfig } from '../src/config.ts';
import type { Database } from '../src/db/database.ts';
import { createLogger } from '../src/log.ts';
import type { Probe, ProbeResult } from '../src/probes/probe.ts';
import { createProbes } from '../src/probes/probes.ts';
import { SampleWriter } from '../src/samples/writer.ts';
import type { Figures } from './leaderboard.bench.ts';
import {
  BENCH_BOT as BOT,
  BENCH_BOT_PASSWORD,
  BENCH_DELAYS as DELAYS,
  startHomeserverProcess,
  startServiceProcess,
  type ServiceProcess,
} from './processes.ts';

/**
 * The accuracy probes of a round start this far apart, as the schedule's
 * jitter spreads probes in the service. Sent in the same instant, each send
 * waits for the others' in this process and in the homeserver, which measures
 * the bench's own crowding (the burst below shows that) rather than a probe.
 */
const ACCURACY_STAGGER_MS = 10;

export interface ProbesBenchOptions {
  readonly database: Database;
  readonly databaseUrl: string;
  /** Rounds of the three accuracy probes. */
  readonly rounds: number;
  /** Probes that fire at once in the cost measurement. */
  readonly burst: number;
}

const round2 = (n: number) => Number(n.toFixed(2));
const mb = (bytes: number) => Math.round(bytes / 2 ** 20);

function errorFigures(prefix: string, errors: readonly number[]): Figures {
  const sorted = [...errors].map(Math.abs).sort((a, b) => a - b);
  return {
    [`${prefix}, mean absolute (ms)`]: round2(sorted.reduce((a, b) => a + b, 0) / sorted.length),
    [`${prefix}, p50 absolute (ms)`]: round2(sorted[Math.floor(sorted.length / 2)]!),
    [`${prefix}, max absolute (ms)`]: round2(sorted[sorted.length - 1]!),
    [`${prefix}, mean signed (ms)`]: round2(errors.reduce((a, b) => a + b, 0) / errors.length),
  };
}

export async function probesBench(options: ProbesBenchOptions, report: (line: string) => void): Promise<Figures> {
  const homeserver = await startHomeserverProcess({ 'bot.example': 0, ...DELAYS });
  const { url, call } = homeserver;
  const servers = Object.keys(DELAYS);
  const accuracyProbes = servers.map((server) => ({ id: `acc-${server.split('.')[0]}`, server }));
  const burstProbes = Array.from({ length: options.burst }, (_, i) => ({
    id: `burst-${i}`,
    server: servers[i % servers.length]!,
  }));
  const entries = [...accuracyProbes, ...burstProbes].map((p) => ({
    ...p,
    userId: `@${p.id}:${p.server}`,
    token: `token-${p.id}`,
  }));
  let service: ServiceProcess | undefined;
  const probes: Probe[] = [];
  const log = createLogger('silent');
  const writer = new SampleWriter({ db: options.database.db, log, capacity: 100_000 });
  try {
    await call('registerUser', '@admin:bot.example', {});
    for (const entry of entries) await call('registerUser', entry.userId, { accessToken: entry.token });
    const roomId = (await call('createRoom', '@admin:bot.example', {
      room_alias_name: 'ping',
      preset: 'public_chat',
    })) as string;
    service = await startServiceProcess({
      DATABASE_URL: options.databaseUrl,
      PINGBOARD_PORT: '0',
      PINGBOARD_ROOMS: '#ping:bot.example',
      PINGBOARD_HOMESERVER_URL: url,
      PINGBOARD_BOT_USER_ID: BOT,
      PINGBOARD_BOT_PASSWORD: BENCH_BOT_PASSWORD,
      PINGBOARD_ANSWERS_PER_MINUTE: '10000',
    });

    const config = loadConfig({
      PINGBOARD_ROOMS: '#ping:bot.example',
      PINGBOARD_PROBES: JSON.stringify(
        entries.map((e) => ({ id: e.id, homeserver_url: url, user_id: e.userId, access_token: e.token })),
      ),
      PINGBOARD_PROBE_RESPONDERS: BOT,
      PINGBOARD_PROBE_TIMEOUT_SECONDS: '60',
    });
    probes.push(...createProbes(config, { db: options.database.db, writer, log }));
    const accuracy = probes.slice(0, accuracyProbes.length);
    const burst = probes.slice(accuracyProbes.length);

    const rttErrors: number[] = [];
    const oneWayErrors: number[] = [];
    /** Each accuracy pong with the ping it answers and the probe's server, to be held against the homeserver's record. */
    const measured: { ping: string; pong: string; server: string; rttMs: number }[] = [];
    await Promise.all(accuracy.map((p) => p.connect()));
    for (let round = 0; round < options.rounds; round++) {
      const results = await Promise.all(
        accuracy.map(async (p, i) => {
          await sleep(i * ACCURACY_STAGGER_MS);
          return p.run()!;
        }),
      );
      for (const result of results) {
        const delay = DELAYS[result.pingServer]!;
        for (const pong of result.pongs) {
          rttErrors.push(pong.rttMs - 2 * delay);
          oneWayErrors.push(pong.delayMs - delay);
          measured.push({
            ping: result.pingEventId!,
            pong: pong.eventId,
            server: result.pingServer,
            rttMs: pong.rttMs,
          });
        }
      }
      // A ping room is quiet between ticks; the next round starts from a quiet room too.
      await new Promise((resolve) => setTimeout(resolve, 100));
    }
    report(`accuracy: ${rttErrors.length} pongs in ${options.rounds} rounds`);
    // The round trip the homeserver actually made (ping created → pong delivered to the probe's server):
    // the injected delays plus the responder's turn-around, against which the probe's own clock is judged.
    const sentAt = new Map(
      ((await call('events', roomId)) as { event_id: string; sentAt: number }[]).map((e) => [e.event_id, e.sentAt]),
    );
    const delivered = new Map<string, Record<string, number>>();
    for (const server of servers)
      delivered.set(server, (await call('deliveries', roomId, server)) as Record<string, number>);
    const rttVsHomeserver = measured.map((m) => m.rttMs - (delivered.get(m.server)![m.pong]! - sentAt.get(m.ping)!));

    const connectStart = performance.now();
    await Promise.all(burst.map((p) => p.connect()));
    const connectMs = performance.now() - connectStart;
    globalThis.gc?.();
    const before = process.memoryUsage();
    const cpuBefore = process.cpuUsage();
    const started = performance.now();
    let peakRss = before.rss;
    const sampler = setInterval(() => {
      peakRss = Math.max(peakRss, process.memoryUsage().rss);
    }, 20);
    const results: ProbeResult[] = await Promise.all(burst.map((p) => p.run()!));
    const wallMs = performance.now() - started;
    const cpu = process.cpuUsage(cpuBefore);
    clearInterval(sampler);
    const afterRss = process.memoryUsage().rss;
    globalThis.gc?.();
    const afterHeap = process.memoryUsage().heapUsed;
    const burstRtt = results.flatMap((r) => r.pongs.map((p) => p.rttMs - 2 * DELAYS[r.pingServer]!));
    report(
      `burst: ${results.filter((r) => r.outcome === 'answered').length}/${results.length} answered in ${Math.round(wallMs)} ms`,
    );
    await writer.flushed();
    return {
      'accuracy probes × rounds': `${accuracy.length} × ${options.rounds}`,
      ...errorFigures("round trip error vs the homeserver's round trip", rttVsHomeserver),
      ...errorFigures('round trip error vs 2 × injected', rttErrors),
      ...errorFigures('one-way error vs injected', oneWayErrors),
      [`${burst.length} probes: connect, all at once (ms)`]: Math.round(connectMs),
      [`${burst.length} probes: answered`]: results.filter((r) => r.outcome === 'answered').length,
      [`${burst.length} probes: burst wall time (ms)`]: Math.round(wallMs),
      [`${burst.length} probes: burst CPU user+system (ms)`]: Math.round((cpu.user + cpu.system) / 1000),
      [`${burst.length} probes: round trip error in the burst, mean absolute (ms)`]: round2(
        burstRtt.reduce((a, b) => a + Math.abs(b), 0) / burstRtt.length,
      ),
      [`${burst.length} probes: rss before (MB)`]: mb(before.rss),
      [`${burst.length} probes: rss peak during the burst (MB)`]: mb(peakRss),
      [`${burst.length} probes: rss after (MB)`]: mb(afterRss),
      [`${burst.length} probes: heap used before (MB)`]: mb(before.heapUsed),
      [`${burst.length} probes: heap used after (MB)`]: mb(afterHeap),
    };
  } finally {
    await Promise.all(probes.map((p) => p.stop()));
    writer.stop();
    await service?.stop();
    homeserver.stop();
  }
}
