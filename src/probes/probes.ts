// Builds the configured probes with what they share: the ping prefix and
// trusted responders, the database and the sample writer.
import type { Config } from '../config.ts';
import type { Db } from '../db/database.ts';
import type { Logger } from '../log.ts';
import type { SampleWriter } from '../samples/writer.ts';
import { Probe, type ProbeObserver } from './probe.ts';

export interface ProbeDeps {
  readonly db: Db;
  readonly writer: SampleWriter;
  readonly log: Logger;
  readonly observer?: ProbeObserver | undefined;
}

export function createProbes(config: Config, deps: ProbeDeps): Probe[] {
  return config.probes.accounts.map((account) => new Probe({
    account,
    pingPrefix: config.pings.prefix,
    timeoutMs: config.probes.timeoutSeconds * 1000,
    responders: config.probes.responders,
    trustedResponders: config.pings.trustedResponders,
    ...deps,
  }));
}
