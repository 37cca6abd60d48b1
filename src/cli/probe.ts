// `pingboard probe --once`: every configured probe pings one time, and what
// it measured is printed, for operators checking a new probe.
import { ConfigError, type Config } from '../config.ts';
import type { Logger } from '../log.ts';
import type { ProbeResult } from '../probes/probe.ts';
import { createProbes } from '../probes/probes.ts';
import { SampleWriter } from '../samples/writer.ts';
import { openMigratedDatabase } from '../open.ts';
import type { Output } from './commands.ts';

export function formatProbeResult(result: ProbeResult, timeoutSeconds: number): string {
  const head = `probe ${result.probeId} (${result.userId}), ping #${result.seq}`;
  if (result.outcome === 'send_failed') return `${head}: send failed: ${result.error}\n`;
  if (result.outcome === 'lost') return `${head} ${result.pingEventId}: lost, no pong within ${timeoutSeconds} s\n`;
  const lines = result.pongs.map(
    (p) => `  ${p.responder}: round trip ${p.rttMs.toFixed(1)} ms, one-way ${p.delayMs} ms\n`,
  );
  return `${head} ${result.pingEventId}: ${result.pongs.length} pong${result.pongs.length === 1 ? '' : 's'}\n${lines.join('')}`;
}

/** Exit code 0 when every probe got a pong, 1 otherwise. */
export async function probeOnceCommand(config: Config, log: Logger, out: Output): Promise<number> {
  if (config.probes.accounts.length === 0) throw new ConfigError('PINGBOARD_PROBES: no probe is configured');
  const database = await openMigratedDatabase(config, log);
  const writer = new SampleWriter({ db: database.db, log, capacity: config.queueCapacity });
  // What each probe measured, and why a send failed, is printed below; the SDK's
  // warnings (mostly about defaults it fills in) would only bury it.
  const probes = createProbes(config, { db: database.db, writer, log: log.child({}, { level: 'error' }) });
  try {
    const results = await Promise.all(probes.map((probe) => probe.run()!));
    for (const result of results) out.stdout.write(formatProbeResult(result, config.probes.timeoutSeconds));
    return results.every((r) => r.outcome === 'answered') ? 0 : 1;
  } finally {
    await Promise.all(probes.map((p) => p.stop()));
    await writer.flushNow();
    await database.destroy();
  }
}
