// The web pages: the leaderboard (`/`) and one server's page
// (`/servers/{server}`). Pure functions from data to an HTML string, so they
// are tested without a server. Everything works without JavaScript: the
// pickers are GET forms, the charts are server-side SVG (tooltips are SVG
// <title>s); the one inline script only adds the copy button and submits a
// picker on change. Styles and script are inline and allowed by their hashes,
// so the page loads nothing from anywhere (it must work on a closed network)
// and stays byte-identical between requests (cacheable, ETag-able).
import { createHash } from 'node:crypto';
import type { ProbeFigures } from '../stats/probe-counts.ts';
import type { Sample } from '../samples/sample.ts';
import type { Leaderboard, ServerWeek } from '../stats/leaderboard.ts';
import { compareNames } from '../order.ts';
import type { RankedServer } from '../stats/ranking.ts';
import type { DayFigures, DelayBin, HourFigures } from '../stats/server-detail.ts';
import { escapePageText } from '../html-escape.ts';
import { pageDuration } from '../duration.ts';
import { clockOffsetText, offsetFigure } from './matrix.ts';

const STYLE = `
:root{--fg:#1d2126;--muted:#5d6670;--bg:#fbfbfc;--card:#fff;--line:#e3e6ea;--accent:#0b63c5;--good:#17803d;--bad:#c0392b;--gold:#e9b824;--silver:#a7b0ba;--bronze:#c07a3c;color-scheme:light dark}
@media (prefers-color-scheme:dark){:root{--fg:#e6e9ec;--muted:#9aa4ae;--bg:#121416;--card:#1b1e22;--line:#2c3137;--accent:#6cb2ff;--good:#4cc47a;--bad:#ff7a6b}}
*{box-sizing:border-box}
body{margin:0;font:15px/1.45 system-ui,-apple-system,"Segoe UI",Roboto,sans-serif;color:var(--fg);background:var(--bg)}
main{max-width:1100px;margin:0 auto;padding:16px}
h1{font-size:1.5rem;margin:.2em 0}h2{font-size:1.15rem;margin:1.4em 0 .5em}
a{color:var(--accent)}
.muted,.note{color:var(--muted)}.note{font-size:.85rem}
form.pick{display:flex;flex-wrap:wrap;gap:8px;align-items:end;margin:12px 0}
form.pick label{display:flex;flex-direction:column;font-size:.8rem;color:var(--muted)}
select,button{font:inherit;padding:4px 8px;border:1px solid var(--line);border-radius:6px;background:var(--card);color:var(--fg)}
button{cursor:pointer}
ol.podium{display:grid;grid-template-columns:repeat(auto-fit,minmax(150px,1fr));gap:10px;list-style:none;padding:0;margin:12px 0}
ol.podium li{background:var(--card);border:1px solid var(--line);border-top:5px solid var(--gold);border-radius:8px;padding:10px 12px}
ol.podium li.p2{border-top-color:var(--silver)}ol.podium li.p3{border-top-color:var(--bronze)}
ol.podium b{display:block;font-size:1.6rem}
.scroll{overflow-x:auto;border:1px solid var(--line);border-radius:8px;background:var(--card)}
table{border-collapse:collapse;width:100%;font-variant-numeric:tabular-nums}
th,td{padding:6px 10px;text-align:right;white-space:nowrap;border-bottom:1px solid var(--line)}
th{font-size:.8rem;color:var(--muted);font-weight:600;position:sticky;top:0;background:var(--card)}
td.s,th.s,#ranking td:nth-child(2),#ranking th:nth-child(2){text-align:left;white-space:normal;overflow-wrap:anywhere;min-width:9em}
.name,#ranking td:nth-child(2) a,.words>span{white-space:nowrap}.words,#ranking td:nth-child(2) a.words{white-space:normal}
td.t{text-align:left}
tbody tr:hover{background:color-mix(in srgb,var(--accent) 7%,transparent)}
.up{color:var(--bad)}.down{color:var(--good)}.skew{color:var(--bad);font-weight:600}
pre{background:var(--card);border:1px solid var(--line);border-radius:6px;padding:10px;overflow-x:auto}
svg{display:block;width:100%;height:auto;max-width:720px}
svg text{fill:var(--muted);font-size:11px}
svg .grid{stroke:var(--line)}svg .median{stroke:var(--accent);fill:none;stroke-width:2}
svg .rtt{stroke:var(--good);fill:none;stroke-width:1.5;stroke-dasharray:5 3}
td.spark{padding:2px 10px}td.spark svg{width:80px;height:20px}svg .spark{stroke:var(--accent);fill:none;stroke-width:1.5}
svg .dot{fill:var(--accent)}svg .rttdot{fill:var(--good)}svg .loss{fill:var(--bad)}svg .bar{fill:var(--accent)}
.legend span{margin-right:1em}.legend i{display:inline-block;width:18px;height:3px;vertical-align:middle;margin-right:4px;background:var(--accent)}
.legend i.r{background:var(--good)}.legend i.l{background:var(--bad);height:8px}
nav.pages{display:flex;flex-wrap:wrap;gap:6px;align-items:center;margin:10px 0}
nav.pages a{padding:2px 9px;border:1px solid var(--line);border-radius:6px;text-decoration:none;background:var(--card)}
nav.pages a[aria-current]{background:var(--accent);border-color:var(--accent);color:var(--bg);font-weight:600}nav.pages .muted{margin-left:6px}
footer{margin:2em 0 1em;font-size:.85rem;color:var(--muted)}
@media (max-width:600px){main{padding:10px}table{font-size:.82rem}th,td{padding:5px 4px}td.s,th.s,#ranking td:nth-child(2){min-width:0}.wide,#ranking td:nth-child(5),#ranking th:nth-child(5),#ranking .spark{display:none}
ol.podium{grid-template-columns:1fr;gap:6px}ol.podium li{display:flex;flex-wrap:wrap;align-items:baseline;gap:0 .6em;padding:6px 8px;font-size:.9rem}ol.podium b{font-size:1.1rem}
svg text{font-size:20px}svg text.odd{display:none}}
`.trim();

const COPY_LABEL = 'Copy newsletter table';

// Progressive enhancement only: the page is complete without it.
const SCRIPT = `
for(const s of document.querySelectorAll('form.pick select'))s.addEventListener('change',()=>s.form.submit());
const b=document.getElementById('copy'),md=document.getElementById('md');
if(b&&md){b.hidden=false;b.addEventListener('click',async()=>{
try{await navigator.clipboard.writeText(md.textContent)}catch{const r=document.createRange();r.selectNodeContents(md);const s=getSelection();s.removeAllRanges();s.addRange(r);document.execCommand('copy')}
b.textContent='Copied';setTimeout(()=>{b.textContent=${JSON.stringify(COPY_LABEL)}},2000)})}
`.trim();

const sha256 = (text: string) => `'sha256-${createHash('sha256').update(text).digest('base64')}'`;

/** Allows exactly the pages' own inline style and script, and nothing from elsewhere. */
export const PAGE_CONTENT_SECURITY_POLICY = [
  "default-src 'none'",
  `style-src ${sha256(STYLE)}`,
  `script-src ${sha256(SCRIPT)}`,
  "img-src 'self' data:",
  "form-action 'self'",
  "base-uri 'none'",
  "frame-ancestors 'none'",
].join('; ');

// ---- formatting -----------------------------------------------------------

const DASH = '–';

/** A delay as pageDuration writes it, or a dash where there is none. */
function ms(value: number | null | undefined): string {
  return value === null || value === undefined ? DASH : pageDuration(value);
}

function percent(rate: number | null | undefined): string {
  return rate === null || rate === undefined ? DASH : `${(Math.round(rate * 1000) / 10).toFixed(1)} %`;
}

const DATE = new Intl.DateTimeFormat('en-GB', {
  day: 'numeric',
  month: 'short',
  hour: '2-digit',
  minute: '2-digit',
  timeZone: 'UTC',
  hourCycle: 'h23',
});
const DAY = new Intl.DateTimeFormat('en-GB', { day: 'numeric', month: 'short', timeZone: 'UTC' });

/** `1 ping`, `2 pings`. */
function counted(n: number, noun: string): string {
  return `${n} ${noun}${n === 1 ? '' : 's'}`;
}

function utc(date: Date): string {
  return `${DATE.format(date)} UTC`;
}

/** A query string of the page parameters that differ from the defaults. */
function query(params: Record<string, string | null | undefined>): string {
  const search = new URLSearchParams();
  for (const [key, value] of Object.entries(params)) if (value) search.set(key, value);
  const text = search.toString();
  return text ? `?${text}` : '';
}

function htmlDocument(title: string, body: string): string {
  return `<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>${escapePageText(title)}</title>
<link rel="icon" href="data:,">
<style>${STYLE}</style>
</head>
<body>
<main>
${body}
<footer>Pingboard · <a href="/leaderboard.md">markdown</a> · <a href="/leaderboard.json">JSON</a> · <a href="/docs">API</a></footer>
</main>
<script>${SCRIPT}</script>
</body>
</html>
`;
}

// ---- the leaderboard page -------------------------------------------------

export interface RoomChoice {
  readonly id: string;
  /** What the operator called it: an alias, or the ID again. */
  readonly label: string;
}

export interface WeekChoice {
  readonly week: string;
  readonly start: Date;
  readonly end: Date;
}

export interface LeaderboardPage {
  readonly board: Leaderboard;
  /** The window's probe figures (probeFiguresInWindow). */
  readonly probes: readonly ProbeFigures[];
  /** Each server's median in the calendar week before the board's window; null when there is none. */
  readonly previous: { readonly week: string; readonly medians: ReadonlyMap<string, number> } | null;
  readonly rooms: readonly RoomChoice[];
  /** The room's frozen weeks, newest first. */
  readonly weeks: readonly WeekChoice[];
  /** The room links and forms leave out (the default one). */
  readonly defaultRoomId: string | null;
  /** Exactly what /leaderboard.md returns for this room and window. */
  readonly newsletterMarkdown: string;
  /** Which RANKING_PAGE_ROWS rows of the ranking to show, from 1 (rankingPages(board) at most). */
  readonly page: number;
  /** The delivery matrix section (render/matrix.ts); empty or absent: none. */
  readonly matrixHtml?: string;
  /** The shown servers' weekly medians over the last calendar weeks, for a sparkline per row; absent: no column. */
  readonly recent?: RecentWeeks;
}

export interface RecentWeeks {
  /** The calendar weeks, oldest first. */
  readonly weeks: readonly string[];
  /** Each server's median in each of those weeks, null where it had no sample. */
  readonly medians: ReadonlyMap<string, readonly (number | null)[]>;
}

/**
 * Rows of the ranking per page. A room with thousands of servers is paged
 * rather than cut: every server stays reachable in HTML, and a page stays
 * small enough to serve at the rate of the JSON (issue #7: 200 connections,
 * p99 under 50 ms), which a 500-row page of 100 kB was not.
 */
export const RANKING_PAGE_ROWS = 100;

/** How many pages the ranking takes; an empty ranking still has its one page. */
export function rankingPages(servers: number): number {
  return Math.max(1, Math.ceil(servers / RANKING_PAGE_ROWS));
}

/** The rows of the ranking on page `page` (from 1). */
export function rankingPageRows<T>(rows: readonly T[], page: number): readonly T[] {
  return rows.slice((page - 1) * RANKING_PAGE_ROWS, page * RANKING_PAGE_ROWS);
}

/** The page of the ranking that shows the row at this index (from 0). */
function rankingPageOf(index: number): number {
  return Math.floor(index / RANKING_PAGE_ROWS) + 1;
}

export type Trend =
  | { readonly kind: 'new' }
  | { readonly kind: 'same' | 'faster' | 'slower'; readonly previousMs: number; readonly change: number };

/** Changes within this fraction count as the same speed: medians wobble from week to week. */
export const TREND_TOLERANCE = 0.05;

export function trendOf(medianMs: number, previousMs: number | undefined): Trend {
  if (previousMs === undefined) return { kind: 'new' };
  const change = previousMs > 0 ? (medianMs - previousMs) / previousMs : 0;
  const kind = Math.abs(change) <= TREND_TOLERANCE ? 'same' : change < 0 ? 'faster' : 'slower';
  return { kind, previousMs, change };
}

// Rows are most of the page's bytes (the target is 50 KB for 200 servers): the column header says which week.
function trendCell(trend: Trend): string {
  if (trend.kind === 'new') return '<td class="muted">new</td>';
  const was = `title="was ${pageDuration(trend.previousMs)}"`;
  if (trend.kind === 'same') return `<td class="muted" ${was}>=</td>`;
  const amount = `${Math.round(Math.abs(trend.change) * 100)} %`;
  return trend.kind === 'faster'
    ? `<td class="down" ${was}>▼ ${amount}</td>`
    : `<td class="up" ${was}>▲ ${amount}</td>`;
}

type PreviousWeek = LeaderboardPage['previous'];

interface RankingColumn {
  /** Whether this row has a figure for the column: one that does on the page keeps it. */
  readonly has: (probe: ProbeFigures | undefined, previous: PreviousWeek) => boolean;
  readonly header: (previous: PreviousWeek) => string;
  readonly cell: (server: RankedServer, probe: ProbeFigures | undefined, previous: PreviousWeek) => string;
}

/**
 * The ranking's columns after rank and name. The trend comes right after the
 * median, so it stays on a phone's screen, where the table scrolls sideways
 * at most to its probe columns.
 */
const RANKING_COLUMNS: readonly RankingColumn[] = [
  {
    has: () => true,
    header: () => '<th title="median one-way delay">Median</th>',
    cell: (s) => `<td>${pageDuration(s.medianMs)}</td>`,
  },
  {
    has: (_probe, previous) => previous !== null,
    header: (previous) =>
      `<th title="median against ${escapePageText(previous?.week ?? 'the previous week')}">Trend</th>`,
    cell: (s, _probe, previous) => trendCell(trendOf(s.medianMs, previous!.medians.get(s.server))),
  },
  { has: () => true, header: () => '<th>Mean</th>', cell: (s) => `<td>${ms(s.meanMs)}</td>` },
  { has: () => true, header: () => '<th>Pings</th>', cell: (s) => `<td>${s.pings}</td>` },
  {
    has: (probe) => probe?.medianRttMs != null,
    header: () => '<th title="median round trip measured by probes">RTT</th>',
    cell: (_s, probe) => `<td>${ms(probe?.medianRttMs)}</td>`,
  },
  {
    has: (probe) => probe?.lossRate != null,
    header: () => '<th title="probe pings nobody answered">Loss</th>',
    cell: (_s, probe) => `<td>${percent(probe?.lossRate)}</td>`,
  },
  {
    has: (probe) => probe?.clockOffset != null,
    header: () =>
      "<th title=\"how far the server's clock runs ahead of Pingboard's, with its error bound, measured by probes that see each other's pings; ⚠: beyond both the bound and the threshold\">Clock</th>",
    cell: (_s, probe) => `<td>${clockOffsetText(probe?.clockOffset)}</td>`,
  },
];

/**
 * A name in an element that lets it wrap at its spaces only, never inside a
 * word (the style keeps each word, and a name without spaces, on one line).
 * A valid server name has no spaces: one plain element, no bytes for words.
 */
function nameElement(tag: 'a' | 'span' | 'h1', name: string, className: string, attributes: string): string {
  const parts = name.split(/(\s+)/);
  const classes = parts.length === 1 ? className : `${className} words`.trim();
  const text =
    parts.length === 1
      ? escapePageText(name)
      : parts
          .map((part, i) => (i % 2 === 1 ? escapePageText(part) : part && `<span>${escapePageText(part)}</span>`))
          .join('');
  return `<${tag}${classes ? ` class="${classes}"` : ''}${attributes}>${text}</${tag}>`;
}

function serverHref(server: string, room: string | null): string {
  return `/servers/${encodeURIComponent(server)}${query({ room })}`;
}

function windowDescription(board: Leaderboard): string {
  const range = `${utc(board.window.start)} – ${utc(board.window.end)}`;
  if (board.week === null) return `Rolling week: ${range}`;
  const state = board.frozenAt
    ? `frozen ${utc(board.frozenAt)}`
    : board.window.end > board.generatedAt
      ? 'not closed yet, still changing'
      : // A closed week is frozen once its grace period is over, unless no server is ranked in it.
        board.servers.length === 0
        ? 'closed, no ranked server'
        : 'closed, frozen after the grace period';
  return `Week ${escapePageText(board.week)}: ${range} (${state})`;
}

function weekLabel(week: WeekChoice): string {
  return `${week.week} (${DAY.format(week.start)} – ${DAY.format(new Date(week.end.getTime() - 1))})`;
}

function pickerForm(page: LeaderboardPage): string {
  const { board } = page;
  const rooms = page.rooms.some((r) => r.id === board.room.id)
    ? page.rooms
    : [{ id: board.room.id, label: board.room.id }, ...page.rooms];
  const weeks =
    board.week === null || page.weeks.some((w) => w.week === board.week)
      ? page.weeks
      : [{ week: board.week, start: board.window.start, end: board.window.end }, ...page.weeks];
  const roomOptions = rooms
    .map(
      (r) =>
        `<option value="${escapePageText(r.id)}"${r.id === board.room.id ? ' selected' : ''}>${escapePageText(r.label)}</option>`,
    )
    .join('');
  const weekOptions = [
    `<option value=""${board.week === null ? ' selected' : ''}>Rolling week (last 7 days)</option>`,
    ...weeks.map(
      (w) =>
        `<option value="${escapePageText(w.week)}"${w.week === board.week ? ' selected' : ''}>${escapePageText(weekLabel(w))}</option>`,
    ),
  ].join('');
  return `<form class="pick" method="get" action="/">
<label>Room<select name="room" id="room">${roomOptions}</select></label>
<label>Week<select name="week" id="week">${weekOptions}</select></label>
<button type="submit">Show</button>
</form>`;
}

function podium(servers: readonly RankedServer[], room: string | null): string {
  if (servers.length === 0) return '';
  const items = servers
    .slice(0, 3)
    .map(
      (s, i) =>
        `<li class="p${i + 1}"><span class="muted">#${s.rank}</span> ${nameElement('a', s.server, 'name', ` href="${escapePageText(serverHref(s.server, room))}"`)}<b>${pageDuration(s.medianMs)}</b><span class="muted">${counted(s.pings, 'ping')}</span></li>`,
    );
  return `<ol class="podium" aria-label="Podium">${items.join('')}</ol>`;
}

/** The page parameter as links carry it: absent for the first page, the one links to `/` land on. */
const pageParam = (page: number) => (page === 1 ? null : String(page));

/** Previous and next, the first and last page, and the two either side of this one; each label names a <nav> of them. */
function pageNavs(board: Leaderboard, room: string | null, page: number, labels: readonly string[]): string[] {
  const pages = rankingPages(board.servers.length);
  if (pages === 1) return labels.map(() => '');
  const href = (to: number) => escapePageText(`/${query({ room, week: board.week, page: pageParam(to) })}`);
  const shown = [...new Set([1, page - 2, page - 1, page, page + 1, page + 2, pages])]
    .filter((p) => p >= 1 && p <= pages)
    .sort((a, b) => a - b);
  const links: string[] = [];
  if (page > 1) links.push(`<a href="${href(page - 1)}" rel="prev">← Previous</a>`);
  shown.forEach((p, i) => {
    if (i > 0 && p > shown[i - 1]! + 1) links.push('<span class="muted">…</span>');
    links.push(`<a href="${href(p)}"${p === page ? ' aria-current="page"' : ''} aria-label="Page ${p}">${p}</a>`);
  });
  if (page < pages) links.push(`<a href="${href(page + 1)}" rel="next">Next →</a>`);
  const first = (page - 1) * RANKING_PAGE_ROWS + 1;
  const last = Math.min(board.servers.length, page * RANKING_PAGE_ROWS);
  const inner = `${links.join('')}<span class="muted">servers ${first}–${last} of ${board.servers.length}</span>`;
  return labels.map((label) => `<nav class="pages" aria-label="${label}">${inner}</nav>`);
}

/** `/` before there is anything to rank: what a fresh installation needs next. */
export function renderNothingYetPage(): string {
  return htmlDocument(
    'Matrix ping leaderboard',
    `<h1>Matrix ping leaderboard</h1>
<p>Nothing to rank yet: no room is configured and no samples are stored.</p>
<p>Name the ping room in <code>PINGBOARD_ROOMS</code> and give the bot an account (<code>PINGBOARD_HOMESERVER_URL</code>,
<code>PINGBOARD_BOT_USER_ID</code>, a token or password), or load history with <code>pingboard import</code> or
<code>pingboard backfill</code>. docs/configuration.md describes every setting.</p>`,
  );
}

export function renderLeaderboardPage(page: LeaderboardPage): string {
  const { board } = page;
  const room = board.room.id === page.defaultRoomId ? null : board.room.id;
  const probeOf = new Map(page.probes.map((p) => [p.server, p]));
  const shown = rankingPageRows(board.servers, page.page);
  const previous = page.previous;
  // A column no row of this page has a figure for is left out: three columns of dashes pushed the trend off a phone's screen.
  const columns = RANKING_COLUMNS.filter((c) => shown.some((s) => c.has(probeOf.get(s.server), previous)));
  // Last, so that hiding it on a phone moves no other column.
  const recent = page.recent && page.recent.weeks.length > 0 ? page.recent : undefined;
  const rows = shown
    .map((s) => {
      const probe = probeOf.get(s.server);
      const spark = recent
        ? `<td class="spark">${sparkline(recent.weeks, recent.medians.get(s.server) ?? [])}</td>`
        : '';
      return `<tr><td>${s.rank}</td><td>${nameElement('a', s.server, '', ` href="${escapePageText(serverHref(s.server, room))}"`)}</td>${columns.map((c) => c.cell(s, probe, previous)).join('')}${spark}</tr>`;
    })
    .join('\n');
  // Landmarks of one kind need names of their own, for screen readers' lists of them.
  const [navAbove, navBelow] = pageNavs(board, room, page.page, [
    'Pages of the ranking',
    'Pages of the ranking, below it',
  ]);
  const table =
    board.servers.length === 0
      ? '<p>No server has enough pings in this window yet.</p>'
      : `<div class="scroll"><table id="ranking">
<thead><tr><th>Rank</th><th>Server</th>${columns.map((c) => c.header(previous)).join('')}${recent ? `<th class="spark" title="weekly median, ${escapePageText(recent.weeks[0]!)} to ${escapePageText(recent.weeks.at(-1)!)}">Weeks</th>` : ''}</tr></thead>
<tbody>
${rows}
</tbody>
</table></div>
${navBelow}`;
  const excluded =
    board.exclusions.length === 0
      ? ''
      : `<h2>Not ranked</h2>
<ul id="excluded">
${board.exclusions.map((e) => `<li><a href="${escapePageText(serverHref(e.server, room))}">${escapePageText(e.server)}</a>: ${escapePageText(e.reason)} <span class="muted">(excluded by ${escapePageText(e.excludedBy)}, ${e.excludedAt.toISOString().slice(0, 10)})</span></li>`).join('\n')}
</ul>`;
  const mdHref = `/leaderboard.md${query({ room, week: board.week })}`;
  const body = `<h1>Matrix ping leaderboard</h1>
<p class="muted">${escapePageText(board.room.reference)}${board.room.reference === board.room.id ? '' : ` (${escapePageText(board.room.id)})`} · ${windowDescription(board)}</p>
${pickerForm(page)}
${podium(board.servers, room)}
<h2>Ranking</h2>
${navAbove}
${table}
${excluded}
${page.matrixHtml ?? ''}
<p class="note">Ranked by the median one-way delay from the server's <code>!ping</code> to each echo bot, every bot pooled; equal medians share a rank.
Only delays from ${pageDuration(board.filters.minDelayMs)} to ${pageDuration(board.filters.maxDelayMs)} count${board.filters.minPings > 1 ? `, and servers with fewer than ${board.filters.minPings} pings are not ranked` : ''}.
RTT, loss and clock come from probes (a dash: no probe measured the server). Clock: how far the server's clock runs ahead of Pingboard's (negative: behind), ± the most the measurement can be off by; ⚠: off by more than that and the threshold, so its delays above are off by about as much. Trend: the median against ${escapePageText(page.previous?.week ?? 'the previous week')} (▼ faster, ▲ slower, = within ${TREND_TOLERANCE * 100} %).${recent ? ` Weeks: the weekly median from ${escapePageText(recent.weeks[0]!)} to ${escapePageText(recent.weeks.at(-1)!)}, each line scaled to its own range.` : ''}</p>
<p class="note">${escapePageText(board.room.disclaimer)}</p>
<h2>Newsletter table</h2>
<p><button type="button" id="copy" hidden>${COPY_LABEL}</button> <a href="${escapePageText(mdHref)}">${escapePageText(mdHref)}</a></p>
<pre id="md">${escapePageText(page.newsletterMarkdown)}</pre>`;
  return htmlDocument(`Matrix ping leaderboard · ${board.week ?? 'rolling week'}`, body);
}

// ---- charts ---------------------------------------------------------------

/** A round axis maximum and its step (1, 2 or 5 × 10^k), about four steps. */
export function niceScale(max: number): { max: number; step: number } {
  if (!(max > 0)) return { max: 1, step: 1 };
  const rough = max / 4;
  const magnitude = 10 ** Math.floor(Math.log10(rough));
  const step = [1, 2, 5, 10].map((m) => m * magnitude).find((s) => s >= rough)!;
  return { max: Math.ceil(max / step) * step, step };
}

/** niceScale for counts: whole steps, never "0.5 samples". */
export function countScale(max: number): { max: number; step: number } {
  const scale = niceScale(max);
  return scale.step >= 1 ? scale : { max: Math.max(1, Math.ceil(scale.max)), step: 1 };
}

const fixed = (n: number) => String(Math.round(n * 10) / 10);

/** Polylines through the points that have a value; a missing week breaks the line. */
function segments(points: readonly (readonly [number, number] | null)[]): string[][] {
  const runs: string[][] = [[]];
  for (const point of points) {
    if (point === null) runs.push([]);
    else runs[runs.length - 1]!.push(`${fixed(point[0])},${fixed(point[1])}`);
  }
  return runs.filter((r) => r.length > 0);
}

/** Room left of a chart for its axis labels, "1500 ms" the widest, at the larger type phones get. */
const AXIS_LEFT = 84;

/** A delay on a chart's axis, with its unit: milliseconds, or seconds on an axis that reaches 10 s. */
export function delayTick(value: number, axisMax: number): string {
  return axisMax >= 10_000 ? `${fixed(value / 1000)} s` : `${fixed(value)} ms`;
}

/** Horizontal grid lines from 0 to the scale's maximum, each labelled with its delay and unit. */
function delayGrid(scale: { max: number; step: number }, y: (v: number) => number, x1: number, x2: number): string[] {
  const lines: string[] = [];
  for (let tick = 0; tick <= scale.max + 1e-9; tick += scale.step) {
    lines.push(
      `<line class="grid" x1="${x1}" x2="${x2}" y1="${fixed(y(tick))}" y2="${fixed(y(tick))}"/><text x="${x1 - 6}" y="${fixed(y(tick) + 4)}" text-anchor="end">${delayTick(tick, scale.max)}</text>`,
    );
  }
  return lines;
}

const SPARK_WIDTH = 80;
const SPARK_HEIGHT = 20;

/**
 * A row's weekly medians as a tiny line, scaled between its own lowest and
 * highest (its shape, not its level: the median column gives that); a week
 * without a median breaks the line, and a week alone between gaps is a dot.
 * The <title> lists every week's figure for screen readers and tooltips.
 */
export function sparkline(weeks: readonly string[], medians: readonly (number | null)[]): string {
  const values = medians.filter((v): v is number => v !== null);
  const low = Math.min(...values);
  const span = Math.max(...values) - low;
  const step = SPARK_WIDTH / Math.max(1, weeks.length);
  const x = (i: number) => step * (i + 0.5);
  // 2 px inside the edges, so the stroke is not cut; a flat row sits in the middle.
  const y = (v: number) => (span > 0 ? SPARK_HEIGHT - 2 - ((v - low) / span) * (SPARK_HEIGHT - 4) : SPARK_HEIGHT / 2);
  const points = weeks.map((_, i) => {
    const v = medians[i] ?? null;
    return v === null ? null : ([x(i), y(v)] as const);
  });
  const shapes = segments(points).map((run) =>
    run.length === 1
      ? `<circle class="dot" cx="${run[0]!.split(',')[0]}" cy="${run[0]!.split(',')[1]}" r="1.5"/>`
      : `<polyline class="spark" points="${run.join(' ')}"/>`,
  );
  const figures = weeks.map((w, i) => `${w.slice(5)} ${ms(medians[i])}`).join(', ');
  return `<svg viewBox="0 0 ${SPARK_WIDTH} ${SPARK_HEIGHT}" role="img"><title>Weekly median: ${escapePageText(figures)}</title>${shapes.join('')}</svg>`;
}

/** Hours as runs, for saying which have no data: [0, 1, 2, 5] is `00–02, 05`. */
export function hourRuns(hours: readonly number[]): string {
  const runs: [number, number][] = [];
  for (const hour of [...hours].sort((a, b) => a - b)) {
    const last = runs.at(-1);
    if (last && last[1] === hour - 1) last[1] = hour;
    else runs.push([hour, hour]);
  }
  const two = (h: number) => String(h).padStart(2, '0');
  return runs.map(([from, to]) => (from === to ? two(from) : `${two(from)}–${two(to)}`)).join(', ');
}

/** The median of each UTC hour of day as a bar; an hour without samples has none. */
export function hourlyChart(hours: readonly HourFigures[]): string {
  const width = 720;
  const left = AXIS_LEFT;
  const right = 12;
  const top = 12;
  const plot = 140;
  const height = top + plot + 30;
  const scale = niceScale(Math.max(0, ...hours.map((h) => h.medianMs ?? 0)));
  const step = (width - left - right) / Math.max(1, hours.length);
  const y = (v: number) => top + plot - (v / scale.max) * plot;
  const parts = delayGrid(scale, y, left, width - right);
  hours.forEach((h, i) => {
    const x = left + step * i;
    if (h.medianMs !== null)
      parts.push(
        `<rect class="bar" x="${fixed(x + 1)}" y="${fixed(y(h.medianMs))}" width="${fixed(step - 2)}" height="${fixed(top + plot - y(h.medianMs))}"><title>${String(h.hour).padStart(2, '0')}:00–${String(h.hour).padStart(2, '0')}:59 UTC: median ${pageDuration(h.medianMs)}, ${counted(h.pings, 'ping')}</title></rect>`,
      );
    // Every third hour is labelled, the others give way on a phone.
    if (h.hour % 3 === 0)
      parts.push(
        `<text x="${fixed(x + step / 2)}" y="${top + plot + 22}" text-anchor="middle"${h.hour % 6 === 3 ? ' class="odd"' : ''}>${String(h.hour).padStart(2, '0')}h</text>`,
      );
  });
  return `<svg id="hourly-chart" viewBox="0 0 ${width} ${height}" role="img" aria-label="Median delay by UTC hour of day">${parts.join('')}</svg>`;
}

/** The days from the first one with a median on: the axis fits the data, not the days asked for. */
function daysWithData(days: readonly DayFigures[]): readonly DayFigures[] {
  const first = days.findIndex((d) => d.medianMs !== null);
  return first < 0 ? [] : days.slice(first);
}

/** The median of each day as a line with a dot per day; a day without samples breaks the line. */
export function dailyChart(allDays: readonly DayFigures[]): string {
  const days = daysWithData(allDays);
  const width = 720;
  const left = AXIS_LEFT;
  const right = 12;
  const top = 12;
  const plot = 150;
  const height = top + plot + 30;
  const scale = niceScale(Math.max(0, ...days.map((d) => d.medianMs ?? 0)));
  const step = (width - left - right) / Math.max(1, days.length);
  const x = (i: number) => left + step * (i + 0.5);
  const y = (v: number) => top + plot - (v / scale.max) * plot;
  const parts = delayGrid(scale, y, left, width - right);
  const labelEvery = Math.ceil(days.length / 8);
  days.forEach((d, i) => {
    // Counted from today, so today is always labelled.
    if ((days.length - 1 - i) % labelEvery === 0)
      parts.push(
        `<text x="${fixed(x(i))}" y="${top + plot + 22}" text-anchor="middle">${escapePageText(DAY.format(new Date(`${d.day}T00:00:00Z`)))}</text>`,
      );
  });
  for (const run of segments(days.map((d, i) => (d.medianMs === null ? null : ([x(i), y(d.medianMs)] as const))))) {
    parts.push(`<polyline class="median" points="${run.join(' ')}"/>`);
  }
  days.forEach((d, i) => {
    if (d.medianMs !== null)
      parts.push(
        `<circle class="dot" cx="${fixed(x(i))}" cy="${fixed(y(d.medianMs))}" r="3"><title>${escapePageText(d.day)}: median ${pageDuration(d.medianMs)}, ${counted(d.pings, 'ping')}</title></circle>`,
      );
  });
  return `<svg id="daily-chart" viewBox="0 0 ${width} ${height}" role="img" aria-label="Daily median delay">${parts.join('')}</svg>`;
}

export interface WeekPoint {
  readonly week: ServerWeek;
  readonly probe: ProbeFigures | undefined;
}

/** Weekly medians (and round trips) as lines, loss as bars in a strip below. */
export function weeklyChart(points: readonly WeekPoint[]): string {
  const width = 720;
  const left = AXIS_LEFT;
  const right = 12;
  const top = 12;
  const plot = 180;
  const lossTop = top + plot + 28;
  const lossHeight = 36;
  const height = lossTop + lossHeight + 6;
  const values = points
    .flatMap((p) => [p.week.medianMs, p.probe?.medianRttMs ?? null])
    .filter((v): v is number => v !== null);
  const scale = niceScale(Math.max(0, ...values));
  const step = (width - left - right) / Math.max(1, points.length);
  const x = (i: number) => left + step * (i + 0.5);
  const y = (v: number) => top + plot - (v / scale.max) * plot;
  const parts = delayGrid(scale, y, left, width - right);
  const labelEvery = Math.ceil(points.length / 8);
  points.forEach((p, i) => {
    // Counted from the newest week, so the current week is always labelled.
    if ((points.length - 1 - i) % labelEvery === 0)
      parts.push(
        `<text x="${fixed(x(i))}" y="${top + plot + 22}" text-anchor="middle">${escapePageText(p.week.week.slice(5))}</text>`,
      );
  });
  for (const run of segments(
    points.map((p, i) => (p.week.medianMs === null ? null : ([x(i), y(p.week.medianMs)] as const))),
  )) {
    parts.push(`<polyline class="median" points="${run.join(' ')}"/>`);
  }
  for (const run of segments(
    points.map((p, i) => (p.probe?.medianRttMs == null ? null : ([x(i), y(p.probe.medianRttMs)] as const))),
  )) {
    parts.push(`<polyline class="rtt" points="${run.join(' ')}"/>`);
  }
  points.forEach((p, i) => {
    const w = escapePageText(p.week.week);
    if (p.week.medianMs !== null) {
      parts.push(
        `<circle class="dot" cx="${fixed(x(i))}" cy="${fixed(y(p.week.medianMs))}" r="3.5"><title>${w}: median ${pageDuration(p.week.medianMs)}, ${p.week.pings} pings${p.week.rank !== null ? `, rank ${p.week.rank}` : ''}</title></circle>`,
      );
    }
    const rtt = p.probe?.medianRttMs;
    if (rtt !== null && rtt !== undefined)
      parts.push(
        `<circle class="rttdot" cx="${fixed(x(i))}" cy="${fixed(y(rtt))}" r="2.5"><title>${w}: round trip ${ms(rtt)}</title></circle>`,
      );
    const loss = p.probe?.lossRate;
    if (loss !== null && loss !== undefined) {
      const h = Math.max(1, loss * lossHeight);
      parts.push(
        `<rect class="loss" x="${fixed(x(i) - step * 0.3)}" y="${fixed(lossTop + lossHeight - h)}" width="${fixed(step * 0.6)}" height="${fixed(h)}"><title>${w}: ${percent(loss)} of ${p.probe!.pingsSent} probe pings lost</title></rect>`,
      );
    }
  });
  parts.push(
    `<line class="grid" x1="${left}" x2="${width - right}" y1="${lossTop + lossHeight}" y2="${lossTop + lossHeight}"/><text x="${left - 6}" y="${lossTop + lossHeight}" text-anchor="end">loss</text>`,
  );
  return `<svg id="weekly-chart" viewBox="0 0 ${width} ${height}" role="img" aria-label="Weekly median delay">${parts.join('')}</svg>`;
}

/** The delay distribution as bars, one per bin. */
export function histogramChart(bins: readonly DelayBin[]): string {
  const width = 720;
  const left = AXIS_LEFT;
  // Room above the plot for the count axis's unit.
  const top = 24;
  const plot = 140;
  const height = top + plot + 30;
  const scale = countScale(Math.max(0, ...bins.map((b) => b.samples)));
  const step = (width - left - 12) / Math.max(1, bins.length);
  const parts = ['<text x="0" y="12">samples</text>'];
  for (let tick = 0; tick <= scale.max + 1e-9; tick += scale.step) {
    const y = top + plot - (tick / scale.max) * plot;
    parts.push(
      `<line class="grid" x1="${left}" x2="${width - 12}" y1="${fixed(y)}" y2="${fixed(y)}"/><text x="${left - 6}" y="${fixed(y + 4)}" text-anchor="end">${fixed(tick)}</text>`,
    );
  }
  bins.forEach((b, i) => {
    const x = left + step * i;
    const h = (b.samples / scale.max) * plot;
    if (b.samples > 0)
      parts.push(
        `<rect class="bar" x="${fixed(x + 1)}" y="${fixed(top + plot - h)}" width="${fixed(step - 2)}" height="${fixed(h)}"><title>${b.fromMs}–${b.toMs} ms: ${b.samples} samples</title></rect>`,
      );
    // Every other label gives way on a phone, where the chart is drawn at half size.
    parts.push(
      `<text x="${fixed(x)}" y="${top + plot + 22}" text-anchor="middle"${i % 2 === 1 ? ' class="odd"' : ''}>${b.fromMs >= 1000 ? `${b.fromMs / 1000}s` : b.fromMs}</text>`,
    );
  });
  return `<svg id="histogram" viewBox="0 0 ${width} ${height}" role="img" aria-label="Delay distribution">${parts.join('')}</svg>`;
}

// ---- a server's page --------------------------------------------------------

export interface ServerPage {
  readonly server: string;
  /** The window the distribution and the summary cover: the rolling week or a chosen week. */
  readonly board: Leaderboard;
  readonly probe: ProbeFigures | undefined;
  readonly weeks: readonly WeekPoint[];
  /** The median of each of the last days, oldest first (stats/server-detail.ts). */
  readonly days: readonly DayFigures[];
  readonly histogram: readonly DelayBin[];
  /** The median of each UTC hour of day over the board's window, all 24 (stats/server-detail.ts). */
  readonly hours: readonly HourFigures[];
  /** The server's newest samples, newest first: the page shows the pings of the first LATEST_PINGS. */
  readonly latest: readonly Sample[];
  /** What "5 min ago" counts from. */
  readonly now: Date;
  readonly defaultRoomId: string | null;
  /** The server's row and column of the delivery matrix (render/matrix.ts); empty or absent: none. */
  readonly matrixHtml?: string;
}

/** Pings in the table of the latest ones. */
const LATEST_PINGS = 20;

const MINUTE = 60_000;

/** How long before `now` a moment was, in the largest whole unit: `just now`, `5 min ago`, `3 h ago`, `2 days ago`. */
function timeAgo(at: Date, now: Date): string {
  const elapsed = now.getTime() - at.getTime();
  if (elapsed < MINUTE) return 'just now';
  if (elapsed < 60 * MINUTE) return `${Math.floor(elapsed / MINUTE)} min ago`;
  if (elapsed < 24 * 60 * MINUTE) return `${Math.floor(elapsed / (60 * MINUTE))} h ago`;
  const days = Math.floor(elapsed / (24 * 60 * MINUTE));
  return days === 1 ? '1 day ago' : `${days} days ago`;
}

/** The latest pings, newest first, each with who sent it, when, and every answer's delay: what a server's admin reads, not event IDs. */
function latestPings(samples: readonly Sample[], now: Date): string {
  if (samples.length === 0) return '<p>No pings from this server yet.</p>';
  const pings = new Map<string, Sample[]>();
  for (const sample of samples) {
    const answers = pings.get(sample.pingEventId);
    if (answers) answers.push(sample);
    else if (pings.size < LATEST_PINGS) pings.set(sample.pingEventId, [sample]);
  }
  const rows = [...pings.values()].map((answers) => {
    const first = answers[0]!;
    const replies = answers
      .sort((a, b) => compareNames(a.responder, b.responder))
      .map(
        (a) =>
          `${nameElement('span', a.responder, 'name', '')} in <b>${pageDuration(a.delayMs)}</b>${a.rttMs === null ? '' : ` (round trip ${pageDuration(a.rttMs)})`}`,
      )
      .join('<br>');
    return `<tr><td class="t">${timeAgo(first.pingTs, now)}<br><span class="muted">${utc(first.pingTs)}</span></td><td class="s">${first.pinger === null ? 'someone' : nameElement('span', first.pinger, 'name', '')}${first.source === 'probe' ? ' <span class="muted">(probe)</span>' : ''}</td><td class="s">${replies}</td></tr>`;
  });
  return `<div class="scroll"><table id="latest"><thead><tr><th class="s">When</th><th class="s">Pinged by</th><th class="s">Answered by</th></tr></thead><tbody>
${rows.join('\n')}
</tbody></table></div>`;
}

/** The server's delays to each responder server in the window: whom its pings reach fast, and whom slowly. */
function responderTable(ranked: RankedServer | undefined, windowName: string): string {
  if (!ranked || ranked.responders.length === 0) return '';
  const rows = [...ranked.responders]
    .sort((a, b) => a.medianMs - b.medianMs || compareNames(a.server, b.server))
    .map(
      (r) =>
        `<tr><td class="s">${nameElement('span', r.server, 'name', '')}</td><td>${pageDuration(r.medianMs)}</td><td>${pageDuration(r.p90Ms)}</td><td>${r.pings}</td></tr>`,
    );
  return `<h2>Towards each responder in ${escapePageText(windowName)}</h2>
<div class="scroll"><table id="responders"><thead><tr><th class="s">Responder server</th><th>Median</th><th>p90</th><th>Pings</th></tr></thead><tbody>
${rows.join('\n')}
</tbody></table></div>`;
}

/** The weeks from the first one with a figure on: an axis of half a year with three points at its end told nothing. */
function weeksWithData(weeks: readonly WeekPoint[]): readonly WeekPoint[] {
  const first = weeks.findIndex(
    (p) => p.week.medianMs !== null || p.probe?.medianRttMs != null || p.probe?.lossRate != null,
  );
  return first < 0 ? [] : weeks.slice(first);
}

function summaryOf(page: ServerPage, ranked: RankedServer | undefined, windowName: string): string {
  if (!ranked) return `<p>Not ranked in ${escapePageText(windowName)}.</p>`;
  const { probe } = page;
  const probed = [
    probe?.medianRttMs == null ? null : `round trip ${pageDuration(probe.medianRttMs)}`,
    probe?.lossRate == null ? null : `loss ${percent(probe.lossRate)}`,
  ].filter((part) => part !== null);
  return (
    `<p><b>#${ranked.rank}</b> of ${page.board.servers.length} in ${escapePageText(windowName)}: median <b>${pageDuration(ranked.medianMs)}</b>, mean ${ms(ranked.meanMs)}, p90 ${ms(ranked.p90Ms)}, ${counted(ranked.pings, 'ping')} (${counted(ranked.samples, 'sample')} from ${counted(ranked.responders.length, 'responder')})` +
    `${probed.length > 0 ? `; probes measured ${probed.join(', ')}` : ''}${probe?.clockOffset?.flagged ? `, <span class="skew">⚠ clock off by ${offsetFigure(probe.clockOffset)}</span>` : ''}.</p>`
  );
}

function hourlySection(hours: readonly HourFigures[]): string {
  if (!hours.some((h) => h.medianMs !== null)) return '<p>No delays in this window.</p>';
  const empty = hours.filter((h) => h.medianMs === null).map((h) => h.hour);
  return `${hourlyChart(hours)}
<p class="note">The median one-way delay of the pings sent in each UTC hour of day. ${empty.length === 0 ? 'Every hour has data.' : `No data at ${hourRuns(empty)} h.`}</p>`;
}

export function renderServerPage(page: ServerPage): string {
  const { board, server } = page;
  const room = board.room.id === page.defaultRoomId ? null : board.room.id;
  const index = board.servers.findIndex((s) => s.server === server);
  const windowName = board.week ?? 'the rolling week';
  const weeks = weeksWithData(page.weeks);
  const hasRtt = weeks.some((p) => p.probe?.medianRttMs != null);
  const hasLoss = weeks.some((p) => p.probe?.lossRate != null);
  const legend = [
    '<span><i></i>median one-way delay</span>',
    hasRtt ? '<span><i class="r"></i>probe round trip</span>' : '',
    hasLoss ? '<span><i class="l"></i>probe pings lost</span>' : '',
  ].join('');
  const probeHeaders = `${hasRtt ? '<th>RTT</th>' : ''}${hasLoss ? '<th>Loss</th>' : ''}`;
  const weekRows = [...weeks]
    .reverse()
    .map(
      ({ week: w, probe }) =>
        `<tr><td class="s">${escapePageText(w.week)}${w.frozen ? '' : ' <span class="muted">(live)</span>'}</td><td>${w.rank ?? DASH}</td><td>${ms(w.medianMs)}</td><td>${ms(w.meanMs)}</td><td>${w.pings}</td>` +
        `${hasRtt ? `<td>${ms(probe?.medianRttMs)}</td>` : ''}${hasLoss ? `<td>${percent(probe?.lossRate)}</td>` : ''}</tr>`,
    )
    .join('\n');
  const weekly = weeks.some((p) => p.week.medianMs !== null)
    ? `${weeklyChart(weeks)}
<p class="legend note">${legend}</p>
<details><summary>Weekly figures</summary>
<div class="scroll"><table><thead><tr><th class="s">Week</th><th>Rank</th><th>Median</th><th>Mean</th><th>Pings</th>${probeHeaders}</tr></thead><tbody>
${weekRows}
</tbody></table></div></details>`
    : '<p>No weekly medians yet.</p>';
  const totalBinned = page.histogram.reduce((sum, b) => sum + b.samples, 0);
  // Back to the page of the ranking that lists this server.
  const back = `/${query({ room, week: board.week, page: index < 0 ? null : pageParam(rankingPageOf(index)) })}`;
  const body = `<p><a href="${escapePageText(back)}">← Leaderboard</a></p>
${nameElement('h1', server, 'name', ' id="server"')}
<p class="muted">${escapePageText(board.room.reference)} · ${windowDescription(board)}</p>
${summaryOf(page, board.servers[index], windowName)}
${responderTable(board.servers[index], windowName)}
<h2>Daily median</h2>
${
  page.days.some((d) => d.medianMs !== null)
    ? `${dailyChart(page.days)}
<p class="note">The median one-way delay of each UTC day, today so far included.</p>`
    : `<p>No samples in the last ${counted(page.days.length, 'day')}.</p>`
}
<h2>Weekly median</h2>
${weekly}
<h2>Delays in ${escapePageText(windowName)}</h2>
${
  totalBinned > 0
    ? `${histogramChart(page.histogram)}
<p class="note">${counted(totalBinned, 'sample')}, by delay (bins of a 1-2-5 series).</p>`
    : '<p>No delays in this window.</p>'
}
<h2>By hour of day in ${escapePageText(windowName)}</h2>
${hourlySection(page.hours)}
${page.matrixHtml ?? ''}
<h2>Latest pings</h2>
${latestPings(page.latest, page.now)}`;
  return htmlDocument(`${server} · Matrix ping leaderboard`, body);
}

/** A page for a request the pages cannot answer: the status, what was wrong in words, and the way back. */
export function renderErrorPage(statusCode: number, title: string, sentence: string): string {
  return htmlDocument(
    `${statusCode} ${title} · Matrix ping leaderboard`,
    `<h1 id="error">${statusCode} · ${escapePageText(title)}</h1>
<p>${escapePageText(sentence)}</p>
<p><a href="/">← Back to the leaderboard</a></p>`,
  );
}
