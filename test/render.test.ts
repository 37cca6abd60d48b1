// Renderers (src/render/): pure, no database.
import { readFileSync } from 'node:fs';
import t from 'tap';
import { humanDuration, pageDuration, pingstatDuration } from '../src/duration.ts';
import { escapeHtml } from '../src/html-escape.ts';
import { renderLeaderboardJson } from '../src/render/leaderboard-json.ts';
import { escapeMarkdownCell, formatMedian, renderNewsletterTable } from '../src/render/markdown.ts';
import { pingstatJsonParts, renderPingstatHtml } from '../src/render/pingstat.ts';
import { rankPingstatServers, summarisePingstat } from '../src/stats/pingstat-summary.ts';
import { exactSum } from '../src/stats/figures.ts';
import type { Leaderboard } from '../src/stats/leaderboard.ts';
import type { RankedServer } from '../src/stats/ranking.ts';
import { pingstatGroupsOf, type PongsSpec } from './helpers/pingstat.ts';

const HEADER = '|Rank|Hostname|Median MS|\n|:---:|:---:|:---:|\n';

function ranked(rank: number, server: string, medianMs: number, extra: Partial<RankedServer> = {}): RankedServer {
  return {
    rank,
    server,
    medianMs,
    meanMs: medianMs,
    gmeanMs: medianMs,
    p90Ms: medianMs,
    minMs: medianMs,
    maxMs: medianMs,
    pings: 1,
    samples: 1,
    responders: [],
    ...extra,
  };
}

/**
 * Splits a markdown table row into cells the way GitHub-flavoured markdown
 * does: a backslash escapes the next character, so `\|` is not a separator.
 */
function cells(line: string): string[] {
  if (!line.startsWith('|') || !line.endsWith('|')) throw new Error(`not a table row: ${JSON.stringify(line)}`);
  const result: string[] = [];
  let current = '';
  for (let i = 1; i < line.length; i++) {
    const ch = line[i]!;
    if (ch === '\\' && i + 1 < line.length) {
      current += ch + line[i + 1]!;
      i++;
    } else if (ch === '|') {
      result.push(current);
      current = '';
    } else {
      current += ch;
    }
  }
  return result;
}

/** A name quoted for an assertion message, ASCII only (a raw U+2028 would break the TAP stream). */
function quote(text: string): string {
  return JSON.stringify(text).replace(/[^\x20-\x7e]/g, (ch) => `\\u${ch.charCodeAt(0).toString(16).padStart(4, '0')}`);
}

/** A cell's text as markdown shows it: backslash escapes of ASCII punctuation removed. */
function unescapeCell(cell: string): string {
  return cell.replace(/\\([!-/:-@[-`{-~])/g, '$1');
}

t.test('renderNewsletterTable: the newsletter table byte for byte', async (t) => {
  const rows = [ranked(1, 'fairydust.space', 376), ranked(2, 'neko.dev', 444.5), ranked(3, 'example.org:8448', 1000)];
  t.equal(
    renderNewsletterTable(rows, 10),
    '|Rank|Hostname|Median MS|\n|:---:|:---:|:---:|\n|1|fairydust.space|376|\n|2|neko.dev|444.5|\n|3|example.org:8448|1000|\n',
  );
  t.equal(renderNewsletterTable([], 10), HEADER, 'an empty ranking is the header alone');
  t.equal(renderNewsletterTable(rows, 1), `${HEADER}|1|fairydust.space|376|\n`, 'limit 1');
  t.equal(renderNewsletterTable(rows, 3), renderNewsletterTable(rows, 10), 'exactly as many rows as the limit');
  t.equal(renderNewsletterTable(rows, 0), HEADER, 'limit 0');

  const twelve = Array.from({ length: 12 }, (_, i) =>
    ranked(i + 1, `s${String(i + 1).padStart(2, '0')}.example`, 100 + i),
  );
  const ten = renderNewsletterTable(twelve, 10).split('\n');
  t.equal(ten.length, 2 + 10 + 1, 'ten rows of twelve (and the final newline)');
  t.equal(ten[11], '|10|s10.example|109|');
  t.equal(ten[12], '', 'ends with a newline');
  t.notMatch(renderNewsletterTable(twelve, 10), /s11\.example/);
  t.equal(renderNewsletterTable(twelve, 1000).split('\n').length, 2 + 12 + 1, 'fewer rows than the limit: all of them');

  // The input order is the ranking: the renderer does not sort; it numbers the rows 1..n, as the newsletter does.
  const ties = [
    ranked(1, 'a.example', 100),
    ranked(2, 'b.example', 200),
    ranked(2, 'c.example', 200),
    ranked(4, 'd.example', 250.5),
  ];
  t.equal(
    renderNewsletterTable(ties, 10),
    `${HEADER}|1|a.example|100|\n|2|b.example|200|\n|3|c.example|200|\n|4|d.example|250.5|\n`,
    'shared ranks (1, 2, 2, 4) numbered as rows, 1..n',
  );
  t.equal(renderNewsletterTable(ties, 3), `${HEADER}|1|a.example|100|\n|2|b.example|200|\n|3|c.example|200|\n`);
  t.equal(
    renderNewsletterTable([ranked(1, '[::1]:8448', 12), ranked(2, '192.0.2.1:8448', 13)], 10),
    `${HEADER}|1|\\[::1\\]:8448|12|\n|2|192.0.2.1:8448|13|\n`,
    'IPv6 brackets are escaped; IPv4 and ports pass as they are',
  );
});

t.test('escapeMarkdownCell keeps every table intact', async (t) => {
  const hostile = [
    'evil|server',
    '|',
    '||||',
    'a\\|b',
    'trailing\\',
    '\\',
    'line\nbreak',
    'cr\rlf\r\n',
    'tab\tname',
    'nul\u0000byte',
    'sep\u2028arator\u2029',
    'nel\u0085',
    '<script>alert(1)</script>',
    '<img src=x onerror=alert(1)>',
    '[x](javascript:alert(1))',
    '![img](http://x/y.png)',
    '`code`',
    '``',
    '*bold*',
    '**strong**',
    '_em_',
    '__u__',
    '~~strike~~',
    '# heading',
    '> quote',
    '- item',
    '1. item',
    '&lt;entity&gt;',
    '&#124;',
    '<!-- comment -->',
    'http://example.org',
    '<http://autolink>',
    '{{x}}',
    '$x$',
    '=== ',
    '---',
    'a  b',
    '\u200b',
    '😀.example',
    'ünïcödé',
    ':---:',
    '\\\\|\\\\|',
    'x'.repeat(300),
  ];
  const rows = hostile.map((name, i) => ranked(i + 1, name, 100 + i));
  const table = renderNewsletterTable(rows, 1000);
  const lines = table.split('\n');
  t.equal(lines.length, 2 + hostile.length + 1, 'one line per row, whatever the names hold');
  t.equal(lines.pop(), '', 'the table ends with a newline');
  for (const [index, line] of lines.entries()) {
    t.equal(cells(line).length, 3, `line ${index + 1} has exactly 3 cells: ${quote(line)}`);
  }
  for (const [index, name] of hostile.entries()) {
    const row = cells(lines[index + 2]!);
    t.equal(row[0], String(index + 1), `${quote(name)}: rank cell`);
    t.equal(row[2], String(100 + index), `${quote(name)}: median cell`);
    // What a reader sees is the name itself, with control and line-separator characters as spaces.
    t.equal(
      unescapeCell(row[1]!),
      name.replace(/[\u0000-\u001f\u007f-\u009f\u2028\u2029]/g, ' '),
      `${quote(name)} reads as itself`,
    );
  }
  t.notMatch(table, /(^|[^\\])<script/im, 'no raw HTML tag');
  t.notMatch(table, /(^|[^\\])</m, 'every < is escaped');
  t.notMatch(table, /(^|[^\\])\[x\]\(/m, 'no link syntax');
  t.notMatch(table, /[\r\u2028\u2029\u0085\u0000]/, 'no other line terminators or control characters');

  t.equal(escapeMarkdownCell('evil|server'), 'evil\\|server');
  t.equal(escapeMarkdownCell('<script>'), '\\<script\\>');
  t.equal(escapeMarkdownCell('[x](javascript:alert(1))'), '\\[x\\]\\(javascript:alert\\(1\\)\\)');
  t.equal(escapeMarkdownCell('`*_'), '\\`\\*\\_');
  t.equal(escapeMarkdownCell('a\nb\r\nc'), 'a b  c');
  t.equal(escapeMarkdownCell('trailing\\'), 'trailing\\\\', 'a trailing backslash cannot escape the closing pipe');
  for (const name of ['example.org', 'example.org:8448', 'matrix.example-host.net', '192.0.2.1:8448', 'localhost']) {
    t.equal(escapeMarkdownCell(name), name, `${name} stays as it is`);
  }
  t.equal(escapeMarkdownCell('[::1]:8448'), '\\[::1\\]:8448', 'IPv6 literal: only the brackets are escaped');
  t.equal(escapeMarkdownCell('[2001:db8::1]'), '\\[2001:db8::1\\]');
});

t.test('formatMedian', async (t) => {
  t.equal(formatMedian(376), '376');
  t.equal(formatMedian(444.5), '444.5');
  t.equal(formatMedian(0), '0');
  t.equal(formatMedian(-0), '0');
  t.equal(formatMedian(-5), '-5');
  t.equal(formatMedian(-12.5), '-12.5');
  t.equal(formatMedian(10), '10');
  t.equal(formatMedian(600_000), '600000');
  t.equal(formatMedian(86_400_000), '86400000', 'no exponent for the largest delays');
  t.equal(formatMedian(2_147_483_647.5), '2147483647.5');
  t.equal(formatMedian(444.49999999999994), '444.5', 'float noise is rounded away');
  t.equal(formatMedian(0.1 + 0.2), '0.3');
  t.equal(formatMedian(1 / 3), '0.333');
  t.equal(formatMedian(376.0), '376', 'no trailing .0');
  t.throws(() => formatMedian(Number.NaN), RangeError);
  t.throws(() => formatMedian(Number.POSITIVE_INFINITY), RangeError);
  t.throws(() => formatMedian(Number.NEGATIVE_INFINITY), RangeError);
});

t.test('pageDuration: ms with one decimal at most, seconds from 10 s, no float noise', async (t) => {
  for (const [ms, text] of [
    [376, '376 ms'],
    [444.5, '444.5 ms'],
    [280.60000000000014, '280.6 ms'],
    [0.1 + 0.2, '0.3 ms'],
    [1 / 3, '0.3 ms'],
    [0, '0 ms'],
    [-0.04, '0 ms'],
    [-5, '-5 ms'],
    [9999.9, '9999.9 ms'],
    [9999.96, '10 s'],
    [10_000, '10 s'],
    [12_345, '12.3 s'],
    [600_000, '600 s'],
    [-15_000, '-15 s'],
    [86_400_000, '86400 s'],
  ] as const)
    t.equal(pageDuration(ms), text, `${ms}`);
});

t.test('humanDuration matches the echo bot (Python) exactly', async (t) => {
  const known: [number, string][] = [
    [376, '376 ms'],
    [-5, '-5 ms'],
    [9999, '9999 ms'],
    [0, '0 ms'],
    [10000, '10.0 seconds'],
    [10050, '10.1 seconds'],
    [10049, '10.0 seconds'],
    [11250, '11.2 seconds'],
    [11350, '11.3 seconds'],
    [59960, '60.0 seconds'],
    [59600, '59.6 seconds'],
    [60000, '1 minute and 0 seconds'],
    [61000, '1 minute and 1 second'],
    [125500, '2 minutes and 6 seconds'],
    [124500, '2 minutes and 4 seconds'],
    [3600000, '1 hour, 0 minutes and 0 seconds'],
    [3603000, '1 hour, 0 minutes and 3 seconds'],
    [90061000, '1 day, 1 hour, 1 minute and 1 second'],
    [-15000, '-15.0 seconds'],
    [-70000, '-2 minutes and 50 seconds'],
    [-3600000, '-1 hours, 0 minutes and 0 seconds'],
    [119500, '1 minute and 60 seconds'],
  ];
  for (const [ms, text] of known) t.equal(humanDuration(ms), text, `${ms} ms`);

  // Pairs computed by the echo bot's own Python code; see the fixture's "source".
  const fixture = JSON.parse(
    readFileSync(new URL('./fixtures/human-duration.python.json', import.meta.url), 'utf8'),
  ) as { pairs: [number, string][] };
  t.ok(fixture.pairs.length > 1000, 'the fixture holds the generated pairs');
  const wrong = fixture.pairs.filter(([ms, text]) => humanDuration(ms) !== text);
  t.same(
    wrong.slice(0, 10).map(([ms, text]) => ({ ms, python: text, ours: humanDuration(ms) })),
    [],
    `all ${fixture.pairs.length} Python pairs agree`,
  );
});

function gmean(values: number[]): number {
  return Math.exp(values.reduce((sum, v) => sum + Math.log(v), 0) / values.length);
}

function statsJson(spec: PongsSpec, disclaimer: string) {
  return [...pingstatJsonParts(summarisePingstat(pingstatGroupsOf(spec), disclaimer))].join('');
}

t.test("summarisePingstat and pingstatJsonParts: the aggregator's stats.json", async (t) => {
  const json = statsJson(
    {
      'a.example': { 'other.example': { $a1: 120 }, 'maunium.net': { $a2: 300, $a1: 100 } },
      'b.example': { 'maunium.net': { $b1: 50, $b2: 70 } },
      'd.example': { 'maunium.net': { $d1: 10, $d2: 600_000 } },
    },
    'Disclaimer.',
  );
  t.ok(
    json.startsWith(
      '{"disclaimer":"Disclaimer.","pings":{"b.example":{"pongs":{"maunium.net":{"diffs":{"$b1":50,"$b2":70},"mean":60.0,"median":60.0,"gmean":',
    ),
    "written in the aggregator's key order, without spaces, whole floats with Python's .0",
  );
  const stats = JSON.parse(json);
  t.same(Object.keys(stats), ['disclaimer', 'pings', 'mean', 'pongservers'], 'top-level keys in order');
  t.same(Object.keys(stats.pings), ['b.example', 'a.example', 'd.example'], 'ping servers by ascending median');
  t.same(stats.pongservers, ['maunium.net', 'other.example'], 'pong servers sorted');

  const a = stats.pings['a.example'];
  t.same(Object.keys(a), ['pongs', 'pings', 'mean', 'median', 'gmean'], 'per server keys in order');
  t.same(a.pings, ['$a1', '$a2'], 'pings as the database lists them');
  t.equal(a.median, 120, 'pooled median over every pong server');
  t.equal(a.mean, (100 + 120 + 300) / 3);
  t.ok(Math.abs(a.gmean - gmean([100, 120, 300])) < 1e-9, 'geometric mean');
  t.same(Object.keys(a.pongs), ['maunium.net', 'other.example'], 'pong servers by name');
  const aMaunium = a.pongs['maunium.net'];
  t.same(Object.keys(aMaunium), ['diffs', 'mean', 'median', 'gmean'], 'per pong server keys in order');
  t.same(Object.keys(aMaunium.diffs), ['$a2', '$a1'], 'diffs as the database lists them');
  t.equal(aMaunium.median, 200, 'even count: the two middle values averaged');
  t.equal(aMaunium.mean, 200);
  t.ok(Math.abs(aMaunium.gmean - Math.sqrt(100 * 300)) < 1e-9);
  t.equal(stats.pings['b.example'].median, 60, '50 and 70 average to 60');
  t.equal(stats.pings['d.example'].median, 300_005);
  t.equal(stats.mean, (60 + 520 / 3 + 300_005) / 3, "top-level mean: the mean of the servers' means");
});

t.test(
  "a ping server's stats.json member is written once, when first asked for, and its lists dropped then",
  async (t) => {
    const spec: PongsSpec = { 'a.example': { 'maunium.net': { $a1: 100, $a2: 300 }, 'other.example': { $a1: 120 } } };
    const summary = summarisePingstat(pingstatGroupsOf(spec), 'd');
    const [server] = summary.servers;
    const lists = ['"$a1":100,"$a2":300', '"$a1":120', '"$a1","$a2"'].join('').length;
    t.equal(server!.jsonBytes, lists, 'holds the lists it is written from');
    renderPingstatHtml(summary, '!room:example.org');
    t.equal(server!.jsonBytes, lists, 'the HTML table does not write it');
    const first = server!.json as Buffer;
    t.ok(Buffer.isBuffer(first), 'in memory, with no spill directory');
    t.equal(server!.jsonBytes, first.length, 'written, it holds the member alone');
    t.equal(server!.json, first, 'the same bytes every time, not written again');
    t.equal(first.buffer.byteLength, first.length, 'in a buffer of its own, so an answer passes it along uncopied');
    t.equal(
      statsJson(spec, 'd'),
      `{"disclaimer":"d","pings":{${first}},"mean":${JSON.parse(`{${first}}`)['a.example'].mean},"pongservers":["maunium.net","other.example"]}`,
    );
  },
);

t.test("pingstatJsonParts: numbers spelt as pingstat's json.dumps spells them", async (t) => {
  // CPython: statistics.median([50, 70]) is 60.0, median([10, 40, 1000]) is 40; a mean is always a float;
  // math.exp(math.log(1000)) is 999.9999999999998, math.exp(math.log(32)) is 32.0.
  const json = statsJson(
    {
      'even.example': { 'maunium.net': { $e1: 50, $e2: 70 } },
      'odd.example': { 's1.example': { $o: 1000 }, 's2.example': { $o: 10 }, 's3.example': { $o: 40 } },
      'one.example': { 'maunium.net': { $1: 32 } },
    },
    'd',
  );
  t.match(
    json,
    '"even.example":{"pongs":{"maunium.net":{"diffs":{"$e1":50,"$e2":70},"mean":60.0,"median":60.0,',
    'even count: a float median',
  );
  t.match(
    json,
    '"s1.example":{"diffs":{"$o":1000},"mean":1000.0,"median":1000,"gmean":999.9999999999998}',
    'one delay: a float mean, an int median',
  );
  t.match(json, '"pings":["$o"],"mean":350.0,"median":40,"gmean":', 'odd pooled count: an int median');
  t.match(json, '"pings":["$1"],"mean":32.0,"median":32,"gmean":32.0}', 'a whole geometric mean keeps its .0');
  t.match(json, /"mean":(\d+\.\d+),"pongservers"/, 'the mean of the means is a float');
  t.same(JSON.parse(json).pings['even.example'].median, 60, 'the same numbers to a JSON reader');
});

t.test('summarisePingstat: ties, odd counts, an empty window', async (t) => {
  t.equal(
    statsJson({}, 'Nothing yet.'),
    '{"disclaimer":"Nothing yet.","pings":{},"mean":0,"pongservers":[]}',
    'empty: mean 0',
  );
  const ties = JSON.parse(
    statsJson(
      {
        'zeta.example': { 'maunium.net': { $z: 200 } },
        'alpha.example': { 'maunium.net': { $a: 200 } },
        'mid.example': { 'maunium.net': { $m: 100 } },
      },
      'd',
    ),
  );
  t.same(Object.keys(ties.pings), ['mid.example', 'alpha.example', 'zeta.example'], 'equal medians listed by name');
  const odd = JSON.parse(
    statsJson({ 'a.example': { 's1.example': { $1: 1000 }, 's2.example': { $1: 10 }, 's3.example': { $1: 40 } } }, 'd'),
  );
  t.equal(odd.pings['a.example'].median, 40, 'odd count: the middle value');
  t.ok(Math.abs(odd.pings['a.example'].gmean - gmean([10, 40, 1000])) < 1e-9);
  t.same(odd.pings['a.example'].pings, ['$1'], 'a ping answered by three servers is listed once');
});

t.test("exactSum: the logarithms' sum as pingstat's math.fsum takes it", async (t) => {
  t.equal(exactSum([1e100, 1, -1e100]), 1, 'no digit lost to cancellation');
  t.equal(exactSum(Array(10).fill(0.1)), 1, 'correctly rounded, as fsum gives 1.0');
  t.equal(exactSum([]), 0);
});

t.test(
  "summarisePingstat: the geometric mean is CPython's to the last digit, through the C library's log and exp",
  async (t) => {
    // Each pinned to CPython 3.11's math.exp(math.fsum(map(math.log, d)) / len(d)); for the last three, Node's
    // Math.log and Math.exp give 11.999999999999996, 37.47067227999466 and 100.43494209694782.
    const cases: [number[], number][] = [
      // Here the exact sum is what matters: a plain one (simple-statistics' logAverage) gives 268.7475029902663.
      [[34, 71, 140, 191, 451, 647, 667, 724, 804], 268.74750299026607],
      [[3, 48], 12],
      [[3, 48, 74, 185], 37.47067227999467],
      // The two-Synapse room's pongs of one pair, beside the real aggregator.
      [[109, 92, 107, 101, 94, 104, 103, 95, 109, 101, 87, 96, 111], 100.43494209694784],
    ];
    for (const [delays, gmean] of cases) {
      const stats = JSON.parse(
        statsJson({ 'a.example': { 's.example': Object.fromEntries(delays.map((ms, i) => [`$${i}`, ms])) } }, 'd'),
      );
      t.equal(stats.pings['a.example'].gmean, gmean, `${delays.join(', ')}: the server`);
      t.equal(stats.pings['a.example'].pongs['s.example'].gmean, gmean, `${delays.join(', ')}: the pair`);
    }
  },
);

t.test('renderPingstatHtml escapes every name', async (t) => {
  const evil = '<script>alert(1)</script>';
  const spec = {
    'fast.example': { 'maunium.net': { $f1: 376 } },
    'slow.example': { 'maunium.net': { $s1: 70_000 }, 'other.example': { $s1: 12_345 } },
  };
  // Names never reach here unvalidated, but the renderer must not rely on that.
  const hostile = summarisePingstat(
    pingstatGroupsOf({
      [evil]: spec['fast.example'],
      '"><img src=x onerror=alert(1)>': { ...spec['slow.example'], '<iframe>': { $s1: 1 } },
    }),
    'Be careful & <b>bold</b>',
  );
  const html = renderPingstatHtml(hostile, '!room:<evil>');
  t.notMatch(html, /<script/i, 'no raw script tag');
  t.notMatch(html, /<img/i);
  t.notMatch(html, /<iframe/i);
  t.notMatch(html, /<b>bold/);
  t.match(html, '&lt;script&gt;alert(1)&lt;/script&gt;');
  t.match(html, '&quot;&gt;&lt;img src=x onerror=alert(1)&gt;');
  t.match(html, '<title>Ping stats for !room:&lt;evil&gt;</title>');
  t.match(html, '<p>Be careful &amp; &lt;b&gt;bold&lt;/b&gt;</p>');
  t.match(html, '<th>&lt;iframe&gt;</th>');

  const plain = renderPingstatHtml(summarisePingstat(pingstatGroupsOf(spec), 'd'), '!room:example.org');
  t.match(
    plain,
    '<tr><th>1</th><th>fast.example</th><td>376 ms</td><td>376.0 ms</td><td>1</td><td>376.0 ms<sup>1</sup></td><td></td></tr>',
    'rank, server, median, mean (a float in Python, so with its decimal), N, then the mean per pong server (empty where it did not answer)',
  );
  t.match(
    plain,
    '<tr><th>2</th><th>slow.example</th><td>41.2 seconds</td><td>41.2 seconds</td><td>1</td><td>1 minute and 10 seconds<sup>1</sup></td><td>12.3 seconds<sup>1</sup></td></tr>',
  );
  t.match(plain, '<th colspan="2">Pong server (mean)</th>');
  t.match(
    escapeHtml(`<a href="x" title='y'>&</a>`),
    /^&lt;a href=&quot;x&quot; title=&#(39|x27);y&#(39|x27);&gt;&amp;&lt;\/a&gt;$/,
    'escapeHtml: the five characters that matter in content and quoted attributes',
  );
});

t.test(
  "the aggregator's page writes figures as Python does: floats keep a decimal, ties round half to even",
  async (t) => {
    const stats = summarisePingstat(
      pingstatGroupsOf({
        'even.example': { 'a.example': { $e1: 376, $e2: 376 }, 'b.example': { $e1: 377, $e2: 376 } },
        'whole.example': { 'a.example': { $w1: 440 }, 'b.example': { $w1: 450 } },
      }),
      'd',
    );
    const html = renderPingstatHtml(stats, '!room:example.org');
    // even.example: delays 376, 376, 376, 377: median (376 + 376) / 2 = 376.0, mean 376.25, which Python rounds to 376.2.
    t.match(
      html,
      '<th>even.example</th><td>376.0 ms</td><td>376.2 ms</td><td>2</td><td>376.0 ms<sup>2</sup></td><td>376.5 ms<sup>2</sup></td>',
    );
    t.match(html, '<th>whole.example</th><td>445.0 ms</td><td>445.0 ms</td><td>1</td>');
    t.equal(pingstatDuration(376, false), '376 ms', 'the median of an odd count of whole delays is an int');
    t.equal(pingstatDuration(0.25, true), '0.2 ms');
    t.equal(pingstatDuration(12_345.5, true), '12.3 seconds');
  },
);

t.test('renderLeaderboardJson', async (t) => {
  const responders = [
    {
      server: 'maunium.net',
      medianMs: 370,
      meanMs: 371,
      gmeanMs: 370.5,
      p90Ms: 380,
      minMs: 360,
      maxMs: 390,
      pings: 3,
      samples: 3,
    },
  ];
  const servers = [
    ranked(1, 'fairydust.space', 376, {
      meanMs: 380.25,
      gmeanMs: 379.1,
      p90Ms: 401.5,
      minMs: 300,
      maxMs: 500,
      pings: 4,
      samples: 6,
      responders,
    }),
    ranked(2, 'neko.dev', 444.5),
    ranked(2, 'tie.example', 444.5),
  ];
  const board: Leaderboard = {
    room: {
      id: '!ping:maunium.net',
      reference: '#ping:maunium.net',
      roomIds: ['!old:maunium.net', '!ping:maunium.net'],
      disclaimer: 'One-way delays.',
    },
    week: null,
    window: { start: new Date('2026-11-14T00:00:00Z'), end: new Date('2026-11-21T00:00:00Z'), endInclusive: true },
    frozenAt: null,
    generatedAt: new Date('2026-11-21T00:00:05Z'),
    filters: { minDelayMs: 10, maxDelayMs: 600_000, minPings: 2 },
    servers,
    exclusions: [
      {
        server: 'gamed.example',
        reason: 'pongs <forged>',
        excludedBy: '@mod:maunium.net',
        excludedAt: new Date('2026-11-20T09:00:00Z'),
      },
    ],
    version: null,
  };
  const json = renderLeaderboardJson(board, 2);
  t.same(
    json,
    {
      room: '!ping:maunium.net',
      room_ids: ['!old:maunium.net', '!ping:maunium.net'],
      disclaimer: 'One-way delays.',
      window: {
        kind: 'rolling',
        week: null,
        start: '2026-11-14T00:00:00.000Z',
        end: '2026-11-21T00:00:00.000Z',
        end_inclusive: true,
        frozen: false,
        frozen_at: null,
        version: null,
      },
      generated_at: '2026-11-21T00:00:05.000Z',
      filters: { min_delay_ms: 10, max_delay_ms: 600000, min_pings: 2 },
      servers_ranked: 3,
      rows: [
        {
          rank: 1,
          server: 'fairydust.space',
          median_ms: 376,
          mean_ms: 380.25,
          gmean_ms: 379.1,
          p90_ms: 401.5,
          min_ms: 300,
          max_ms: 500,
          pings: 4,
          samples: 6,
          median_rtt_ms: null,
          loss_rate: null,
          clock_offset_ms: null,
          clock_offset_bound_ms: null,
          clock_skew_suspected: null,
          responders: [
            {
              server: 'maunium.net',
              median_ms: 370,
              mean_ms: 371,
              gmean_ms: 370.5,
              p90_ms: 380,
              min_ms: 360,
              max_ms: 390,
              pings: 3,
              samples: 3,
            },
          ],
        },
        {
          rank: 2,
          server: 'neko.dev',
          median_ms: 444.5,
          mean_ms: 444.5,
          gmean_ms: 444.5,
          p90_ms: 444.5,
          min_ms: 444.5,
          max_ms: 444.5,
          pings: 1,
          samples: 1,
          median_rtt_ms: null,
          loss_rate: null,
          clock_offset_ms: null,
          clock_offset_bound_ms: null,
          clock_skew_suspected: null,
          responders: [],
        },
      ],
      excluded: [
        {
          server: 'gamed.example',
          reason: 'pongs <forged>',
          excluded_by: '@mod:maunium.net',
          excluded_at: '2026-11-20T09:00:00.000Z',
        },
      ],
      probes: [],
    },
    'every field; rows cut to the limit, servers_ranked counts them all; exclusions with their reasons',
  );
  t.same(Object.keys(json), [
    'room',
    'room_ids',
    'disclaimer',
    'window',
    'generated_at',
    'filters',
    'servers_ranked',
    'rows',
    'excluded',
    'probes',
  ]);
  const probed = renderLeaderboardJson(board, 2, [
    {
      server: 'lost.example',
      pingsSent: 2,
      pingsLost: 2,
      sendFailures: 0,
      lossRate: 1,
      medianRttMs: null,
      clockOffset: null,
    },
    {
      server: 'neko.dev',
      pingsSent: 4,
      pingsLost: 1,
      sendFailures: 1,
      lossRate: 0.25,
      medianRttMs: 88.5,
      clockOffset: { server: 'neko.dev', samples: 6, offsetMs: -300.4, boundMs: 1.5, flagged: true },
    },
  ]);
  t.match(
    probed.rows[1],
    {
      server: 'neko.dev',
      median_rtt_ms: 88.5,
      loss_rate: 0.25,
      clock_offset_ms: -300.4,
      clock_offset_bound_ms: 1.5,
      clock_skew_suspected: true,
    },
    'a probed row carries its probe figures, its measured clock offset among them',
  );
  t.match(probed.rows[0], {
    median_rtt_ms: null,
    loss_rate: null,
    clock_offset_ms: null,
    clock_offset_bound_ms: null,
    clock_skew_suspected: null,
  });
  t.same(
    probed.probes,
    [
      {
        server: 'lost.example',
        pings_sent: 2,
        pings_lost: 2,
        send_failures: 0,
        median_rtt_ms: null,
        loss_rate: 1,
        clock_offset_ms: null,
        clock_offset_bound_ms: null,
        clock_skew_suspected: null,
      },
      {
        server: 'neko.dev',
        pings_sent: 4,
        pings_lost: 1,
        send_failures: 1,
        median_rtt_ms: 88.5,
        loss_rate: 0.25,
        clock_offset_ms: -300.4,
        clock_offset_bound_ms: 1.5,
        clock_skew_suspected: true,
      },
    ],
    'every probed server, ranked or not',
  );
  t.same(JSON.parse(JSON.stringify(json)), json, 'plain JSON (no Dates, no undefined)');

  const frozen = renderLeaderboardJson(
    {
      ...board,
      week: '2026-W47',
      frozenAt: new Date('2026-11-23T01:00:00Z'),
      version: 2,
      window: { start: new Date('2026-11-16T00:00:00Z'), end: new Date('2026-11-23T00:00:00Z'), endInclusive: false },
    },
    10,
  );
  t.same(frozen.window, {
    kind: 'week',
    week: '2026-W47',
    start: '2026-11-16T00:00:00.000Z',
    end: '2026-11-23T00:00:00.000Z',
    end_inclusive: false,
    frozen: true,
    frozen_at: '2026-11-23T01:00:00.000Z',
    version: 2,
  });
  t.equal(frozen.rows.length, 3, 'fewer servers than the limit: all');
  t.same(
    frozen.rows.map((r) => r.rank),
    [1, 2, 2],
  );
  t.same(renderLeaderboardJson({ ...board, servers: [] }, 10).rows, []);
  t.equal(renderLeaderboardJson({ ...board, servers: [] }, 10).servers_ranked, 0);
});

t.test(
  "renderPingstatHtml: a server's row kept from an earlier table is written again for other pong servers",
  async (t) => {
    const first = summarisePingstat(
      {
        ...pingstatGroupsOf({
          'a.example': { 'maunium.net': { $a1: 120 } },
          'b.example': { 'other.example': { $b1: 80 } },
        }),
      },
      'D',
    );
    const a = first.servers.find((server) => server.server === 'a.example')!;
    const before = renderPingstatHtml(first, '!r:example');
    t.match(
      before,
      '<th>a.example</th><td>120 ms</td><td>120.0 ms</td><td>1</td><td>120.0 ms<sup>1</sup></td><td></td></tr>',
    );
    // The same figures object (a server whose pongs did not change) in a table with one pong server fewer.
    const second = rankPingstatServers([a], 'D');
    t.equal(second.servers[0], a, 'the same figures');
    t.match(
      renderPingstatHtml(second, '!r:example'),
      '<tr><th>1</th><th>a.example</th><td>120 ms</td><td>120.0 ms</td><td>1</td><td>120.0 ms<sup>1</sup></td></tr>',
      'one cell per pong server of this table',
    );
    t.equal(renderPingstatHtml(first, '!r:example'), before, 'and the first table as before');
  },
);
