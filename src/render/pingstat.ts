// Output in the shapes of the existing aggregator (maubot's pingstat), so the
// tools that read it today can read Pingboard unchanged. stats.json lists
// every delay: each ping server's member of it is written by its figures
// (stats/pingstat-summary.ts), once, and passed along as it is.
import type { JsonText } from '../stats/pingstat-data.ts';
import {
  delayCount,
  pythonFloat,
  type PingstatServerFigures,
  type PingstatSummary,
} from '../stats/pingstat-summary.ts';
import { pingstatDuration } from '../duration.ts';
import { escapeHtml } from '../html-escape.ts';
import type { FileRange } from '../spill.ts';

/**
 * stats.json as pieces, in order, for a reply written as it is made: the
 * aggregator's `json.dumps(data)` shape (without its spaces, as
 * JSON.stringify writes it, but its floats spelt as Python spells them), keys
 * in the order pingstat inserts them.
 */
export function* pingstatJsonParts(summary: PingstatSummary): Generator<JsonText | FileRange> {
  yield `{"disclaimer":${JSON.stringify(summary.disclaimer)},"pings":{`;
  for (const [index, server] of summary.servers.entries()) {
    if (index > 0) yield ',';
    yield server.json;
  }
  // Python's mean of the means is a float; with no server it is the int 0.
  const mean = summary.servers.length > 0 ? pythonFloat(summary.mean) : '0';
  yield `},"mean":${mean},"pongservers":${JSON.stringify(summary.pongservers)}}`;
}

/**
 * A ping server's row of the HTML table after its rank, for the table's pong
 * servers: kept per figures object and those columns (pingstatDuration's exact
 * rounding is most of a row's cost).
 */
const serverRowOf = new WeakMap<PingstatServerFigures, { columns: string; html: string }>();

/** `columns`: the pong servers as JSON, which names them. */
function serverRowHtml(data: PingstatServerFigures, pongservers: readonly string[], columns: string): string {
  const kept = serverRowOf.get(data);
  if (kept?.columns === columns) return kept.html;
  // Means are always floats in Python; a median is one when it averages the two middle delays.
  const pongs = new Map(data.pongs);
  const delays = delayCount(data);
  const cells = pongservers
    .map((pongServer) => {
      const pong = pongs.get(pongServer);
      return pong ? `<td>${escapeHtml(pingstatDuration(pong.mean, true))}<sup>${pong.pongs}</sup></td>` : '<td></td>';
    })
    .join('');
  const html =
    `<th>${escapeHtml(data.server)}</th><td>${escapeHtml(pingstatDuration(data.median, delays % 2 === 0))}</td>` +
    `<td>${escapeHtml(pingstatDuration(data.mean, true))}</td><td>${data.pings}</td>${cells}</tr>`;
  serverRowOf.set(data, { columns, html });
  return html;
}

/** The aggregator's HTML table: rank, ping server, median, mean, N, then the mean per pong server. */
export function renderPingstatHtml(summary: PingstatSummary, roomId: string): string {
  const head = summary.pongservers.map((s) => `<th>${escapeHtml(s)}</th>`).join('');
  const columns = JSON.stringify(summary.pongservers);
  const rows = summary.servers
    .map((data, index) => `<tr><th>${index + 1}</th>${serverRowHtml(data, summary.pongservers, columns)}`)
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
