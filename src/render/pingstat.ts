// Output in the shapes of the existing aggregator (maubot's pingstat), so the
// tools that read it today can read Pingboard unchanged. It lists every
// delay: those lists come as JSON text, from the database (stats/pingstat-data.ts)
// or as UTF-8 bytes from the week kept in memory (stats/pong-hours.ts), and
// are passed along as they are.
import type { JsonText, PingstatGroups } from '../stats/pingstat-data.ts';
import { ExactSum, figuresOfSorted } from '../stats/figures.ts';
import { compareNames } from '../order.ts';
import { pingstatDuration } from '../duration.ts';
import { escapeHtml } from '../html-escape.ts';
import { getOrInsert } from '../collections.ts';

/** One pong server's figures for one ping server, with its `diffs` members already JSON. */
export interface PingstatPongFigures {
  readonly pongs: number;
  readonly mean: number;
  readonly median: number;
  readonly gmean: number;
  readonly diffsJson: JsonText;
}

export interface PingstatServerFigures {
  readonly server: string;
  /** By pong server name. */
  readonly pongs: readonly (readonly [string, PingstatPongFigures])[];
  readonly pings: number;
  readonly pingsJson: JsonText;
  readonly mean: number;
  readonly median: number;
  readonly gmean: number;
}

/** What stats.json and the HTML table say, ping servers in ranking order. */
export interface PingstatSummary {
  readonly disclaimer: string;
  readonly servers: readonly PingstatServerFigures[];
  readonly mean: number;
  readonly pongservers: readonly string[];
}

/**
 * Figures of sorted delays, the geometric mean over the exact sum of the
 * logarithms, as pingstat's geomean takes it (math.fsum), which `logs` adds up.
 */
function figuresOfPongs(sorted: Float64Array, logs: ExactSum) {
  for (let i = 0; i < sorted.length; i++) logs.add(Math.log(sorted[i]!));
  return figuresOfSorted(sorted, logs.value());
}

/**
 * The figures of every pair and ping server, computed from the delays sorted
 * ascending as figuresOfSorted sums them (in the process: sorting numbers
 * here is cheaper than in SQL), so they are the same doubles whatever the database; ping servers by ascending median, ties by name.
 */
export function summarisePingstat(groups: PingstatGroups, disclaimer: string): PingstatSummary {
  const byServer = new Map<
    string,
    { pongs: [string, PingstatPongFigures][]; delays: Float64Array[]; logs: ExactSum }
  >();
  const pongServers = new Set<string>();
  for (const pair of groups.pairs) {
    const server = getOrInsert(byServer, pair.pingServer, () => ({ pongs: [], delays: [], logs: new ExactSum() }));
    const delays = pair.delays.slice().sort();
    const logs = new ExactSum();
    const f = figuresOfPongs(delays, logs);
    // An exact sum: the server's is its pairs' added up, each logarithm taken once.
    server.logs.addSum(logs);
    server.pongs.push([
      pair.pongServer,
      { pongs: pair.pongs, mean: f.meanMs, median: f.medianMs, gmean: f.gmeanMs, diffsJson: pair.diffsJson },
    ]);
    server.delays.push(delays);
    pongServers.add(pair.pongServer);
  }
  const servers: PingstatServerFigures[] = [];
  for (const [name, server] of byServer) {
    const pooled = new Float64Array(server.delays.reduce((n, d) => n + d.length, 0));
    let offset = 0;
    for (const delays of server.delays) {
      pooled.set(delays, offset);
      offset += delays.length;
    }
    const f = figuresOfSorted(pooled.sort(), server.logs.value());
    const pings = groups.pings.get(name)!;
    servers.push({
      server: name,
      pongs: server.pongs.sort((a, b) => compareNames(a[0], b[0])),
      pings: pings.count,
      pingsJson: pings.json,
      mean: f.meanMs,
      median: f.medianMs,
      gmean: f.gmeanMs,
    });
  }
  servers.sort((a, b) => a.median - b.median || compareNames(a.server, b.server));
  return {
    disclaimer,
    servers,
    mean: servers.length > 0 ? servers.reduce((sum, s) => sum + s.mean, 0) / servers.length : 0,
    pongservers: [...pongServers].sort(compareNames),
  };
}

/**
 * A float as Python's json.dumps writes it: a whole value keeps its `.0`
 * (`259.0`, where JSON.stringify writes `259`), so a reader in Python gets a
 * float where pingstat gave one. Delays stay far below 1e16, where Python
 * would switch to an exponent.
 */
const pythonFloat = (value: number) => (Number.isInteger(value) ? `${value}.0` : JSON.stringify(value));

/**
 * Means and geometric means are always floats in pingstat; its median
 * (statistics.median of whole delays) is the middle delay, an int, for an
 * odd count and the average of the two middle ones, a float, for an even one.
 */
const figuresJson = (f: { mean: number; median: number; gmean: number }, delays: number) =>
  `"mean":${pythonFloat(f.mean)},"median":${delays % 2 === 0 ? pythonFloat(f.median) : JSON.stringify(f.median)},"gmean":${pythonFloat(f.gmean)}`;

const delaysOf = (server: PingstatServerFigures) => server.pongs.reduce((n, [, pong]) => n + pong.pongs, 0);

/**
 * stats.json as pieces of text, in order, for a reply written as it is
 * made: the aggregator's `json.dumps(data)` shape (without its spaces, as
 * JSON.stringify writes it, but its floats spelt as Python spells them), keys
 * in the order pingstat inserts them.
 */
export function* pingstatJsonParts(summary: PingstatSummary): Generator<JsonText> {
  yield `{"disclaimer":${JSON.stringify(summary.disclaimer)},"pings":{`;
  for (const [index, server] of summary.servers.entries()) {
    yield `${index > 0 ? ',' : ''}${JSON.stringify(server.server)}:{"pongs":{`;
    for (const [pongIndex, [pongServer, pong]] of server.pongs.entries()) {
      yield `${pongIndex > 0 ? ',' : ''}${JSON.stringify(pongServer)}:{"diffs":{`;
      yield pong.diffsJson;
      yield `},${figuresJson(pong, pong.pongs)}}`;
    }
    yield '},"pings":[';
    yield server.pingsJson;
    yield `],${figuresJson(server, delaysOf(server))}}`;
  }
  // Python's mean of the means is a float; with no server it is the int 0.
  const mean = summary.servers.length > 0 ? pythonFloat(summary.mean) : '0';
  yield `},"mean":${mean},"pongservers":${JSON.stringify(summary.pongservers)}}`;
}

/** The aggregator's HTML table: rank, ping server, median, mean, N, then the mean per pong server. */
export function renderPingstatHtml(summary: PingstatSummary, roomId: string): string {
  const head = summary.pongservers.map((s) => `<th>${escapeHtml(s)}</th>`).join('');
  const rows = summary.servers
    .map((data, index) => {
      // Means are always floats in Python; a median is one when it averages the two middle delays.
      const pongs = new Map(data.pongs);
      const delays = delaysOf(data);
      const cells = summary.pongservers
        .map((pongServer) => {
          const pong = pongs.get(pongServer);
          return pong
            ? `<td>${escapeHtml(pingstatDuration(pong.mean, true))}<sup>${pong.pongs}</sup></td>`
            : '<td></td>';
        })
        .join('');
      return (
        `<tr><th>${index + 1}</th><th>${escapeHtml(data.server)}</th><td>${escapeHtml(pingstatDuration(data.median, delays % 2 === 0))}</td>` +
        `<td>${escapeHtml(pingstatDuration(data.mean, true))}</td><td>${data.pings}</td>${cells}</tr>`
      );
    })
    .join('\n');
  return `<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>Ping stats for ${escapeHtml(roomId)}</title>
<style>
body { color: #212121; font-family: system-ui, sans-serif; background: #fefefe; }
thead { position: sticky; top: 0; background: white; }
table, td, tr { border-spacing: 0; }
th, td { padding: 6px; white-space: nowrap; }
tbody > tr:nth-child(odd) { background: #eaeaea; }
tbody > tr:nth-child(1) { background: gold; }
tbody > tr:nth-child(2) { background: silver; }
tbody > tr:nth-child(3) { background: #cd7f32; }
</style>
</head>
<body>
<p>${escapeHtml(summary.disclaimer)}</p>
<table>
<thead>
<tr><th rowspan="2">#</th><th rowspan="2">Ping server</th><th rowspan="2">Median</th><th rowspan="2">Mean</th><th rowspan="2">N</th><th colspan="${Math.max(1, summary.pongservers.length)}">Pong server (mean)</th></tr>
<tr>${head}</tr>
</thead>
<tbody>
${rows}
</tbody>
</table>
</body>
</html>
`;
}
