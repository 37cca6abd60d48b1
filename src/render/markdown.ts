// The newsletter's "Dept of Ping" table, byte for byte:
//   |Rank|Hostname|Median MS|
//   |:---:|:---:|:---:|
//   |1|example.org|376|
import type { RankedServer } from '../stats/ranking.ts';

const HEADER = '|Rank|Hostname|Median MS|\n|:---:|:---:|:---:|\n';

/** A median as a plain number: `376`, `444.5`. */
export function formatMedian(ms: number): string {
  if (!Number.isFinite(ms)) throw new RangeError(`median is not a finite number: ${ms}`);
  // Medians of integers are whole or halves; rounding to 3 places only guards against float noise.
  return String(Math.round(ms * 1000) / 1000);
}

/**
 * Makes any text safe inside a table cell: no line breaks, no cell
 * separators, and no markdown or HTML syntax. Real server names only contain
 * letters, digits and `.-:[]`; the brackets of IPv6 literals are escaped too.
 */
export function escapeMarkdownCell(text: string): string {
  return text
    .replace(/[\u0000-\u001f\u007f-\u009f\u2028\u2029]/g, ' ')
    .replace(/[\\`*_{}[\]()<>#+!|~&"'=$%^]/g, (ch) => `\\${ch}`);
}

/**
 * The first `limit` ranked servers, numbered 1..n as the newsletter numbers
 * its rows: equal medians, which share a rank elsewhere, take their places in
 * the ranking's order (by server name), as the newsletter's tooling numbers the
 * servers of pingstat's stats.json.
 */
export function renderNewsletterTable(servers: readonly RankedServer[], limit: number): string {
  let table = HEADER;
  for (const [index, server] of servers.slice(0, limit).entries()) {
    table += `|${index + 1}|${escapeMarkdownCell(server.server)}|${formatMedian(server.medianMs)}|\n`;
  }
  return table;
}
