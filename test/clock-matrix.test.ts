// Delays measured on one clock (issue 18): probes of one process see each
// other's pings, so each sighting is a one-way delivery time sender server →
// receiver server on the process's monotonic clock, and, beside the two-clock
// figure of the same event, an estimate of the sender server's clock offset.
// End to end: probes on four servers of the test homeserver, one with its
// clock 2 s fast, the service as `pingboard serve` starts it, on both engines.
import t from 'tap';
import { once } from 'node:events';
import { quantileSorted } from 'simple-statistics';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { ConfigError, loadConfig } from '../src/config.ts';
import { createLogger } from '../src/log.ts';
import { watchSent } from '../src/matrix/sdk-internals.ts';
import { matrixServers, offsetEstimate, offsetFlagged, serverOffset } from '../src/stats/one-way.ts';
import { recordOneWaySamples } from '../src/stats/probe-pings.ts';
import { PingLedger } from '../src/probes/sightings.ts';
import { matrixSection, serverMatrixSection, shadeOf } from '../src/render/matrix.ts';
import { startTestHomeserver } from './homeserver/index.ts';
import { forEachEngine, setDatabaseReachable } from './helpers/database.ts';
import { startBotService, TEST_BOT, TEST_BOT_PASSWORD } from './helpers/service.ts';
import { until } from './helpers/until.ts';

const ALIAS = '#ping:bot.example';
/** Federation delay per server; delivery A → B takes delay(A) + delay(B). */
const SERVERS = { 'a.example': 20, 'b.example': 45, 'c.example': 70, 'fast.example': 30 } as const;
type Server = keyof typeof SERVERS;
const FAST_OFFSET_MS = 2000;
const ROUNDS = 6;
const PAIRS = 12;
/**
 * The test homeserver stamps and delivers on the wall clock in whole
 * milliseconds, and the process reads its wall clock in whole milliseconds
 * too: each such reading may be up to 1 ms short of the monotonic one.
 */
const MS_GRANULARITY = 1;
/**
 * Beyond the delivery the homeserver made, a sighting also holds the send's
 * upload and the receiving sync's answer. All four probes ping at once, and
 * the homeserver, the bot, the probes' syncs and the database share this
 * process's event loop: at a load of 14 the medians have run up to 440 ms over
 * the injected delays (the homeserver's own timers late by up to 90 ms of it).
 * This bound still catches the 2 s a wrong clock would add, or a wrong unit;
 * the comment line shows the error, and bench/clocks.bench.ts measures it
 * with the homeserver in a process of its own.
 */
const SAMPLE_SLACK_MS = 1000;

const offsetOf = (server: string) => (server === 'fast.example' ? FAST_OFFSET_MS : 0);
const injected = (from: string, to: string) => SERVERS[from as Server] + SERVERS[to as Server];

t.test(
  'an offset is the one-clock delay less the two-clock one, less half the send round trip, within that half',
  async (t) => {
    // Sent at S = 0, stamped at 3 (on a clock 2000 ahead: 2003), answered at 4, seen at 103 (wall 1103 if wall = mono + 1000).
    const estimate = offsetEstimate({ oneWayMs: 103, twoClockMs: 1103 - (1003 + 2000), sendRttMs: 4 });
    t.same(
      estimate,
      { offsetMs: 2001, boundMs: 2 },
      "the stamp is taken at the round trip's middle: off by 1, within the bound",
    );
    t.same(
      offsetEstimate({ oneWayMs: 50, twoClockMs: 50, sendRttMs: 0 }),
      { offsetMs: 0, boundMs: 0 },
      'clocks that agree',
    );
    t.equal(
      offsetEstimate({ oneWayMs: 50, twoClockMs: 350, sendRttMs: 10 }).offsetMs,
      -305,
      'a clock behind gives a negative offset',
    );

    t.equal(offsetFlagged({ offsetMs: 300, boundMs: 40 }, 250), true, 'beyond bound and threshold');
    t.equal(offsetFlagged({ offsetMs: -300, boundMs: 40 }, 250), true, 'behind counts as much as ahead');
    t.equal(offsetFlagged({ offsetMs: 290, boundMs: 40 }, 250), false, 'exactly bound + threshold is not beyond');
    t.equal(offsetFlagged({ offsetMs: 300, boundMs: 60 }, 250), false, 'a wide bound explains it');
    t.same(serverOffset('x.example', 3, { offsetMs: 10, boundMs: 1 }, 5), {
      server: 'x.example',
      samples: 3,
      offsetMs: 10,
      boundMs: 1,
      flagged: true,
    });

    t.same(
      matrixServers([
        { from: 'b.example', to: 'a.example', medianMs: 1, p90Ms: 1, count: 1 },
        { from: 'b.example', to: 'c.example', medianMs: 1, p90Ms: 1, count: 1 },
      ]),
      ['a.example', 'b.example', 'c.example'],
      'senders and receivers, in name order',
    );
  },
);

t.test('the matrix as HTML: shaded by the slowest pair, a flagged clock marked, names escaped', async (t) => {
  t.same(
    [0, 24, 25, 50, 99, 100].map((m) => shadeOf(m, 100)),
    ['░', '░', '▒', '▓', '█', '█'],
  );
  t.equal(shadeOf(0, 0), '░', 'no division by zero');
  const matrix = {
    servers: ['<b>.example', 'a.example'],
    pairs: [
      { from: 'a.example', to: '<b>.example', medianMs: 40.4, p90Ms: 60, count: 3 },
      { from: '<b>.example', to: 'a.example', medianMs: 80, p90Ms: 90, count: 3 },
    ],
    offsets: [
      serverOffset('a.example', 3, { offsetMs: 2000.4, boundMs: 2.1 }, 250),
      serverOffset('<b>.example', 3, { offsetMs: -1, boundMs: 3 }, 250),
    ],
  };
  const html = matrixSection(matrix);
  t.match(html, '<td title="3 pings, p90 60 ms">▓ 40</td>', 'a.example → <b>.example: half the slowest');
  t.match(html, '<td title="3 pings, p90 90 ms">█ 80</td>');
  t.match(html, '<span class="skew">⚠ +2000 ± 3 ms</span>', 'the fast clock flagged');
  t.match(html, '<td>-1 ± 3 ms</td>', 'the other not');
  t.notMatch(html, '<b>.example', 'server names are escaped');
  const row = serverMatrixSection(matrix, 'a.example');
  t.match(row, /<th class="s">&lt;b&gt;\.example<\/th><td[^>]*>▓ 40<\/td><td[^>]*>█ 80<\/td>/, 'to it and from it');
  t.equal(serverMatrixSection(matrix, 'c.example'), '', 'a server no probe measured has no section');
  t.equal(matrixSection({ servers: [], pairs: [], offsets: [] }), '', 'nor does a window without sightings');
});

t.test('the clock offset threshold is a validated setting', async (t) => {
  t.equal(loadConfig({}).probes.clockOffsetThresholdMs, 250, 'default');
  t.equal(loadConfig({ PINGBOARD_CLOCK_OFFSET_THRESHOLD_MS: '40' }).probes.clockOffsetThresholdMs, 40);
  for (const bad of ['-1', 'soon', '1.5', '3600001']) {
    t.throws(
      () => loadConfig({ PINGBOARD_CLOCK_OFFSET_THRESHOLD_MS: bad }),
      { name: ConfigError.name, message: /^PINGBOARD_CLOCK_OFFSET_THRESHOLD_MS: / },
      `refuses ${bad}`,
    );
  }
});

t.test("a send's answer is stamped when its last byte is read, after it went out", async (t) => {
  const path = '/rooms/!r%3Ahs/send/m.room.message/answer-1';
  const server = createServer((_req, res) => {
    // The answer's body comes in two parts, 100 ms apart: the stamp is the last byte's.
    res.writeHead(200, { 'content-type': 'application/json' });
    res.write('{"event_id":');
    setTimeout(() => res.end('"$e"}'), 100);
  });
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  t.teardown(() => server.close());
  const watch = watchSent(path);
  t.teardown(() => watch.close());
  t.equal(watch.answeredMono, undefined, 'nothing answered yet');
  const response = await fetch(`http://127.0.0.1:${(server.address() as AddressInfo).port}/_matrix/client/v3${path}`, {
    method: 'PUT',
    body: '{}',
  });
  const headersMono = performance.now();
  await response.json();
  t.ok(watch.sentMono! < headersMono, 'sent before the answer began');
  t.ok(watch.answeredMono! > headersMono, 'answered once the whole body was in, not at its headers');
  t.ok(watch.answeredMono! <= performance.now());
});

forEachEngine(t, (t, database) => {
  t.test('a round of many probes is stored whole, past the parameters one statement may carry', async (t) => {
    // 75 probes see each other: 5550 sightings a round, 72,150 parameters in one insert.
    const measurement = { oneWayMs: 30, twoClockMs: 30, sendRttMs: 2 };
    const measuredAt = new Date();
    const samples = Array.from({ length: 75 * 74 }, (_, i) => ({
      roomId: '!r:x',
      pingEventId: `$p${Math.floor(i / 74)}`,
      senderProbe: `p${Math.floor(i / 74)}`,
      senderServer: `s${Math.floor(i / 74)}.example`,
      receiverProbe: `r${i % 74}`,
      receiverServer: `r${i % 74}.example`,
      originTs: measuredAt,
      measuredAt,
      ...measurement,
      ...offsetEstimate(measurement),
    }));
    await recordOneWaySamples(database.db, samples);
    await recordOneWaySamples(database.db, samples.slice(0, 10));
    const { n } = await database.db
      .selectFrom('one_way_samples')
      .select((eb) => eb.fn.countAll().as('n'))
      .executeTakeFirstOrThrow();
    t.equal(Number(n), samples.length, 'every sample once');
  });

  t.test('the ledger: early sightings, repeats, other senders, expired pings, and a database outage', async (t) => {
    const ledger = new PingLedger(database.db, createLogger('silent'), 1000);
    const a = { probeId: 'a', userId: '@probe-a:a.example', server: 'a.example' };
    const b = { probeId: 'b', userId: '@probe-b:b.example', server: 'b.example' };
    const c = { probeId: 'c', userId: '@probe-c:c.example', server: 'c.example' };
    const d = { probeId: 'd', userId: '@probe-d:d.example', server: 'd.example' };
    const seen = (eventId: string, sender: string, arrivedMono: number) => ({
      eventId,
      sender,
      originTs: 1_000_000,
      arrivedMono,
      arrivedMs: 1_000_000 + 60,
    });
    const rows = async () =>
      (
        await database.db
          .selectFrom('one_way_samples')
          .selectAll()
          .orderBy('ping_event_id')
          .orderBy('receiver_probe')
          .execute()
      ).map((r) => [r.ping_event_id, r.sender_server, r.receiver_server, r.one_way_ms]);

    // b sees a's ping before a has the answer to its send request.
    const flight = ledger.sending(a);
    ledger.seen(b, seen('$early', a.userId, 5050));
    ledger.seen(b, seen('$other', a.userId, 5050));
    ledger.seen(a, seen('$early', a.userId, 5050));
    flight.sent({ roomId: '!r:x', eventId: '$early', sendMono: 5000, sendRttMs: 4 });
    ledger.seen(c, seen('$early', a.userId, 5070));
    ledger.seen(b, seen('$early', a.userId, 5090));
    ledger.seen(c, seen('$stranger', '@someone:x.example', 5090));
    await ledger.flush();
    t.same(
      await rows(),
      [
        ['$early', 'a.example', 'b.example', 50],
        ['$early', 'a.example', 'c.example', 70],
      ],
      'the early sighting counts once its event ID is known; a repeat, the sender itself, and messages that are no probe ping do not',
    );
    t.same(
      await database.db
        .selectFrom('one_way_samples')
        .select(['offset_ms', 'offset_bound_ms'])
        .where('receiver_probe', '=', 'b')
        .executeTakeFirstOrThrow(),
      { offset_ms: 50 - 60 - 2, offset_bound_ms: 2 },
      'stored with its offset estimate',
    );

    // A ping older than the ping timeout is forgotten when a newer one is sent.
    ledger.sending(b).sent({ roomId: '!r:x', eventId: '$late', sendMono: 7000, sendRttMs: 2 });
    ledger.seen(d, seen('$early', a.userId, 7100));
    ledger.sending(c).failed();
    ledger.seen(a, seen('$failed', c.userId, 7100));

    // The database goes away (PostgreSQL; PGlite runs in this process): what is measured waits, and is stored once it is back.
    if (database.url) {
      await setDatabaseReachable(database, false);
      t.teardown(() => setDatabaseReachable(database, true));
    }
    ledger.seen(a, seen('$late', b.userId, 7040));
    await ledger.flush();
    if (database.url) {
      await setDatabaseReachable(database, true);
      await ledger.flush();
    }
    t.same(
      await rows(),
      [
        ['$early', 'a.example', 'b.example', 50],
        ['$early', 'a.example', 'c.example', 70],
        ['$late', 'b.example', 'a.example', 40],
      ],
      'the sample measured during the outage is stored afterwards; a forgotten ping and a failed send give none',
    );
  });

  t.test(
    'probes on four servers give all twelve one-way delays on one clock, and find the clock that is 2 s fast',
    async (t) => {
      const hs = await startTestHomeserver({
        servers: {
          'bot.example': { delayMs: 0 },
          ...Object.fromEntries(
            Object.entries(SERVERS).map(([name, delayMs]) => [name, { delayMs, clockOffsetMs: offsetOf(name) }]),
          ),
        },
      });
      t.teardown(() => hs.stop());
      hs.registerUser(TEST_BOT, { password: TEST_BOT_PASSWORD });
      hs.registerUser('@admin:bot.example');
      const probes = Object.keys(SERVERS).map((server) => ({ id: server.split('.')[0]!, server }));
      for (const p of probes) hs.registerUser(`@probe-${p.id}:${p.server}`, { accessToken: `token-${p.id}` });
      const roomId = hs.createRoom('@admin:bot.example', { room_alias_name: 'ping', preset: 'public_chat' });
      const service = await startBotService(t, hs, database, ALIAS, {
        PINGBOARD_PROBES: JSON.stringify(
          probes.map((p) => ({
            id: p.id,
            homeserver_url: hs.url,
            user_id: `@probe-${p.id}:${p.server}`,
            access_token: `token-${p.id}`,
          })),
        ),
        PINGBOARD_PROBE_SCHEDULE: '0 0 1 1 *',
        PINGBOARD_PROBE_JITTER_SECONDS: '0',
        PINGBOARD_PROBE_RESPONDERS: TEST_BOT,
      });
      await service.jobs!.freezeNow();
      const { db } = database;
      const stored = async () =>
        Number(
          (
            await db
              .selectFrom('one_way_samples')
              .select((eb) => eb.fn.countAll().as('n'))
              .executeTakeFirstOrThrow()
          ).n,
        );
      for (let round = 1; round <= ROUNDS; round++) {
        const results = await service.probes!.tick();
        t.equal(
          results.filter((r) => r.outcome === 'answered').length,
          probes.length,
          `round ${round}: every probe pinged`,
        );
        await until(
          `round ${round}: each ping seen by the three other probes`,
          async () => (await stored()) === round * PAIRS || undefined,
          60_000,
        );
      }

      // The test homeserver: each ping stamped on its server's clock, and delivered after delay(A) + delay(B).
      const events = new Map(hs.events(roomId).map((e) => [e.event_id, e]));
      const deliveries = Object.fromEntries(Object.keys(SERVERS).map((s) => [s, hs.deliveries(roomId, s)]));
      const rows = await db.selectFrom('one_way_samples').selectAll().execute();
      t.equal(rows.length, ROUNDS * PAIRS);
      for (const row of rows) {
        const event = events.get(row.ping_event_id)!;
        const label = `${row.sender_server} → ${row.receiver_server}`;
        t.equal(
          event.origin_server_ts - event.sentAt,
          offsetOf(row.sender_server),
          `${label}: origin_server_ts on the sender's clock`,
        );
        t.equal(
          row.origin_ts.getTime(),
          event.origin_server_ts,
          `${label}: the stored origin_server_ts is the event's`,
        );
        // The homeserver counts its delays from when the send request reached it.
        const delivered = deliveries[row.receiver_server]![row.ping_event_id]! - event.requestedAt;
        t.ok(
          delivered >= injected(row.sender_server, row.receiver_server),
          `${label}: delivered after ${delivered} ms ≥ ${injected(row.sender_server, row.receiver_server)}`,
        );
        // No sighting can be faster than the delivery it saw, nor slower than the slack allows.
        t.ok(
          row.one_way_ms >= delivered - MS_GRANULARITY && row.one_way_ms < delivered + SAMPLE_SLACK_MS,
          `${label}: one-way ${row.one_way_ms.toFixed(1)} ms, delivered after ${delivered}`,
        );
        // The two-clock figure is off by the sender's clock; the one-clock figure is not.
        t.ok(
          Math.abs(row.one_way_ms - row.two_clock_ms - offsetOf(row.sender_server)) <=
            row.send_rtt_ms + 2 * MS_GRANULARITY,
          `${label}: two-clock ${row.two_clock_ms} ms = one-way less the offset, within the send's round trip (${row.send_rtt_ms.toFixed(1)} ms)`,
        );
        t.ok(
          Math.abs(row.offset_ms - offsetOf(row.sender_server)) <= row.offset_bound_ms + 2 * MS_GRANULARITY,
          `${label}: offset ${row.offset_ms.toFixed(1)} ± ${row.offset_bound_ms.toFixed(1)} ms holds the injected ${offsetOf(row.sender_server)}`,
        );
      }

      const matrix = (await service.app.inject('/api/v1/matrix')).json();
      t.same(matrix.servers, Object.keys(SERVERS).sort());
      t.equal(matrix.threshold_ms, 250);
      t.equal(matrix.pairs.length, PAIRS, 'every ordered pair');
      const errors: string[] = [];
      for (const pair of matrix.pairs) {
        const label = `${pair.from} → ${pair.to}`;
        const sorted = rows
          .filter((r) => r.sender_server === pair.from && r.receiver_server === pair.to)
          .map((r) => r.one_way_ms)
          .sort((x, y) => x - y);
        t.equal(pair.count, ROUNDS, `${label}: one sample per round`);
        t.ok(Math.abs(pair.median_ms - quantileSorted(sorted, 0.5)) < 1e-9, `${label}: the median of its samples`);
        t.ok(Math.abs(pair.p90_ms - quantileSorted(sorted, 0.9)) < 1e-9, `${label}: the p90 of its samples`);
        errors.push(`${pair.from}→${pair.to} ${(pair.median_ms - injected(pair.from, pair.to)).toFixed(1)}`);
      }
      t.comment(`median error per pair (ms): ${errors.join(', ')}`);
      for (const offset of matrix.offsets) {
        const expected = offsetOf(offset.server);
        t.equal(offset.samples, ROUNDS * 3);
        t.ok(
          Math.abs(offset.offset_ms - expected) <= offset.bound_ms + 2 * MS_GRANULARITY,
          `${offset.server}: offset ${offset.offset_ms.toFixed(1)} ± ${offset.bound_ms.toFixed(1)} ms, injected ${expected}`,
        );
        t.equal(offset.flagged, expected !== 0, `${offset.server}: ${expected === 0 ? 'not ' : ''}flagged`);
      }
      t.comment(
        `offsets (ms): ${matrix.offsets.map((o: { server: string; offset_ms: number; bound_ms: number }) => `${o.server} ${o.offset_ms.toFixed(1)} ± ${o.bound_ms.toFixed(1)}`).join(', ')}`,
      );

      const page = (await service.app.inject('/')).body;
      t.match(page, /<table id="matrix">/, 'the leaderboard page has the heat map');
      const matrixRows = page
        .slice(page.indexOf('<table id="matrix">'))
        .split('</table>')[0]!
        .split('\n')
        .filter((line) => line.startsWith('<tr><th'));
      t.same(
        matrixRows.map((line) => /⚠ \+\d+ ± \d+ ms/.test(line)),
        Object.keys(SERVERS)
          .sort()
          .map((s) => s === 'fast.example'),
        'with the fast clock flagged, and only it',
      );
      const serverPage = (await service.app.inject('/servers/a.example')).body;
      t.equal(
        [...serverPage.matchAll(/<tr><th class="s">(?:b|c|fast)\.example<\/th><td title="\d+ pings/g)].length,
        3,
        'a server page has its row and column',
      );

      // The ranking still rests on the aggregator's two-clock figure: the fast server's negative delays are not ranked.
      const board = (await service.app.inject('/leaderboard.json')).json();
      t.same(board.rows.map((r: { server: string }) => r.server).sort(), ['a.example', 'b.example', 'c.example']);

      // Windows and rooms as the leaderboard takes them.
      t.equal((await service.app.inject('/api/v1/matrix?days=1')).json().pairs.length, PAIRS);
      t.same(
        (await service.app.inject('/api/v1/matrix?week=2026-W01')).json().pairs,
        [],
        'a week without probes has an empty matrix',
      );
      t.equal(
        (await service.app.inject(`/api/v1/matrix?room=${encodeURIComponent(roomId)}`)).json().pairs.length,
        PAIRS,
      );
      const refused = async (query: string, parameter: string) => {
        const response = await service.app.inject(`/api/v1/matrix?${query}`);
        t.equal(response.statusCode, 400, `${query}: 400`);
        t.equal(response.json().parameter, parameter, `${query}: names ${parameter}`);
      };
      await refused('week=2026-W01&days=3', 'week');
      await refused('week=2026-W99', 'week');
      await refused('days=0', 'days');
      await refused('days=1e3', 'days');
      await refused('days=91', 'days');
      const unknown = await service.app.inject('/api/v1/matrix?dayz=3');
      t.equal(unknown.statusCode, 400, 'an unknown parameter is refused, not ignored');
      t.equal((await service.app.inject('/api/v1/matrix?room=!nowhere:x.example')).statusCode, 404);
    },
  );
});
