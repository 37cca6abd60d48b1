// Hostile input, generated: anyone can join the ping room and send anything.
// Thousands of malformed events and hostile names go through the pong reader,
// the pong builder, the renderers, and the running bot; every one must get a
// defined answer, and nothing may reach storage invalid or a page or table
// unescaped.
import t from 'tap';
import { loadConfig } from '../src/config.ts';
import { createLogger } from '../src/log.ts';
import { isValidEventId, isValidServerName, isValidUserId, serverOfUserId } from '../src/matrix-ids.ts';
import {
  buildPong,
  isPongBody,
  MAX_PONG_BODY_LENGTH,
  parseCommand,
  pingsInSync,
  readPongEvent,
} from '../src/matrix/pong.ts';
import { escapeHtml } from '../src/html-escape.ts';
import { renderNewsletterTable } from '../src/render/markdown.ts';
import { renderPingstatHtml } from '../src/render/pingstat.ts';
import { summarisePingstat } from '../src/stats/pingstat-summary.ts';
import { pingstatGroupsOf, type PongsSpec } from './helpers/pingstat.ts';
import { sampleFromRecord, sampleToRecord, type Sample } from '../src/samples/sample.ts';
import { ascending, figuresOfSorted } from '../src/stats/figures.ts';
import { rankServers } from '../src/stats/ranking.ts';
import { start } from '../src/start.ts';
import { startTestHomeserver } from './homeserver/index.ts';
import { connect } from 'node:net';
import { Writable } from 'node:stream';
import pino from 'pino';
import { recordSamples } from '../src/samples/repository.ts';
import { forEachEngine } from './helpers/database.ts';
import { sample } from './helpers/samples.ts';
import { until } from './helpers/until.ts';

/** mulberry32: the same cases on every run, so a failure can be replayed. */
function generator(seed: number) {
  let state = seed;
  const next = () => {
    state = (state + 0x6d2b79f5) | 0;
    let x = Math.imul(state ^ (state >>> 15), 1 | state);
    x = (x + Math.imul(x ^ (x >>> 7), 61 | x)) ^ x;
    return ((x ^ (x >>> 14)) >>> 0) / 2 ** 32;
  };
  const int = (n: number) => Math.floor(next() * n);
  const pick = <T>(items: readonly T[]): T => items[int(items.length)]!;
  return { next, int, pick };
}
type Generator = ReturnType<typeof generator>;

const HOSTILE_PIECES = [
  '|',
  '\n',
  '\r\n',
  '<',
  '>',
  '&',
  '"',
  "'",
  '`',
  '*',
  '_',
  '[',
  ']',
  '(',
  ')',
  '#',
  '!',
  '\\',
  '\u0000',
  '\u001b[31m',
  '\u202e',
  '\u200b',
  '\u01c0' /* ǀ, a pipe look-alike */,
  '\uff5c' /* fullwidth pipe */,
  'm\u0430trix.org' /* Cyrillic а */,
  'matrix.org',
  'example.org:8448',
  ':',
  '@',
  '$',
  ' ',
  '<script>alert(1)</script>',
  '<img src=x onerror=alert(1)>',
  '</td></tr><tr><td>',
  '| 1 | evil.example | 1 |',
  '%0A',
  '&lt;',
  'Pong!',
  ': Pong! (ping ',
  ' took ',
  ' to arrive)',
];

function hostileString(g: Generator, pieces = 6): string {
  let text = '';
  for (let i = 0, n = 1 + g.int(pieces); i < n; i++) text += g.pick(HOSTILE_PIECES);
  return text;
}

function randomValue(g: Generator, depth = 0): unknown {
  switch (g.int(depth > 2 ? 6 : 8)) {
    case 0:
      return null;
    case 1:
      return g.next() < 0.5;
    case 2:
      return g.pick([
        0,
        -0,
        -1,
        1.5,
        376,
        -376,
        2 ** 31,
        2 ** 53 + 1,
        1e308,
        -1e308,
        Number.NaN,
        Number.POSITIVE_INFINITY,
      ]);
    case 3:
      return String(g.pick([376, -5, 1e21, 0.1]));
    case 4:
    case 5:
      return hostileString(g);
    case 6:
      return Array.from({ length: g.int(4) }, () => randomValue(g, depth + 1));
    default:
      return Object.fromEntries(
        Array.from({ length: g.int(4) }, () => [hostileString(g, 2), randomValue(g, depth + 1)]),
      );
  }
}

const VALID_SENDER = '@echo:bot.example';

/** A pong that is valid, or valid but for one or two fields. */
function pongLikeContent(g: Generator): Record<string, unknown> {
  const valid = buildPong({
    roomId: '!room:example.org',
    pingEventId: `$ping${g.int(1000)}`,
    pinger: '@alice:example.org',
    text: hostileString(g, 3),
    delayMs: g.int(5000),
  });
  const content: Record<string, unknown> = JSON.parse(JSON.stringify(valid));
  for (let i = 0, n = g.int(3); i < n; i++) {
    const field = g.pick(['msgtype', 'body', 'pong', 'pong.ms', 'pong.from', 'pong.ping', 'format']);
    if (field.startsWith('pong.') && typeof content['pong'] === 'object' && content['pong'] !== null) {
      (content['pong'] as Record<string, unknown>)[field.slice(5)] = randomValue(g);
    } else {
      content[field] = randomValue(g);
    }
  }
  return content;
}

// The aggregator's pattern as Python reads it: `.` is anything but a newline, `$` also matches before a final newline.
const AGGREGATOR_PONG_BODY = /^@[^\n]+:[^\n]+: Pong! \(ping ("[^\n]+" )?took [^\n]+ to arrive\)\n?$/;

t.test("the pong body matcher accepts exactly what the aggregator's pattern accepts", async (t) => {
  const g = generator(1);
  const parts = ['@', 'a', ':', 'b', ': Pong! (ping ', '"', '" took ', 'took ', 'x', ' to arrive)', '\n', ' ', '" '];
  let matching = 0;
  let differing = 0;
  for (let i = 0; i < 50_000; i++) {
    // Built around the shape of a real pong, then cut and spliced, so both answers are common.
    let body = `@${g.pick(['', 'a', 'a:b', ':'])}:${g.pick(['', 'b', ':'])}: Pong! (ping ${g.pick(['', '"q" ', '"" ', '"'])}took ${g.pick(['', 'x', '5 ms'])} to arrive)`;
    for (let k = 0, n = g.int(3); k < n; k++) {
      const at = g.int(body.length + 1);
      body =
        g.next() < 0.5
          ? body.slice(0, at) + g.pick(parts) + body.slice(at)
          : body.slice(0, at) + body.slice(at + 1 + g.int(4));
    }
    const expected = AGGREGATOR_PONG_BODY.test(body);
    if (expected) matching++;
    if (isPongBody(body) !== expected) differing++;
  }
  t.equal(differing, 0, 'the same answer for every generated body');
  t.ok(matching > 2_000 && matching < 48_000, `both answers are exercised (${matching} of 50000 match)`);
  t.equal(
    isPongBody('@a:b.org: Pong! (ping "hi\nthere" took 5 ms to arrive)'),
    false,
    'quoted words with a newline: not a pong to the aggregator',
  );
  t.equal(
    isPongBody('@a:b.org: Pong! (ping "hi\rthere\u2028" took 5 ms to arrive)\n'),
    true,
    'other line breaks, and one final newline, are',
  );
  t.equal(isPongBody('@a:b.org: Pong! (ping took 5 ms to arrive)\n\n'), false);
  t.equal(
    isPongBody(`${'@a:b: Pong! (ping '.repeat(60)}took 5 ms to arrive)`),
    false,
    'longer than any real pong: refused',
  );
  t.ok(`${'@a:b: Pong! (ping '.repeat(60)}took 5 ms to arrive)`.length > MAX_PONG_BODY_LENGTH);
  // Bodies that make the aggregator's regular expression backtrack for seconds (a 64 kB event holds them).
  for (const body of [
    `@${':'.repeat(65_000)}`,
    `@a:${': Pong! (ping took '.repeat(3000)}`,
    `@${'a:'.repeat(30_000)}: Pong! (ping "`,
  ]) {
    t.equal(isPongBody(body), false);
    t.equal(
      readPongEvent(
        {
          roomId: '!r:example.org',
          sender: VALID_SENDER,
          ts: Date.now(),
          content: { msgtype: 'm.notice', body, pong: { ms: 1, from: 'a.example', ping: '$p' } },
        },
        new Set(),
      ).kind,
      'rejected',
    );
  }
});

t.test('generated pongs: no exception, and every accepted one is a valid sample', async (t) => {
  const g = generator(2);
  const kinds = { sample: 0, rejected: 0, untrusted: 0 };
  const invalid: unknown[] = [];
  for (let i = 0; i < 20_000; i++) {
    const content = g.next() < 0.2 ? randomValue(g) : pongLikeContent(g);
    const sender = g.next() < 0.9 ? VALID_SENDER : hostileString(g);
    const trusted = g.next() < 0.1 ? new Set(['@other:bot.example']) : new Set<string>();
    const reading = readPongEvent(
      {
        roomId: '!room:example.org',
        sender,
        ts: Date.UTC(2026, 10, 20),
        content: (typeof content === 'object' && content !== null ? content : { body: content }) as Record<
          string,
          unknown
        >,
      },
      trusted,
    );
    kinds[reading.kind]++;
    if (reading.kind !== 'sample') continue;
    const s = reading.sample;
    const ok =
      isValidServerName(s.pingServer) &&
      isValidEventId(s.pingEventId) &&
      isValidServerName(s.responderServer) &&
      Number.isInteger(s.delayMs) &&
      Math.abs(s.delayMs) <= 86_400_000 &&
      s.responder === sender &&
      sampleFromRecord(sampleToRecord(s)).ok;
    if (!ok) invalid.push(s);
  }
  t.same(invalid, [], 'every accepted pong passes the same checks as imported samples');
  t.ok(
    kinds.sample > 1000 && kinds.rejected > 1000 && kinds.untrusted > 100,
    `all outcomes exercised: ${JSON.stringify(kinds)}`,
  );
});

t.test('generated pings: the pong is well formed whatever the words and the pinger', async (t) => {
  const g = generator(3);
  for (let i = 0; i < 5_000; i++) {
    const body = g.next() < 0.7 ? `!ping ${hostileString(g, 8)}` : hostileString(g, 8);
    const command = parseCommand(body, '!ping');
    if (command?.kind !== 'ping') continue;
    const pinger = g.next() < 0.5 ? '@alice:example.org' : `@${hostileString(g, 3)}:example.org`;
    const pong = buildPong({
      roomId: "!room'<x>:example.org",
      pingEventId: `$ev${hostileString(g, 2)}`,
      pinger,
      text: command.text,
      delayMs: g.int(100_000) - 1000,
    });
    // Exactly the two links of the echo format, and no other markup.
    const tags = pong.formatted_body.match(/<[^>]*>/g) ?? [];
    if (
      tags.length !== 4 ||
      !tags[0]!.startsWith("<a href='https://matrix.to/#/") ||
      tags[1] !== '</a>' ||
      tags[3] !== '</a>'
    ) {
      t.fail(`markup injected: ${JSON.stringify(pong.formatted_body)}`);
      return;
    }
    // As with the echo bot's pongs, a newline in the quoted words (or the pinger) hides the pong from the aggregator.
    if (
      isPongBody(pong.body) === pong.body.includes('\n') ||
      pong.pong.from !== pinger.slice(pinger.indexOf(':') + 1)
    ) {
      t.fail(
        `${pong.body.includes('\n') ? 'readable despite a newline' : 'not readable'} as a pong: ${JSON.stringify(pong.body)}`,
      );
      return;
    }
  }
  t.pass('5000 generated pings');
});

t.test("commands match in any case, as echo's framework lowers them; a longer word is no command", async (t) => {
  t.same(parseCommand('!PiNg some Words', '!ping'), { kind: 'ping', text: 'some Words' });
  t.same(parseCommand('!ECHO Say This', '!ping'), { kind: 'echo', text: 'Say This' });
  t.same(parseCommand('!P hi', '!p'), { kind: 'ping', text: 'hi' });
  t.same(parseCommand('!pong', '!PONG'), { kind: 'ping', text: '' }, 'a configured prefix in capitals matches too');
  t.equal(parseCommand('!Pingpong', '!ping'), undefined);
  t.equal(parseCommand('!echoes x', '!ping'), undefined);
});

t.test(
  'pings read straight from sync responses: exactly the well-formed ones, whatever else the response holds',
  async (t) => {
    const WATCHED = '!ping:example.org';
    const BOT = '@pingboard:bot.example';
    const message = (fields: Record<string, unknown>) => ({
      type: 'm.room.message',
      event_id: '$ok',
      sender: '@alice:example.org',
      origin_server_ts: 1_000,
      content: { msgtype: 'm.text', body: '!ping hello' },
      ...fields,
    });
    const sync = (events: unknown[], roomId = WATCHED) => ({
      next_batch: 's1',
      rooms: { join: { [roomId]: { timeline: { events } } } },
    });
    const read = (response: unknown) => pingsInSync(response, (roomId) => roomId === WATCHED, BOT, '!ping');
    t.same(read(sync([message({})])), [
      {
        roomId: WATCHED,
        eventId: '$ok',
        sender: '@alice:example.org',
        pingServer: 'example.org',
        ts: 1_000,
        text: 'hello',
        // No unsigned.age in this event: recorded as unknown, never guessed.
        ageMs: null,
      },
    ]);
    t.same(
      read(
        sync([
          message({ content: { msgtype: 'm.text', body: '!Ping Hello' } }),
          message({ event_id: '$loud', content: { msgtype: 'm.text', body: '!PING' } }),
        ]),
      ).map((p) => [p.eventId, p.text]),
      [
        ['$ok', 'Hello'],
        ['$loud', ''],
      ],
      'the command in any case, as echo answers it; the words as written',
    );
    t.same(
      read(
        sync([
          message({
            content: { msgtype: 'm.text', body: '!ping', 'm.relates_to': { rel_type: 'm.thread', event_id: '$root' } },
          }),
        ]),
      )[0]?.threadRoot,
      '$root',
      'a ping in a thread names its root',
    );
    const rootless = read(
      sync([
        message({
          content: { msgtype: 'm.text', body: '!ping', 'm.relates_to': { rel_type: 'm.thread', event_id: 'no-id' } },
        }),
      ]),
    );
    t.same(
      rootless.map((p) => [p.eventId, p.threadRoot]),
      [['$ok', undefined]],
      'a root that is no event ID is no thread: the ping stands, answered in the room',
    );
    const passedOver: Record<string, unknown> = {
      'a notice': message({ content: { msgtype: 'm.notice', body: '!ping' } }),
      'an edit': message({ content: { msgtype: 'm.text', body: '!ping', 'm.new_content': { body: '!ping' } } }),
      'an edit by relation': message({
        content: { msgtype: 'm.text', body: '!ping', 'm.relates_to': { rel_type: 'm.replace' } },
      }),
      "the bot's own": message({ sender: BOT }),
      'a longer command': message({ content: { msgtype: 'm.text', body: '!pingpong' } }),
      'a state event': message({ state_key: '' }),
      'another type': message({ type: 'm.room.topic' }),
      'no timestamp': message({ origin_server_ts: '1000' }),
      'an infinite timestamp': message({ origin_server_ts: Number.POSITIVE_INFINITY }),
      'a sender that is no user ID': message({ sender: 'alice' }),
      'an event ID that is none': message({ event_id: 'ok' }),
      'a body that is no string': message({ content: { msgtype: 'm.text', body: ['!ping'] } }),
      'no content': message({ content: null }),
    };
    for (const [what, event] of Object.entries(passedOver)) t.same(read(sync([event])), [], what);
    t.same(read(sync([message({})], '!other:example.org')), [], 'a room not watched');
    for (const response of [
      null,
      'text',
      [],
      { rooms: [] },
      { rooms: { join: null } },
      { rooms: { join: { [WATCHED]: { timeline: { events: {} } } } } },
    ]) {
      t.same(read(response), [], `a response of ${JSON.stringify(response)}`);
    }

    // Generated: valid pings among hostile events; exactly the valid ones come out, in order.
    const g = generator(11);
    let found = 0;
    for (let round = 0; round < 300; round++) {
      const expected: string[] = [];
      const events = Array.from({ length: 1 + g.int(20) }, (_, i) => {
        if (g.next() < 0.3) {
          expected.push(`$valid${round}.${i}`);
          return message({
            event_id: `$valid${round}.${i}`,
            content: { msgtype: 'm.text', body: `!ping ${hostileString(g, 4)}`.replace(/^!ping\S/, '!ping ') },
          });
        }
        const event = message({ event_id: `$other${round}.${i}` });
        const field = g.pick([
          'type',
          'event_id',
          'sender',
          'origin_server_ts',
          'content',
          'content.msgtype',
          'content.body',
          'state_key',
        ]);
        if (field.startsWith('content.')) (event.content as Record<string, unknown>)[field.slice(8)] = randomValue(g);
        else (event as Record<string, unknown>)[field] = randomValue(g);
        return g.next() < 0.1 ? randomValue(g) : event;
      });
      const pings = read(sync(events));
      for (const ping of pings) {
        if (
          !isValidUserId(ping.sender) ||
          ping.pingServer !== serverOfUserId(ping.sender) ||
          !isValidEventId(ping.eventId) ||
          ping.sender === BOT ||
          parseCommand(`!ping ${ping.text}`, '!ping')?.kind !== 'ping'
        ) {
          t.fail(`not a ping: ${JSON.stringify(ping)}`);
          return;
        }
      }
      const valid = pings.map((p) => p.eventId).filter((id) => id.startsWith('$valid'));
      if (JSON.stringify(valid) !== JSON.stringify(expected)) {
        t.fail(`round ${round}: ${JSON.stringify(valid)} instead of ${JSON.stringify(expected)}`);
        return;
      }
      found += valid.length;
    }
    t.ok(found > 500, `${found} generated pings found among hostile events`);
  },
);

function hostileSample(g: Generator, i: number): Sample {
  const measuredAt = new Date(Date.UTC(2026, 10, 20, 12) + i);
  return {
    roomId: '!room:example.org',
    pingEventId: `$p${i}`,
    pingServer: hostileString(g, 4) + i,
    pinger: null,
    responder: `@echo:${hostileString(g, 2)}`,
    responderServer: hostileString(g, 2),
    delayMs: 10 + g.int(5000),
    pingTs: measuredAt,
    measuredAt,
    source: 'pong',
    rttMs: null,
  };
}

/** `|` that separate cells: not escaped by an odd run of backslashes. */
function cellSeparators(row: string): number {
  let count = 0;
  for (let i = 0; i < row.length; i++) {
    if (row[i] !== '|') continue;
    let slashes = 0;
    for (let j = i - 1; j >= 0 && row[j] === '\\'; j--) slashes++;
    if (slashes % 2 === 0) count++;
  }
  return count;
}

t.test('hostile server names cannot break the newsletter table or the HTML table', async (t) => {
  const g = generator(4);
  // Storage never holds such names (they fail validation at every door); the renderers hold even if one got through.
  const samples = Array.from({ length: 400 }, (_, i) => hostileSample(g, i));
  const figures = samples.map((s) => ({
    server: s.pingServer,
    ...figuresOfSorted([s.delayMs].sort(ascending)),
    samples: 1,
    pings: 1,
    responders: [],
  }));
  const ranked = rankServers(
    figures.sort((a, b) => (a.server < b.server ? -1 : 1)),
    1,
  );
  const table = renderNewsletterTable(ranked, 1000);
  const lines = table.split('\n');
  t.equal(lines.length, ranked.length + 3, 'one line per server, the header, the alignment row and the final newline');
  t.same(
    lines.slice(2, -1).filter((row) => cellSeparators(row) !== 4),
    [],
    'every row has exactly three cells',
  );
  t.notMatch(table, /(^|[^\\])[<>]/, 'no markup');

  const spec: PongsSpec = {};
  for (const s of samples) {
    const byResponder = spec[s.pingServer] ?? {};
    spec[s.pingServer] = byResponder;
    const byPing = byResponder[s.responderServer] ?? {};
    byResponder[s.responderServer] = byPing;
    byPing[s.pingEventId] = s.delayMs;
  }
  const html = renderPingstatHtml(summarisePingstat(pingstatGroupsOf(spec), '<b>disclaimer</b>'), '!room:example.org');
  t.notMatch(html, /<script|<img|<\/td><\/tr><tr>/i, 'no injected element');
  for (const s of samples.slice(0, 50))
    t.ok(html.includes(escapeHtml(s.pingServer)), `${JSON.stringify(s.pingServer)} shown as text`);
});

forEachEngine(t, (t, database) => {
  t.test(
    'a thousand malformed events through the running bot: it stays up, answers the next ping, stores only valid samples',
    async (t) => {
      const hs = await startTestHomeserver({
        servers: { 'bot.example': { delayMs: 0 }, 'example.org': { delayMs: 30 } },
      });
      t.teardown(() => hs.stop());
      const bot = '@pingboard:bot.example';
      hs.registerUser(bot, { password: 'pw' });
      const senders = ['@alice:example.org', '@mallory:example.org', '@echo:example.org'];
      for (const user of senders) hs.registerUser(user);
      const roomId = hs.createRoom(senders[0]!, { room_alias_name: 'ping', preset: 'public_chat' });
      for (const user of senders.slice(1)) hs.join(user, roomId);
      const service = await start(
        loadConfig({
          ...(database.url ? { DATABASE_URL: database.url } : {}),
          PINGBOARD_PORT: '0',
          PINGBOARD_ROOMS: '#ping:example.org',
          PINGBOARD_HOMESERVER_URL: hs.url,
          PINGBOARD_BOT_USER_ID: bot,
          PINGBOARD_BOT_PASSWORD: 'pw',
          PINGBOARD_ANSWERS_PER_MINUTE: '10000',
          PINGBOARD_CACHE_SECONDS: '0',
        }),
        createLogger('silent'),
        { database },
      );
      t.teardown(() => service.stop());
      const live = async () => {
        for (let i = 0; i < 100; i++) {
          const id = hs.sendMessage(senders[0]!, roomId, '!ping are you there');
          const answered = await hs
            .nextEvent((ev) => ev.sender === bot && (ev.content as { pong?: { ping?: string } }).pong?.ping === id, 500)
            .then(
              () => true,
              () => false,
            );
          if (answered) return;
        }
        throw new Error('the bot never answered');
      };
      await live();

      const g = generator(5);
      for (let i = 0; i < 1000; i++) {
        const roll = g.next();
        const content =
          roll < 0.4
            ? pongLikeContent(g)
            : roll < 0.7
              ? { msgtype: 'm.text', body: `!ping ${hostileString(g, 6)}` }
              : roll < 0.72
                ? {
                    msgtype: 'm.notice',
                    body: `@a:${': Pong! (ping took '.repeat(3000)}`,
                    pong: { ms: 5, from: 'example.org', ping: '$x' },
                  }
                : randomValue(g);
        hs.sendEvent(
          g.pick(senders),
          roomId,
          'm.room.message',
          (typeof content === 'object' && content !== null && !Array.isArray(content)
            ? content
            : { body: content }) as Record<string, unknown>,
        );
      }
      await live();
      await service.writer!.flushed();

      const rows = await database.db.selectFrom('samples').selectAll().execute();
      t.ok(rows.length > 100, `${rows.length} samples stored`);
      t.same(
        rows.filter(
          (r) =>
            !isValidServerName(r.ping_server) ||
            !isValidServerName(r.responder_server) ||
            !isValidEventId(r.ping_event_id),
        ),
        [],
        'every stored sample has valid names',
      );
      const pongs = hs.events(roomId).filter((ev) => ev.sender === bot && ev.type === 'm.room.message');
      t.same(
        pongs.filter(
          (ev) => ((ev.content as { formatted_body?: string }).formatted_body?.match(/<[^>]*>/g) ?? []).length !== 4,
        ),
        [],
        'every pong carries exactly the two links of the echo format',
      );
      const table = await (await fetch(`${service.url}/leaderboard.md`)).text();
      t.match(
        table,
        /^\|Rank\|Hostname\|Median MS\|\n\|:---:\|:---:\|:---:\|\n(\|\d+\|[A-Za-z0-9.:-]+\|\d+(\.\d+)?\|\n)+$/,
        'the newsletter table is intact',
      );
    },
  );

  t.test(
    'hostile requests over HTTP: refused with 4xx, never a 5xx or a stack, nothing valid lost or misread',
    async (t) => {
      const lines: string[] = [];
      const log = pino(
        { level: 'info' },
        new Writable({
          write(chunk, _encoding, done) {
            lines.push(String(chunk));
            done();
          },
        }),
      );
      const TOKEN = 'operator-token-0123456789abcdef0123';
      const ROOM = '!room:example.org';
      await recordSamples(database.db, [
        sample({
          roomId: ROOM,
          pingServer: 'evil\u202eexample.org',
          pingEventId: '$bidi',
          delayMs: 300,
          measuredAt: new Date(),
        }),
      ]);
      const service = await start(
        loadConfig({
          ...(database.url ? { DATABASE_URL: database.url } : {}),
          PINGBOARD_PORT: '0',
          PINGBOARD_ROOMS: ROOM,
          PINGBOARD_CACHE_SECONDS: '0',
          PINGBOARD_ADMIN_TOKEN: TOKEN,
        }),
        log as never,
        { database },
      );
      t.teardown(() => service.stop());
      const auth = { authorization: `Bearer ${TOKEN}` };

      // A reason must be text: ajv would have coerced 1 to "1".
      for (const reason of [1, true, null, ['x'], { a: 1 }]) {
        const res = await service.app.inject({
          method: 'PUT',
          url: '/api/v1/admin/exclusions/a.example',
          headers: auth,
          payload: { reason },
        });
        t.equal(res.statusCode, 400, `reason ${JSON.stringify(reason)}: 400`);
        t.equal(res.json().parameter, 'reason');
      }
      t.same(
        (await service.app.inject({ url: '/api/v1/admin/exclusions', headers: auth })).json().exclusions,
        [],
        'nothing stored',
      );

      // A body in another charset is refused, not read as UTF-8.
      const utf16 = await service.app.inject({
        method: 'PUT',
        url: '/api/v1/admin/exclusions/a.example',
        headers: { ...auth, 'content-type': 'application/json; charset=utf-16le' },
        payload: Buffer.from(JSON.stringify({ reason: 'clock ahead' }), 'utf16le'),
      });
      t.equal(utf16.statusCode, 415);
      const utf8 = await service.app.inject({
        method: 'PUT',
        url: '/api/v1/admin/exclusions/a.example',
        headers: { ...auth, 'content-type': 'application/json; charset=UTF-8' },
        payload: JSON.stringify({ reason: 'clock ahead' }),
      });
      t.equal(utf8.statusCode, 200, 'UTF-8, named or not, is read');

      // Every HTML answer has a policy and nosniff; bidi controls never reach a page.
      for (const url of ['/', `/rooms/${encodeURIComponent(ROOM)}/stats`]) {
        const res = await service.app.inject({ url, headers: { accept: 'text/html' } });
        t.equal(res.statusCode, 200, url);
        t.match(res.headers['content-type'], /^text\/html/);
        t.match(res.headers['content-security-policy'], /default-src 'none'/, `${url}: a Content-Security-Policy`);
        t.equal(res.headers['x-content-type-options'], 'nosniff', `${url}: nosniff`);
      }
      const page = (await service.app.inject('/')).body;
      t.notMatch(page, /[\u202a-\u202e\u2066-\u2069]/, 'no bidi control on the page');
      t.match(page, 'evil\ufffdexample.org', 'the name is shown, its control replaced');

      // Generated hostile values in every parameter of every page and API route: a defined 4xx at worst.
      // (The pingstat-compatible routes' max_age and min_age are read as pingstat reads them: issue 8.)
      const g = generator(15);
      const HOSTILE_VALUES = [
        '1e400',
        '-1e400',
        '0x10',
        '1.5',
        '-0',
        '+5',
        ' 5',
        'NaN',
        'Infinity',
        '',
        '9'.repeat(400),
        '%00',
        '\u202e',
        '<script>',
        '2026-W99',
        '[]',
        '{}',
      ];
      const routes: Array<[string, string[]]> = [
        ['/', ['room', 'week', 'page']],
        ['/leaderboard.md', ['room', 'week', 'days', 'limit']],
        ['/leaderboard.json', ['room', 'week', 'days', 'limit']],
        ['/api/v1/weeks', ['room']],
        ['/api/v1/weeks/2026-W47', ['room']],
        ['/api/v1/servers/example.org', ['room', 'weeks', 'samples']],
        ['/servers/example.org', ['room', 'week']],
        [`/rooms/${encodeURIComponent(ROOM)}/stats.json`, ['room_id']],
      ];
      const failures: string[] = [];
      for (let i = 0; i < 600; i++) {
        const [path, params] = g.pick(routes);
        const query = params
          .filter(() => g.next() < 0.6)
          .map((p) => `${p}=${encodeURIComponent(g.next() < 0.7 ? g.pick(HOSTILE_VALUES) : hostileString(g, 3))}`);
        const url = `${path}${query.length ? `?${query.join('&')}` : ''}`;
        const res = await service.app.inject(url);
        if (res.statusCode >= 500 || /\n\s+at /.test(res.body))
          failures.push(`${url}: ${res.statusCode} ${res.body.slice(0, 200)}`);
      }
      t.same(failures, [], '600 generated requests: no 5xx, no stack trace');

      // A client that hangs up halfway through an upload is no database outage.
      const socket = connect(Number(new URL(service.url).port), '127.0.0.1');
      await new Promise((resolve) => socket.once('connect', resolve));
      socket.write(
        `PUT /api/v1/admin/exclusions/b.example HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer ${TOKEN}\r\nContent-Type: application/json\r\nContent-Length: 1000\r\n\r\n{"reason": "`,
      );
      socket.destroy();
      await until(
        'the server to see the connection close',
        () =>
          new Promise<boolean>((resolve) =>
            service.app.server.getConnections((_err: Error | null, n: number) => resolve(n === 0)),
          ),
      );
      t.equal((await fetch(`${service.url}/healthz`)).status, 200, 'still serving');
      t.same(
        lines.filter((line) => /database unavailable|"level":50/.test(line)),
        [],
        'not logged as the database being unavailable, nor as an error',
      );
    },
  );
});
