// Pingboard's metrics: counters fed by the bot and the probes as things
// happen, and gauges read from the bot, the sample writer and the probe
// schedule when /metrics is scraped. Ping server labels are capped.
import type { BotCounts, BotObserver, PongTiming } from '../bot/bot.ts';
import type { ProbeObserver, ProbeResult } from '../probes/probe.ts';
import type { SampleWriter } from '../samples/writer.ts';
import { CappedLabel, Counter, Histogram, renderFamilies, type MetricFamily } from './registry.ts';

/** Seconds: from a fast local round trip to a ping that is nearly lost. */
export const DELAY_BUCKETS = [0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60];

/** Seconds: the bot's own time on a ping, under a millisecond when idle, tens of them behind a burst. */
export const OVERHEAD_BUCKETS = [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1];

/** What the gauges read at scrape time; each part is absent when not running. */
export interface MetricSources {
  readonly bot?:
    | {
        readonly counts: Pick<
          BotCounts,
          'lastSyncAtMs' | 'consecutiveSyncFailures' | 'pingsSkippedBacklog' | 'pingsRateLimited' | 'sendFailures'
        >;
        /** Configured rooms, and upgrades of them, the bot is not in. */
        notFollowed(): readonly unknown[];
      }
    | undefined;
  readonly writer?: Pick<SampleWriter, 'counts'> | undefined;
  readonly probeTicksSkipped?: (() => number) | undefined;
  /** Whether this instance leads (undefined while it is starting). */
  readonly leader?: boolean | undefined;
}

export class PingboardMetrics implements BotObserver, ProbeObserver {
  readonly #servers: CappedLabel;
  readonly #pingsAnswered = new Counter(
    'pingboard_pings_answered_total',
    'Pings the bot answered with a pong, by ping server.',
  );
  readonly #pongsRead = new Counter(
    'pingboard_pongs_read_total',
    'Pongs of other bots read and recorded, by ping server.',
  );
  readonly #pongOverhead = new Histogram(
    'pingboard_pong_overhead_seconds',
    'The bot\'s own time on each answered ping: from the arrival of the sync response that brought it until the pong\'s request was made (until="requested") and written to its connection (until="written").',
    OVERHEAD_BUCKETS,
  );
  readonly #probePings = new Counter(
    'pingboard_probe_pings_total',
    'Probe pings by ping server and outcome (answered, lost, send_failed).',
  );
  readonly #probeLost = new Counter(
    'pingboard_probe_pings_lost_total',
    'Probe pings that no responder answered within the timeout, by ping server.',
  );
  readonly #rtt = new Histogram(
    'pingboard_probe_rtt_seconds',
    "Probe round trips from the send request to the pong's arrival, by ping server.",
    DELAY_BUCKETS,
  );
  readonly #oneWay = new Histogram(
    'pingboard_probe_one_way_delay_seconds',
    'One-way delays reported in the pongs to probe pings, by ping server.',
    DELAY_BUCKETS,
  );

  constructor(serverLabelCap: number) {
    this.#servers = new CappedLabel(serverLabelCap);
  }

  #server(server: string) {
    return { ping_server: this.#servers.value(server) };
  }

  pingAnswered(pingServer: string): void {
    this.#pingsAnswered.inc(this.#server(pingServer));
  }

  pongRead(pingServer: string): void {
    this.#pongsRead.inc(this.#server(pingServer));
  }

  pongWritten({ requestedMs, writtenMs }: PongTiming): void {
    this.#pongOverhead.observe(requestedMs / 1000, { until: 'requested' });
    this.#pongOverhead.observe(writtenMs / 1000, { until: 'written' });
  }

  probeFinished(result: ProbeResult): void {
    const labels = this.#server(result.pingServer);
    this.#probePings.inc({ ...labels, outcome: result.outcome });
    if (result.outcome === 'lost') this.#probeLost.inc(labels);
    else if (result.outcome === 'send_failed') return;
    for (const pong of result.pongs) {
      this.#rtt.observe(pong.rttMs / 1000, labels);
      this.#oneWay.observe(pong.delayMs / 1000, labels);
    }
  }

  render(sources: MetricSources): string {
    const gauge = (
      name: string,
      help: string,
      value: number | undefined,
      type: 'counter' | 'gauge' = 'gauge',
    ): MetricFamily[] => (value === undefined ? [] : [{ name, help, type, samples: [{ labels: {}, value }] }]);
    const writer = sources.writer?.counts;
    const bot = sources.bot?.counts;
    return renderFamilies([
      ...gauge(
        'pingboard_leader',
        'Whether this instance leads: runs the bot, probes and scheduled jobs (1), or serves HTTP only (0).',
        sources.leader === undefined ? undefined : Number(sources.leader),
      ),
      this.#pingsAnswered.family(),
      this.#pongsRead.family(),
      this.#pongOverhead.family(),
      ...gauge('pingboard_samples_written_total', 'Samples stored by the sample writer.', writer?.written, 'counter'),
      ...gauge(
        'pingboard_sample_writes_failed_total',
        'Batches of samples whose write failed (they stay queued).',
        writer?.failedWrites,
        'counter',
      ),
      ...gauge(
        'pingboard_samples_dropped_total',
        'Samples refused because the queue was full.',
        writer?.dropped,
        'counter',
      ),
      ...gauge(
        'pingboard_samples_expired_total',
        'Samples not recorded because they were older than PINGBOARD_RETENTION_DAYS.',
        writer?.expired,
        'counter',
      ),
      ...gauge('pingboard_sample_queue_length', 'Samples waiting to be written.', writer?.queued),
      ...gauge(
        'pingboard_sync_last_success_timestamp_seconds',
        "When the bot's latest successful sync finished (0: none yet).",
        bot === undefined ? undefined : bot.lastSyncAtMs / 1000,
      ),
      ...gauge(
        'pingboard_sync_consecutive_failures',
        'Failed syncs of the bot since its latest successful one.',
        bot?.consecutiveSyncFailures,
      ),
      ...gauge(
        'pingboard_rooms_not_followed',
        'Configured rooms, and upgrades of them, the bot is not in (it keeps trying to join; /healthz names them).',
        sources.bot?.notFollowed().length,
      ),
      ...gauge(
        'pingboard_pings_skipped_backlog_total',
        'Pings not answered: in the first sync after a start or an outage, or too old.',
        bot?.pingsSkippedBacklog,
        'counter',
      ),
      ...gauge(
        'pingboard_pings_rate_limited_total',
        'Pings not answered: their sender was over the answers per minute.',
        bot?.pingsRateLimited,
        'counter',
      ),
      ...gauge(
        'pingboard_pong_sends_failed_total',
        'Pongs whose send failed after its retries (their samples are kept).',
        bot?.sendFailures,
        'counter',
      ),
      this.#probePings.family(),
      this.#probeLost.family(),
      ...gauge(
        'pingboard_probe_ticks_skipped_total',
        "Probe pings skipped because the probe's previous ping was still in flight.",
        sources.probeTicksSkipped?.(),
        'counter',
      ),
      this.#rtt.family(),
      this.#oneWay.family(),
    ]);
  }
}
