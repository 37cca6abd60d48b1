// Output in the shapes of the existing aggregator (maubot's pingstat), so the
// tools that read it today can read Pingboard unchanged. It lists every
// delay: those lists come as JSON text, from the database (stats/pingstat-data.ts)
// or as UTF-8 bytes from the week kept in memory (stats/pong-hours.ts), and
// are passed along as they are.
import type { JsonText } from '../stats/pingstat-data.ts';
import type { PingstatServerFigures, PingstatSummary } from '../stats/pingstat-summary.ts';
import { ownedBytes } from '../stats/pong-hours.ts';
import { pingstatDuration } from '../duration.ts';
import { escapeHtml } from '../html-escape.ts';

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
 * A ping server's member of stats.json, `"server":{…}`, as UTF-8 bytes.
 * Kept per figures object: a server whose pongs did not change keeps its
 * figures (stats/pingstat-summaries.ts), so after a new pong only its
 * server is written again, not the whole week.
 */
const serverJsonOf = new WeakMap<PingstatServerFigures, Buffer>();

function serverJson(server: PingstatServerFigures): Buffer {
  let json = serverJsonOf.get(server);
  if (json === undefined) {
    const parts: JsonText[] = [`${JSON.stringify(server.server)}:{"pongs":{`];
    for (const [pongIndex, [pongServer, pong]] of server.pongs.entries())
      parts.push(
        `${pongIndex > 0 ? ',' : ''}${JSON.stringify(pongServer)}:{"diffs":{`,
        pong.diffsJson,
        `},${figuresJson(pong, pong.pongs)}}`,
      );
    parts.push('},"pings":[', server.pingsJson, `],${figuresJson(server, delaysOf(server))}}`);
    json = ownedBytes(parts);
    serverJsonOf.set(server, json);
  }
  return json;
}

/**
 * stats.json as pieces, in order, for a reply written as it is made: the
 * aggregator's `json.dumps(data)` shape (without its spaces, as
 * JSON.stringify writes it, but its floats spelt as Python spells them), keys
 * in the order pingstat inserts them.
 */
export function* pingstatJsonParts(summary: PingstatSummary): Generator<JsonText> {
  yield `{"disclaimer":${JSON.stringify(summary.disclaimer)},"pings":{`;
  for (const [index, server] of summary.servers.entries()) {
    if (index > 0) yield ',';
    yield serverJson(server);
  }
  // Python's mean of the means is a float; with no server it is the int 0.
  const mean = summary.servers.length > 0 ? pythonFloat(summary.mean) : '0';
  yield `},"mean":${mean},"pongservers":${JSON.stringify(summary.pongservers)}}`;
}

/**
 * A ping server's row of the HTML table after its rank, for the table's pong
 * servers: kept per figures object and those columns, as its JSON member is
 * (pingstatDuration's exact rounding is most of a row's cost).
 */
const serverRowOf = new WeakMap<PingstatServerFigures, { columns: string; html: string }>();

/** `columns`: the pong servers as JSON, which names them. */
function serverRowHtml(data: PingstatServerFigures, pongservers: readonly string[], columns: string): string {
  const kept = serverRowOf.get(data);
  if (kept?.columns === columns) return kept.html;
  // Means are always floats in Python; a median is one when it averages the two middle delays.
  const pongs = new Map(data.pongs);
  const delays = delaysOf(data);
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
