// Operator controls: over HTTP behind the bearer token, and as `!pingboard …`
// from room admins through the running bot; exclusions, deleted pings and
// weeks frozen again, checked through the tables people read.
import t from 'tap';
import { loadConfig } from '../src/config.ts';
import { createLogger } from '../src/log.ts';
import { parseAdminCommand } from '../src/operator/commands.ts';
import { listExclusions } from '../src/stats/exclusions.ts';
import { checkReason } from '../src/operator/reason.ts';
import { InputError } from '../src/errors.ts';
import { recordSamples } from '../src/samples/repository.ts';
import { start, type Service } from '../src/start.ts';
import { startTestHomeserver } from './homeserver/index.ts';
import { forEachEngine, type Test, type TestDatabase } from './helpers/database.ts';
import { ROOM, sample } from './helpers/samples.ts';

const TOKEN = 'operator-token-0123456789abcdef-0123456789';
const NOW = new Date('2026-11-28T12:00:00Z');
const LAST_WEEK = '2026-W47';
const TABLE = '|Rank|Hostname|Median MS|\n|:---:|:---:|:---:|\n';

t.test('room commands are parsed without side effects', async (t) => {
  t.equal(parseAdminCommand('!ping'), undefined);
  t.equal(parseAdminCommand('!pingboarding'), undefined, 'only the word itself');
  t.same(parseAdminCommand('!pingboard'), { kind: 'help' });
  t.same(parseAdminCommand('!pingboard exclude evil.example  clock runs 5 s ahead'), {
    kind: 'exclude',
    server: 'evil.example',
    reason: 'clock runs 5 s ahead',
  });
  t.same(parseAdminCommand('!pingboard include evil.example'), { kind: 'include', server: 'evil.example' });
  t.same(parseAdminCommand('!pingboard delete $abc'), { kind: 'delete', pingEventId: '$abc' });
  t.same(parseAdminCommand('!pingboard refreeze 2026-W47 evil.example excluded'), {
    kind: 'refreeze',
    week: '2026-W47',
    reason: 'evil.example excluded',
  });
  t.match(
    parseAdminCommand('!pingboard exclude evil.example'),
    { kind: 'invalid', message: /^usage: !pingboard exclude/ },
    'a reason is required',
  );
  t.match(parseAdminCommand('!pingboard include a b'), { kind: 'invalid' });
  t.match(parseAdminCommand('!pingboard frobnicate'), { kind: 'invalid', message: /unknown command "frobnicate"/ });
  t.equal(checkReason('  spaced  '), 'spaced');
  for (const bad of [
    '',
    '   ',
    'two\nlines',
    'esc\u001b[31m',
    'x'.repeat(501),
    'looks \u202eharmless',
    'isolated \u2066text\u2069',
    'mark\u200f',
  ]) {
    t.throws(() => checkReason(bad), new InputError('reason', ''), JSON.stringify(bad.slice(0, 20)));
  }
});

async function serve(t: Test, database: TestDatabase, env: Record<string, string>): Promise<Service> {
  const service = await start(
    loadConfig({
      ...(database.url ? { DATABASE_URL: database.url } : {}),
      PINGBOARD_PORT: '0',
      PINGBOARD_ROOMS: ROOM,
      PINGBOARD_CACHE_SECONDS: '60',
      ...env,
    }),
    createLogger('silent'),
    { database, now: () => NOW },
  );
  t.teardown(() => service.stop());
  return service;
}

/** Last week (2026-W47, closed) and this week: fast, middle and slow servers. */
async function seed(database: TestDatabase): Promise<void> {
  const lastWeek = new Date('2026-11-20T10:00:00Z');
  const thisWeek = new Date('2026-11-24T10:00:00Z');
  await recordSamples(database.db, [
    sample({ pingServer: 'fast.example', pingEventId: '$f1', delayMs: 100, measuredAt: lastWeek }),
    sample({ pingServer: 'gamed.example', pingEventId: '$g1', delayMs: 50, measuredAt: lastWeek }),
    sample({ pingServer: 'slow.example', pingEventId: '$s1', delayMs: 900, measuredAt: lastWeek }),
    sample({ pingServer: 'fast.example', pingEventId: '$f2', delayMs: 110, measuredAt: thisWeek }),
    sample({ pingServer: 'gamed.example', pingEventId: '$g2', delayMs: 40, measuredAt: thisWeek }),
    sample({
      pingServer: 'gamed.example',
      pingEventId: '$g3',
      delayMs: 60,
      measuredAt: thisWeek,
      responder: '@other:bot.example',
      responderServer: 'bot.example',
    }),
    sample({ pingServer: 'slow.example', pingEventId: '$s2', delayMs: 950, measuredAt: thisWeek }),
  ]);
}

forEachEngine(t, (t, database) => {
  t.test('without a token the operator routes do not exist; with one they need it', async (t) => {
    const closed = await serve(t, database, {});
    t.equal(
      (await closed.app.inject({ method: 'PUT', url: '/api/v1/admin/exclusions/a.example', payload: { reason: 'x' } }))
        .statusCode,
      404,
    );
    const open = await serve(t, database, { PINGBOARD_ADMIN_TOKEN: TOKEN });
    for (const authorization of [undefined, 'Bearer wrong', `Basic ${TOKEN}`, `Bearer ${TOKEN}x`]) {
      const res = await open.app.inject({
        method: 'GET',
        url: '/api/v1/admin/exclusions',
        headers: authorization ? { authorization } : {},
      });
      t.equal(res.statusCode, 401, `${authorization ?? 'no header'}: 401`);
      t.equal(res.headers['www-authenticate'], 'Bearer realm="pingboard"');
    }
    t.equal(
      (await open.app.inject({ url: '/api/v1/admin/exclusions', headers: { authorization: `Bearer ${TOKEN}` } }))
        .statusCode,
      200,
    );
  });

  t.test(
    'an exclusion takes a server out of live tables at once, with its reason; including it puts it back',
    async (t) => {
      await seed(database);
      const service = await serve(t, database, { PINGBOARD_ADMIN_TOKEN: TOKEN });
      const admin = (method: 'GET' | 'PUT' | 'DELETE' | 'POST', url: string, payload?: object) =>
        service.app.inject({
          method,
          url,
          headers: { authorization: `Bearer ${TOKEN}` },
          ...(payload ? { payload } : {}),
        });
      t.equal(
        (await service.app.inject('/leaderboard.md')).body,
        `${TABLE}|1|gamed.example|50|\n|2|fast.example|110|\n|3|slow.example|950|\n`,
      );

      const excluded = await admin('PUT', '/api/v1/admin/exclusions/gamed.example', {
        reason: 'pongs from a <script> bot',
      });
      t.equal(excluded.statusCode, 200);
      t.match(excluded.json(), {
        server: 'gamed.example',
        reason: 'pongs from a <script> bot',
        excluded_by: 'operator',
      });
      t.equal(
        (await service.app.inject('/leaderboard.md')).body,
        `${TABLE}|1|fast.example|110|\n|2|slow.example|950|\n`,
        'gone at once (no stale cache), ranks without a gap',
      );
      const json = (await service.app.inject('/leaderboard.json')).json();
      t.same(
        json.excluded.map((e: { server: string; reason: string }) => [e.server, e.reason]),
        [['gamed.example', 'pongs from a <script> bot']],
      );
      const page = (await service.app.inject('/')).body;
      t.match(
        page,
        /<h2>Not ranked<\/h2>\n<ul id="excluded">\n<li><a href="[^"]+">gamed\.example<\/a>: pongs from a &lt;script&gt; bot /,
        'the page names it with the reason, escaped',
      );
      t.notMatch(page, /<td><a href="[^"]*">gamed\.example<\/a><\/td>/, 'and not in the ranking');
      const stats = (await service.app.inject(`/rooms/${encodeURIComponent(ROOM)}/stats.json?max_age=604800`)).json();
      t.same(
        Object.keys(stats.pings),
        ['fast.example', 'slow.example'],
        'the pingstat-compatible figures leave it out too',
      );
      t.same(
        (await admin('GET', '/api/v1/admin/exclusions')).json().exclusions.map((e: { server: string }) => e.server),
        ['gamed.example'],
      );

      for (const [url, payload, parameter] of [
        ['/api/v1/admin/exclusions/evil%7Cserver', { reason: 'x' }, 'server'],
        ['/api/v1/admin/exclusions/a.example', { reason: 'two\nlines' }, 'reason'],
        ['/api/v1/admin/exclusions/a.example', { reason: 'x'.repeat(600) }, 'reason'],
        ['/api/v1/admin/exclusions/a.example', { reason: 'x', resaon: 'typo' }, 'resaon'],
      ] as const) {
        const res = await admin('PUT', url, payload);
        t.equal(res.statusCode, 400, `${url} ${JSON.stringify(payload).slice(0, 40)}: 400`);
        t.equal(res.json().parameter, parameter);
      }
      const form = await service.app.inject({
        method: 'PUT',
        url: '/api/v1/admin/exclusions/a.example',
        payload: 'reason=x',
        headers: { authorization: `Bearer ${TOKEN}`, 'content-type': 'application/x-www-form-urlencoded' },
      });
      t.equal(form.statusCode, 415);
      t.equal(form.json().error, 'Unsupported Media Type', 'a 4xx other than 400 is labelled with its own status');
      const nul = await service.app.inject({
        method: 'DELETE',
        url: '/api/v1/admin/pings/%24a%00b',
        headers: { authorization: `Bearer ${TOKEN}` },
      });
      t.equal(nul.statusCode, 400);
      t.match(nul.json(), { parameter: 'eventId', message: 'eventId: must not contain control characters' });

      t.equal((await admin('DELETE', '/api/v1/admin/exclusions/gamed.example')).statusCode, 204);
      t.equal(
        (await admin('DELETE', '/api/v1/admin/exclusions/gamed.example')).statusCode,
        404,
        'not excluded any more',
      );
      t.match((await service.app.inject('/leaderboard.md')).body, /\|1\|gamed\.example\|50\|/, 'ranked again');
    },
  );

  t.test(
    'a frozen week keeps its table after an exclusion until it is frozen again; the old version stays in its history',
    async (t) => {
      await seed(database);
      const service = await serve(t, database, { PINGBOARD_ADMIN_TOKEN: TOKEN });
      await service.jobs!.freezeNow();
      const admin = (method: 'PUT' | 'POST', url: string, payload: object) =>
        service.app.inject({ method, url, headers: { authorization: `Bearer ${TOKEN}` }, payload });
      const published = (await service.app.inject(`/leaderboard.md?week=${LAST_WEEK}`)).body;
      t.equal(published, `${TABLE}|1|gamed.example|50|\n|2|fast.example|100|\n|3|slow.example|900|\n`);

      await admin('PUT', '/api/v1/admin/exclusions/gamed.example', { reason: 'forged pongs' });
      t.equal(
        (await service.app.inject(`/leaderboard.md?week=${LAST_WEEK}`)).body,
        published,
        'a published week does not change by itself',
      );

      const refrozen = await admin('POST', `/api/v1/admin/weeks/${LAST_WEEK}/refreeze`, {
        reason: 'gamed.example excluded',
      });
      t.equal(refrozen.statusCode, 200);
      t.match(refrozen.json(), { week: LAST_WEEK, version: 2, servers: 2 });
      t.equal(
        (await service.app.inject(`/leaderboard.md?week=${LAST_WEEK}`)).body,
        `${TABLE}|1|fast.example|100|\n|2|slow.example|900|\n`,
      );
      const json = (await service.app.inject(`/leaderboard.json?week=${LAST_WEEK}`)).json();
      t.equal(json.window.version, 2);
      t.same(
        json.excluded.map((e: { server: string }) => e.server),
        ['gamed.example'],
      );

      const history = (await service.app.inject(`/api/v1/weeks/${LAST_WEEK}`)).json();
      t.equal(history.current.version, 2);
      t.equal(history.superseded.length, 1);
      t.match(history.superseded[0], {
        version: 1,
        superseded_by: 'operator',
        reason: 'gamed.example excluded',
        excluded: [],
      });
      t.same(
        history.superseded[0].rows.map((r: { server: string }) => r.server),
        ['gamed.example', 'fast.example', 'slow.example'],
        'the published table is kept',
      );
      t.same(
        (await service.app.inject('/api/v1/weeks'))
          .json()
          .weeks.map((w: { week: string; version: number }) => [w.week, w.version]),
        [[LAST_WEEK, 2]],
      );

      const neverFrozen = await admin('POST', '/api/v1/admin/weeks/2026-W46/refreeze', { reason: 'imported late' });
      t.match(
        neverFrozen.json(),
        { week: '2026-W46', version: 1, servers: 0 },
        'a closed week never frozen is frozen for the first time',
      );
      const firstFreeze = (await service.app.inject('/api/v1/weeks/2026-W46')).json();
      t.match(firstFreeze, { current: { version: 1 } });
      t.same(firstFreeze.current.rows, []);
      t.same(firstFreeze.superseded, [], 'a first freeze replaces nothing');

      const open = await admin('POST', '/api/v1/admin/weeks/2026-W48/refreeze', { reason: 'too early' });
      t.equal(open.statusCode, 400, 'a week still open cannot be frozen');
      t.equal(open.json().parameter, 'week');
      t.equal((await admin('POST', '/api/v1/admin/weeks/next-week/refreeze', { reason: 'x' })).statusCode, 400);
      t.equal((await service.app.inject('/api/v1/weeks/2026-W40')).statusCode, 404);
    },
  );

  t.test('deleting a ping removes its samples from every table', async (t) => {
    await seed(database);
    const service = await serve(t, database, { PINGBOARD_ADMIN_TOKEN: TOKEN });
    const del = (id: string) =>
      service.app.inject({
        method: 'DELETE',
        url: `/api/v1/admin/pings/${encodeURIComponent(id)}`,
        headers: { authorization: `Bearer ${TOKEN}` },
      });
    // Build the hours' digests first, so the deletion must drop them.
    t.match(
      (await service.app.inject('/leaderboard.json'))
        .json()
        .rows.find((r: { server: string }) => r.server === 'gamed.example'),
      { pings: 2, samples: 2 },
    );
    const res = await del('$g3');
    t.equal(res.statusCode, 200);
    t.same(res.json(), { room: ROOM, ping_event_id: '$g3', deleted: 1 });
    t.match(
      (await service.app.inject('/leaderboard.json'))
        .json()
        .rows.find((r: { server: string }) => r.server === 'gamed.example'),
      { pings: 1, samples: 1, median_ms: 40 },
    );
    t.equal((await del('$g3')).statusCode, 404, 'nothing left to delete');
    t.equal((await del('not-an-event')).statusCode, 400);
  });

  t.test('room admins use !pingboard in the room; others are told they cannot', async (t) => {
    const hs = await startTestHomeserver({
      servers: { 'bot.example': { delayMs: 0 }, 'example.org': { delayMs: 20 }, 'gamed.example': { delayMs: 20 } },
    });
    t.teardown(() => hs.stop());
    const bot = '@pingboard:bot.example';
    hs.registerUser(bot, { password: 'pw' });
    for (const user of ['@admin:example.org', '@mallory:gamed.example']) hs.registerUser(user);
    const roomId = hs.createRoom('@admin:example.org', { preset: 'public_chat' });
    hs.join('@mallory:gamed.example', roomId, ['example.org']);
    const service = await start(
      loadConfig({
        ...(database.url ? { DATABASE_URL: database.url } : {}),
        PINGBOARD_PORT: '0',
        PINGBOARD_ROOMS: roomId,
        PINGBOARD_CACHE_SECONDS: '0',
        PINGBOARD_HOMESERVER_URL: hs.url,
        PINGBOARD_BOT_USER_ID: bot,
        PINGBOARD_BOT_PASSWORD: 'pw',
      }),
      createLogger('silent'),
      { database },
    );
    t.teardown(() => service.stop());
    const reply = async (sender: string, body: string) => {
      // The first sync after the start is backlog: repeat until the bot is live and answers.
      for (let i = 0; i < 50; i++) {
        const id = hs.sendMessage(sender, roomId, body);
        const answer = await hs
          .nextEvent(
            (ev) => ev.sender === bot && ev.txn?.txnId === `pingboard-admin-${Buffer.from(id).toString('base64url')}`,
            400,
          )
          .catch(() => undefined);
        if (answer) return (answer.content as { body: string }).body;
      }
      throw new Error(`no answer to ${body}`);
    };
    t.match(
      await reply('@mallory:gamed.example', '!pingboard exclude example.org I do not like it'),
      /^Only members with power level 50 or more can do that \(you have 0\)\.$/,
    );
    t.equal(
      (await service.app.inject('/api/v1/admin/exclusions')).statusCode,
      404,
      'no HTTP routes without a token, yet the room commands work',
    );
    t.match(
      await reply('@admin:example.org', '!pingboard exclude gamed.example answers its own pings'),
      /^Excluded gamed\.example from the rankings: answers its own pings\./,
    );
    // The room holds no sample, so its table is empty (a 404): the exclusion is read where it is stored.
    t.same(
      (await listExclusions(database.db, roomId)).map((e) => [e.server, e.excludedBy]),
      [['gamed.example', '@admin:example.org']],
    );
    t.match(
      await reply('@admin:example.org', '!pingboard exclude bad|name reason'),
      /^Not done: server: not a Matrix server name/,
    );
    t.match(
      await reply('@admin:example.org', '!pingboard include gamed.example'),
      /^gamed\.example is ranked again\.$/,
    );
    t.match(await reply('@admin:example.org', '!pingboard'), /^!pingboard exclude <server> <reason>/);
  });
});
