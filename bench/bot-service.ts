// The service under the bot bench, in a process of its own: exactly what
// `pingboard serve` starts (configured from the environment), so its memory
// figures hold nothing of the bench driver's. It answers the driver's
// questions over the IPC channel. The bot's overhead figures are those it
// hands its metrics observer, kept whole here (the metric only has buckets).
import { pino } from 'pino';
import { loadConfig } from '../src/config.ts';
import { createLogger } from '../src/log.ts';
import { start } from '../src/start.ts';

export interface ServiceReport {
  readonly syncState: string | null;
  readonly counts: Record<string, number>;
  /**
   * Milliseconds from a /sync response's arrival until a pong's request was
   * made (handed to node:http), oldest first (the latest 20,000 to 40,000).
   */
  readonly overheadMs: readonly number[];
  /** The same, until node:http reported the request's last byte written to its connection. */
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

const KEPT_FIGURES = 20_000;
const overheadMs: number[] = [];
const writtenMs: number[] = [];
function keepLatest(figures: number[], value: number): void {
  figures.push(value);
  if (figures.length > 2 * KEPT_FIGURES) figures.splice(0, KEPT_FIGURES);
}
// Every pong the bot writes is told to its observer, the service's metrics, whose own use goes on.
const { metrics } = service;
const observed = metrics.pongWritten.bind(metrics);
metrics.pongWritten = (timing) => {
  keepLatest(overheadMs, timing.requestedMs);
  keepLatest(writtenMs, timing.writtenMs);
  observed(timing);
};

function report(): ServiceReport {
  const rss = process.memoryUsage().rss;
  globalThis.gc?.();
  return {
    syncState: bot!.client.getSyncState(),
    counts: { ...bot!.counts },
    overheadMs,
    writtenMs,
    rss,
    heapUsed: process.memoryUsage().heapUsed,
  };
}

process.on('message', (message) => {
  if (message === 'report') process.send!(report());
  if (message === 'stop') void service.stop().then(() => process.exit(0));
});
process.send!('ready');
