// /metrics: the exposition format rendered exactly, read back by a strict
// parser, label cardinality bounded with thousands of servers, and served by
// the running service.
import t from 'tap';
import { loadConfig } from '../src/config.ts';
import { createLogger } from '../src/log.ts';
import { PingboardMetrics } from '../src/metrics/pingboard.ts';
import {
  CappedLabel,
  Counter,
  escapeLabelValue,
  formatValue,
  Histogram,
  renderFamilies,
} from '../src/metrics/registry.ts';
import type { ProbeResult } from '../src/probes/probe.ts';
import { start } from '../src/start.ts';
import { forEachEngine } from './helpers/database.ts';
import { parsePrometheusStrict } from './helpers/prometheus.ts';

function probeResult(
  server: string,
  outcome: ProbeResult['outcome'],
  pongs: { rttMs: number; delayMs: number }[] = [],
): ProbeResult {
  return {
    probeId: server,
    userId: `@p:${server}`,
    pingServer: server,
    seq: 1,
    sentAt: new Date(),
    roomId: '!r:x.org',
    pingEventId: '$e',
    outcome,
    pongs: pongs.map((p, i) => ({ eventId: `$pong${i}`, responder: '@bot:x.org', responderServer: 'x.org', ...p })),
    error: null,
  };
}

t.test('values and label values are written as the format requires', async (t) => {
  t.equal(escapeLabelValue('a"b\\c\nd'), 'a\\"b\\\\c\\nd');
  t.equal(formatValue(Infinity), '+Inf');
  t.equal(formatValue(-Infinity), '-Inf');
  t.equal(formatValue(Number.NaN), 'NaN');
  t.equal(formatValue(0.25), '0.25');
});

t.test('counters and histograms render HELP, TYPE, escaped labels and cumulative buckets', async (t) => {
  const counter = new Counter('demo_total', 'A counter\nwith a \\ in its help.');
  counter.inc({ ping_server: 'we"ird\\name' });
  counter.inc({ ping_server: 'we"ird\\name' }, 2);
  counter.inc({ ping_server: 'plain.example' });
  const histogram = new Histogram('demo_seconds', 'A histogram.', [1, 0.1]);
  histogram.observe(0.05, { ping_server: 'a' });
  histogram.observe(0.5, { ping_server: 'a' });
  histogram.observe(-2, { ping_server: 'a' });
  histogram.observe(7, { ping_server: 'a' });
  const text = renderFamilies([
    counter.family(),
    histogram.family(),
    { name: 'demo_up', help: 'Gauge.', type: 'gauge', samples: [{ labels: {}, value: 1 }] },
  ]);
  t.equal(
    text,
    [
      '# HELP demo_total A counter\\nwith a \\\\ in its help.',
      '# TYPE demo_total counter',
      'demo_total{ping_server="we\\"ird\\\\name"} 3',
      'demo_total{ping_server="plain.example"} 1',
      '# HELP demo_seconds A histogram.',
      '# TYPE demo_seconds histogram',
      'demo_seconds_bucket{ping_server="a",le="0.1"} 2',
      'demo_seconds_bucket{ping_server="a",le="1"} 3',
      'demo_seconds_bucket{ping_server="a",le="+Inf"} 4',
      'demo_seconds_sum{ping_server="a"} 5.55',
      'demo_seconds_count{ping_server="a"} 4',
      '# HELP demo_up Gauge.',
      '# TYPE demo_up gauge',
      'demo_up 1',
      '',
    ].join('\n'),
  );
  const parsed = parsePrometheusStrict(text);
  t.same(
    parsed.get('demo_total')!.samples.map((s) => s.labels['ping_server']),
    ['we"ird\\name', 'plain.example'],
    'the parser reads the escaped values back',
  );
});

t.test('the strict parser rejects what the format forbids', async (t) => {
  const bad = [
    'demo 1\n', // no TYPE
    '# TYPE demo counter\ndemo{a="x} 1\n',
    '# TYPE demo counter\ndemo{a="\\q"} 1\n',
    '# TYPE demo counter\ndemo 1\ndemo 2\n',
    '# TYPE demo histogram\ndemo_bucket{le="1"} 1\ndemo_sum 1\ndemo_count 1\n',
    '# TYPE demo histogram\ndemo_bucket{le="1"} 2\ndemo_bucket{le="+Inf"} 1\ndemo_sum 1\ndemo_count 1\n',
    '# TYPE demo counter\ndemo 1',
  ];
  for (const text of bad) t.throws(() => parsePrometheusStrict(text), JSON.stringify(text));
});

t.test('a capped label admits the first values and folds the rest into "other"', async (t) => {
  const label = new CappedLabel(2);
  t.same(
    ['a', 'b', 'c', 'a', 'd', 'b'].map((v) => label.value(v)),
    ['a', 'b', 'other', 'a', 'other', 'b'],
  );
  t.equal(label.size, 2);
});

t.test("the bot's overhead on each pong: until its request was made, and until written", async (t) => {
  const metrics = new PingboardMetrics(50);
  metrics.pongWritten({ requestedMs: 0.4, writtenMs: 0.9 });
  metrics.pongWritten({ requestedMs: 3, writtenMs: 30 });
  const text = metrics.render({});
  const family = parsePrometheusStrict(text).get('pingboard_pong_overhead_seconds');
  t.equal(family?.type, 'histogram');
  t.match(text, /\npingboard_pong_overhead_seconds_bucket\{until="requested",le="0\.0005"\} 1\n/);
  t.match(text, /\npingboard_pong_overhead_seconds_bucket\{until="written",le="0\.001"\} 1\n/);
  t.match(text, /\npingboard_pong_overhead_seconds_bucket\{until="written",le="0\.025"\} 1\n/);
  t.match(text, /\npingboard_pong_overhead_seconds_bucket\{until="written",le="0\.05"\} 2\n/);
  t.match(text, /\npingboard_pong_overhead_seconds_count\{until="requested"\} 2\n/);
});

t.test('with thousands of ping servers, /metrics stays under the label cap and loses no count', async (t) => {
  const cap = 50;
  const metrics = new PingboardMetrics(cap);
  const servers = Array.from({ length: 5000 }, (_, i) => `server-${i}.example`);
  for (const server of servers) {
    metrics.pingAnswered(server);
    metrics.pongRead(server);
    metrics.probeFinished(probeResult(server, 'answered', [{ rttMs: 80, delayMs: 40 }]));
    metrics.probeFinished(probeResult(server, 'lost'));
    metrics.probeFinished(probeResult(server, 'send_failed'));
  }
  const text = metrics.render({
    writer: { counts: { written: 10, duplicate: 0, failedWrites: 1, dropped: 0, expired: 5, queued: 3 } },
    bot: {
      counts: {
        lastSyncAtMs: 1_700_000_000_000,
        consecutiveSyncFailures: 2,
        pingsSkippedBacklog: 7,
        pingsRateLimited: 8,
        sendFailures: 9,
      },
      notFollowed: () => [{}, {}],
    },
    probeTicksSkipped: () => 4,
  });
  const families = parsePrometheusStrict(text);
  const labelled = new Set<string>();
  for (const family of families.values())
    for (const s of family.samples) if (s.labels['ping_server'] !== undefined) labelled.add(s.labels['ping_server']);
  t.equal(labelled.size, cap + 1, `${cap} servers and "other"`);
  t.ok(labelled.has('other'));
  const total = (name: string) => families.get(name)!.samples.reduce((sum, s) => sum + s.value, 0);
  t.equal(total('pingboard_pings_answered_total'), 5000, 'every answered ping is counted, capped or not');
  t.equal(total('pingboard_probe_pings_lost_total'), 5000);
  t.equal(
    families
      .get('pingboard_probe_rtt_seconds')!
      .samples.filter((s) => s.name.endsWith('_count'))
      .reduce((sum, s) => sum + s.value, 0),
    5000,
  );
  t.match(text, /\npingboard_sample_queue_length 3\n/);
  t.match(text, /\n# TYPE pingboard_samples_expired_total counter\npingboard_samples_expired_total 5\n/);
  t.match(text, /\npingboard_sync_last_success_timestamp_seconds 1700000000\n/);
  t.match(text, /\npingboard_sync_consecutive_failures 2\n/);
  t.match(text, /\n# TYPE pingboard_rooms_not_followed gauge\npingboard_rooms_not_followed 2\n/);
  t.match(text, /\n# TYPE pingboard_pings_skipped_backlog_total counter\npingboard_pings_skipped_backlog_total 7\n/);
  t.match(text, /\npingboard_pings_rate_limited_total 8\n/);
  t.match(text, /\npingboard_pong_sends_failed_total 9\n/);
  t.match(text, /\npingboard_probe_ticks_skipped_total 4\n/);
  t.ok(text.length < 200_000, `the page stays small (${text.length} bytes)`);
});

forEachEngine(t, (t, database) => {
  t.test('the service serves /metrics in the text format', async (t) => {
    const config = loadConfig({ ...(database.url ? { DATABASE_URL: database.url } : {}), PINGBOARD_PORT: '0' });
    const service = await start(config, createLogger('silent'), { database });
    t.teardown(() => service.stop());
    const response = await fetch(`${service.url}/metrics`);
    t.equal(response.status, 200);
    t.equal(response.headers.get('content-type'), 'text/plain; version=0.0.4; charset=utf-8');
    const families = parsePrometheusStrict(await response.text());
    t.equal(families.get('pingboard_pings_answered_total')?.type, 'counter');
    t.notOk(families.has('pingboard_sample_queue_length'), 'without a bot or probes there is no queue to report');
  });
});
