// Retention: once a day, raw samples and probe pings older than the
// configured age are deleted, with the digests of their hours. Frozen weeks
// are kept forever, so every published table stays reproducible.
import cron from 'node-cron';
import type { Db } from '../db/database.ts';
import type { Logger } from '../log.ts';
import { deleteOneWaySamplesBefore, deleteProbePingsBefore } from '../stats/probe-pings.ts';
import { deleteSamplesBefore } from '../samples/repository.ts';
import { retentionCutoff } from '../samples/retention.ts';
import { deleteDigestsBefore } from '../stats/digests.ts';

/** Daily at 03:17 UTC, away from the top of the hour when other jobs run. */
export const RETENTION_SCHEDULE = '17 3 * * *';

export interface RetentionResult {
  readonly cutoff: Date;
  readonly samples: number;
  readonly probePings: number;
  readonly oneWaySamples: number;
}

export async function applyRetention(db: Db, now: Date, days: number): Promise<RetentionResult> {
  const cutoff = retentionCutoff(now, days);
  const samples = await deleteSamplesBefore(db, cutoff);
  await deleteDigestsBefore(db, cutoff);
  const probePings = await deleteProbePingsBefore(db, cutoff);
  const oneWaySamples = await deleteOneWaySamplesBefore(db, cutoff);
  return { cutoff, samples, probePings, oneWaySamples };
}

export interface Retention {
  runNow(): Promise<RetentionResult | undefined>;
  stop(): Promise<void>;
}

export function startRetention(db: Db, days: number, log: Logger, now: () => Date = () => new Date()): Retention {
  const runNow = async () => {
    try {
      const result = await applyRetention(db, now(), days);
      if (result.samples > 0 || result.probePings > 0 || result.oneWaySamples > 0)
        log.info({ ...result, days }, 'old samples deleted');
      return result;
    } catch (err) {
      log.error({ err }, 'deleting old samples failed; will retry at the next run');
      return undefined;
    }
  };
  const task = cron.schedule(RETENTION_SCHEDULE, () => void runNow(), {
    name: 'retention',
    timezone: 'UTC',
    noOverlap: true,
  });
  return { runNow, stop: async () => void (await task.destroy()) };
}
