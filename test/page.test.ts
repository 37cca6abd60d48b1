// The web pages: pure rendering pieces, then `/` and `/servers/{server}`
// through fastify (inject) on both engines. The browser's view of the same
// pages is in page.browser.test.ts.
import t from 'tap';
import { delayBinEdges } from '../src/stats/server-detail.ts';
import { niceScale, PAGE_CONTENT_SECURITY_POLICY, trendOf } from '../src/render/page.ts';
import { buildApp } from '../src/http/app.ts';
import { Statistics } from '../src/stats/leaderboard.ts';
import { RoomRegistry } from '../src/stats/rooms.ts';
import { forEachEngine } from './helpers/database.ts';
import { HOSTILE_SERVER, OTHER_ROOM, pageApp, seedPages, unescapeHtml, WEEKS } from './helpers/pages.ts';
import { ROOM } from './helpers/samples.ts';

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
});

t.test('delay bins follow a 1-2-5 series inside the filter', async (t) => {
  t.same(delayBinEdges({ minDelayMs: 10, maxDelayMs: 600_000 }), [10, 20, 50, 100, 200, 500, 1000, 2000, 5000, 10_000, 20_000, 50_000, 100_000, 200_000, 500_000, 600_000]);
  t.same(delayBinEdges({ minDelayMs: 15, maxDelayMs: 1000 }), [15, 20, 50, 100, 200, 500, 1000]);
});

t.test('the Content-Security-Policy allows nothing from elsewhere', async (t) => {
  t.match(PAGE_CONTENT_SECURITY_POLICY, "default-src 'none'");
  t.match(PAGE_CONTENT_SECURITY_POLICY, /script-src 'sha256-[\w+/=]+'/);
  t.notMatch(PAGE_CONTENT_SECURITY_POLICY, /https?:|unsafe/);
});

/** The rows of the ranking table as [rank, server text, median, mean, pings, rtt, loss, clock, trend]. */
function rankingRows(html: string): string[][] {
  const tbody = /<table id="ranking">[\s\S]*?<tbody>([\s\S]*?)<\/tbody>/.exec(html)?.[1] ?? '';
  return [...tbody.matchAll(/<tr>([\s\S]*?)<\/tr>/g)].map((row) => [...row[1]!.matchAll(/<td[^>]*>([\s\S]*?)<\/td>/g)].map((cell) => unescapeHtml(cell[1]!.replace(/<[^>]+>/g, ''))));
}

forEachEngine(t, (t, database) => {
  t.test('GET / ranks the rolling week with podium, probe columns and trends', async (t) => {
    await seedPages(database);
    const app = await pageApp(database);
    const res = await app.inject('/');
    t.equal(res.statusCode, 200);
    t.equal(res.headers['content-type'], 'text/html; charset=utf-8');
    t.equal(res.headers['content-security-policy'], PAGE_CONTENT_SECURITY_POLICY);
    t.match(res.headers['cache-control'], 'max-age=60');
    t.same(rankingRows(res.body), [
      ['1', 'fairydust.space', '376', '376', '1', '–', '–', '–', '='],
      ['2', 'neko.dev', '444.5', '444.5', '2', '300', '50.0 %', '⚠ skew', '▲ 48 %'],
      ['3', HOSTILE_SERVER, '500', '500', '1', '–', '–', '–', 'new'],
    ]);
    t.match(res.body, /<ol class="podium"[^>]*><li class="p1">.*fairydust\.space.*<b>376 ms<\/b>/);
    t.match(res.body, '<td class="up" title="was 300 ms">▲ 48 %</td>');
    t.match(res.body, '<th title="median against 2026-W46">Trend</th>');
    t.match(res.body, '<a href="/servers/neko.dev">neko.dev</a>', 'links leave out the default room');
    t.match(res.body, 'Test &lt;disclaimer&gt;');
    t.notMatch(res.body, /(src|href|action)="(https?:)?\/\//, 'nothing from elsewhere');
    const again = await app.inject({ url: '/', headers: { 'if-none-match': res.headers['etag'] as string } });
    t.equal(again.statusCode, 304, 'the page is the same bytes on every request');
  });

  t.test('GET /: the week picker lists the rolling week and every frozen week, and switches', async (t) => {
    await seedPages(database);
    const app = await pageApp(database);
    await app.inject('/leaderboard.md?week=2026-W46'); // freezes it
    const rolling = (await app.inject('/')).body;
    t.match(rolling, /<select name="week" id="week"><option value="" selected>Rolling week[^<]*<\/option><option value="2026-W46">2026-W46 \(9 Nov – 15 Nov\)<\/option><\/select>/);
    const week = await app.inject('/?week=2026-W46');
    t.equal(week.statusCode, 200);
    t.same(rankingRows(week.body).map((r) => [r[0], r[1], r[2]]), [['1', 'old.example', '250'], ['2', 'neko.dev', '300'], ['3', 'fairydust.space', '370']]);
    t.match(week.body, '<option value="2026-W46" selected>');
    t.match(week.body, 'frozen');
    t.match(week.body, '<a href="/servers/neko.dev">', 'server links keep to the default room');
    t.same(rankingRows((await app.inject('/?week=')).body).map((r) => r[1]), ['fairydust.space', 'neko.dev', HOSTILE_SERVER], 'empty week: the rolling week');
    t.equal((await app.inject('/?week=last')).statusCode, 400);
  });

  t.test('GET /: the room switcher lists the configured rooms; another room keeps its links', async (t) => {
    await seedPages(database);
    const app = await pageApp(database);
    const res = await app.inject(`/?room=${encodeURIComponent(OTHER_ROOM)}`);
    t.equal(res.statusCode, 200);
    t.match(res.body, `<option value="${ROOM}">${ROOM}</option><option value="${OTHER_ROOM}" selected>`);
    t.same(rankingRows(res.body).map((r) => r[1]), ['x.example']);
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
    t.match(body, `>${'&lt;img src=x onerror=alert(1)&gt;|*b*_[x](y)'}</a>`);
    t.match(body, `href="/servers/${encodeURIComponent(HOSTILE_SERVER)}"`);
  });

  t.test('GET /servers/{server}: summary, weekly chart, distribution and latest samples per responder', async (t) => {
    await seedPages(database);
    const app = await pageApp(database);
    const res = await app.inject('/servers/neko.dev');
    t.equal(res.statusCode, 200);
    t.equal(res.headers['content-security-policy'], PAGE_CONTENT_SECURITY_POLICY);
    const body = res.body;
    t.match(body, '<h1 id="server">neko.dev</h1>');
    t.match(body, /<b>#2<\/b> of 3 in the rolling week: median <b>444\.5 ms<\/b>/);
    t.match(body, 'round trip 300 ms, loss 50.0 %, <span class="skew">');
    const chart = /<svg id="weekly-chart"[\s\S]*?<\/svg>/.exec(body)?.[0] ?? '';
    t.equal((chart.match(/<circle class="dot"/g) ?? []).length, 2, 'a point per week with a median');
    t.match(chart, '<title>2026-W46: median 300 ms, 1 pings</title>');
    t.match(chart, '<title>2026-W47: median 444.5 ms, 2 pings</title>');
    t.match(chart, /<polyline class="median" points="[\d., ]+"\/>/);
    t.match(chart, /<polyline class="rtt"/, 'round trips where probes measured');
    t.match(chart, /<rect class="loss"[^>]*><title>2026-W47: 50\.0 % of 2 probe pings lost<\/title>/);
    const histogram = /<svg id="histogram"[\s\S]*?<\/svg>/.exec(body)?.[0] ?? '';
    t.match(histogram, '<title>200–500 ms: 2 samples</title>');
    t.match(body, '<h3>@echo:maunium.net</h3>');
    t.match(body, '<h3>@probe-bot:other.example</h3>');
    t.match(body, '@&lt;b&gt;bold&lt;/b&gt;:neko.dev', 'user IDs are escaped');
    t.notMatch(body, '<b>bold</b>');
    t.match(body, '<a href="/">← Leaderboard</a>');
  });

  t.test('GET /servers/{server}: any stored name gets its page, escaped; unknown ones are 404', async (t) => {
    await seedPages(database);
    const app = await pageApp(database);
    const res = await app.inject(`/servers/${encodeURIComponent(HOSTILE_SERVER)}`);
    t.equal(res.statusCode, 200);
    t.notMatch(res.body, '<img');
    t.match(res.body, '<h1 id="server">&lt;img src=x onerror=alert(1)&gt;|*b*_[x](y)</h1>');
    t.equal((await app.inject('/servers/never.example')).statusCode, 404);
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
    const statistics = new Statistics({ db: database.db, stats: { minDelayMs: 10, maxDelayMs: 600_000, minPings: 1 }, weeks: WEEKS, cacheSeconds: 0 });
    const app = await buildApp({ database, statistics, rooms: new RoomRegistry([]), cacheSeconds: 0 });
    const res = await app.inject('/');
    t.equal(res.statusCode, 200);
    t.match(res.headers['content-type'], 'text/html');
    t.match(res.body, /Nothing to rank yet: no room is configured and no samples are stored\./);
    t.match(res.body, 'PINGBOARD_ROOMS');
    t.equal((await app.inject('/?room=%21nowhere%3Aexample.org')).statusCode, 404, 'an unknown room is still unknown');
  });
});
