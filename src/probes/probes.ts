// Builds the configured probes with what they share: the ping prefix and
// trusted responders, the database, the sample writer, and the ledger through
// which they measure delivery between their servers.
import type { Config } from '../config.ts';
import type { Db } from '../db/database.ts';
import type { Logger } from '../log.ts';
import type { SampleWriter } from '../samples/writer.ts';
import { Probe, type ProbeObserver } from './probe.ts';
import { PingLedger } from './sightings.ts';

export interface ProbeDeps {
  readonly db: Db;
  readonly writer: SampleWriter;
  readonly log: Logger;
  readonly observer?: ProbeObserver | undefined;
}

export function createProbes(config: Config, deps: ProbeDeps): Probe[] {
  const timeoutMs = config.probes.timeoutSeconds * 1000;
  const ledger = new PingLedger(deps.db, deps.log, timeoutMs);
  return config.probes.accounts.map(
    (account) =>
      new Probe({
        account,
        pingPrefix: config.pings.prefix,
        timeoutMs,
        ledger,
        responders: config.probes.responders,
        trustedResponders: config.pings.trustedResponders,
        ...deps,
      }),
  );
}
