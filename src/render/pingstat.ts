// Output in the shapes of the existing aggregator (maubot's pingstat), so the
// tools that read it today can read Pingboard unchanged. It lists every
// delay, so it is computed in process from the window's samples.
import type { PongTimedSample, Sample } from '../samples/sample.ts';
import type { DelayFilter } from '../stats/repository.ts';
import { ascending, figuresOfSorted } from '../stats/figures.ts';
import { compareNames } from '../order.ts';
import { pingstatDuration } from './duration.ts';
import { escapeHtml } from './html-escape.ts';

export interface PingstatPong {
  diffs: Record<string, number>;
  mean: number;
  median: number;
  gmean: number;
}

export interface PingstatServer {
  pongs: Record<string, PingstatPong>;
  pings: string[];
  mean: number;
  median: number;
  gmean: number;
}

export interface PingstatStats {
  disclaimer: string;
  pings: Record<string, PingstatServer>;
  mean: number;
  pongservers: string[];
}

export interface PingstatRawRow {
  room_id: string;
  ping_id: string;
  pong_server: string;
  ping_server: string;
  receive_diff: number;
  pong_timestamp: number;
}

/** One row per (ping, pong server), the first pong, as pingstat's table key allows; pong_timestamp is that pong's origin_server_ts. */
export function pingstatRawRows(samples: readonly PongTimedSample[]): PingstatRawRow[] {
  const seen = new Set<string>();
  const unique = samples.filter((s) => {
    const key = `${s.roomId}\u0000${s.pingEventId}\u0000${s.responderServer}`;
    if (seen.has(key)) return false;
    seen.add(key);
    return true;
  });
  return unique.map((s) => ({
    room_id: s.roomId,
    ping_id: s.pingEventId,
    pong_server: s.responderServer,
    ping_server: s.pingServer,
    receive_diff: s.delayMs,
    pong_timestamp: s.pongTs.getTime(),
  }));
}

function summary(delays: number[]) {
  const f = figuresOfSorted(delays.sort(ascending));
  return { mean: f.meanMs, median: f.medianMs, gmean: f.gmeanMs };
}

/**
 * stats.json: per ping server, the diffs each pong server reported (one per
 * ping: pingstat keys pongs by server), their figures and the pooled figures;
 * servers by ascending median, ties by name.
 */
export function pingstatStats(samples: readonly Sample[], filter: DelayFilter, disclaimer: string): PingstatStats {
  const byServer = new Map<string, { pings: Set<string>; pongs: Map<string, Map<string, number>> }>();
  const pongServers = new Set<string>();
  for (const s of samples) {
    if (s.delayMs < filter.minDelayMs || s.delayMs > filter.maxDelayMs) continue;
    let server = byServer.get(s.pingServer);
    if (!server) byServer.set(s.pingServer, (server = { pings: new Set(), pongs: new Map() }));
    let diffs = server.pongs.get(s.responderServer);
    if (!diffs) server.pongs.set(s.responderServer, (diffs = new Map()));
    if (diffs.has(s.pingEventId)) continue;
    diffs.set(s.pingEventId, s.delayMs);
    server.pings.add(s.pingEventId);
    pongServers.add(s.responderServer);
  }

  const entries: [string, PingstatServer][] = [];
  for (const [name, server] of byServer) {
    const pongs: Record<string, PingstatPong> = {};
    const pooled: number[] = [];
    for (const [pongServer, diffs] of [...server.pongs].sort((a, b) => compareNames(a[0], b[0]))) {
      const values = [...diffs.values()];
      pooled.push(...values);
      pongs[pongServer] = { diffs: Object.fromEntries(diffs), ...summary(values) };
    }
    entries.push([name, { pongs, pings: [...server.pings], ...summary(pooled) }]);
  }
  entries.sort((a, b) => a[1].median - b[1].median || compareNames(a[0], b[0]));
  const means = entries.map(([, s]) => s.mean);
  return {
    disclaimer,
    pings: Object.fromEntries(entries),
    mean: means.length > 0 ? means.reduce((a, b) => a + b, 0) / means.length : 0,
    pongservers: [...pongServers].sort(compareNames),
  };
}

/** The aggregator's HTML table: rank, ping server, median, mean, N, then the mean per pong server. */
export function renderPingstatHtml(stats: PingstatStats, roomId: string): string {
  const head = stats.pongservers.map((s) => `<th>${escapeHtml(s)}</th>`).join('');
  const rows = Object.entries(stats.pings).map(([server, data], index) => {
    // Means are always floats in Python; a median is one when it averages the two middle delays.
    const delays = Object.values(data.pongs).reduce((n, pong) => n + Object.keys(pong.diffs).length, 0);
    const cells = stats.pongservers.map((pongServer) => {
      const pong = data.pongs[pongServer];
      return pong ? `<td>${escapeHtml(pingstatDuration(pong.mean, true))}<sup>${Object.keys(pong.diffs).length}</sup></td>` : '<td></td>';
    }).join('');
    return `<tr><th>${index + 1}</th><th>${escapeHtml(server)}</th><td>${escapeHtml(pingstatDuration(data.median, delays % 2 === 0))}</td>` +
      `<td>${escapeHtml(pingstatDuration(data.mean, true))}</td><td>${data.pings.length}</td>${cells}</tr>`;
  }).join('\n');
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
<p>${escapeHtml(stats.disclaimer)}</p>
<table>
<thead>
<tr><th rowspan="2">#</th><th rowspan="2">Ping server</th><th rowspan="2">Median</th><th rowspan="2">Mean</th><th rowspan="2">N</th><th colspan="${Math.max(1, stats.pongservers.length)}">Pong server (mean)</th></tr>
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

