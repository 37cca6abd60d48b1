// The delivery matrix and clock offsets as HTML sections of the leaderboard
// page and the server pages. Shading is drawn with block characters, so the
// page's hashed stylesheet needs no new rule.
import type { OffsetEstimate, PairFigures, ServerOffset } from '../stats/one-way.ts';
import type { DeliveryMatrix } from '../stats/probe-figures.ts';
import { escapePageText } from '../html-escape.ts';

const SHADES = ['░', '▒', '▓', '█'] as const;
const DASH = '–';

/** A median's shade against the slowest pair's: four steps from fast to slow. */
export function shadeOf(medianMs: number, slowestMs: number): string {
  if (slowestMs <= 0) return SHADES[0];
  return SHADES[Math.min(SHADES.length - 1, Math.floor((medianMs / slowestMs) * SHADES.length))]!;
}

function cell(pair: PairFigures | undefined, slowestMs: number): string {
  if (!pair) return `<td>${DASH}</td>`;
  return `<td title="${pair.count} pings, p90 ${Math.round(pair.p90Ms)} ms">${shadeOf(pair.medianMs, slowestMs)} ${Math.round(pair.medianMs)}</td>`;
}

/** "+2000 ± 3 ms": the offset to the millisecond, its bound rounded up. */
export function offsetFigure(offset: OffsetEstimate): string {
  return `${offset.offsetMs >= 0 ? '+' : ''}${Math.round(offset.offsetMs)} ± ${Math.ceil(offset.boundMs)} ms`;
}

/** A clock offset with its bound, marked ⚠ when flagged; a dash when none was measured. */
export function clockOffsetText(offset: ServerOffset | null | undefined): string {
  if (!offset) return DASH;
  return offset.flagged ? `<span class="skew">⚠ ${offsetFigure(offset)}</span>` : offsetFigure(offset);
}

const NOTE =
  "<p class=\"note\">Delivery times measured on one clock by probes that see each other's pings: median ms from a message leaving a user of the row's server to its arrival at a user of the column's server (█ slowest). Clock: how far the server's clock runs ahead of Pingboard's, with its error bound; ⚠ beyond both bound and threshold.</p>";

/** The whole matrix, senders as rows; empty when no probes saw each other in the window. */
export function matrixSection(matrix: DeliveryMatrix): string {
  if (matrix.pairs.length === 0) return '';
  const pairOf = new Map(matrix.pairs.map((p) => [`${p.from}\u0000${p.to}`, p]));
  const offsetOf = new Map(matrix.offsets.map((o) => [o.server, o]));
  const slowest = Math.max(...matrix.pairs.map((p) => p.medianMs));
  const head = matrix.servers.map((s) => `<th>${escapePageText(s)}</th>`).join('');
  const rows = matrix.servers
    .map(
      (from) =>
        `<tr><th class="s">${escapePageText(from)}</th>${matrix.servers.map((to) => (from === to ? `<td>${DASH}</td>` : cell(pairOf.get(`${from}\u0000${to}`), slowest))).join('')}<td>${clockOffsetText(offsetOf.get(from))}</td></tr>`,
    )
    .join('\n');
  return `<h2>Delivery between probed servers</h2>
<div class="scroll"><table id="matrix"><thead><tr><th class="s">From \\ to</th>${head}<th>Clock</th></tr></thead><tbody>
${rows}
</tbody></table></div>
${NOTE}`;
}

/** One server's row (what it sends) and column (what it receives), and its clock; empty when it has neither. */
export function serverMatrixSection(matrix: DeliveryMatrix, server: string): string {
  const sent = matrix.pairs.filter((p) => p.from === server);
  const received = matrix.pairs.filter((p) => p.to === server);
  if (sent.length === 0 && received.length === 0) return '';
  const slowest = Math.max(...matrix.pairs.map((p) => p.medianMs));
  const others = matrix.servers.filter((s) => s !== server);
  const sentTo = new Map(sent.map((p) => [p.to, p]));
  const receivedFrom = new Map(received.map((p) => [p.from, p]));
  const rows = others
    .map(
      (other) =>
        `<tr><th class="s">${escapePageText(other)}</th>${cell(sentTo.get(other), slowest)}${cell(receivedFrom.get(other), slowest)}</tr>`,
    )
    .join('\n');
  return `<h2>Delivery to and from probed servers</h2>
<p>Clock: ${clockOffsetText(matrix.offsets.find((o) => o.server === server))}</p>
<div class="scroll"><table id="matrix"><thead><tr><th class="s">Other server</th><th>To it, ms</th><th>From it, ms</th></tr></thead><tbody>
${rows}
</tbody></table></div>
${NOTE}`;
}
