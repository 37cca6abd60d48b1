// Issue #18 scenario: delays measured on one clock. Four probes on servers
// with 20, 45, 70 and 30 ms of injected delay, the last one's clock 2 s fast,
// run here; the test homeserver runs in its own process, so its timers and
// HTTP do not wait for the probes' work. Each round the probes ping one
// after the other, far enough apart that one ping's deliveries never share
// the event loop with the next one's. Every ping is seen by the three other
// probes: a one-way delay sender → receiver on this process's monotonic
// clock, held against the injected delay(sender) + delay(receiver) and
// against the delivery the homeserver actually made (its timers may be
// late); and a clock-offset estimate, held against the injected offset.
import { setTimeout as sleep } from 'node:timers/promises';
import { loadConfig } from '../src/config.ts';
import type { Database } from '../src/db/database.ts';
import { createLogger } from '../src/log.ts';
import type { Probe } from '../src/probes/probe.ts';
import { createProbes } from '../src/probes/probes.ts';
import { SampleWriter } from '../src/samples/writer.ts';
import { quantileSorted } from 'simple-statistics';
import type { Figures } from './leaderboard.bench.ts';
import { startHomeserverProcess } from './processes.ts';

const DELAYS: Readonly<Record<string, number>> = {
  'a.example': 20,
  'b.example': 45,
  'c.example': 70,
  'fast.example': 30,
};
const OFFSETS: Readonly<Record<string, number>> = { 'fast.example': 2000 };
/** Longer than any delivery (2 × 70 ms) with room to spare: the pings of a round never overlap. */
const STAGGER_MS = 300;

export interface ClocksBenchOptions {
  readonly database: Database;
  readonly rounds: number;
}

const round2 = (n: number) => Number(n.toFixed(2));
const median = (values: readonly number[]) =>
  quantileSorted(
    [...values].sort((a, b) => a - b),
    0.5,
  );
const maxAbs = (values: readonly number[]) => Math.max(...values.map(Math.abs));

export async function clocksBench(options: ClocksBenchOptions, report: (line: string) => void): Promise<Figures> {
  const homeserver = await startHomeserverProcess(DELAYS, OFFSETS);
  const { url, call } = homeserver;
  const servers = Object.keys(DELAYS);
  const entries = servers.map((server) => ({
    id: server.split('.')[0]!,
    server,
    userId: `@probe-${server.split('.')[0]}:${server}`,
    token: `token-${server}`,
  }));
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
    const config = loadConfig({
      PINGBOARD_ROOMS: '#ping:bot.example',
      PINGBOARD_PROBES: JSON.stringify(
        entries.map((e) => ({ id: e.id, homeserver_url: url, user_id: e.userId, access_token: e.token })),
      ),
      // No responder: each ping waits out its timeout, long after the other probes have seen it.
      PINGBOARD_PROBE_TIMEOUT_SECONDS: '1',
    });
    probes.push(...createProbes(config, { db: options.database.db, writer, log }));
    await Promise.all(probes.map((p) => p.connect()));
    for (let round = 0; round < options.rounds; round++) {
      const runs: Promise<unknown>[] = [];
      for (const probe of probes) {
        runs.push(probe.run()!);
        await sleep(STAGGER_MS);
      }
      await Promise.all(runs);
    }
    // Stopping flushes what the probes measured.
    await Promise.all(probes.map((p) => p.stop()));
    const rows = await options.database.db.selectFrom('one_way_samples').selectAll().execute();
    report(`${rows.length} one-way samples in ${options.rounds} rounds`);
    // When each ping's send request reached the homeserver: its delays count from then.
    const requestedAt = new Map(
      ((await call('events', roomId)) as { event_id: string; requestedAt: number }[]).map((e) => [
        e.event_id,
        e.requestedAt,
      ]),
    );
    const delivered = new Map<string, Record<string, number>>();
    for (const server of servers)
      delivered.set(server, (await call('deliveries', roomId, server)) as Record<string, number>);

    const vsInjected = rows.map((r) => r.one_way_ms - DELAYS[r.sender_server]! - DELAYS[r.receiver_server]!);
    const vsDelivered = rows.map(
      (r) => r.one_way_ms - (delivered.get(r.receiver_server)![r.ping_event_id]! - requestedAt.get(r.ping_event_id)!),
    );
    // Where a sample's time beyond the delivery went, on the wall clock both processes share (whole
    // milliseconds each): before the homeserver had the send request, and after it delivered the ping.
    const beforeRequested = rows.map(
      (r) => requestedAt.get(r.ping_event_id)! - (r.measured_at.getTime() - r.one_way_ms),
    );
    const afterDelivered = rows.map(
      (r) => r.measured_at.getTime() - delivered.get(r.receiver_server)![r.ping_event_id]!,
    );
    const byPair = new Map<string, number[]>();
    for (const [i, r] of rows.entries()) {
      const key = `${r.sender_server}→${r.receiver_server}`;
      byPair.set(key, [...(byPair.get(key) ?? []), vsInjected[i]!]);
    }
    const pairMedians = [...byPair.values()].map(median);
    const offsetErrors = rows.map((r) => r.offset_ms - (OFFSETS[r.sender_server] ?? 0));
    const outsideBound = rows.filter((r, i) => Math.abs(offsetErrors[i]!) > r.offset_bound_ms + 2).length;
    const fast = rows.filter((r) => r.sender_server === 'fast.example').map((r) => r.offset_ms);
    const samplesPerPair = [...byPair.values()].map((v) => v.length);
    return {
      'ordered pairs × samples each (min)': `${byPair.size} × ${Math.min(...samplesPerPair)}`,
      'pair median error vs injected, max absolute (ms)': round2(maxAbs(pairMedians)),
      'pairs whose median is within 2 ms of injected': `${pairMedians.filter((e) => Math.abs(e) <= 2).length}/${byPair.size}`,
      'sample error vs injected, median (ms)': round2(median(vsInjected)),
      'sample error vs injected, max absolute (ms)': round2(maxAbs(vsInjected)),
      "sample error vs the homeserver's delivery, median (ms)": round2(median(vsDelivered)),
      "sample error vs the homeserver's delivery, max absolute (ms)": round2(maxAbs(vsDelivered)),
      'of which before the homeserver had the send request, median (ms)': round2(median(beforeRequested)),
      'of which after the homeserver delivered it, median (ms)': round2(median(afterDelivered)),
      'offset of the 2 s fast server, median (ms)': round2(median(fast)),
      'offset error, max absolute (ms)': round2(maxAbs(offsetErrors)),
      'offset bound, median (ms)': round2(median(rows.map((r) => r.offset_bound_ms))),
      'offset estimates outside their bound': `${outsideBound}/${rows.length}`,
    };
  } finally {
    await Promise.all(probes.map((p) => p.stop()));
    writer.stop();
    homeserver.stop();
  }
}
