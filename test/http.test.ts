// The HTTP API through fastify (inject), on both engines.
import t from 'tap';
import type { WeekConfig } from '../src/config.ts';
import { openDatabase } from '../src/db/database.ts';
import { buildApp } from '../src/http/app.ts';
import { compareNames } from '../src/order.ts';
import { createLogger } from '../src/log.ts';
import { recordSamples } from '../src/samples/repository.ts';
import { Statistics } from '../src/stats/leaderboard.ts';
import { loadKnownRooms, RoomRegistry, storeKnownRoom } from '../src/stats/rooms.ts';
import { forEachEngine, type Test, type TestDatabase } from './helpers/database.ts';
import { freezeClosedWeek, seedPages } from './helpers/pages.ts';
import { ROOM, sample } from './helpers/samples.ts';

const NOW = new Date('2026-11-21T00:00:00Z');
const WEEKS: WeekConfig = { timeZone: 'UTC', closeWeekday: 1, closeHour: 0, graceMinutes: 60 };
const OTHER_ROOM = '!other:example.org';

function statisticsFor(database: TestDatabase) {
  return new Statistics({
    db: database.db,
    stats: { minDelayMs: 10, maxDelayMs: 600_000, minPings: 1 },
    weeks: WEEKS,
    cacheSeconds: 60,
    now: () => NOW,
  });
}

async function appFor(
  database: TestDatabase,
  rooms = [{ id: ROOM, disclaimer: 'Test disclaimer' }],
  db: TestDatabase['db'] = database.db,
) {
  return buildApp({
    database: { ...database, db },
    statistics: statisticsFor(database),
    rooms: new RoomRegistry(rooms),
    cacheSeconds: 60,
  });
}

/** fairydust.space 376; neko.dev 444 and 445 (median 444.5); one pong server each; one sample in last week. */
async function seedKnownWeek(database: TestDatabase) {
  const measuredAt = new Date('2026-11-20T10:00:00Z');
  await recordSamples(database.db, [
    sample({ pingServer: 'fairydust.space', pingEventId: '$fd1', delayMs: 376, measuredAt }),
    sample({ pingServer: 'neko.dev', pingEventId: '$nk1', delayMs: 444, measuredAt }),
    sample({
      pingServer: 'neko.dev',
      pingEventId: '$nk2',
      delayMs: 445,
      measuredAt,
      responder: '@bot:other.example',
      responderServer: 'other.example',
    }),
    sample({
      pingServer: 'old.example',
      pingEventId: '$old1',
      delayMs: 250,
      measuredAt: new Date('2026-11-10T10:00:00Z'),
    }),
  ]);
}

t.test('rooms keep their configured order: an alias listed first is the default once its ID is known', async (t) => {
  const rooms = new RoomRegistry([
    { id: '#ping:example.org', disclaimer: 'first' },
    { id: OTHER_ROOM, disclaimer: 'second' },
  ]);
  t.same(
    rooms.list().map((r) => r.id),
    [OTHER_ROOM],
    'an alias is not tracked before its ID is known',
  );
  t.equal(rooms.default()?.id, OTHER_ROOM);
  rooms.track({ id: ROOM, reference: '#ping:example.org', roomIds: [ROOM], disclaimer: 'first' });
  t.same(
    rooms.list().map((r) => r.id),
    [ROOM, OTHER_ROOM],
  );
  t.equal(rooms.default()?.id, ROOM, 'the first configured room is the default');
  t.equal(rooms.find('#ping:example.org')?.id, ROOM);

  const known = new RoomRegistry(
    [
      { id: '#ping:example.org', disclaimer: 'first' },
      { id: OTHER_ROOM, disclaimer: 'second' },
    ],
    [
      { reference: '#ping:example.org', id: ROOM, roomIds: ['!old:example.org', ROOM] },
      { reference: OTHER_ROOM, id: OTHER_ROOM, roomIds: [OTHER_ROOM, '!other-upgraded:example.org'] },
      { reference: '#no-longer-configured:example.org', id: '!gone:example.org', roomIds: ['!gone:example.org'] },
    ],
  );
  t.same(
    known.list(),
    [
      { id: ROOM, reference: '#ping:example.org', roomIds: ['!old:example.org', ROOM], disclaimer: 'first' },
      {
        id: OTHER_ROOM,
        reference: OTHER_ROOM,
        roomIds: [OTHER_ROOM, '!other-upgraded:example.org'],
        disclaimer: 'second',
      },
    ],
    'what the bot stored names aliases and lineages; a room no longer configured is not tracked',
  );
  t.equal(known.find('!old:example.org')?.id, ROOM, 'a predecessor finds its room');

  known.track({
    id: ROOM,
    reference: '#ping:example.org',
    roomIds: ['!old:example.org', ROOM, '!next:example.org'],
    disclaimer: 'first',
  });
  known.learn([{ reference: '#ping:example.org', id: ROOM, roomIds: ['!old:example.org', ROOM] }]);
  t.same(
    known.find('#ping:example.org')?.roomIds,
    ['!old:example.org', ROOM, '!next:example.org'],
    'an older stored lineage does not replace a newer one',
  );
  rooms.learn([{ reference: OTHER_ROOM, id: OTHER_ROOM, roomIds: [OTHER_ROOM, '!other-next:example.org'] }]);
  t.same(rooms.find('!other-next:example.org')?.id, OTHER_ROOM, 'a longer one is learnt');
});

/**
 * Server b.example hosts two echo bots, a.example one; both ping twice.
 * pingstat (pingstat.py save_pong: a plain insert keyed by room, ping and pong
 * server) keeps each server's first pong to a ping, whichever bot sent it:
 *   a.example's pings: a 20 and 24; b's first pongs 260 ($a1, @echo) and 270
 *     ($a2, @echo2 before @echo's 250) -> 20, 24, 260, 270: median 142;
 *   b.example's pings: b's first pongs 30 ($b1, @echo) and 34 ($b2, @echo2
 *     before @echo's 25); a 300 and 310 -> 30, 34, 300, 310: median 167.
 * Pooling every account gives b.example 34.5 and a.example 255 instead.
 */
export const TWO_BOTS_ON_B = '|Rank|Hostname|Median MS|\n|:---:|:---:|:---:|\n|1|a.example|142|\n|2|b.example|167|\n';

async function seedTwoBotsOnOneServer(database: TestDatabase) {
  const start = Date.parse('2026-11-20T10:00:00Z');
  const pong = (pingServer: string, pingEventId: string, responder: string, delayMs: number, atMs: number) =>
    sample({
      pingServer,
      pingEventId,
      delayMs,
      responder,
      responderServer: responder.split(':')[1]!,
      measuredAt: new Date(start + atMs),
    });
  await recordSamples(database.db, [
    pong('a.example', '$a1', '@echo:a.example', 20, 20),
    pong('a.example', '$a1', '@echo:b.example', 260, 260),
    pong('a.example', '$a1', '@echo2:b.example', 400, 400),
    pong('a.example', '$a2', '@echo:a.example', 24, 60_024),
    pong('a.example', '$a2', '@echo2:b.example', 270, 60_270),
    pong('a.example', '$a2', '@echo:b.example', 250, 60_400),
    pong('b.example', '$b1', '@echo:b.example', 30, 120_030),
    pong('b.example', '$b1', '@echo2:b.example', 35, 120_035),
    pong('b.example', '$b1', '@echo:a.example', 300, 120_300),
    pong('b.example', '$b2', '@echo2:b.example', 34, 180_034),
    pong('b.example', '$b2', '@echo:b.example', 25, 180_040),
    pong('b.example', '$b2', '@echo:a.example', 310, 180_310),
  ]);
}

/** The newsletter tooling's table: the first 10 ping servers of stats.json in its order, medians as numbers print. */
function newsletterTableFromStats(stats: { pings: Record<string, { median: number }> }): string {
  const rows = Object.entries(stats.pings)
    .slice(0, 10)
    .map(([server, { median }], i) => `|${i + 1}|${server}|${median}|\n`);
  return `|Rank|Hostname|Median MS|\n|:---:|:---:|:---:|\n${rows.join('')}`;
}

/** A 400 naming `parameter`, with `why` after it when given. */
/** The web pages answer a person: with an HTML page in words. Every other route answers JSON. */
const isPage = (url: string) => url.startsWith('/?') || url.startsWith('/servers/');

async function expectRefused(
  t: Test,
  app: Awaited<ReturnType<typeof appFor>>,
  url: string,
  parameter: string,
  why?: string,
): Promise<void> {
  const res = await app.inject(url);
  t.equal(res.statusCode, 400, url);
  if (isPage(url)) {
    t.equal(res.headers['content-type'], 'text/html; charset=utf-8', `${url}: a page`);
    t.match(
      res.body,
      why === undefined ? parameter : `<p>The ${parameter} in the address ${why}.</p>`,
      `${url} names ${parameter}`,
    );
  } else if (why === undefined) {
    t.equal(res.json().parameter, parameter, `${url} names ${parameter}`);
    t.match(res.json().message, parameter);
  } else {
    t.same(res.json(), { error: 'Bad Request', parameter, message: `${parameter}: ${why}` }, url);
  }
}

forEachEngine(t, (t, database) => {
  t.test('what the bot learnt of its rooms is stored and read back, the latest lineage winning', async (t) => {
    await storeKnownRoom(database.db, { reference: '#ping:example.org', id: ROOM, roomIds: [ROOM] });
    await storeKnownRoom(database.db, { reference: OTHER_ROOM, id: OTHER_ROOM, roomIds: [OTHER_ROOM] });
    await storeKnownRoom(database.db, {
      reference: '#ping:example.org',
      id: ROOM,
      roomIds: [ROOM, '!next:example.org'],
    });
    const known = (await loadKnownRooms(database.db)).sort((a, b) => compareNames(a.reference, b.reference));
    t.same(known, [
      { reference: OTHER_ROOM, id: OTHER_ROOM, roomIds: [OTHER_ROOM] },
      { reference: '#ping:example.org', id: ROOM, roomIds: [ROOM, '!next:example.org'] },
    ]);
  });

  t.test('GET /leaderboard.md is the newsletter table, byte for byte', async (t) => {
    await seedKnownWeek(database);
    const app = await appFor(database);
    const res = await app.inject('/leaderboard.md');
    t.equal(res.statusCode, 200);
    t.equal(res.headers['content-type'], 'text/markdown; charset=utf-8');
    t.equal(res.body, '|Rank|Hostname|Median MS|\n|:---:|:---:|:---:|\n|1|fairydust.space|376|\n|2|neko.dev|444.5|\n');
    t.match(res.headers['cache-control'], /max-age=60/);
    const limited = await app.inject('/leaderboard.md?limit=1');
    t.equal(limited.body, '|Rank|Hostname|Median MS|\n|:---:|:---:|:---:|\n|1|fairydust.space|376|\n');
    const byRoom = await app.inject(`/leaderboard.md?room=${encodeURIComponent(ROOM)}&days=30`);
    t.match(byRoom.body, /\|1\|old\.example\|250\|/, 'days widens the window');
  });

  t.test(
    "two bots on one server: the ranking counts each server's first pong to a ping, as the aggregator and stats.json do",
    async (t) => {
      await seedTwoBotsOnOneServer(database);
      const app = await appFor(database);
      const table = (await app.inject('/leaderboard.md')).body;
      t.equal(table, TWO_BOTS_ON_B, "the table pingstat's rule gives, worked out by hand");
      const stats = (await app.inject(`/rooms/${encodeURIComponent(ROOM)}/stats.json`)).json();
      t.equal(table, newsletterTableFromStats(stats), "the table built from Pingboard's stats.json");
      const json = (await app.inject('/leaderboard.json')).json();
      const b = json.rows.find((r: { server: string }) => r.server === 'b.example');
      t.hasStrict(b, { pings: 2, samples: 4, median_ms: 167 });
      t.same(
        b.responders.map((r: { server: string; median_ms: number; samples: number }) => [
          r.server,
          r.median_ms,
          r.samples,
        ]),
        [
          ['a.example', 305, 2],
          ['b.example', 32, 2],
        ],
      );
      const page = (await app.inject('/')).body;
      t.match(page, /a\.example[\s\S]*142[\s\S]*b\.example[\s\S]*167/, 'the page ranks the same figures');
      const server = (await app.inject('/api/v1/servers/b.example?weeks=1&samples=50')).json();
      t.same(
        server.weeks.map((w: { week: string; median_ms: number; pings: number; samples: number }) => [
          w.week,
          w.median_ms,
          w.pings,
          w.samples,
        ]),
        [['2026-W47', 167, 2, 4]],
        "a server's weekly figures are the ranking's",
      );
      t.equal(server.latest_samples.length, 6, "its latest samples list every account's pong");
      const serverPage = (await app.inject('/servers/b.example')).body;
      t.match(serverPage, /4 samples, by delay/, 'the delay distribution counts the figures the median is taken from');
    },
  );

  t.test('GET /leaderboard.json carries the window, filters and every figure', async (t) => {
    await seedKnownWeek(database);
    const app = await appFor(database);
    const res = await app.inject('/leaderboard.json');
    t.equal(res.statusCode, 200);
    const body = res.json();
    t.equal(body.room, ROOM);
    t.equal(body.disclaimer, 'Test disclaimer');
    t.same(body.window, {
      kind: 'rolling',
      week: null,
      start: '2026-11-14T00:00:00.000Z',
      end: '2026-11-21T00:00:00.000Z',
      end_inclusive: true,
      frozen: false,
      frozen_at: null,
      version: null,
    });
    t.same(body.filters, { min_delay_ms: 10, max_delay_ms: 600000, min_pings: 1 });
    t.equal(body.servers_ranked, 2);
    t.same(
      body.rows.map((r: { rank: number; server: string; median_ms: number }) => [r.rank, r.server, r.median_ms]),
      [
        [1, 'fairydust.space', 376],
        [2, 'neko.dev', 444.5],
      ],
    );
    t.same(
      body.rows[1].responders.map((r: { server: string }) => r.server),
      ['maunium.net', 'other.example'],
    );
    t.hasStrict(body.rows[1], { mean_ms: 444.5, min_ms: 444, max_ms: 445, pings: 2, samples: 2 });
  });

  t.test('a frozen week is served with long-lived caching and an ETag, and 304 on revalidation', async (t) => {
    await seedKnownWeek(database);
    const app = await appFor(database);
    const beforeFreeze = await app.inject('/leaderboard.md?week=2026-W46');
    t.match(
      beforeFreeze.headers['cache-control'],
      /max-age=60/,
      'a closed week not frozen yet is served as live: reading it does not freeze it',
    );
    t.same((await app.inject('/api/v1/weeks')).json().weeks, []);
    await freezeClosedWeek(database);
    const res = await app.inject('/leaderboard.md?week=2026-W46');
    t.equal(res.statusCode, 200);
    t.equal(res.body, '|Rank|Hostname|Median MS|\n|:---:|:---:|:---:|\n|1|old.example|250|\n');
    t.match(res.headers['cache-control'], /immutable/);
    const etag = res.headers['etag'] as string;
    t.match(etag, /^"[\w-]+"$/);
    const again = await app.inject({ url: '/leaderboard.md?week=2026-W46', headers: { 'if-none-match': etag } });
    t.equal(again.statusCode, 304);
    t.equal(again.body, '');
    const json = (await app.inject('/leaderboard.json?week=2026-W46')).json();
    t.equal(json.window.frozen, true);
    t.equal(json.window.week, '2026-W46');
    const weeks = (await app.inject('/api/v1/weeks')).json();
    t.same(
      weeks.weeks.map((w: { week: string; servers: number }) => [w.week, w.servers]),
      [['2026-W46', 1]],
    );
    t.equal((await app.inject('/api/v1/weeks/2026-W46')).json().current.version, 1);
    // As a command-line refreeze or the leading instance does it: not through this app's statistics.
    await statisticsFor(database).refreeze(RoomRegistry.untracked(ROOM), '2026-W46', 'operator', 'refrozen elsewhere');
    const refrozen = (await app.inject('/api/v1/weeks/2026-W46')).json();
    t.equal(refrozen.current.version, 2, 'a week refrozen by another process is served at once');
    t.equal(refrozen.superseded[0].reason, 'refrozen elsewhere');
  });

  t.test('bad parameters get 400 naming the parameter', async (t) => {
    const app = await appFor(database);
    for (const [url, parameter] of [
      ['/leaderboard.md?limit=0', 'limit'],
      ['/leaderboard.md?limit=abc', 'limit'],
      ['/leaderboard.md?limit=100000', 'limit'],
      ['/leaderboard.md?days=0', 'days'],
      ['/leaderboard.json?days=91', 'days'],
      ['/leaderboard.md?week=last', 'week'],
      ['/leaderboard.md?week=2026-W60', 'week'],
      ['/leaderboard.md?week=2026-W46&days=3', 'week'],
      ['/leaderboard.md?week=2027-W10', 'week'],
      ['/api/v1/servers/bad%7Cserver', 'server'],
      ['/api/v1/servers/example.org?weeks=500', 'weeks'],
    ] as const)
      await expectRefused(t, app, url, parameter);
  });

  t.test('numeric parameters: plain decimal integers in range only, whatever Number() would read', async (t) => {
    await seedKnownWeek(database);
    const app = await appFor(database);
    const routes = [
      ['/leaderboard.md?limit=', 'limit'],
      ['/leaderboard.json?limit=', 'limit'],
      ['/leaderboard.md?days=', 'days'],
      ['/leaderboard.json?days=', 'days'],
      ['/?page=', 'page'],
      ['/api/v1/servers/fairydust.space?weeks=', 'weeks'],
      ['/api/v1/servers/fairydust.space?samples=', 'samples'],
    ] as const;
    for (const spelling of [
      '1e400',
      '-1e400',
      '1e1',
      '0x10',
      '0b1',
      '1.5',
      '1.0',
      '-0',
      '+5',
      ' 5',
      '5 ',
      '05',
      'Infinity',
      'NaN',
      '',
      '99999999999999999999',
    ]) {
      for (const [url, parameter] of routes) {
        const res = await app.inject(url + encodeURIComponent(spelling));
        t.equal(res.statusCode, 400, `${url}${JSON.stringify(spelling)}`);
        if (isPage(url)) {
          t.match(
            res.body,
            `<p>&quot;${spelling}&quot; is not a page number: pages are counted from 1.</p>`,
            'the page quotes what it was given',
          );
          continue;
        }
        t.equal(res.json().parameter, parameter);
        t.match(res.json().message, new RegExp(`^${parameter}: `));
      }
    }
    t.equal(
      (await app.inject('/leaderboard.md?limit=5&limit=1e400')).statusCode,
      400,
      'a repeated parameter: every value is checked',
    );
    // A refused value is never cached under a key that a later request shares.
    for (let i = 0; i < 2; i++)
      t.equal((await app.inject('/?page=1e400')).statusCode, 400, `/?page=1e400, request ${i + 1}`);
    t.equal(
      (await app.inject('/api/v1/servers/fairydust.space?weeks=2&samples=0')).statusCode,
      200,
      'plain decimals pass',
    );
    t.equal((await app.inject('/leaderboard.md?limit=1000')).statusCode, 200);
    t.equal((await app.inject('/leaderboard.md?limit=1001')).statusCode, 400);
  });

  t.test('the API refuses a parameter it does not know; pages and the pingstat routes ignore it', async (t) => {
    await seedKnownWeek(database);
    const app = await appFor(database);
    for (const [url, parameter] of [
      ['/leaderboard.md?weak=2026-W46', 'weak'],
      ['/leaderboard.json?Limit=5', 'Limit'],
      ['/api/v1/weeks?rooms=x', 'rooms'],
      ['/api/v1/servers/fairydust.space?sample=3', 'sample'],
    ] as const)
      await expectRefused(t, app, url, parameter, 'not a parameter of this route');
    t.equal((await app.inject('/leaderboard.md?week=2026-W46')).statusCode, 200, 'the same, spelt right');
    t.equal((await app.inject('/?utm_source=newsletter')).statusCode, 200);
    t.equal((await app.inject('/servers/fairydust.space?ref=x')).statusCode, 200);
    const stats = await app.inject(`/rooms/${encodeURIComponent(ROOM)}/stats.json?room_id=${encodeURIComponent(ROOM)}`);
    t.equal(stats.statusCode, 200, "pingstat's own room_id parameter, as a caller moved over may still send it");
  });

  t.test('control characters in a room, server or week are a 400 naming it, never a database error', async (t) => {
    await seedKnownWeek(database);
    const app = await appFor(database);
    for (const [url, parameter] of [
      ['/leaderboard.json?room=!%00', 'room'],
      ['/leaderboard.md?room=!a%01b:example.org', 'room'],
      ['/?room=!%00', 'room'],
      ['/api/v1/weeks?room=!%7F', 'room'],
      ['/api/v1/servers/fairydust.space?room=!%00', 'room'],
      [`/rooms/${encodeURIComponent('!\u0000:example.org')}/stats.json`, 'roomId'],
      ['/api/v1/weeks/%00', 'week'],
      ['/api/v1/servers/a%00b', 'server'],
      ['/servers/%00', 'server'],
      ['/servers/fairydust.space%0A', 'server'],
    ] as const)
      await expectRefused(t, app, url, parameter, 'must not contain control characters');
  });

  t.test('a path that is not percent-encoded UTF-8 is a 400; a long server name reaches its route', async (t) => {
    await seedKnownWeek(database);
    const app = await appFor(database);
    for (const url of ['/servers/%C0', '/api/v1/servers/%E0%A4%A', '/rooms/%/stats.json']) {
      const res = await app.inject(url);
      t.equal(res.statusCode, 400, url);
      t.same(
        res.json(),
        { error: 'Bad Request', parameter: 'path', message: 'the path is not valid percent-encoded UTF-8' },
        url,
      );
    }
    // 253 characters: a valid server name, longer than fastify's default limit on a path segment (100).
    const long = `${'a'.repeat(63)}.${'b'.repeat(63)}.${'c'.repeat(63)}.${'d'.repeat(61)}`;
    for (const url of [`/api/v1/servers/${long}`, `/servers/${long}`]) {
      const res = await app.inject(url);
      t.equal(res.statusCode, 404, `${url.slice(0, 20)}…: the route answers`);
      t.match(isPage(url) ? res.body : res.json().message, `o samples from ${long}`);
    }
    const tooLong = await app.inject(`/servers/${'x'.repeat(1001)}`);
    t.equal(tooLong.statusCode, 400);
    t.same(tooLong.json(), {
      error: 'Bad Request',
      parameter: 'path',
      message: 'a path segment is longer than 1000 characters',
    });
  });

  t.test('a cached page is never served for other parameters that spell the same with a separator', async (t) => {
    await recordSamples(database.db, [
      sample({ pingServer: 'evil|x', pingEventId: '$e1', delayMs: 100, measuredAt: new Date('2026-11-20T10:00:00Z') }),
    ]);
    const app = await appFor(database);
    t.equal((await app.inject('/servers/evil%7Cx')).statusCode, 200, 'the page of a stored name with a bar');
    const other = await app.inject('/servers/evil?room=x%7C');
    t.equal(other.statusCode, 404, 'another server in another room: not the cached page');
    t.match(other.body, '<p>Unknown room x|.</p>');
  });

  t.test('a method a path does not take is a 405 naming those it does, with Allow', async (t) => {
    const app = await appFor(database);
    for (const [method, url] of [
      ['POST', '/leaderboard.json'],
      ['DELETE', '/leaderboard.md?week=2026-W46'],
      ['PUT', '/api/v1/servers/fairydust.space'],
      ['POST', '/'],
    ] as const) {
      const res = await app.inject({ method, url });
      t.equal(res.statusCode, 405, `${method} ${url}`);
      t.equal(res.headers['allow'], 'GET, HEAD');
      t.same(res.json(), {
        error: 'Method Not Allowed',
        message: `${method} is not allowed on ${url.split('?')[0]}; allowed: GET, HEAD`,
      });
    }
    t.equal(
      (await app.inject({ method: 'POST', url: '/no/such/route' })).statusCode,
      404,
      'a path no route takes is still a 404',
    );
  });

  t.test('unknown rooms and servers are 404', async (t) => {
    await seedKnownWeek(database);
    const app = await appFor(database);
    for (const url of [
      '/leaderboard.md?room=%21nowhere%3Aexample.org',
      `/rooms/${encodeURIComponent('!nowhere:example.org')}/stats.json`,
      '/api/v1/weeks?room=%23unknown%3Aexample.org',
      '/api/v1/servers/never-pinged.example',
      '/no/such/route',
    ]) {
      const res = await app.inject(url);
      t.equal(res.statusCode, 404, url);
      t.type(res.json().message, 'string');
    }
  });

  t.test('an address no route takes: a page for a browser, the JSON error for the API and other clients', async (t) => {
    const app = await appFor(database);
    const browser = { accept: 'text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8' };
    const page = await app.inject({ url: '/no/such/a&b?x=1', headers: browser });
    t.equal(page.statusCode, 404);
    t.equal(page.headers['content-type'], 'text/html; charset=utf-8');
    t.match(page.headers['content-security-policy'], /default-src 'none'/);
    t.match(page.body, '<h1 id="error">404 · Not found</h1>');
    t.match(page.body, 'There is no page at /no/such/a&amp;b.', 'naming the address (without the query), escaped');
    for (const url of ['/api/v1/no-such-thing', '/api/v2/servers']) {
      const api = await app.inject({ url, headers: browser });
      t.equal(api.statusCode, 404, `${url}: 404`);
      t.match(api.headers['content-type'], 'application/json', `${url}: JSON, even for a browser`);
      t.same(api.json(), { error: 'Not Found', message: `no route for GET ${url}` });
    }
    const client = await app.inject({ url: '/no/such/page', headers: { accept: 'application/json' } });
    t.same(client.json(), { error: 'Not Found', message: 'no route for GET /no/such/page' });
  });

  t.test('a room that holds samples but is not configured can be asked for by ID', async (t) => {
    await recordSamples(database.db, [
      sample({
        roomId: OTHER_ROOM,
        pingServer: 'x.example',
        delayMs: 120,
        measuredAt: new Date('2026-11-20T00:00:00Z'),
      }),
    ]);
    const app = await appFor(database);
    const res = await app.inject(`/leaderboard.md?room=${encodeURIComponent(OTHER_ROOM)}`);
    t.equal(res.statusCode, 200);
    t.match(res.body, '|1|x.example|120|');
  });

  t.test('pingstat drop-in: stats.json shape, numbers and ordering', async (t) => {
    await seedKnownWeek(database);
    const app = await appFor(database);
    const res = await app.inject(`/rooms/${encodeURIComponent(ROOM)}/stats.json`);
    t.equal(res.statusCode, 200);
    const body = res.json();
    t.same(Object.keys(body), ['disclaimer', 'pings', 'mean', 'pongservers']);
    t.same(Object.keys(body.pings), ['fairydust.space', 'neko.dev'], 'ascending median');
    t.same(body.pings['neko.dev'], {
      pongs: {
        'maunium.net': { diffs: { $nk1: 444 }, mean: 444, median: 444, gmean: 444 },
        // CPython: math.exp(math.fsum([math.log(445)])) is 444.99999999999994, as pingstat writes it.
        'other.example': { diffs: { $nk2: 445 }, mean: 445, median: 445, gmean: 444.99999999999994 },
      },
      pings: ['$nk1', '$nk2'],
      mean: 444.5,
      median: 444.5,
      // CPython: math.exp(math.fsum(map(math.log, [444, 445])) / 2)
      gmean: 444.4997187850629,
    });
    t.equal(body.mean, (376 + 444.5) / 2);
    t.same(body.pongservers, ['maunium.net', 'other.example']);
    const older = (
      await app.inject(`/rooms/${encodeURIComponent(ROOM)}/stats.json?max_age=${14 * 86400}&min_age=${8 * 86400}`)
    ).json();
    t.same(Object.keys(older.pings), ['old.example'], 'max_age/min_age in seconds');
  });

  t.test('pingstat drop-in: max_age and min_age read as pingstat reads them, never refused', async (t) => {
    // One ping server per age, so the servers listed tell which samples the window kept.
    const ages: Record<string, number> = {
      'h1.example': 3600,
      'd2.example': 2 * 86_400 + 1,
      'd6.example': 6.5 * 86_400,
      'd7.example': 7.5 * 86_400,
      'd20.example': 20 * 86_400,
      'd400.example': 400 * 86_400,
    };
    await recordSamples(
      database.db,
      Object.entries(ages).map(([pingServer, age]) =>
        sample({ pingServer, delayMs: 100, measuredAt: new Date(NOW.getTime() - age * 1000) }),
      ),
    );
    const app = await appFor(database);
    const base = `/rooms/${encodeURIComponent(ROOM)}`;
    const servers = async (path: string) => {
      const res = await app.inject(`${base}/${path}`);
      t.equal(res.statusCode, 200, path);
      const body = res.json();
      const names: string[] = Array.isArray(body)
        ? body.map((row: { ping_server: string }) => row.ping_server)
        : Object.keys(body.pings);
      return names.sort(compareNames);
    };
    const LAST_WEEK = ['d2.example', 'd6.example', 'h1.example'];
    for (const query of [
      'max_age=abc',
      'max_age=',
      'max_age=1.5',
      'max_age=1e400&min_age=-1e400',
      'max_age=0x10',
      'max_age=99999999999',
      'max_age=99999999999999999999',
      'min_age=x',
    ]) {
      t.same(
        await servers(`stats.json?${query}`),
        LAST_WEEK,
        `${query}: pingstat's default week (or its one-week cap)`,
      );
    }
    t.same(await servers('stats.json?max_age=-1'), [], 'a negative max_age: empty stats, as pingstat gives');
    t.same(
      await servers('stats.json?max_age=%20259_200%20'),
      ['d2.example', 'h1.example'],
      "spaces and underscores, as Python's int() reads them",
    );
    t.same(
      await servers('stats.json?max_age=1_000_000&min_age=86400'),
      ['d2.example', 'd6.example', 'd7.example'],
      'the span capped to one week before now - min_age',
    );
    t.same(
      await servers('stats.json?min_age=-86400'),
      ['d2.example', 'h1.example'],
      'a negative min_age moves the end ahead, and the capped span with it',
    );
    t.same(
      await servers('stats.json?max_age=60&max_age=9999999'),
      [],
      'a repeated parameter counts by its first value',
    );
    t.same(await servers('stats.raw.json?max_age=abc'), LAST_WEEK, 'raw rows: the default week');
    t.same(
      await servers(`stats.raw.json?max_age=${30 * 86_400}`),
      [...LAST_WEEK, 'd20.example', 'd7.example'].sort(compareNames),
      'raw rows: no one-week cap',
    );
    t.same(
      await servers('stats.raw.json?max_age=99999999999999999999'),
      Object.keys(ages).sort(compareNames),
      'raw rows: a window reaching before the epoch',
    );
    t.same(await servers('stats.raw.json?max_age=-5'), [], 'raw rows: a negative max_age, none');
    t.equal((await app.inject(`${base}/stats?max_age=abc`)).statusCode, 200, 'the HTML table too');
  });

  t.test('pingstat drop-in: stats.raw.json rows and the HTML table with JSON on request', async (t) => {
    await seedKnownWeek(database);
    const app = await appFor(database);
    const raw = (await app.inject(`/rooms/${encodeURIComponent(ROOM)}/stats.raw.json`)).json();
    t.equal(raw.length, 3);
    t.same(
      raw.find((r: { ping_id: string }) => r.ping_id === '$fd1'),
      {
        room_id: ROOM,
        ping_id: '$fd1',
        pong_server: 'maunium.net',
        ping_server: 'fairydust.space',
        receive_diff: 376,
        pong_timestamp: Date.parse('2026-11-20T10:00:00Z'),
      },
    );
    const html = await app.inject(`/rooms/${encodeURIComponent(ROOM)}/stats`);
    t.match(html.headers['content-type'], 'text/html');
    t.match(html.body, /<th>1<\/th><th>fairydust\.space<\/th><td>376 ms<\/td>/);
    const json = await app.inject({
      url: `/rooms/${encodeURIComponent(ROOM)}/stats`,
      headers: { accept: 'application/json' },
    });
    t.match(json.headers['content-type'], 'application/json');
    t.same(Object.keys(json.json().pings), ['fairydust.space', 'neko.dev']);
  });

  t.test('GET /api/v1/servers/{server}: weekly medians and latest samples', async (t) => {
    await seedKnownWeek(database);
    const app = await appFor(database);
    const res = await app.inject('/api/v1/servers/neko.dev?weeks=2&samples=1');
    t.equal(res.statusCode, 200);
    const body = res.json();
    t.equal(body.server, 'neko.dev');
    t.same(
      body.weeks.map((w: { week: string; median_ms: number | null; pings: number }) => [w.week, w.median_ms, w.pings]),
      [
        ['2026-W46', null, 0],
        ['2026-W47', 444.5, 2],
      ],
    );
    t.equal(body.latest_samples.length, 1);
    t.hasStrict(body.latest_samples[0], { ping_server: 'neko.dev', room_id: ROOM, source: 'pong' });
  });

  t.test('hostile text stays text in every format', async (t) => {
    // Valid server names cannot hold markup, so hostile names come from the room ID and disclaimer.
    const hostileRoom = '!<script>alert(1)</script>|x:example.org';
    await recordSamples(database.db, [
      sample({
        roomId: hostileRoom,
        pingServer: 'ok.example',
        delayMs: 100,
        measuredAt: new Date('2026-11-20T00:00:00Z'),
      }),
    ]);
    const app = await appFor(database, [{ id: hostileRoom, disclaimer: '<img src=x onerror=alert(1)>' }]);
    const html = await app.inject(`/rooms/${encodeURIComponent(hostileRoom)}/stats`);
    t.notMatch(html.body, '<script>');
    t.notMatch(html.body, '<img');
    t.match(html.body, '&lt;img src=x onerror=alert(1)&gt;');
    const json = (await app.inject('/leaderboard.json')).json();
    t.equal(json.room, hostileRoom, 'JSON carries the text as is, correctly encoded');
  });

  t.test('an /api/v1 answer is computed once for the clients that ask at once', async (t) => {
    await seedPages(database);
    await freezeClosedWeek(database);
    const urls: [url: string, queriesPerClient: number][] = [
      ['/api/v1/matrix', 0],
      ['/api/v1/servers/neko.dev?weeks=4&samples=10', 0],
      ['/api/v1/weeks', 0],
      // Each client asks which version of the week is stored now, so that a refreeze elsewhere shows at once.
      ['/api/v1/weeks/2026-W46', 1],
    ];
    const clients = 20;
    for (const [url, queriesPerClient] of urls) {
      // Every query of the views' database is counted, and the first one held until all the clients are in their
      // handlers: whichever way the requests interleave, a second computation could not join the first one's result.
      let queries = 0;
      let release = () => {};
      const held = new Promise<void>((resolve) => {
        release = resolve;
      });
      const counting = database.db.withPlugin({
        transformQuery: (args) => {
          queries++;
          return args.node;
        },
        transformResult: async (args) => {
          await held;
          return args.result;
        },
      });
      const app = await appFor(database, undefined, counting);
      let inHandlers = 0;
      let allIn = () => {};
      const everyoneIn = new Promise<void>((resolve) => {
        allIn = resolve;
      });
      app.addHook('preHandler', async () => {
        if (++inHandlers === clients) allIn();
      });
      const answers = Promise.all(Array.from({ length: clients }, () => app.inject(url)));
      await everyoneIn;
      // The handlers start in the microtasks after the last hook; a macrotask comes after all of them.
      await new Promise((resolve) => setImmediate(resolve));
      release();
      const bodies = (await answers).map((res) => `${res.statusCode} ${res.body}`);
      t.equal(new Set(bodies).size, 1, `${url}: every client got the same answer`);
      t.match(bodies[0], /^200 /, `${url}: 200`);
      const together = queries;
      queries = 0;
      const fresh = await appFor(database, undefined, counting);
      const first = await fresh.inject(url);
      t.equal(first.statusCode, 200);
      t.equal(
        together,
        queries + (clients - 1) * queriesPerClient,
        `${url}: ${clients} clients at once, one computation (${queries} queries)`,
      );
      const again = await fresh.inject({ url, headers: { 'if-none-match': first.headers['etag'] as string } });
      t.equal(again.statusCode, 304, `${url}: a client that has the answer gets a 304`);
    }
  });

  t.test('/healthz reports the database', async (t) => {
    const app = await appFor(database);
    const res = await app.inject('/healthz');
    t.equal(res.statusCode, 200);
    t.hasStrict(res.json(), { status: 'ok', database: { engine: database.engine, ok: true } });
  });
});

t.test(
  'a database that goes away: 503 with a clear message, health says so, and the app recovers nothing it should not',
  async (t) => {
    // A PostgreSQL URL where nothing listens stands for a server that went away.
    const unreachable = await openDatabase({ url: 'postgres://postgres@127.0.0.1:1/none', dataDir: '' });
    t.teardown(() => unreachable.destroy());
    const statistics = new Statistics({
      db: unreachable.db,
      stats: { minDelayMs: 10, maxDelayMs: 600_000, minPings: 1 },
      weeks: WEEKS,
      cacheSeconds: 60,
      now: () => NOW,
    });
    const app = await buildApp({
      database: unreachable,
      statistics,
      rooms: new RoomRegistry([{ id: ROOM, disclaimer: 'd' }]),
      cacheSeconds: 60,
    });
    const health = await app.inject('/healthz');
    t.equal(health.statusCode, 503);
    t.hasStrict(health.json(), { status: 'unavailable', database: { engine: 'postgres', ok: false } });
    for (const url of ['/leaderboard.md', '/leaderboard.json', `/rooms/${encodeURIComponent(ROOM)}/stats.json`]) {
      const res = await app.inject(url);
      t.equal(res.statusCode, 503, url);
      t.equal(res.headers['retry-after'], '5');
      t.match(res.json().message, 'database is unavailable');
    }
  },
);

t.test('requests are logged at debug, errors at error: an info log holds no line per request', async (t) => {
  const unreachable = await openDatabase({ url: 'postgres://postgres@127.0.0.1:1/none', dataDir: '' });
  t.teardown(() => unreachable.destroy());
  const statistics = new Statistics({
    db: unreachable.db,
    stats: { minDelayMs: 10, maxDelayMs: 600_000, minPings: 1 },
    weeks: WEEKS,
    cacheSeconds: 60,
    now: () => NOW,
  });
  const logged = async (level: 'info' | 'debug') => {
    const lines: { msg: string; req?: { url: string }; statusCode?: number }[] = [];
    const log = createLogger(level, { write: (line: string) => void lines.push(JSON.parse(line)) });
    const app = await buildApp(
      { database: unreachable, statistics, rooms: new RoomRegistry([{ id: ROOM, disclaimer: 'd' }]), cacheSeconds: 60 },
      log,
    );
    await app.inject('/docs/json');
    // A page, which ignores parameters it does not know: the URL is logged as sent, less its credentials.
    await app.inject('/?access_token=S3cret');
    await app.close();
    return lines;
  };
  const info = await logged('info');
  t.same(
    info.map((l) => l.msg),
    ['database unavailable'],
    'at info, only the failure',
  );
  const debug = await logged('debug');
  const completed = debug.filter((l) => l.msg === 'request completed');
  t.same(
    completed.map((l) => [l.req?.url, l.statusCode]),
    [
      ['/docs/json', 200],
      ['/?access_token=[redacted]', 503],
    ],
    'at debug, every request, its credentials censored',
  );
});
