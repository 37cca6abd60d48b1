// The probes' schedule: at every tick each probe waits a random moment (so
// they do not all fire at once), then pings, unless its previous ping is still
// in flight, in which case this tick is skipped for it.
import cron from 'node-cron';
import type { Logger } from '../log.ts';
import type { Probe, ProbeResult, ProbeState } from '../probes/probe.ts';

export interface ProbeSchedule {
  /** Runs one tick now, jitter included; resolves when every probe started by it has finished. */
  tick(): Promise<ProbeResult[]>;
  /** Probe pings skipped because the probe was still busy. */
  readonly skipped: number;
  /** Each probe's latest outcomes, in configuration order (empty when no probe is configured). */
  states(): ProbeState[];
  stop(): Promise<void>;
}

export interface ProbeScheduleOptions {
  readonly probes: readonly Probe[];
  readonly schedule: string;
  readonly jitterMs: number;
  readonly log: Logger;
  /** For tests: a number in [0, 1). */
  readonly random?: () => number;
}

export function startProbeSchedule(options: ProbeScheduleOptions): ProbeSchedule {
  const { probes, log } = options;
  const random = options.random ?? Math.random;
  // A probe counts as busy from the tick that picked it, through its jitter wait, to the end of its ping.
  const busy = new Set<Probe>();
  const timers = new Map<NodeJS.Timeout, () => void>();
  let skipped = 0;
  let stopped = false;

  const runOne = async (probe: Probe): Promise<ProbeResult | undefined> => {
    if (busy.has(probe)) {
      skipped++;
      log.warn({ probe: probe.id }, 'probe still busy with its previous ping: tick skipped');
      return undefined;
    }
    busy.add(probe);
    try {
      await new Promise<void>((resolve) => {
        const timer = setTimeout(
          () => {
            timers.delete(timer);
            resolve();
          },
          Math.floor(random() * options.jitterMs),
        );
        timers.set(timer, resolve);
      });
      if (stopped) return undefined;
      return await probe.run();
    } catch (err) {
      log.error({ err, probe: probe.id }, 'probe failed');
      return undefined;
    } finally {
      busy.delete(probe);
    }
  };

  const tick = async () => (await Promise.all(probes.map(runOne))).filter((r): r is ProbeResult => r !== undefined);
  const task =
    probes.length > 0
      ? cron.schedule(options.schedule, () => void tick(), { name: 'probes', timezone: 'UTC' })
      : undefined;
  // Connect at once, so the first ping does not wait for a login and a first sync.
  for (const probe of probes) {
    probe
      .connect()
      .catch((err: unknown) =>
        log.warn(
          { err: (err as Error).message, probe: probe.id },
          'probe cannot connect yet; it retries at its next ping',
        ),
      );
  }
  return {
    tick,
    get skipped() {
      return skipped;
    },
    states: () => probes.map((p) => p.state),
    stop: async () => {
      stopped = true;
      await task?.destroy();
      for (const [timer, resolve] of timers) {
        clearTimeout(timer);
        resolve();
      }
      timers.clear();
      await Promise.all(probes.map((p) => p.stop()));
    },
  };
}
