// The service under the bot bench, in a process of its own: exactly what
// `pingboard serve` starts (configured from the environment), so its memory
// figures hold nothing of the bench driver's. It answers the driver's
// questions over the IPC channel.
import { pino } from 'pino';
import { loadConfig } from '../src/config.ts';
import { createLogger } from '../src/log.ts';
import { start } from '../src/start.ts';

export interface ServiceReport {
  readonly syncState: string | null;
  readonly counts: Record<string, number>;
  readonly overheadMs: readonly number[];
  readonly writtenMs: readonly number[];
  /** Resident memory as the operating system sees it, then the heap in use after a full collection. */
  readonly rss: number;
  readonly heapUsed: number;
}

const config = loadConfig(process.env);
// Logging at the configured level (info by default), as the service logs, into a file nobody reads.
const service = await start(
  config,
  createLogger(config.logLevel, pino.destination({ dest: '/dev/null', sync: false })),
);
const bot = service.bot;
if (!bot) throw new Error('the bench service needs PINGBOARD_HOMESERVER_URL');

function report(): ServiceReport {
  const rss = process.memoryUsage().rss;
  globalThis.gc?.();
  return {
    syncState: bot!.client.getSyncState(),
    counts: { ...bot!.counts },
    overheadMs: bot!.overheadMs,
    writtenMs: bot!.writtenMs,
    rss,
    heapUsed: process.memoryUsage().heapUsed,
  };
}

process.on('message', (message) => {
  if (message === 'report') process.send!(report());
  if (message === 'stop') void service.stop().then(() => process.exit(0));
});
process.send!('ready');
