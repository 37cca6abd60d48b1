// Backfill: the pure parts (--since, progress lines, coverage bookkeeping)
// directly; the walk against the project's test homeserver over real HTTP,
// with the real matrix-js-sdk, on both database engines; and the command
// through the real entry point, in a child process.
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import t from 'tap';
import { backfillRoom, backfillRooms } from '../src/backfill/backfill.ts';
import { coverageKey, mergeSpan, nextWalk, parseCoverage, type Coverage } from '../src/backfill/coverage.ts';
import { emptyCounts, formatProgress, formatReached, formatSummary } from '../src/backfill/progress.ts';
import { parseSince } from '../src/backfill/since.ts';
import { loadConfig, type Config } from '../src/config.ts';
import { openDatabase, type Database } from '../src/db/database.ts';
import { InputError } from '../src/errors.ts';
import { createLogger, type Logger } from '../src/log.ts';
import { createAccountClient } from '../src/matrix/client.ts';
import { buildPong, readPongEvent } from '../src/matrix/pong.ts';
import { predecessorOf } from '../src/matrix/rooms.ts';
import { readStateValue } from '../src/matrix/state.ts';
import { recordSamples } from '../src/samples/repository.ts';
import { renderLeaderboardJson } from '../src/render/leaderboard-json.ts';
import { createStatistics } from '../src/open.ts';
import { start } from '../src/start.ts';
import { RoomRegistry } from '../src/stats/rooms.ts';
import { selectLeaderboard } from '../src/stats/selection.ts';
import { startTestHomeserver, type TestHomeserver } from './homeserver/index.ts';
import { forEachEngine, openTestDatabase, testEngines, type Test } from './helpers/database.ts';
import { runPingboard, servePingboard, startPingboard } from './helpers/process.ts';

const BOT = '@pingboard:bot.example';
const PASSWORD = 'bot-password';
const ALIAS = '#ping:slow.example';
const PINGERS = ['@alice:slow.example', '@bob:medium.example', '@carol:fast.example', '@dave:example.org:8448'];
const ECHO = '@echo:maunium.net';
const ECHO2 = '@echo2:other-bot.example';
const ECHO3 = '@echo3:third.example';
const DAY = 86_400_000;
const silent = createLogger('silent');

/** A logger at info whose lines the test reads. */
function capturingLogger() {
  const lines: Record<string, unknown>[] = [];
  return { lines, log: createLogger('info', { write: (line: string) => void lines.push(JSON.parse(line)) }) };
}

// --- pure parts ---------------------------------------------------------------

t.test('--since: spans, dates and times; anything else is an error naming the option', async (t) => {
  const now = new Date('2026-11-22T20:00:00Z');
  t.equal(parseSince('30d', now).toISOString(), '2026-10-23T20:00:00.000Z');
  t.equal(parseSince('12h', now).toISOString(), '2026-11-22T08:00:00.000Z');
  t.equal(parseSince('2W', now).toISOString(), '2026-11-08T20:00:00.000Z');
  t.equal(parseSince('2026-10-01', now).toISOString(), '2026-10-01T00:00:00.000Z');
  t.equal(parseSince(' 2026-10-01T12:30:00+02:00 ', now).toISOString(), '2026-10-01T10:30:00.000Z');
  for (const [raw, message] of [
    ['yesterday', /^--since: expected a span before now such as 7d/],
    ['30', /^--since: expected a span/],
    ['-3d', /^--since: expected a span/],
    ['0d', /^--since: expected a span from 1h to 3650d, got "0d"/],
    ['4000d', /^--since: expected a span from 1h to 3650d/],
    ['2026-02-31', /^--since: expected a span.*got "2026-02-31"/],
    ['2026-12-01', /^--since: "2026-12-01" is in the future/],
    ['2000-01-01', /^--since: "2000-01-01" is more than ten years ago/],
  ] as const) {
    t.throws(() => parseSince(raw, now), { name: 'InputError', message }, raw);
  }
  t.throws(
    () => parseSince('soon', now, 'PINGBOARD_X'),
    new InputError('PINGBOARD_X', 'x').constructor,
    'names the given option',
  );
});

t.test('progress and summary lines', async (t) => {
  const counts = {
    ...emptyCounts(),
    events: 12_345,
    pongs: 4000,
    stored: 3000,
    duplicate: 1000,
    rejected: 7,
    rooms: 2,
    reachedMs: Date.UTC(2026, 10, 1, 12, 34, 56),
  };
  t.equal(formatReached(undefined), 'nothing yet');
  t.equal(
    formatProgress(counts, 2000),
    '12,345 events scanned, 3,000 samples recorded (1,000 already stored), reached 2026-11-01 12:34 UTC, 6,173 events/s',
  );
  t.equal(formatProgress(emptyCounts(), 0), '0 events scanned, 0 samples recorded, reached nothing yet, 0 events/s');
  t.equal(
    formatSummary(counts, 2500),
    'scanned 12345 events in 2 rooms, pongs 4000, stored 3000, duplicate 1000, malformed 7, reached 2026-11-01 12:34 UTC in 2.5 s',
  );
  t.match(formatSummary({ ...emptyCounts(), rooms: 1 }, 0), /in 1 room,/);
});

t.test('coverage: what is left to walk, merging, and unreadable state', async (t) => {
  const newest = { roomId: '!new', token: null };
  const oldest = { roomId: '!old', token: 't5' };
  t.same(nextWalk({}, 100, 1000, newest), { toMs: 1000, stopMs: 100, position: newest }, 'nothing covered: all of it');
  const covered: Coverage = { covered: { fromMs: 300, toMs: 900, oldest } };
  t.same(nextWalk(covered, 100, 1000, newest), { toMs: 1000, stopMs: 900, position: newest }, 'the newer part first');
  const top = { covered: { fromMs: 300, toMs: 1000, oldest } };
  t.same(
    nextWalk(top, 100, 1000, newest),
    { toMs: 300, stopMs: 100, position: oldest },
    'then the older part, from where it stopped',
  );
  t.equal(nextWalk(top, 300, 1000, newest), undefined, 'nothing left');
  t.equal(
    nextWalk({ covered: { fromMs: null, toMs: 1000, oldest: null } }, 0, 1000, newest),
    undefined,
    'history read to its start',
  );
  t.same(
    nextWalk({ covered: { fromMs: 10, toMs: 50, oldest } }, 100, 1000, newest),
    { toMs: 1000, stopMs: 100, position: newest },
    'covered span older than asked: ignored',
  );
  const pending = { toMs: 1000, stopMs: 100, position: oldest };
  t.same(nextWalk({ ...top, pending }, 500, 2000, newest), pending, 'an interrupted walk goes first');

  t.same(mergeSpan(undefined, { fromMs: 1, toMs: 2, oldest: null }), { fromMs: 1, toMs: 2, oldest: null });
  t.same(mergeSpan({ fromMs: 300, toMs: 900, oldest }, { fromMs: 900, toMs: 1000, oldest: newest }), {
    fromMs: 300,
    toMs: 1000,
    oldest,
  });
  t.same(mergeSpan({ fromMs: 300, toMs: 1000, oldest }, { fromMs: null, toMs: 300, oldest: null }), {
    fromMs: null,
    toMs: 1000,
    oldest: null,
  });
  t.same(
    mergeSpan({ fromMs: 10, toMs: 50, oldest }, { fromMs: 100, toMs: 1000, oldest: newest }),
    { fromMs: 100, toMs: 1000, oldest: newest },
    'disjoint: the newer wins',
  );
  t.same(mergeSpan({ fromMs: 100, toMs: 1000, oldest: newest }, { fromMs: 10, toMs: 50, oldest }), {
    fromMs: 100,
    toMs: 1000,
    oldest: newest,
  });

  t.same(parseCoverage(undefined), {});
  t.same(parseCoverage('not json'), {});
  t.same(parseCoverage('{"covered":{"toMs":"x"},"pending":{"toMs":1}}'), {}, 'malformed parts are dropped');
  t.same(parseCoverage(JSON.stringify({ ...covered, pending })), { ...covered, pending });
  t.equal(coverageKey('!room:x'), 'backfill:!room:x');
});

t.test('predecessors in both shapes of m.room.create', async (t) => {
  t.equal(predecessorOf({ predecessor: { room_id: '!old:x.org', event_id: '$e' } }), '!old:x.org');
  t.equal(predecessorOf({ predecessor: { room_id: '!old' } }), '!old', 'room version 12: no event_id');
  t.equal(predecessorOf({ predecessor: '!older:x.org' }), '!older:x.org', 'a bare room ID');
  t.equal(predecessorOf({ predecessor: { room_id: 'nope' } }), undefined);
  t.equal(predecessorOf({}), undefined);
  t.equal(predecessorOf(undefined), undefined);
});

t.test('one function turns a pong event into a sample or a reason', async (t) => {
  const content = buildPong({
    roomId: '!r:x.org',
    pingEventId: '$p',
    pinger: '@a:b.org',
    text: '',
    delayMs: 120,
  }) as unknown as Record<string, unknown>;
  const event = { roomId: '!r:x.org', sender: ECHO, ts: 1_700_000_000_120, content };
  t.same(readPongEvent(event, new Set()), {
    kind: 'sample',
    sample: {
      roomId: '!r:x.org',
      pingEventId: '$p',
      pingServer: 'b.org',
      pinger: null,
      responder: ECHO,
      responderServer: 'maunium.net',
      delayMs: 120,
      pingTs: new Date(1_700_000_000_000),
      measuredAt: new Date(1_700_000_000_120),
      source: 'pong',
      rttMs: null,
    },
  });
  t.same(readPongEvent(event, new Set([ECHO2])), { kind: 'untrusted' });
  t.match(readPongEvent({ ...event, content: { ...content, pong: { ms: 'x' } } }, new Set()), {
    kind: 'rejected',
    claimsPong: true,
    reason: /pong\.ms/,
  });
  t.match(readPongEvent({ ...event, content: { msgtype: 'm.notice', body: 'hello' } }, new Set()), {
    kind: 'rejected',
    claimsPong: false,
  });
});

t.test('PINGBOARD_BACKFILL_DAYS: 0 by default, validated with its name, only with a homeserver', async (t) => {
  const bot = {
    PINGBOARD_HOMESERVER_URL: 'https://matrix.example.org',
    PINGBOARD_BOT_USER_ID: BOT,
    PINGBOARD_BOT_ACCESS_TOKEN: 'x',
  };
  t.equal(loadConfig(bot).bot!.backfillDays, 0);
  t.equal(loadConfig({ ...bot, PINGBOARD_BACKFILL_DAYS: '7' }).bot!.backfillDays, 7);
  t.throws(() => loadConfig({ ...bot, PINGBOARD_BACKFILL_DAYS: 'week' }), {
    message: 'PINGBOARD_BACKFILL_DAYS: expected an integer from 0 to 365, got "week"',
  });
  t.throws(() => loadConfig({ ...bot, PINGBOARD_BACKFILL_DAYS: '400' }), {
    message: /^PINGBOARD_BACKFILL_DAYS: expected an integer from 0 to 365/,
  });
  t.throws(() => loadConfig({ PINGBOARD_BACKFILL_DAYS: '7' }), {
    message: /^PINGBOARD_BACKFILL_DAYS: .*set PINGBOARD_HOMESERVER_URL too/,
  });
  t.equal(loadConfig({ PINGBOARD_BACKFILL_DAYS: '0' }).bot, undefined);
});

// --- a ping room with years of history, in miniature ---------------------------

interface ExpectedSample {
  readonly roomId: string;
  readonly ping: string;
  readonly server: string;
  readonly responder: string;
  readonly delayMs: number;
  readonly measuredMs: number;
}

interface World {
  readonly hs: TestHomeserver;
  /** Oldest first: the first room, its replacement, and that one's replacement. */
  readonly rooms: readonly string[];
  /** Every sample a reader of the whole history should record. */
  readonly expected: readonly ExpectedSample[];
  /** Messages in the history. */
  readonly events: number;
  /** Adds `cycles` more cycles to the newest room, measured from `fromMs` on; returns their samples. */
  append(cycles: number, fromMs: number): ExpectedSample[];
}

const CYCLE = 10;

/**
 * Ten messages per cycle: a ping; pongs from two bots; a ping nobody answers;
 * a malformed pong; chatter; the first bot's second pong to the same ping (a
 * duplicate: the first counts); the Pingboard bot's own pong; a notice that
 * is no pong; a third bot's pong sent in a thread.
 */
function cycleEvents(roomId: string, c: number, ts0: number, expected: ExpectedSample[]) {
  const pinger = PINGERS[c % PINGERS.length]!;
  const server = pinger.slice(pinger.indexOf(':') + 1);
  const ping = `$ping-${roomId.slice(1, 6)}-${c}`;
  const delays = [50 + ((c * 37) % 400), 60 + ((c * 53) % 700), 40 + ((c * 11) % 300), 70 + ((c * 29) % 500)];
  const pong = (delayMs: number) =>
    buildPong({ roomId, pingEventId: ping, pinger, text: '', delayMs }) as unknown as Record<string, unknown>;
  const events = [
    { sender: pinger, content: '!ping', ts: ts0 },
    { sender: ECHO, content: pong(delays[0]!), ts: ts0 + delays[0]! },
    { sender: ECHO2, content: pong(delays[1]!), ts: ts0 + delays[1]! },
    { sender: pinger, content: '!ping nobody answers this', ts: ts0 + 1000 },
    {
      sender: ECHO2,
      content: {
        msgtype: 'm.notice',
        body: `${pinger}: Pong! (ping took 5 ms to arrive)`,
        pong: { ms: 'five', from: server, ping },
      },
      ts: ts0 + 1001,
    },
    { sender: pinger, content: 'hello there', ts: ts0 + 1002 },
    { sender: ECHO, content: pong(delays[0]! + 500), ts: ts0 + 1003 },
    { sender: BOT, content: pong(delays[2]!), ts: ts0 + delays[2]! },
    { sender: ECHO3, content: { msgtype: 'm.notice', body: 'just a notice' }, ts: ts0 + 1004 },
    {
      sender: ECHO3,
      content: { ...pong(delays[3]!), 'm.relates_to': { rel_type: 'm.thread', event_id: ping } },
      ts: ts0 + delays[3]!,
    },
  ];
  for (const [responder, delayMs] of [
    [ECHO, delays[0]!],
    [ECHO2, delays[1]!],
    [BOT, delays[2]!],
    [ECHO3, delays[3]!],
  ] as const) {
    expected.push({ roomId, ping, server, responder, delayMs, measuredMs: ts0 + delayMs });
  }
  return events;
}

/**
 * Three rooms (two upgrades) holding `cycles` cycles spread evenly from
 * `spanMs` ago to an hour ago. The bot is in none of them: backfill joins.
 */
async function buildWorld(t: Test, cycles: number, spanMs = 30 * DAY): Promise<World> {
  const hs = await startTestHomeserver({ servers: { 'bot.example': { delayMs: 0 } } });
  t.teardown(() => hs.stop());
  hs.registerUser(BOT, { password: PASSWORD });
  for (const user of [...PINGERS, ECHO, ECHO2, ECHO3]) hs.registerUser(user);
  const creator = PINGERS[0]!;
  const first = hs.createRoom(creator, { preset: 'public_chat' });
  const second = hs.createRoom(creator, {
    preset: 'public_chat',
    creation_content: { predecessor: { room_id: first, event_id: '$tombstone' } },
  });
  const third = hs.createRoom(creator, {
    preset: 'public_chat',
    room_alias_name: 'ping',
    creation_content: { predecessor: { room_id: second } },
  });
  const rooms = [first, second, third];
  const stepMs = Math.floor(spanMs / cycles);
  const start = Date.now() - 3_600_000 - cycles * stepMs;
  const expected: ExpectedSample[] = [];
  for (let r = 0; r < 3; r++) {
    const from = Math.floor((cycles * r) / 3);
    const to = Math.floor((cycles * (r + 1)) / 3);
    const events = [];
    for (let c = from; c < to; c++) events.push(...cycleEvents(rooms[r]!, c, start + c * stepMs, expected));
    hs.addHistory(rooms[r]!, events);
    if (r < 2)
      hs.setState(creator, rooms[r]!, 'm.room.tombstone', '', { body: 'upgraded', replacement_room: rooms[r + 1] });
  }
  let next = cycles;
  return {
    hs,
    rooms,
    expected,
    events: cycles * CYCLE,
    append: (count, fromMs) => {
      const added: ExpectedSample[] = [];
      const events = [];
      for (let i = 0; i < count; i++, next++) events.push(...cycleEvents(third, next, fromMs + i * 1000, added));
      hs.addHistory(third, events);
      return added;
    },
  };
}

function configFor(
  hs: TestHomeserver,
  database: { url: string | undefined },
  env: Record<string, string> = {},
): Config {
  return loadConfig({
    ...(database.url ? { DATABASE_URL: database.url } : {}),
    PINGBOARD_PORT: '0',
    PINGBOARD_ROOMS: ALIAS,
    PINGBOARD_HOMESERVER_URL: hs.url,
    PINGBOARD_BOT_USER_ID: BOT,
    PINGBOARD_BOT_PASSWORD: PASSWORD,
    PINGBOARD_CACHE_SECONDS: '0',
    ...env,
  });
}

/** A backfill as the command runs it: the bot's client, the configured rooms. */
async function runBackfill(
  world: Pick<World, 'hs'>,
  database: Database,
  options: {
    since: Date;
    signal?: AbortSignal;
    trusted?: string[];
    onPage?: () => void;
    now?: Date;
    retentionDays?: number;
    log?: Logger;
  },
) {
  const config = configFor(world.hs, { url: undefined });
  const { client } = await createAccountClient(config.bot!, database.db, silent);
  return backfillRooms(config.rooms, {
    client,
    db: database.db,
    log: options.log ?? silent,
    since: options.since,
    trustedResponders: options.trusted ?? [],
    ...(options.now ? { now: options.now } : {}),
    retentionDays: options.retentionDays,
    ...(options.signal ? { signal: options.signal } : {}),
    ...(options.onPage ? { onProgress: options.onPage } : {}),
  });
}

function expectedRow(s: ExpectedSample): string {
  return [
    s.roomId,
    s.ping,
    s.server,
    '',
    s.responder,
    s.responder.slice(s.responder.indexOf(':') + 1),
    s.delayMs,
    new Date(s.measuredMs - s.delayMs).toISOString(),
    new Date(s.measuredMs).toISOString(),
    'pong',
    '',
  ].join('|');
}

async function storedRows(database: Database): Promise<string[]> {
  const rows = await database.db
    .selectFrom('samples')
    .select([
      'room_id',
      'ping_event_id',
      'ping_server',
      'pinger',
      'responder',
      'responder_server',
      'delay_ms',
      'ping_ts',
      'measured_at',
      'source',
      'rtt_ms',
    ])
    .execute();
  return rows.map((r) =>
    [
      r.room_id,
      r.ping_event_id,
      r.ping_server,
      r.pinger ?? '',
      r.responder,
      r.responder_server,
      r.delay_ms,
      r.ping_ts.toISOString(),
      r.measured_at.toISOString(),
      r.source,
      r.rtt_ms ?? '',
    ].join('|'),
  );
}

/** Compares two large sets of rows, reporting the first difference rather than a diff of thousands of lines. */
function sameRows(t: Test, actual: string[], expected: string[], message: string): void {
  const a = [...actual].sort();
  const e = [...expected].sort();
  let first = -1;
  for (let i = 0; i < Math.max(a.length, e.length); i++) {
    if (a[i] !== e[i]) {
      first = i;
      break;
    }
  }
  t.equal(a.length, e.length, `${message}: as many rows as expected`);
  t.same(
    first === -1 ? undefined : { index: first, actual: a[first], expected: e[first] },
    undefined,
    `${message}: the same rows`,
  );
}

const messagesRequests = (hs: TestHomeserver, roomId?: string) =>
  hs.countRequests({ path: roomId ? `/rooms/${encodeURIComponent(roomId)}/messages` : '/messages' });

forEachEngine(t, (t, database) => {
  t.test('50,000 events over two upgrades: every pong as the bot records it; a second run adds nothing', async (t) => {
    const world = await buildWorld(t, 5000);
    t.ok(world.events >= 50_000);
    const first = await runBackfill(world, database, { since: new Date(Date.now() - 40 * DAY) });
    t.equal(first.completed, true);
    sameRows(t, await storedRows(database), world.expected.map(expectedRow), 'after the backfill');
    t.match(first.counts, {
      events: world.events,
      pongs: 4 * 5000 + 5000,
      stored: 4 * 5000,
      duplicate: 5000,
      rejected: 5000,
      rooms: 3,
    });
    t.equal(
      first.counts.reachedMs,
      world.expected[0]!.measuredMs - world.expected[0]!.delayMs,
      'read down to the first ping',
    );
    t.ok(messagesRequests(world.hs) >= 50, 'pages of up to 1,000 events');
    for (const room of world.rooms) t.ok(messagesRequests(world.hs, room) > 0, `read room ${room}`);

    world.hs.clearRequestLog();
    const second = await runBackfill(world, database, { since: new Date(Date.now() - 40 * DAY) });
    t.match(second.counts, { stored: 0 }, 'nothing new');
    t.equal(messagesRequests(world.hs), 1, 'only the newest page is read again: the rest was covered');

    // New pongs after the first run, then a longer window: only the new page and nothing older is read.
    const added = world.append(10, Date.now() - 60_000);
    world.hs.clearRequestLog();
    const third = await runBackfill(world, database, { since: new Date(Date.now() - 60 * DAY) });
    t.match(third.counts, { stored: added.length });
    t.equal(messagesRequests(world.hs), 1, 'the history start was reached before: no older walk');
    sameRows(t, await storedRows(database), [...world.expected, ...added].map(expectedRow), 'after new pongs');
  });

  t.test('--since stops at the right place, and a longer window continues from there', async (t) => {
    const world = await buildWorld(t, 1500);
    const since = new Date(Date.now() - 15 * DAY);
    const result = await runBackfill(world, database, { since });
    t.equal(result.completed, true);
    sameRows(
      t,
      await storedRows(database),
      world.expected.filter((s) => s.measuredMs >= since.getTime()).map(expectedRow),
      'samples since the date',
    );
    t.equal(messagesRequests(world.hs, world.rooms[0]!), 0, 'the first room, older than the date, was not read');
    t.ok(
      result.counts.reachedMs! < since.getTime() && result.counts.reachedMs! > since.getTime() - 3 * DAY,
      'stopped within a page past the date',
    );

    world.hs.clearRequestLog();
    const longer = await runBackfill(world, database, { since: new Date(Date.now() - 25 * DAY) });
    sameRows(
      t,
      await storedRows(database),
      world.expected.filter((s) => s.measuredMs >= Date.now() - 25 * DAY).map(expectedRow),
      'samples of the longer window',
    );
    t.ok(messagesRequests(world.hs, world.rooms[2]!) <= 2, 'the newest room was not walked again');
    t.ok(longer.counts.events < 1500 * CYCLE * 0.6, 'only the part older than the first window was read');
  });

  t.test('a --since further back than the retention keeps: read back to the retention only, saying so', async (t) => {
    const world = await buildWorld(t, 600);
    const now = new Date();
    const keptFrom = now.getTime() - 10 * DAY;
    const { lines, log } = capturingLogger();
    const result = await runBackfill(world, database, {
      since: new Date(now.getTime() - 25 * DAY),
      now,
      retentionDays: 10,
      log,
    });
    t.equal(result.completed, true);
    sameRows(
      t,
      await storedRows(database),
      world.expected.filter((s) => s.measuredMs >= keptFrom).map(expectedRow),
      'the samples the retention keeps, and only those',
    );
    t.ok(
      result.counts.reachedMs! > keptFrom - 3 * DAY,
      'nor was older history read (a page past the retention at most)',
    );
    t.match(
      lines.filter((l) => l['level'] === 40),
      [
        {
          msg: 'the backfill reaches further back than PINGBOARD_RETENTION_DAYS keeps samples: it reads back to the retention only',
          keptFrom: new Date(keptFrom).toISOString(),
          retentionDays: 10,
        },
      ],
    );
  });

  t.test(
    'a walk left by an interrupted run with an older --since records nothing past the retention either',
    async (t) => {
      const world = await buildWorld(t, 600);
      const controller = new AbortController();
      let pages = 0;
      const interrupted = await runBackfill(world, database, {
        since: new Date(Date.now() - 25 * DAY),
        signal: controller.signal,
        onPage: () => {
          if (++pages === 1) controller.abort();
        },
      });
      t.equal(interrupted.completed, false, 'a walk down to 25 days is left pending');
      const now = new Date();
      const keptFrom = now.getTime() - 10 * DAY;
      t.equal(
        (await runBackfill(world, database, { since: new Date(keptFrom), now, retentionDays: 10 })).completed,
        true,
      );
      sameRows(
        t,
        await storedRows(database),
        world.expected.filter((s) => s.measuredMs >= keptFrom).map(expectedRow),
        'the samples the retention keeps, and only those',
      );
    },
  );

  t.test('an interrupted run is continued by the next one, which re-reads at most a page', async (t) => {
    const world = await buildWorld(t, 2000);
    const controller = new AbortController();
    let pages = 0;
    const interrupted = await runBackfill(world, database, {
      since: new Date(Date.now() - 40 * DAY),
      signal: controller.signal,
      onPage: () => {
        if (++pages === 5) controller.abort();
      },
    });
    t.equal(interrupted.completed, false);
    t.ok(interrupted.counts.stored > 0 && interrupted.counts.stored < world.expected.length);
    const saved = parseCoverage(await readStateValue(database.db, coverageKey(world.rooms[2]!)));
    t.ok(saved.pending, 'the position is saved');
    const readBefore = messagesRequests(world.hs);
    world.hs.clearRequestLog();
    const resumed = await runBackfill(world, database, { since: new Date(Date.now() - 40 * DAY) });
    t.equal(resumed.completed, true);
    // The resumed run ends by checking the newest page for pongs sent meanwhile.
    t.equal(interrupted.counts.events + resumed.counts.events, world.events + 1000, 'no other page read twice');
    // 21 pages, 2 refused reads of old rooms before joining them, the page read ahead before the abort, the newest page.
    t.ok(readBefore + messagesRequests(world.hs) <= 21 + 2 + 1 + 1, 'the whole history in about one walk');
    sameRows(t, await storedRows(database), world.expected.map(expectedRow), 'after resuming');
    t.same(parseCoverage(await readStateValue(database.db, coverageKey(world.rooms[2]!))).pending, undefined);
  });

  t.test("a backfill gives the bot's own answers their pongs' times, trusted responders or not", async (t) => {
    const world = await buildWorld(t, 30);
    // The bot answered these pings itself, and measured each 7 ms before its homeserver stamped the pong.
    const own = world.expected.filter((s) => s.responder === BOT);
    await recordSamples(
      database.db,
      own.map((s) => ({
        roomId: s.roomId,
        pingEventId: s.ping,
        pingServer: s.server,
        pinger: PINGERS.find((p) => p.endsWith(`:${s.server}`))!,
        responder: BOT,
        responderServer: 'bot.example',
        delayMs: s.delayMs,
        pingTs: new Date(s.measuredMs - s.delayMs),
        measuredAt: new Date(s.measuredMs - 7),
        source: 'echo',
        rttMs: null,
      })),
    );
    const result = await runBackfill(world, database, { since: new Date(Date.now() - 40 * DAY), trusted: [ECHO] });
    t.equal(result.completed, true);
    const rows = await database.db
      .selectFrom('samples')
      .select(['ping_event_id', 'source', 'measured_at', 'pong_ts'])
      .where('responder', '=', BOT)
      .execute();
    t.equal(rows.length, own.length);
    t.same(
      rows.map((r) => [r.ping_event_id, r.source, r.measured_at.getTime(), r.pong_ts?.getTime()]).sort(),
      own.map((s) => [s.ping, 'echo', s.measuredMs - 7, s.measuredMs]).sort(),
      "each answer keeps its measurement and gains its pong's time",
    );
  });

  t.test('429s and server errors during the walk are waited out; untrusted responders are left out', async (t) => {
    const world = await buildWorld(t, 1000);
    // A bot that answered a ping again much later, pages away: the first pong counts, as live.
    const early = world.expected.find((s) => s.roomId === world.rooms[2] && s.responder === ECHO)!;
    const pinger = PINGERS.find((p) => p.endsWith(`:${early.server}`))!;
    world.hs.addHistory(world.rooms[2]!, [
      {
        sender: ECHO,
        ts: Date.now() - 60_000,
        content: buildPong({
          roomId: world.rooms[2]!,
          pingEventId: early.ping,
          pinger,
          text: '',
          delayMs: 4321,
        }) as unknown as Record<string, unknown>,
      },
    ]);
    const limited = world.hs.inject({ kind: 'rateLimit', retryAfterMs: 50 }, { path: '/messages', times: 3 });
    const failing = world.hs.inject({ kind: 'error', status: 502 }, { path: '/messages', times: 2 });
    const dropped = world.hs.inject({ kind: 'disconnect' }, { path: '/messages', times: 1 });
    const result = await runBackfill(world, database, {
      since: new Date(Date.now() - 40 * DAY),
      trusted: [ECHO, ECHO3],
    });
    t.equal(result.completed, true);
    t.ok(limited.done && failing.done && dropped.done, 'every fault was hit');
    sameRows(
      t,
      await storedRows(database),
      world.expected
        .filter((s) => s.responder === ECHO || s.responder === ECHO3 || s.responder === BOT)
        .map(expectedRow),
      "trusted pongs only, and the bot's own",
    );
  });

  t.test('during a server outage, an interrupt ends the backoff at once; the next run continues', async (t) => {
    const world = await buildWorld(t, 300);
    const outage = world.hs.inject({ kind: 'error', status: 503 }, { path: '/messages', times: 1000 });
    const controller = new AbortController();
    const running = runBackfill(world, database, { since: new Date(Date.now() - 40 * DAY), signal: controller.signal });
    // After the seventh failure the backoff waits 250 ms × 2⁶ = 16 s: the interrupt lands at its start.
    while (outage.hits < 7) await new Promise((r) => setTimeout(r, 10));
    const interrupted = Date.now();
    controller.abort();
    const result = await running;
    t.equal(result.completed, false);
    t.equal(outage.hits, 7, 'no request after the interrupt');
    // Against the 16 s wait, with room for a loaded machine: the distinction, not a speed.
    t.ok(Date.now() - interrupted < 12_000, 'ended long before the 16 s wait would have');
    outage.cancel();
    t.equal((await runBackfill(world, database, { since: new Date(Date.now() - 40 * DAY) })).completed, true);
    sameRows(t, await storedRows(database), world.expected.map(expectedRow), 'all of it after the outage');
  });

  t.test('a room the bot cannot read is reported; the next run tries it again', async (t) => {
    const world = await buildWorld(t, 300);
    // The oldest room becomes invite-only: the bot cannot join it to read it.
    world.hs.setState(PINGERS[0]!, world.rooms[0]!, 'm.room.join_rules', '', { join_rule: 'invite' });
    const result = await runBackfill(world, database, { since: new Date(Date.now() - 40 * DAY) });
    t.equal(result.completed, false);
    t.same(
      result.unreadable.map((u) => u.room),
      [world.rooms[0]],
    );
    sameRows(
      t,
      await storedRows(database),
      world.expected.filter((s) => s.roomId !== world.rooms[0]).map(expectedRow),
      'the readable rooms',
    );
    world.hs.setState(PINGERS[0]!, world.rooms[0]!, 'm.room.join_rules', '', { join_rule: 'public' });
    const again = await runBackfill(world, database, { since: new Date(Date.now() - 40 * DAY) });
    t.equal(again.completed, true);
    sameRows(t, await storedRows(database), world.expected.map(expectedRow), 'every room');
  });

  t.test('the leaderboard after a backfill equals the one from the same pongs recorded live', async (t) => {
    const hs = await startTestHomeserver({
      servers: { 'bot.example': { delayMs: 0 }, 'slow.example': { delayMs: 120 }, 'fast.example': { delayMs: 20 } },
    });
    t.teardown(() => hs.stop());
    hs.registerUser(BOT, { password: PASSWORD });
    for (const user of [...PINGERS, ECHO, ECHO2]) hs.registerUser(user);
    const roomId = hs.createRoom(PINGERS[0]!, { room_alias_name: 'ping', preset: 'public_chat' });
    for (const user of [...PINGERS.slice(1), ECHO, ECHO2]) hs.join(user, roomId, ['slow.example']);
    // The bot only listens here (its ping prefix matches nothing), so every sample is another bot's pong.
    const config = configFor(hs, database, { PINGBOARD_PING_PREFIX: '!not-a-ping' });
    const service = await start(config, silent, { database });
    t.teardown(() => service.stop());
    while (!['PREPARED', 'SYNCING'].includes(service.bot!.client.getSyncState() ?? ''))
      await new Promise((r) => setTimeout(r, 20));
    let expectedPongs = 0;
    for (let i = 0; i < 60; i++) {
      const pinger = PINGERS[i % PINGERS.length]!;
      const ping = hs.sendMessage(pinger, roomId, '!ping');
      for (const [bot, ms] of [
        [ECHO, 30 + ((i * 17) % 300)],
        [ECHO2, 40 + ((i * 23) % 500)],
      ] as const) {
        hs.sendMessage(
          bot,
          roomId,
          buildPong({ roomId, pingEventId: ping, pinger, text: 'x', delayMs: ms }) as unknown as Record<
            string,
            unknown
          >,
        );
        expectedPongs++;
      }
      if (i % 10 === 0)
        hs.sendMessage(
          ECHO,
          roomId,
          buildPong({ roomId, pingEventId: ping, pinger, text: '', delayMs: 9999 }) as unknown as Record<
            string,
            unknown
          >,
        );
      if (i % 7 === 0)
        hs.sendMessage(ECHO2, roomId, {
          msgtype: 'm.notice',
          body: `${pinger}: Pong! (ping took 1 ms to arrive)`,
          pong: { ms: 1.5, from: 'x', ping },
        });
    }
    const deadline = Date.now() + 20_000;
    while (service.bot!.counts.pongsRead < expectedPongs + 6 && Date.now() < deadline)
      await new Promise((r) => setTimeout(r, 20));
    await service.writer!.flushed();
    await service.stop();
    const now = new Date();
    const leaderboard = async () => {
      const board = await selectLeaderboard(
        {
          db: database.db,
          statistics: createStatistics(config, database, { now: () => now }),
          rooms: new RoomRegistry(config.rooms),
        },
        { days: 7 },
      );
      return renderLeaderboardJson(board, 100);
    };
    const live = await storedRows(database);
    const liveBoard = await leaderboard();
    t.equal(live.length, expectedPongs);

    const over = await runBackfill({ hs }, database, { since: new Date(Date.now() - DAY) });
    t.match(
      over.counts,
      { stored: 0, duplicate: expectedPongs + 6 },
      'over what the bot recorded live, nothing is added',
    );

    await database.db.deleteFrom('samples').execute();
    await database.db.deleteFrom('hourly_digests').execute();
    await database.db.deleteFrom('bot_state').where('key', 'like', 'backfill:%').execute();
    const fresh = await runBackfill({ hs }, database, { since: new Date(Date.now() - DAY) });
    t.equal(fresh.counts.stored, expectedPongs);
    sameRows(t, await storedRows(database), live, 'the same samples, field for field');
    t.same(await leaderboard(), liveBoard, 'the same leaderboard');
  });

  t.test('serve backfills the configured days at start without holding up HTTP', async (t) => {
    const world = await buildWorld(t, 600, 14 * DAY);
    const config = configFor(world.hs, database, { PINGBOARD_BACKFILL_DAYS: '7' });
    const before = Date.now() - 7 * DAY;
    const service = await start(config, silent, { database });
    const after = Date.now() - 7 * DAY;
    t.teardown(() => service.stop());
    t.ok(service.backfill, 'started');
    t.equal((await fetch(`${service.url}/healthz`)).status, 200, 'HTTP answers meanwhile');
    const result = await service.backfill!.done;
    t.equal(result?.completed, true);
    await service.writer!.flushed();
    // The live bot records other bots' pongs of its first sync too: the same samples, so no extra rows.
    const unsure = (ms: number) => ms >= before && ms < after;
    const rows = (await storedRows(database)).filter((r) => !unsure(Date.parse(r.split('|')[8]!)));
    sameRows(t, rows, world.expected.filter((s) => s.measuredMs >= after).map(expectedRow), 'the last seven days');
  });

  t.test('stopping serve stops its backfill; the next start continues it', async (t) => {
    const world = await buildWorld(t, 1500, 14 * DAY);
    world.hs.inject({ kind: 'delay', ms: 150 }, { path: '/messages', times: 1000 });
    const config = configFor(world.hs, database, { PINGBOARD_BACKFILL_DAYS: '30' });
    const backfillLines = (lines: Record<string, unknown>[]) =>
      lines.filter((l) => String(l['msg']).startsWith('backfill at start'));
    const firstLog = capturingLogger();
    const service = await start(config, firstLog.log, { database });
    while (messagesRequests(world.hs) < 3) await new Promise((r) => setTimeout(r, 20));
    // Taken before the stop: a stopped service has given up the leader's work, its backfill included.
    const backfill = service.backfill!;
    await service.stop();
    const result = await backfill.done;
    t.equal(result?.completed, false, 'stopped part-way');
    const [stopped, ...others] = backfillLines(firstLog.lines);
    t.same(others, [], 'one line about the run');
    t.match(stopped, {
      level: 30,
      msg: /^backfill at start interrupted by the stop; the next start continues where it stopped$/,
      events: result!.counts.events,
      stored: result!.counts.stored,
      reached: String,
    });
    t.ok(
      result!.counts.events > 0,
      `with how far it got: ${result!.counts.events} events, back to ${stopped!['reached']}`,
    );
    world.hs.clearFaults();
    const secondLog = capturingLogger();
    const again = await start(config, secondLog.log, { database });
    t.teardown(() => again.stop());
    t.equal((await again.backfill!.done)?.completed, true);
    t.match(
      backfillLines(secondLog.lines),
      [{ msg: 'backfill at start finished', completed: true }],
      'a run that ends says so',
    );
    sameRows(t, await storedRows(database), world.expected.map(expectedRow), 'everything after the second start');
  });
});

t.test('backfillRoom reports a room it cannot join as an error of that room', async (t) => {
  const hs = await startTestHomeserver();
  t.teardown(() => hs.stop());
  hs.registerUser(BOT, { password: PASSWORD });
  hs.registerUser('@carol:fast.example');
  const closed = hs.createRoom('@carol:fast.example', { preset: 'private_chat' });
  const database = await openTestDatabase(testEngines()[0]!);
  t.teardown(() => database.destroy());
  const config = configFor(hs, database);
  const { client } = await createAccountClient(config.bot!, database.db, silent);
  const err = await backfillRoom(closed, {
    client,
    db: database.db,
    log: silent,
    since: new Date(Date.now() - DAY),
    trustedResponders: [],
  }).catch((e: unknown) => e);
  t.equal((err as { httpStatus?: number }).httpStatus, 403, 'the join is refused');
  const result = await backfillRooms([closed], {
    client,
    db: database.db,
    log: silent,
    since: new Date(Date.now() - DAY),
    trustedResponders: [],
  });
  t.same(
    result.unreadable.map((u) => u.room),
    [closed],
  );
  t.equal(result.completed, false);
});

// --- the command ------------------------------------------------------------------

const pingboard = (args: string[], env: Record<string, string>) => startPingboard(process.cwd(), args, env);

const SUMMARY =
  /^scanned (\d+) events in (\d+) rooms?, pongs (\d+), stored (\d+), duplicate (\d+), malformed (\d+), reached [\d-]+ [\d:]+ UTC in \d+\.\d s\n$/;

t.test('the command: bad input exits 2 naming it', async (t) => {
  const dir = mkdtempSync(path.join(tmpdir(), 'pingboard-backfill-'));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  const base = { PINGBOARD_DATA_DIR: path.join(dir, 'unused') };
  const withBot = {
    ...base,
    PINGBOARD_HOMESERVER_URL: 'http://127.0.0.1:9',
    PINGBOARD_BOT_USER_ID: BOT,
    PINGBOARD_BOT_ACCESS_TOKEN: 'secret-token',
  };
  const [noBot, badSince, badRoom, noRoom, badDays] = await Promise.all([
    pingboard(['backfill', '--room', ALIAS], base).exited,
    pingboard(['backfill', '--room', ALIAS, '--since', 'last tuesday'], withBot).exited,
    pingboard(['backfill', '--room', 'ping'], withBot).exited,
    pingboard(['backfill'], withBot).exited,
    pingboard(['backfill'], { ...base, PINGBOARD_BACKFILL_DAYS: '3' }).exited,
  ]);
  t.equal(noBot.code, 2);
  t.match(noBot.stderr, /^pingboard: PINGBOARD_HOMESERVER_URL: backfill reads the rooms through the bot's account/);
  t.equal(badSince.code, 2);
  t.equal(
    badSince.stderr,
    'pingboard: --since: expected a span before now such as 7d, 12h or 2w, or a date such as 2026-10-01 (UTC) or an ISO 8601 time, got "last tuesday"\n',
  );
  t.equal(badRoom.code, 2);
  t.match(badRoom.stderr, /^pingboard: --room: expected a room ID/);
  t.equal(noRoom.code, 2);
  t.match(noRoom.stderr, /^pingboard: --room: no room given and PINGBOARD_ROOMS names none/);
  t.equal(badDays.code, 2);
  t.match(badDays.stderr, /^pingboard: PINGBOARD_BACKFILL_DAYS: /);
  for (const r of [noBot, badSince, badRoom, noRoom, badDays]) t.notMatch(r.stderr, 'secret-token');

  // Nothing listens on port 9, and fetch refuses it (a blocked port): a few quick retries, then one line and exit 1.
  const down = await pingboard(['backfill', '--room', ALIAS], withBot).exited;
  t.equal(down.code, 1);
  t.match(
    down.stderr,
    /^backfill failed: homeserver http:\/\/127\.0\.0\.1:9 \(PINGBOARD_HOMESERVER_URL\): fetch failed: bad port \(samples stored so far are kept; the next run continues\)\n$/,
    'the host and the cause, each said once',
  );
  t.notMatch(down.stderr, 'secret-token');
});

for (const engine of testEngines()) {
  t.test(`the command on ${engine}: a full run, a crash and a Ctrl-C, each continued by the next run`, async (t) => {
    const dir = mkdtempSync(path.join(tmpdir(), 'pingboard-backfill-'));
    t.teardown(() => rmSync(dir, { recursive: true, force: true }));
    let url: string | undefined;
    if (engine === 'postgres') {
      const database = await openTestDatabase('postgres');
      t.teardown(() => database.destroy());
      url = database.url;
    }
    const world = await buildWorld(t as Test, 1500);
    const env = {
      ...(url ? { DATABASE_URL: url } : { PINGBOARD_DATA_DIR: path.join(dir, 'data') }),
      PINGBOARD_HOMESERVER_URL: world.hs.url,
      PINGBOARD_BOT_USER_ID: BOT,
      PINGBOARD_BOT_PASSWORD: PASSWORD,
    };
    const args = ['backfill', '--room', ALIAS, '--since', '40d'];
    const slowPages = () => world.hs.inject({ kind: 'delay', ms: 200 }, { path: '/messages', times: 1000 });
    const afterPages = async (n: number) => {
      while (messagesRequests(world.hs) < n) await new Promise((r) => setTimeout(r, 20));
    };

    // A crash: killed outright while reading.
    slowPages();
    const crashed = pingboard(args, env);
    await afterPages(4);
    crashed.child.kill('SIGKILL');
    t.equal((await crashed.exited).signal, 'SIGKILL');
    world.hs.clearFaults();

    // Ctrl-C: stops after the page in hand, says so, exits 130.
    slowPages();
    world.hs.clearRequestLog();
    const interrupted = pingboard(args, env);
    await afterPages(3);
    interrupted.child.kill('SIGINT');
    const stopped = await interrupted.exited;
    t.equal(stopped.code, 130, stopped.stderr);
    t.match(stopped.stderr, /interrupted: the next run continues where this one stopped\n$/);
    t.match(stopped.stdout, SUMMARY);
    world.hs.clearFaults();

    world.hs.clearRequestLog();
    const finished = await pingboard(args, env).exited;
    t.equal(finished.code, 0, finished.stderr);
    const [, events, rooms, , stored] = SUMMARY.exec(finished.stdout)!.map(Number);
    t.ok(events! < world.events, 'continued, not started over');
    t.equal(rooms, 3);
    t.ok(stored! > 0);

    const again = await pingboard(args, env).exited;
    t.equal(again.code, 0);
    t.match(again.stdout, /stored 0,/);

    const database = await openDatabase({ url, dataDir: path.join(dir, 'data') });
    try {
      sameRows(
        t as Test,
        await storedRows(database),
        world.expected.map(expectedRow),
        'after the crash, the Ctrl-C and the last run',
      );
    } finally {
      await database.destroy();
    }

    // What the backfill learnt of the rooms ranks the whole lineage, in an HTTP-only serve and in
    // `pingboard leaderboard` alike, by any of its names, with the room configured or not.
    const [oldest, , current] = world.rooms as [string, string, string];
    const lineagePings = new Set(world.expected.map((s) => s.ping)).size;
    const storage: Record<string, string> = url
      ? { DATABASE_URL: url }
      : { PINGBOARD_DATA_DIR: path.join(dir, 'data') };
    let table: string | undefined;
    for (const rooms of [{}, { PINGBOARD_ROOMS: current }] as Record<string, string>[]) {
      const server = await servePingboard(t as Test, dir, { ...storage, ...rooms });
      const fromHttp = new Map<string, string>();
      for (const room of [ALIAS, current, oldest]) {
        const query = `room=${encodeURIComponent(room)}&days=40`;
        const json = (await (await fetch(`${server.url}/leaderboard.json?${query}`)).json()) as {
          room_ids: string[];
          rows: { pings: number }[];
        };
        t.same(
          json.room_ids,
          world.rooms,
          `${room} (${rooms['PINGBOARD_ROOMS'] ?? 'nothing'} configured): the lineage`,
        );
        t.equal(
          json.rows.reduce((sum, r) => sum + r.pings, 0),
          lineagePings,
          'every ping of the lineage is ranked',
        );
        fromHttp.set(room, await (await fetch(`${server.url}/leaderboard.md?${query}`)).text());
      }
      await server.stop();
      for (const room of [ALIAS, oldest]) {
        const cli = await runPingboard(dir, ['leaderboard', '--room', room, '--days', '40'], { ...storage, ...rooms });
        t.equal(cli.code, 0, cli.stderr);
        t.equal(
          cli.stdout,
          fromHttp.get(room),
          `pingboard leaderboard --room ${room} prints what /leaderboard.md?room=${room} serves`,
        );
      }
      table ??= fromHttp.get(ALIAS);
      t.same([...fromHttp.values()], [table, table, table], 'one table by any name');
    }
  });
}
