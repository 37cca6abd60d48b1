// The web pages in a real browser: Debian's headless Chromium driven by
// playwright-core, against the app listening on this machine and seeded
// through the real service on both engines. Every request to anywhere else is
// blocked and counted: the pages must work on a closed network. Screenshots
// of both pages and an error page at desktop and phone widths go to
// test/artifacts/screenshots/ (ignored by git), after their layout is checked.
import { existsSync, mkdirSync } from 'node:fs';
import t from 'tap';
import { chromium, type Browser, type BrowserContext, type Page } from 'playwright-core';
import { forEachEngine } from './helpers/database.ts';
import { RANKING_PAGE_ROWS } from '../src/render/page.ts';
import { freezeClosedWeek, HOSTILE_SERVER, OTHER_ROOM, pageApp, seedPages, seedServers } from './helpers/pages.ts';

const CHROMIUM = process.env['PINGBOARD_CHROMIUM'] ?? '/usr/bin/chromium';
const SCREENSHOTS = new URL('./artifacts/screenshots/', import.meta.url);
const DESKTOP = { width: 1280, height: 900 };
const PHONE = { width: 390, height: 844 };

if (!existsSync(CHROMIUM) && !process.env['CI']) {
  t.plan(0, `no Chromium at ${CHROMIUM} (apt-get install chromium); .ci/run installs it`);
} else {
  mkdirSync(SCREENSHOTS, { recursive: true });
  let browser: Browser;
  t.before(async () => {
    browser = await chromium.launch({
      executablePath: CHROMIUM,
      args: [
        '--headless',
        '--no-sandbox',
        '--disable-gpu',
        '--disable-quic',
        '--no-first-run',
        '--disable-background-networking',
        '--disable-component-update',
        '--disable-sync',
      ],
    });
  });
  t.teardown(() => browser?.close());

  forEachEngine(t, (t, database) => {
    let base: string;
    let context: BrowserContext;
    let app: Awaited<ReturnType<typeof pageApp>>;
    /** Requests to anywhere but the app, and what the console said about the Content-Security-Policy. */
    const external: string[] = [];
    const problems: string[] = [];

    t.beforeEach(async () => {
      await seedPages(database);
      app = await pageApp(database);
      base = await app.listen({ host: '127.0.0.1', port: 0 });
      context = await browser.newContext({ viewport: DESKTOP });
      await context.route('**/*', (route) => {
        if (route.request().url().startsWith(`${base}/`) || route.request().url().startsWith('data:'))
          return route.continue();
        external.push(route.request().url());
        return route.abort();
      });
      external.length = 0;
      problems.length = 0;
    });
    t.afterEach(async () => {
      await context.close();
      await app.close();
    });

    async function open(path: string, page?: Page, status = 200): Promise<Page> {
      const tab = page ?? (await context.newPage());
      tab.on('console', (message) => {
        if (message.type() === 'error') problems.push(message.text());
      });
      tab.on('pageerror', (err) => problems.push(err.message));
      tab.on('dialog', (dialog) => {
        problems.push(`dialog: ${dialog.message()}`);
        void dialog.dismiss();
      });
      const response = await tab.goto(`${base}${path}`);
      if (response?.status() !== status) throw new Error(`GET ${path}: ${response?.status()}, expected ${status}`);
      return tab;
    }

    const rankingOf = (page: Page) =>
      page.$$eval('#ranking tbody tr', (rows) =>
        rows.map((row) => [...row.querySelectorAll('td')].slice(0, 3).map((td) => td.textContent)),
      );

    t.test('the leaderboard shows the seeded ranking, styled and scripted within its CSP', async (t) => {
      const page = await open('/');
      t.same(await rankingOf(page), [
        ['1', 'fairydust.space', '376 ms'],
        ['2', 'neko.dev', '444.5 ms'],
        ['3', HOSTILE_SERVER, '500 ms'],
      ]);
      t.same(
        await page.$$eval('#ranking td.spark polyline.spark', (lines) =>
          lines.map((line) => (line as unknown as { getTotalLength(): number }).getTotalLength() > 0),
        ),
        [true, true],
        'a line where a server has two weeks in a row, with length',
      );
      t.equal(await page.locator('#ranking tr:nth-child(3) td.spark circle.dot').count(), 1, 'a dot for a single week');
      t.match(
        await page.locator('#ranking tr:nth-child(2) td.spark title').textContent(),
        'W46 300 ms, W47 444.5 ms',
        'its title lists the figures',
      );
      t.same(await page.$$eval('ol.podium li a', (links) => links.map((a) => a.textContent)), [
        'fairydust.space',
        'neko.dev',
        HOSTILE_SERVER,
      ]);
      t.equal(await page.evaluate('getComputedStyle(document.body).marginTop'), '0px', 'the inline style applies');
      t.equal(await page.isVisible('#copy'), true, 'the inline script ran');
      await page.click('#ranking a[href="/servers/neko.dev"]');
      await page.waitForURL(`${base}/servers/neko.dev`);
      t.equal(await page.textContent('h1'), 'neko.dev', 'each server links to its page');
      t.same(external, [], 'nothing loaded from elsewhere');
      t.same(problems, [], 'no console errors, no CSP violations');
    });

    t.test('the week picker switches weeks, with and without JavaScript', async (t) => {
      await freezeClosedWeek(database);
      const page = await open('/');
      t.same(await page.$$eval('#week option', (options) => options.map((o) => o.getAttribute('value'))), [
        '',
        '2026-W46',
      ]);
      await Promise.all([page.waitForURL(/week=2026-W46/), page.selectOption('#week', '2026-W46')]);
      t.same(await rankingOf(page), [
        ['1', 'old.example', '250 ms'],
        ['2', 'neko.dev', '300 ms'],
        ['3', 'fairydust.space', '370 ms'],
      ]);
      await Promise.all([page.waitForURL(/week=(&|$)/), page.selectOption('#week', '')]);
      t.equal((await rankingOf(page))[0]![1], 'fairydust.space', 'back to the rolling week');

      const noScript = await browser.newContext({ viewport: PHONE, javaScriptEnabled: false });
      try {
        const plain = await noScript.newPage();
        await plain.goto(`${base}/`);
        t.equal(await plain.isHidden('#copy'), true, 'no copy button without a script to copy');
        await plain.selectOption('#week', '2026-W46');
        await Promise.all([plain.waitForURL(/week=2026-W46/), plain.click('form.pick button[type=submit]')]);
        t.same(
          (await rankingOf(plain)).map((r) => r[1]),
          ['old.example', 'neko.dev', 'fairydust.space'],
          'the form works without JavaScript',
        );
      } finally {
        await noScript.close();
      }
      t.same(problems, []);
    });

    t.test('a long ranking is paged: named page links lead on, and fit a phone', async (t) => {
      await seedServers(database, RANKING_PAGE_ROWS + 20, { measuredAt: new Date('2026-11-20T10:00:00Z') });
      const page = await open('/');
      t.equal(await page.locator('#ranking tbody tr').count(), RANKING_PAGE_ROWS);
      const pages = page.getByRole('navigation', { name: 'Pages of the ranking', exact: true });
      t.equal(
        await pages.getByRole('link', { name: 'Page 1' }).getAttribute('aria-current'),
        'page',
        'the current page is announced',
      );
      await Promise.all([page.waitForURL(`${base}/?page=2`), pages.getByRole('link', { name: 'Next →' }).click()]);
      const second = await rankingOf(page);
      t.equal(second.length, 23, 'the rest: 20 + the three seeded servers');
      t.same(second[0]!.slice(0, 2), [String(RANKING_PAGE_ROWS + 1), `s${RANKING_PAGE_ROWS}.example`]);
      t.equal(
        await page
          .getByRole('navigation', { name: 'Pages of the ranking, below it' })
          .getByRole('link', { name: 'Page 2' })
          .getAttribute('aria-current'),
        'page',
      );
      await page.setViewportSize(PHONE);
      t.ok(
        ((await page.evaluate('document.documentElement.scrollWidth - window.innerWidth')) as number) <= 0,
        'no sideways scrolling on a phone',
      );
      await Promise.all([page.waitForURL(`${base}/`), pages.getByRole('link', { name: '← Previous' }).click()]);
      t.equal((await rankingOf(page))[0]![1], 's0.example');
      t.same(problems, []);
    });

    t.test('the copy button yields exactly /leaderboard.md', async (t) => {
      await context.grantPermissions(['clipboard-read', 'clipboard-write'], { origin: base });
      for (const query of ['', '?week=2026-W46']) {
        const page = await open(`/${query}`);
        await page.click('#copy');
        await page.waitForFunction("document.getElementById('copy').textContent === 'Copied'");
        const copied = await page.evaluate('navigator.clipboard.readText()');
        const markdown = await (await fetch(`${base}/leaderboard.md${query}`)).text();
        t.equal(copied, markdown, `copied ${query || 'rolling week'}`);
      }
    });

    t.test('a server named with HTML and markdown metacharacters renders as text', async (t) => {
      const page = await open('/');
      t.equal(await page.locator('img').count(), 0, 'no element from the name');
      const link = page.locator('#ranking tbody tr:nth-child(3) a');
      t.equal(await link.textContent(), HOSTILE_SERVER);
      await link.click();
      await page.waitForURL(/\/servers\//);
      t.equal(await page.textContent('h1'), HOSTILE_SERVER);
      t.equal(await page.locator('img').count(), 0);
      t.same(problems, [], 'no script ran from the name');
    });

    t.test('the server page draws its charts and histogram', async (t) => {
      const page = await open('/servers/neko.dev');
      const chart = page.locator('#weekly-chart');
      const box = await chart.boundingBox();
      t.ok(box && box.width > 300 && box.height > 100, `chart drawn at ${box?.width}×${box?.height}`);
      t.equal(await chart.locator('circle.dot').count(), 2, 'one point per week with a median');
      t.equal(await chart.locator('polyline.median').count(), 1);
      t.ok(
        await chart
          .locator('polyline.median')
          .evaluate((line) => (line as unknown as { getTotalLength(): number }).getTotalLength() > 0),
        'the median line has length',
      );
      t.equal(await chart.locator('rect.loss').count(), 1, 'loss where probes measured it');
      t.ok((await page.locator('#histogram rect.bar').count()) > 0);
      const hourly = page.locator('#hourly-chart');
      t.same(
        await hourly.locator('rect.bar title').allTextContents(),
        ['10:00–10:59 UTC: median 444.5 ms, 2 pings'],
        'a bar for the one hour with pings',
      );
      t.same(
        await hourly.locator('text[text-anchor="end"]').allTextContents(),
        ['0 ms', '200 ms', '400 ms', '600 ms'],
        'the hourly delay axis in ms',
      );
      t.match(await page.textContent('#hourly-chart + p.note'), 'No data at 00–09, 11–23 h.');
      const daily = page.locator('#daily-chart');
      const dailyBox = await daily.boundingBox();
      t.ok(
        dailyBox && dailyBox.width > 300 && dailyBox.height > 100,
        `daily chart drawn at ${dailyBox?.width}×${dailyBox?.height}`,
      );
      t.equal(await daily.locator('circle.dot').count(), 2, 'one point per day with a median');
      t.same(
        await daily.locator('text[text-anchor="end"]').allTextContents(),
        ['0 ms', '200 ms', '400 ms', '600 ms'],
        'its delay axis in ms',
      );
      t.same(
        await page.$$eval('#latest tbody td:nth-child(2)', (cells) => cells.map((c) => c.textContent)),
        ['@<b>bold</b>:neko.dev', '@user:neko.dev (probe)', '@user:neko.dev'],
        'who sent each of the latest pings',
      );
      t.same(external, []);
      t.same(problems, []);
    });

    // Run in the page (as source: this project's TypeScript has no DOM types).
    /**
     * The names on the page whose text the browser broke between two letters
     * of a word: a line starts anywhere but after a space.
     */
    const namesBrokenMidWord = (page: Page) =>
      page.evaluate(`[...document.querySelectorAll('#ranking td:nth-child(2) a, ol.podium a, .name')].filter((element) => {
      const texts = document.createTreeWalker(element, NodeFilter.SHOW_TEXT);
      const range = document.createRange();
      // A space that ends a line has no box of its own: the character before a new line is the one before it in the text.
      let top = null;
      let before = ' ';
      while (texts.nextNode()) {
        const text = texts.currentNode;
        for (let i = 0; i < text.data.length; i++) {
          range.setStart(text, i);
          range.setEnd(text, i + 1);
          const rect = range.getClientRects()[0];
          if (rect !== undefined) {
            if (top !== null && rect.top > top + 1 && !/\\s/.test(before) && !/\\s/.test(text.data[i])) return true;
            top = rect.top;
          }
          before = text.data[i];
        }
      }
      return false;
    }).map((element) => element.textContent)`) as Promise<string[]>;

    /** The ranking's column headers as shown (a phone hides the mean), and whether each Trend cell lies within the viewport. */
    const rankingLayout = (page: Page) =>
      page.evaluate(`(() => {
      const headers = [...document.querySelectorAll('#ranking th')];
      const trend = headers.findIndex((th) => th.textContent === 'Trend');
      const trendCells = [...document.querySelectorAll('#ranking tr > :nth-child(' + (trend + 1) + ')')].map((cell) => cell.getBoundingClientRect());
      return {
        shown: headers.filter((th) => getComputedStyle(th).display !== 'none').map((th) => th.textContent),
        trendInView: trend >= 0 && trendCells.every((rect) => rect.left >= 0 && rect.right <= window.innerWidth),
      };
    })()`) as Promise<{ shown: string[]; trendInView: boolean }>;

    t.test(
      `screenshots at desktop and phone widths, each page within the layout rules (${database.engine})`,
      async (t) => {
        for (const [name, viewport] of [
          ['desktop', DESKTOP],
          ['phone', PHONE],
        ] as const) {
          const page = await context.newPage();
          await page.setViewportSize(viewport);
          for (const [pageName, path, status] of [
            ['leaderboard', '/', 200],
            ['server', '/servers/neko.dev', 200],
            ['error', '/?week=2026-47', 400],
          ] as const) {
            await open(path, page, status);
            const overflow = (await page.evaluate(
              'document.documentElement.scrollWidth - window.innerWidth',
            )) as number;
            t.ok(overflow <= 0, `${pageName} fits ${viewport.width} px without sideways scrolling (${overflow})`);
            t.same(
              await namesBrokenMidWord(page),
              [],
              `${pageName} at ${viewport.width} px: no name broken inside a word`,
            );
            if (pageName === 'leaderboard')
              t.equal(
                (await rankingLayout(page)).trendInView,
                true,
                `the Trend column is on screen at ${viewport.width} px`,
              );
            if (pageName === 'leaderboard') {
              const sparks = await page.$$eval('#ranking td.spark svg', (svgs) =>
                svgs.map((svg) => {
                  const box = svg.getBoundingClientRect();
                  return [Math.round(box.width), Math.round(box.height)];
                }),
              );
              t.same(
                sparks,
                viewport === PHONE
                  ? [
                      [0, 0],
                      [0, 0],
                      [0, 0],
                    ]
                  : [
                      [80, 20],
                      [80, 20],
                      [80, 20],
                    ],
                `sparklines ${viewport === PHONE ? 'hidden on a phone' : 'drawn 80×20 in every row'}`,
              );
            }
            if (pageName === 'server') {
              const hourly = await page.locator('#hourly-chart').boundingBox();
              t.ok(
                hourly && hourly.width > 300 && hourly.height > 60 && hourly.x + hourly.width <= viewport.width,
                `hourly chart drawn within ${viewport.width} px at ${hourly?.width}×${hourly?.height}`,
              );
            }
            const file = new URL(`${database.engine}-${pageName}-${name}.png`, SCREENSHOTS);
            await page.screenshot({ path: file.pathname, fullPage: true });
            t.ok(existsSync(file), `saved ${file.pathname}`);
          }
          t.equal(await page.textContent('h1'), '400 · Not a valid address', 'the error page says what went wrong');
          await Promise.all([page.waitForURL(`${base}/`), page.click('text=← Back to the leaderboard')]);
          t.equal(await page.locator('#ranking tbody tr').count(), 3, 'and leads back to the ranking');

          await open(`/?room=${encodeURIComponent(OTHER_ROOM)}`, page);
          t.same(
            await rankingLayout(page),
            {
              shown:
                viewport === PHONE
                  ? ['Rank', 'Server', 'Median', 'Trend', 'Pings']
                  : ['Rank', 'Server', 'Median', 'Trend', 'Mean', 'Pings', 'Weeks'],
              trendInView: true,
            },
            `no probe columns without probes at ${viewport.width} px`,
          );
          await page.close();
        }
        t.same(
          problems.filter((problem) => !problem.includes('status of 400')),
          [],
          "nothing but the error page's own status",
        );
      },
    );

    t.test('the API viewer at /docs loads everything from this server', async (t) => {
      const page = await open('/docs');
      await page.waitForSelector('.opblock', { timeout: 15_000 });
      const paths = await page.$$eval('.opblock-summary-path', (elements) =>
        elements.map((e) => e.getAttribute('data-path')),
      );
      for (const path of ['/leaderboard.md', '/leaderboard.json', '/api/v1/servers/{server}', '/'])
        t.ok(paths.includes(path), `lists ${path}`);
      t.same(external, [], 'nothing loaded from elsewhere');
    });
  });
}
