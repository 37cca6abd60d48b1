// The web pages: pure rendering pieces, then `/` and `/servers/{server}`
// through fastify (inject) on both engines. The browser's view of the same
// pages is in page.browser.test.ts.
import { brotliDecompressSync, gunzipSync } from 'node:zlib';
import t from 'tap';
import Fastify from 'fastify';
import { encodeBody, negotiateEncoding, sendCacheable } from '../src/http/caching.ts';
import { dayBoundaries, delayBinEdges, hourlyMedians, type HourFigures } from '../src/stats/server-detail.ts';
import { recordSamples } from '../src/samples/repository.ts';
import {
  countScale,
  dailyChart,
  delayTick,
  hourlyChart,
  hourRuns,
  niceScale,
  PAGE_CONTENT_SECURITY_POLICY,
  RANKING_PAGE_ROWS,
  sparkline,
  trendOf,
} from '../src/render/page.ts';
import { buildApp } from '../src/http/app.ts';
import { Statistics } from '../src/stats/leaderboard.ts';
import { RoomRegistry } from '../src/stats/rooms.ts';
import { forEachEngine } from './helpers/database.ts';
import {
  freezeClosedWeek,
  HOSTILE_SERVER,
  OTHER_ROOM,
  pageApp,
  seedPages,
  seedServers,
  unescapeHtml,
  WEEKS,
} from './helpers/pages.ts';
import { ROOM, sample } from './helpers/samples.ts';

t.test('trend against the previous week: new, the same within 5 %, faster, slower', async (t) => {
  t.same(trendOf(400, undefined), { kind: 'new' });
  t.equal(trendOf(410, 400).kind, 'same');
  t.equal(trendOf(380, 400).kind, 'same');
  t.hasStrict(trendOf(300, 400), { kind: 'faster', previousMs: 400, change: -0.25 });
  t.hasStrict(trendOf(500, 400), { kind: 'slower', change: 0.25 });
});

t.test('chart scales are round: 1, 2 or 5 times a power of ten', async (t) => {
  t.same(niceScale(0), { max: 1, step: 1 });
  t.same(niceScale(444.5), { max: 600, step: 200 });
  t.same(niceScale(3), { max: 3, step: 1 });
  t.same(niceScale(1234), { max: 1500, step: 500 });
  t.same(countScale(2), { max: 2, step: 1 }, 'counts go in whole steps');
  t.same(countScale(0), { max: 1, step: 1 });
  t.same(countScale(40), niceScale(40));
});

t.test('delay axes say their unit: ms, or seconds on an axis that reaches 10 s', async (t) => {
  t.equal(delayTick(0, 600), '0 ms');
  t.equal(delayTick(444.5, 600), '444.5 ms');
  t.equal(delayTick(2500, 10_000), '2.5 s');
  t.equal(delayTick(20_000, 20_000), '20 s');
});

t.test('days are UTC days up to and including today', async (t) => {
  t.same(
    dayBoundaries(new Date('2026-11-20T23:59:00Z'), 2).map((d) => d.toISOString()),
    ['2026-11-19T00:00:00.000Z', '2026-11-20T00:00:00.000Z', '2026-11-21T00:00:00.000Z'],
  );
});

t.test('the daily chart starts at the first day with a median, and a day without one breaks its line', async (t) => {
  const chart = dailyChart([
    { day: '2026-11-16', medianMs: null, pings: 0 },
    { day: '2026-11-17', medianMs: 100, pings: 3 },
    { day: '2026-11-18', medianMs: null, pings: 0 },
    { day: '2026-11-19', medianMs: 300, pings: 1 },
  ]);
  t.same(
    [...chart.matchAll(/text-anchor="middle">([^<]+)</g)].map((m) => m[1]),
    ['17 Nov', '18 Nov', '19 Nov'],
    'one label a day, from the first with data',
  );
  t.same(
    [...chart.matchAll(/text-anchor="end">([^<]+)</g)].map((m) => m[1]),
    ['0 ms', '100 ms', '200 ms', '300 ms'],
    'the y axis in ms, up to a round maximum',
  );
  t.equal((chart.match(/<polyline class="median"/g) ?? []).length, 2, 'two runs: the day without samples breaks it');
  t.match(chart, '<title>2026-11-17: median 100 ms, 3 pings</title>');
  t.match(chart, '<title>2026-11-19: median 300 ms, 1 ping</title>');
});

t.test(
  'a sparkline: a line per run of weeks with a median, a lone week a dot, every figure in its title',
  async (t) => {
    const weeks = ['2026-W40', '2026-W41', '2026-W42', '2026-W43', '2026-W44'];
    const svg = sparkline(weeks, [300, 400, null, 200, null]);
    t.equal((svg.match(/<polyline class="spark"/g) ?? []).length, 1, 'W40 to W41; the gap at W42 breaks the line');
    t.equal((svg.match(/<circle class="dot"/g) ?? []).length, 1, 'W43 alone between gaps');
    t.match(svg, '<title>Weekly median: W40 300 ms, W41 400 ms, W42 –, W43 200 ms, W44 –</title>');
    t.match(svg, 'role="img"');
    const ys = [...svg.matchAll(/[\d.]+,([\d.]+)/g)].map((m) => Number(m[1]));
    t.ok(ys[1]! < ys[0]!, 'the slower week is drawn higher');
    t.match(svg, '<circle class="dot" cx="56" cy="18" r="1.5"/>', "the row's lowest median sits at the bottom");
    const flat = sparkline(weeks.slice(0, 2), [300, 300]);
    t.match(flat, 'points="20,10 60,10"', 'a row without change is drawn in the middle');
    const empty = sparkline(weeks.slice(0, 2), [null, null]);
    t.notMatch(empty, /<polyline|<circle/, 'no week with a median: nothing drawn');
    t.match(empty, '<title>Weekly median: W40 –, W41 –</title>');
  },
);

t.test('hours without data are written as runs', async (t) => {
  t.equal(hourRuns([5, 0, 1, 2, 23]), '00–02, 05, 23');
  t.equal(hourRuns([7]), '07');
  t.equal(hourRuns([]), '');
});

t.test(
  'the hourly chart: a bar per hour with a median, a delay axis with its unit, every third hour labelled',
  async (t) => {
    const hours: HourFigures[] = Array.from({ length: 24 }, (_, hour) => ({
      hour,
      medianMs: hour === 3 ? 1200 : hour % 2 === 0 ? 300 : null,
      pings: hour % 2 === 0 || hour === 3 ? 2 : 0,
    }));
    const svg = hourlyChart(hours);
    t.equal((svg.match(/<rect class="bar"/g) ?? []).length, 13, 'twelve even hours and 03');
    t.match(svg, '<title>03:00–03:59 UTC: median 1200 ms, 2 pings</title>');
    t.notMatch(svg, '01:00–01:59', 'no bar where there is no median');
    t.same(
      [...svg.matchAll(/text-anchor="end">([^<]+)</g)].map((m) => m[1]),
      ['0 ms', '500 ms', '1000 ms', '1500 ms'],
    );
    t.same(
      [...svg.matchAll(/text-anchor="middle"[^>]*>([^<]+)</g)].map((m) => m[1]),
      ['00h', '03h', '06h', '09h', '12h', '15h', '18h', '21h'],
    );
    t.match(svg, 'aria-label="Median delay by UTC hour of day"');
  },
);

t.test('delay bins follow a 1-2-5 series inside the filter', async (t) => {
  t.same(
    delayBinEdges({ minDelayMs: 10, maxDelayMs: 600_000 }),
    [10, 20, 50, 100, 200, 500, 1000, 2000, 5000, 10_000, 20_000, 50_000, 100_000, 200_000, 500_000, 600_000],
  );
  t.same(delayBinEdges({ minDelayMs: 15, maxDelayMs: 1000 }), [15, 20, 50, 100, 200, 500, 1000]);
});

t.test('the Content-Security-Policy allows nothing from elsewhere', async (t) => {
  t.match(PAGE_CONTENT_SECURITY_POLICY, "default-src 'none'");
  t.match(PAGE_CONTENT_SECURITY_POLICY, /script-src 'sha256-[\w+/=]+'/);
  t.notMatch(PAGE_CONTENT_SECURITY_POLICY, /https?:|unsafe/);
});

t.test('a kept body is compressed once per encoding, and sent as it is where compressing does not help', async (t) => {
  const app = Fastify();
  t.teardown(() => app.close());
  const kept = encodeBody(`<p>${'the same ranking row, again and again; '.repeat(200)}</p>`);
  const tiny = encodeBody('ok');
  app.get('/kept', (request, reply) => sendCacheable(request, reply, kept, false, 60));
  app.get('/tiny', (request, reply) => sendCacheable(request, reply, tiny, false, 60));
  const first = await app.inject({ url: '/kept', headers: { 'accept-encoding': 'br' } });
  const copy = kept.compressed.get('br');
  const second = await app.inject({ url: '/kept', headers: { 'accept-encoding': 'br' } });
  t.ok(copy instanceof Buffer && copy.length < kept.bytes.length, 'a smaller copy was made');
  t.equal(kept.compressed.get('br'), copy, 'the second request was sent the same copy, not a new one');
  t.same(second.rawPayload, first.rawPayload);
  t.equal(brotliDecompressSync(second.rawPayload).toString(), kept.bytes.toString());
  t.equal(second.headers['content-encoding'], 'br');
  const small = await app.inject({ url: '/tiny', headers: { 'accept-encoding': 'gzip' } });
  t.equal(tiny.compressed.get('gzip'), null, 'gzip made it no smaller, which is remembered');
  t.equal(small.headers['content-encoding'], undefined);
  t.equal(small.body, 'ok');
});

t.test('Accept-Encoding: the accepted encoding with the highest q, brotli before gzip on a tie', async (t) => {
  for (const [header, expected] of [
    [undefined, null],
    ['', null],
    ['identity', null],
    ['deflate', null],
    ['gzip, deflate, br, zstd', 'br'],
    ['gzip', 'gzip'],
    ['GZip', 'gzip'],
    ['br;q=0, gzip', 'gzip'],
    ['gzip;q=1, br;q=0.5', 'gzip'],
    ['gzip ; q=0.2, br;q=0.8', 'br'],
    ['*', 'br'],
    ['br;q=0, *', 'gzip'],
    ['*;q=0', null],
    ['gzip;q=0, br;q=0', null],
    ['gzip;q=nonsense', null],
  ] as const) {
    t.equal(negotiateEncoding(header), expected, `${JSON.stringify(header)}`);
  }
});

/** HOSTILE_SERVER as the pages write it: escaped, each word kept on one line. */
const HOSTILE_WORDS = '<span>&lt;img</span> <span>src=x</span> <span>onerror=alert(1)&gt;|*b*_[x](y)</span>';

/** The rows of the table with this id as their cells' text. */
function tableRows(html: string, id: string): string[][] {
  const tbody = new RegExp(`<table id="${id}">[\\s\\S]*?<tbody>([\\s\\S]*?)</tbody>`).exec(html)?.[1] ?? '';
  return [...tbody.matchAll(/<tr>([\s\S]*?)<\/tr>/g)].map((row) =>
    [...row[1]!.matchAll(/<td[^>]*>([\s\S]*?)<\/td>/g)].map((cell) => unescapeHtml(cell[1]!.replace(/<[^>]+>/g, ''))),
  );
}

/** The ranking's rows: [rank, server, median, trend, mean, pings, rtt, loss, clock] when every column has data. */
const rankingRows = (html: string) => tableRows(html, 'ranking');
/** The latest pings: [when, pinged by, answered by]. */
const latestRows = (html: string) => tableRows(html, 'latest');

/** An HTML error page as a person sees it: its status, its sentence and its way back; only with the pages' headers. */
function errorPage(res: {
  headers: Record<string, unknown>;
  body: string;
}): { status: string | undefined; sentence: string | undefined; back: boolean } | string {
  if (res.headers['content-type'] !== 'text/html; charset=utf-8')
    return `not a page: ${String(res.headers['content-type'])}`;
  if (
    res.headers['content-security-policy'] !== PAGE_CONTENT_SECURITY_POLICY ||
    res.headers['x-content-type-options'] !== 'nosniff'
  )
    return "not the pages' headers";
  return {
    status: /<h1 id="error">(\d{3}) · /.exec(res.body)?.[1],
    sentence: unescapeHtml(/<\/h1>\n<p>([^<]*)<\/p>/.exec(res.body)?.[1] ?? ''),
    back: res.body.includes('<a href="/">← Back to the leaderboard</a>'),
  };
}

/** The links of the ranking's page navigation above the table: [rel or label, href], and the current page. */
function pageLinks(html: string): { links: string[][]; current: string | undefined; range: string | undefined } {
  const nav = /<nav class="pages" aria-label="Pages of the ranking">([\s\S]*?)<\/nav>/.exec(html)?.[1] ?? '';
  return {
    links: [...nav.matchAll(/<a href="([^"]*)" (?:rel|aria-label)="([^"]*)">/g)].map((a) => [
      a[2]!,
      unescapeHtml(a[1]!),
    ]),
    current: /<a [^>]*aria-current="page"[^>]*>(\d+)<\/a>/.exec(nav)?.[1],
    range: /servers ([\d–]+ of \d+)/.exec(nav)?.[1],
  };
}

/** The sparkline title's weeks before 2026-W46, none with data in the seeded room. */
const EMPTY_WEEKS = 'W40 –, W41 –, W42 –, W43 –, W44 –, W45 –';

forEachEngine(t, (t, database) => {
  t.test('hourly medians: first pongs, inside the filter, of the one server and room', async (t) => {
    const filter = { minDelayMs: 10, maxDelayMs: 600_000, minPings: 1 };
    await recordSamples(database.db, [
      sample({
        pingServer: 'a.example',
        pingEventId: '$a1',
        delayMs: 100,
        measuredAt: new Date('2026-11-03T10:00:00Z'),
      }),
      sample({
        pingServer: 'a.example',
        pingEventId: '$a2',
        delayMs: 200,
        measuredAt: new Date('2026-11-04T10:30:00Z'),
      }),
      // A second bot of the same responder server, later: not the figure the ranking counts for that ping.
      sample({
        pingServer: 'a.example',
        pingEventId: '$a2',
        delayMs: 900,
        measuredAt: new Date('2026-11-04T10:30:00.700Z'),
        responder: '@echo2:maunium.net',
      }),
      sample({ pingServer: 'a.example', delayMs: 5, measuredAt: new Date('2026-11-03T05:00:00Z') }),
      sample({ pingServer: 'a.example', delayMs: 300, measuredAt: new Date('2026-11-17T23:15:00Z') }),
      sample({ pingServer: 'b.example', delayMs: 400, measuredAt: new Date('2026-11-10T12:00:00Z') }),
      sample({ pingServer: 'c.example', delayMs: 50, measuredAt: new Date('2026-11-10T12:00:00Z') }),
      sample({
        roomId: OTHER_ROOM,
        pingServer: 'a.example',
        delayMs: 999,
        measuredAt: new Date('2026-11-10T12:00:00Z'),
      }),
    ]);
    const boundaries = ['2026-11-02', '2026-11-23'].map((d) => new Date(`${d}T00:00:00Z`));
    const window = { start: boundaries[0]!, end: boundaries[1]!, endInclusive: false };
    const hours = await hourlyMedians(database.db, [ROOM], 'a.example', window, filter);
    t.equal(hours.length, 24);
    t.same(
      hours.filter((h) => h.medianMs !== null),
      [
        { hour: 10, medianMs: 150, pings: 2 },
        { hour: 23, medianMs: 300, pings: 1 },
      ],
      'the 5 ms delay is outside the filter, the second bot is not counted, the other room is not read',
    );
    t.same(hours[5], { hour: 5, medianMs: null, pings: 0 });
  });

  t.test('GET / ranks the rolling week with podium, probe columns and trends', async (t) => {
    await seedPages(database);
    const app = await pageApp(database);
    const res = await app.inject('/');
    t.equal(res.statusCode, 200);
    t.equal(res.headers['content-type'], 'text/html; charset=utf-8');
    t.equal(res.headers['content-security-policy'], PAGE_CONTENT_SECURITY_POLICY);
    t.match(res.headers['cache-control'], 'max-age=60');
    t.same(rankingRows(res.body), [
      [
        '1',
        'fairydust.space',
        '376 ms',
        '=',
        '376 ms',
        '1',
        '–',
        '–',
        '–',
        `Weekly median: ${EMPTY_WEEKS}, W46 370 ms, W47 376 ms`,
      ],
      [
        '2',
        'neko.dev',
        '444.5 ms',
        '▲ 48 %',
        '444.5 ms',
        '2',
        '300 ms',
        '50.0 %',
        '⚠ +600 ± 2 ms',
        `Weekly median: ${EMPTY_WEEKS}, W46 300 ms, W47 444.5 ms`,
      ],
      [
        '3',
        HOSTILE_SERVER,
        '500 ms',
        'new',
        '500 ms',
        '1',
        '–',
        '–',
        '–',
        `Weekly median: ${EMPTY_WEEKS}, W46 –, W47 500 ms`,
      ],
    ]);
    const sparks =
      /<table id="ranking">[\s\S]*?<\/table>/.exec(res.body)![0].match(/<td class="spark">[\s\S]*?<\/td>/g) ?? [];
    t.equal(sparks.length, 3, 'a sparkline on every row');
    t.match(res.body, 'Weeks: the weekly median from 2026-W40 to 2026-W47, each line scaled to its own range.');
    t.match(sparks[1], /<polyline class="spark" points="65,18 75,2"\/>/, 'neko.dev got slower from W46 to W47');
    t.match(sparks[2], /<circle class="dot"/, 'a server with one week of data: a dot');
    t.match(
      res.body,
      '<thead><tr><th>Rank</th><th>Server</th><th title="median one-way delay">Median</th><th title="median against 2026-W46">Trend</th><th>Mean</th><th>Pings</th><th title="median round trip measured by probes">RTT</th><th title="probe pings nobody answered">Loss</th><th title=',
    );
    t.match(res.body, /<ol class="podium"[^>]*><li class="p1">.*fairydust\.space.*<b>376 ms<\/b>/);
    t.match(res.body, '<td class="up" title="was 300 ms">▲ 48 %</td>');
    t.match(res.body, '<th title="median against 2026-W46">Trend</th>');
    t.match(res.body, '<a href="/servers/neko.dev">neko.dev</a>', 'links leave out the default room');
    t.match(res.body, 'Test &lt;disclaimer&gt;');
    t.notMatch(res.body, /(src|href|action)="(https?:)?\/\//, 'nothing from elsewhere');
    const again = await app.inject({ url: '/', headers: { 'if-none-match': res.headers['etag'] as string } });
    t.equal(again.statusCode, 304, 'the page is the same bytes on every request');
  });

  t.test(
    'GET / and /leaderboard.json: compressed for clients that accept it, each encoding with its own ETag',
    async (t) => {
      await seedPages(database);
      const app = await pageApp(database);
      const plain = await app.inject('/');
      t.equal(plain.headers['content-encoding'], undefined, 'no Accept-Encoding: the page as it is');
      t.equal(plain.headers['vary'], 'accept-encoding');
      const br = await app.inject({ url: '/', headers: { 'accept-encoding': 'gzip, deflate, br, zstd' } });
      t.equal(br.statusCode, 200);
      t.equal(br.headers['content-encoding'], 'br', 'what browsers send gets brotli');
      t.equal(br.headers['vary'], 'accept-encoding', 'caches keep the encodings apart');
      t.equal(br.headers['content-type'], 'text/html; charset=utf-8');
      t.equal(brotliDecompressSync(br.rawPayload).toString('utf8'), plain.body, 'the same page');
      t.ok(
        br.rawPayload.length * 2 < plain.rawPayload.length,
        `${br.rawPayload.length} of ${plain.rawPayload.length} bytes`,
      );
      t.equal(Number(br.headers['content-length']), br.rawPayload.length);
      t.not(br.headers['etag'], plain.headers['etag']);
      const gzip = await app.inject({ url: '/', headers: { 'accept-encoding': 'gzip' } });
      t.equal(gzip.headers['content-encoding'], 'gzip');
      t.equal(gunzipSync(gzip.rawPayload).toString('utf8'), plain.body);
      t.equal(
        (
          await app.inject({
            url: '/',
            headers: { 'accept-encoding': 'br', 'if-none-match': br.headers['etag'] as string },
          })
        ).statusCode,
        304,
      );
      const otherEncoding = await app.inject({
        url: '/',
        headers: { 'accept-encoding': 'gzip', 'if-none-match': br.headers['etag'] as string },
      });
      t.equal(otherEncoding.statusCode, 200, 'a validator of one encoding does not match another');
      t.equal(gunzipSync(otherEncoding.rawPayload).toString('utf8'), plain.body);
      t.equal(
        (await app.inject({ url: '/', headers: { 'if-none-match': br.headers['etag'] as string } })).statusCode,
        200,
      );

      const json = await app.inject('/leaderboard.json?limit=3');
      const jsonGzip = await app.inject({ url: '/leaderboard.json?limit=3', headers: { 'accept-encoding': 'gzip' } });
      t.equal(jsonGzip.headers['content-encoding'], 'gzip');
      t.same(JSON.parse(gunzipSync(jsonGzip.rawPayload).toString('utf8')), json.json());
    },
  );

  t.test('GET /: the week picker lists the rolling week and every frozen week, and switches', async (t) => {
    await seedPages(database);
    const app = await pageApp(database);
    await freezeClosedWeek(database);
    const rolling = (await app.inject('/')).body;
    t.match(
      rolling,
      /<select name="week" id="week"><option value="" selected>Rolling week[^<]*<\/option><option value="2026-W46">2026-W46 \(9 Nov – 15 Nov\)<\/option><\/select>/,
    );
    const week = await app.inject('/?week=2026-W46');
    t.equal(week.statusCode, 200);
    t.same(
      rankingRows(week.body).map((r) => [r[0], r[1], r[2]]),
      [
        ['1', 'old.example', '250 ms'],
        ['2', 'neko.dev', '300 ms'],
        ['3', 'fairydust.space', '370 ms'],
      ],
    );
    t.match(week.body, '<option value="2026-W46" selected>');
    t.match(week.body, 'frozen');
    t.match(week.body, '<a href="/servers/neko.dev">', 'server links keep to the default room');
    t.same(
      rankingRows((await app.inject('/?week=')).body).map((r) => r[1]),
      ['fairydust.space', 'neko.dev', HOSTILE_SERVER],
      'empty week: the rolling week',
    );
    t.equal((await app.inject('/?week=last')).statusCode, 400);
  });

  t.test('GET /: the room switcher lists the configured rooms; another room keeps its links', async (t) => {
    await seedPages(database);
    const app = await pageApp(database);
    const res = await app.inject(`/?room=${encodeURIComponent(OTHER_ROOM)}`);
    t.equal(res.statusCode, 200);
    t.match(res.body, `<option value="${ROOM}">${ROOM}</option><option value="${OTHER_ROOM}" selected>`);
    t.same(
      rankingRows(res.body).map((r) => r[1]),
      ['x.example'],
    );
    t.match(res.body, `href="/servers/x.example?${new URLSearchParams({ room: OTHER_ROOM })}"`);
    t.equal((await app.inject('/?room=%21nowhere%3Aexample.org')).statusCode, 404);
  });

  t.test('GET /: the newsletter table on the page is exactly /leaderboard.md', async (t) => {
    await seedPages(database);
    const app = await pageApp(database);
    for (const query of ['', '?week=2026-W46', `?room=${encodeURIComponent(OTHER_ROOM)}`]) {
      const page = (await app.inject(`/${query}`)).body;
      const markdown = (await app.inject(`/leaderboard.md${query}`)).body;
      t.equal(unescapeHtml(/<pre id="md">([\s\S]*?)<\/pre>/.exec(page)![1]!), markdown, query || 'rolling week');
    }
  });

  t.test('GET /: names from the room stay text', async (t) => {
    await seedPages(database);
    const app = await pageApp(database);
    const body = (await app.inject('/')).body;
    t.notMatch(body, '<img', 'no markup from the room');
    t.match(
      body,
      `<a class="words" href="/servers/${encodeURIComponent(HOSTILE_SERVER)}">${HOSTILE_WORDS}</a>`,
      'escaped, in words that wrap only at its spaces',
    );
    t.match(body, `href="/servers/${encodeURIComponent(HOSTILE_SERVER)}"`);
  });

  t.test('GET /: a long ranking is paged, every server on exactly one page, pages linked both ways', async (t) => {
    const servers = await seedServers(database, 2 * RANKING_PAGE_ROWS + 50, {
      measuredAt: new Date('2026-11-20T10:00:00Z'),
    });
    const app = await pageApp(database);
    const first = await app.inject('/');
    t.equal(first.statusCode, 200);
    const pages = [first.body, (await app.inject('/?page=2')).body, (await app.inject('/?page=3')).body];
    t.same(
      pages.map((page) => rankingRows(page).length),
      [RANKING_PAGE_ROWS, RANKING_PAGE_ROWS, 50],
    );
    t.same(
      pages.flatMap((page) => rankingRows(page).map((row) => row[1])),
      servers,
      'the whole ranking, in order, once',
    );
    t.same(
      rankingRows(pages[1]!)[0]!.slice(0, 2),
      [String(RANKING_PAGE_ROWS + 1), `s${RANKING_PAGE_ROWS}.example`],
      'ranks go on across pages',
    );
    t.same(pageLinks(pages[0]!), {
      links: [
        ['Page 2', '/?page=2'],
        ['Page 3', '/?page=3'],
        ['next', '/?page=2'],
      ],
      current: '1',
      range: '1–100 of 250',
    });
    t.same(pageLinks(pages[1]!), {
      links: [
        ['prev', '/'],
        ['Page 1', '/'],
        ['Page 3', '/?page=3'],
        ['next', '/?page=3'],
      ],
      current: '2',
      range: '101–200 of 250',
    });
    t.same(pageLinks(pages[2]!), {
      links: [
        ['prev', '/?page=2'],
        ['Page 1', '/'],
        ['Page 2', '/?page=2'],
      ],
      current: '3',
      range: '201–250 of 250',
    });
    t.match(
      pages[2],
      /<\/table><\/div>\n<nav class="pages" aria-label="Pages of the ranking, below it">/,
      'the links again below the table',
    );
    t.same(
      rankingRows((await app.inject('/?page=1')).body),
      rankingRows(pages[0]!),
      'page=1 is the page without the parameter',
    );
    t.not(first.headers['etag'], (await app.inject('/?page=2')).headers['etag'], 'each page is a body of its own');

    const back = await app.inject(`/servers/s${2 * RANKING_PAGE_ROWS + 10}.example`);
    t.match(back.body, '<a href="/?page=3">← Leaderboard</a>', "a server's page leads back to the page that lists it");
    t.match((await app.inject('/servers/s0.example')).body, '<a href="/">← Leaderboard</a>');

    for (const bad of ['0', '-1', 'two', '1.5', '']) {
      const res = await app.inject(`/?page=${bad}`);
      t.equal(res.statusCode, 400, `page=${bad}`);
      t.match(
        errorPage(res),
        { status: '400', sentence: `"${bad}" is not a page number: pages are counted from 1.` },
        `page=${bad}`,
      );
    }
    t.match(errorPage(await app.inject('/?page=4')), {
      status: '400',
      sentence: 'There is no page 4: this ranking has 3 pages.',
    });
    const documented = (await app.inject('/docs/json'))
      .json()
      .paths['/'].get.parameters.find((p: { name: string }) => p.name === 'page');
    t.match(
      documented,
      { in: 'query', required: false, schema: { type: 'integer', minimum: 1, default: 1 } },
      'the OpenAPI description has the parameter',
    );
  });

  t.test('GET /: a ranking of many pages links the first, the last and two either side, gaps marked', async (t) => {
    await seedServers(database, 9 * RANKING_PAGE_ROWS + 50, { measuredAt: new Date('2026-11-20T10:00:00Z') });
    const app = await pageApp(database);
    const navOf = (html: string) =>
      /<nav class="pages" aria-label="Pages of the ranking">([\s\S]*?)<\/nav>/.exec(html)![1]!;
    const middle = (await app.inject('/?page=5')).body;
    t.same(pageLinks(middle), {
      links: [
        ['prev', '/?page=4'],
        ['Page 1', '/'],
        ['Page 3', '/?page=3'],
        ['Page 4', '/?page=4'],
        ['Page 6', '/?page=6'],
        ['Page 7', '/?page=7'],
        ['Page 10', '/?page=10'],
        ['next', '/?page=6'],
      ],
      current: '5',
      range: '401–500 of 950',
    });
    t.equal(navOf(middle).split('…').length - 1, 2, 'a gap after the first page and one before the last');
    const first = (await app.inject('/')).body;
    t.same(pageLinks(first).links, [
      ['Page 2', '/?page=2'],
      ['Page 3', '/?page=3'],
      ['Page 10', '/?page=10'],
      ['next', '/?page=2'],
    ]);
    t.equal(navOf(first).split('…').length - 1, 1);
  });

  t.test('GET /: page links keep the room and week; a short ranking has no page links', async (t) => {
    await seedPages(database);
    await seedServers(database, RANKING_PAGE_ROWS + 1, {
      roomId: OTHER_ROOM,
      measuredAt: new Date('2026-11-12T10:00:00Z'),
    });
    const app = await pageApp(database);
    const rolling = await app.inject('/');
    t.notMatch(rolling.body, '<nav', 'three servers: one page');
    t.equal((await app.inject('/?page=2')).statusCode, 400);
    const otherWeek = `?${new URLSearchParams({ room: OTHER_ROOM, week: '2026-W46' })}`;
    const second = await app.inject(`/${otherWeek}&page=2`);
    t.equal(second.statusCode, 200);
    t.same(
      rankingRows(second.body).map((row) => row.slice(0, 2)),
      [[String(RANKING_PAGE_ROWS + 1), `s${RANKING_PAGE_ROWS}.example`]],
    );
    t.same(pageLinks(second.body).links, [
      ['prev', `/${otherWeek}`],
      ['Page 1', `/${otherWeek}`],
    ]);
    const server = await app.inject(`/servers/s${RANKING_PAGE_ROWS}.example${otherWeek}`);
    t.match(server.body, `<a href="/${otherWeek.replaceAll('&', '&amp;')}&amp;page=2">← Leaderboard</a>`);
    const week = await app.inject(`/${otherWeek}`);
    t.match(week.body, /<select name="week" id="week">/, 'the pickers stay, and their form starts again at page 1');
    t.notMatch(/<form class="pick"[\s\S]*?<\/form>/.exec(week.body)![0], 'page');
  });

  t.test(
    'GET /servers/{server}: summary, daily and weekly charts, distribution and the latest pings in words',
    async (t) => {
      await seedPages(database);
      const app = await pageApp(database);
      const res = await app.inject('/servers/neko.dev');
      t.equal(res.statusCode, 200);
      t.equal(res.headers['content-security-policy'], PAGE_CONTENT_SECURITY_POLICY);
      const body = res.body;
      t.match(body, '<h1 class="name" id="server">neko.dev</h1>');
      t.match(
        body,
        '<b>#2</b> of 3 in the rolling week: median <b>444.5 ms</b>, mean 444.5 ms, p90 444.9 ms, 2 pings (2 samples from 2 responders); probes measured round trip 300 ms, loss 50.0 %, <span class="skew">⚠ clock off by +600 ± 2 ms</span>.</p>',
      );
      const chart = /<svg id="weekly-chart"[\s\S]*?<\/svg>/.exec(body)?.[0] ?? '';
      t.equal((chart.match(/<circle class="dot"/g) ?? []).length, 2, 'a point per week with a median');
      t.match(chart, '<title>2026-W46: median 300 ms, 1 pings</title>');
      t.match(chart, '<title>2026-W47: median 444.5 ms, 2 pings</title>');
      t.match(chart, /<polyline class="median" points="[\d., ]+"\/>/);
      t.match(chart, /<polyline class="rtt"/, 'round trips where probes measured');
      t.match(chart, /<rect class="loss"[^>]*><title>2026-W47: 50\.0 % of 2 probe pings lost<\/title>/);
      t.same(
        [...chart.matchAll(/text-anchor="middle">(W\d+)</g)].map((m) => m[1]),
        ['W46', 'W47'],
        'the axis spans the weeks with data, not half a year',
      );
      t.match(
        body,
        '<p class="legend note"><span><i></i>median one-way delay</span><span><i class="r"></i>probe round trip</span><span><i class="l"></i>probe pings lost</span></p>',
      );
      const daily = /<svg id="daily-chart"[\s\S]*?<\/svg>/.exec(body)?.[0] ?? '';
      t.match(daily, '<title>2026-11-12: median 300 ms, 1 ping</title>', 'a point per day with a median');
      t.match(daily, '<title>2026-11-20: median 444.5 ms, 2 pings</title>');
      t.equal((daily.match(/<circle class="dot"/g) ?? []).length, 2);
      t.same(
        [...daily.matchAll(/text-anchor="middle">([^<]+)</g)].map((m) => m[1]),
        ['13 Nov', '15 Nov', '17 Nov', '19 Nov', '21 Nov'],
        'the axis spans the ten days from the first with data (12 Nov) to today, every other one labelled',
      );
      t.match(daily, /text-anchor="end">\d+ ms</, 'the delay axis says its unit');
      t.match(chart, /text-anchor="end">\d+ ms</, 'so does the weekly chart');
      const histogram = /<svg id="histogram"[\s\S]*?<\/svg>/.exec(body)?.[0] ?? '';
      t.match(histogram, '<title>200–500 ms: 2 samples</title>');
      t.match(histogram, '>samples</text>', 'the count axis says what it counts');
      t.match(body, '<h2>By hour of day in the rolling week</h2>');
      const hourly = /<svg id="hourly-chart"[\s\S]*?<\/svg>/.exec(body)?.[0] ?? '';
      t.same(
        [...hourly.matchAll(/<title>([^<]+)<\/title>/g)].map((m) => m[1]),
        ['10:00–10:59 UTC: median 444.5 ms, 2 pings'],
        'a bar for the one hour of the window with pings, as the summary counts them',
      );
      t.match(hourly, /text-anchor="end">\d+ ms</, 'the hourly chart says its unit');
      t.match(body, 'No data at 00–09, 11–23 h.</p>', 'and which hours have no data');
      t.same(
        tableRows(body, 'responders'),
        [
          ['maunium.net', '444 ms', '444 ms', '1'],
          ['other.example', '445 ms', '445 ms', '1'],
        ],
        'its delay towards each responder server, fastest first',
      );
      t.same(
        latestRows(body),
        [
          ['14 h ago20 Nov, 09:59 UTC', '@<b>bold</b>:neko.dev', '@echo:maunium.net in 444 ms'],
          [
            '14 h ago20 Nov, 09:59 UTC',
            '@user:neko.dev (probe)',
            '@probe-bot:other.example in 445 ms (round trip 300 ms)',
          ],
          ['8 days ago12 Nov, 09:59 UTC', '@user:neko.dev', '@echo:maunium.net in 300 ms'],
        ],
        "who pinged, when, and each answer's delay",
      );
      t.notMatch(body, '$nk1', 'no event IDs');
      t.notMatch(body, '<b>bold</b>', 'user IDs are escaped');
      t.match(body, '<a href="/">← Leaderboard</a>');
    },
  );

  t.test('GET /servers/{server}: no probe figures, no probe sentence, series or columns', async (t) => {
    await seedPages(database);
    const app = await pageApp(database);
    const body = (await app.inject('/servers/fairydust.space')).body;
    t.match(
      body,
      '<b>#1</b> of 3 in the rolling week: median <b>376 ms</b>, mean 376 ms, p90 376 ms, 1 ping (1 sample from 1 responder).</p>',
    );
    t.notMatch(body, 'round trip', 'no "round trip – ms, loss –"');
    t.match(body, '<p class="legend note"><span><i></i>median one-way delay</span></p>');
    t.match(body, '<th>Pings</th></tr></thead>', 'no RTT or loss columns in the weekly figures');
  });

  t.test('GET /: columns no row has data for are left out', async (t) => {
    await seedPages(database);
    const app = await pageApp(database);
    const body = (await app.inject(`/?room=${encodeURIComponent(OTHER_ROOM)}`)).body;
    t.match(
      body,
      '<thead><tr><th>Rank</th><th>Server</th><th title="median one-way delay">Median</th><th title="median against 2026-W46">Trend</th><th>Mean</th><th>Pings</th><th class="spark" title="weekly median, 2026-W40 to 2026-W47">Weeks</th></tr></thead>',
    );
    t.same(rankingRows(body), [
      ['1', 'x.example', '120 ms', 'new', '120 ms', '1', `Weekly median: ${EMPTY_WEEKS}, W46 –, W47 120 ms`],
    ]);
  });

  t.test('HTML routes answer a bad address with an HTML page; the JSON routes keep JSON', async (t) => {
    await seedPages(database);
    const app = await pageApp(database);
    const back = true;
    for (const [url, status, sentence] of [
      [
        '/?week=2026-47',
        '400',
        '"2026-47" is not a week: write it as year and ISO week, like 2026-W47, or leave it out for the rolling week.',
      ],
      [
        '/servers/neko.dev?week=last',
        '400',
        '"last" is not a week: write it as year and ISO week, like 2026-W47, or leave it out for the rolling week.',
      ],
      ['/?page=5', '400', 'There is no page 5: this ranking has 1 page.'],
      ['/servers/never.example', '404', `No samples from never.example in ${ROOM}.`],
      ['/?room=%21nowhere%3Aexample.org', '404', 'Unknown room !nowhere:example.org.'],
    ] as const) {
      const res = await app.inject(url);
      t.equal(String(res.statusCode), status, url);
      t.same(errorPage(res), { status, sentence, back }, url);
      t.notOk(res.headers['cache-control'], `${url}: not kept by caches`);
    }
    for (const url of ['/leaderboard.json?week=2026-47', '/api/v1/servers/never.example']) {
      const res = await app.inject(url);
      t.match(res.headers['content-type'], 'application/json', url);
      t.match(res.json(), { error: /Bad Request|Not Found/, message: String }, url);
    }
  });

  t.test('GET /servers/{server}: any stored name gets its page, escaped; unknown ones are 404', async (t) => {
    await seedPages(database);
    const app = await pageApp(database);
    const res = await app.inject(`/servers/${encodeURIComponent(HOSTILE_SERVER)}`);
    t.equal(res.statusCode, 200);
    t.notMatch(res.body, '<img');
    t.match(res.body, `<h1 class="name words" id="server">${HOSTILE_WORDS}</h1>`);
    const week = await app.inject('/servers/old.example?week=2026-W46');
    t.match(week.body, /<b>#1<\/b> of 3 in 2026-W46/);
    t.match(week.body, '<a href="/?week=2026-W46">');
    const other = await app.inject(`/servers/x.example?room=${encodeURIComponent(OTHER_ROOM)}`);
    t.match(other.body, `<a href="/?${new URLSearchParams({ room: OTHER_ROOM })}">`);
  });

  t.test('an empty room renders without a table or chart', async (t) => {
    const app = await pageApp(database);
    const res = await app.inject('/');
    t.equal(res.statusCode, 200);
    t.match(res.body, 'No server has enough pings');
  });

  t.test('a fresh installation (no room, no samples) says what to do next instead of failing', async (t) => {
    const statistics = new Statistics({
      db: database.db,
      stats: { minDelayMs: 10, maxDelayMs: 600_000, minPings: 1 },
      weeks: WEEKS,
      cacheSeconds: 0,
    });
    const app = await buildApp({ database, statistics, rooms: new RoomRegistry([]), cacheSeconds: 0 });
    const res = await app.inject('/');
    t.equal(res.statusCode, 200);
    t.match(res.headers['content-type'], 'text/html');
    t.match(res.body, /Nothing to rank yet: no room is configured and no samples are stored\./);
    t.match(res.body, 'PINGBOARD_ROOMS');
    t.equal((await app.inject('/?room=%21nowhere%3Aexample.org')).statusCode, 404, 'an unknown room is still unknown');
  });
});
