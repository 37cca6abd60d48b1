// The echo bot's rules, as the deployed echo bot applies them: which messages
// are commands (maubot v0.5.2's command handler, after mautrix's reply
// fallback trimming), the pong it sends for each, byte for byte, and how many
// answers a sender gets. The expected values were produced by running the
// real code: the split, strip and trim rules in Python 3.11, and the pongs by
// mautrix-python v0.20.8's serializer with echo.py's `ping_handler` and
// maubot's `MaubotMessageEvent.respond`.
import t from 'tap';
import { loadConfig } from '../src/config.ts';
import { buildPong, commandBody, parseCommand, pingsInSync } from '../src/matrix/pong.ts';
import { SenderRateLimiter } from '../src/matrix/rate-limit.ts';

/** A body as a test name: every character outside printable ASCII escaped (a raw U+2028 ends a TAP line). */
const named = (body: string) =>
  JSON.stringify(body).replace(/[^\x20-\x7e]/g, (c) => `\\u${c.charCodeAt(0).toString(16).padStart(4, '0')}`);

t.test(
  'commands are split as maubot splits them: at the first ASCII space, the rest stripped as Python strips',
  async (t) => {
    // body → [command, text] as maubot hands them to echo's handlers, or null: no command of echo's.
    const table: [string, [string, string] | null][] = [
      ['!ping', ['ping', '']],
      ['!ping hello', ['ping', 'hello']],
      ['!ping  two spaces', ['ping', 'two spaces']],
      ['!ping ', ['ping', '']],
      ['!PiNg Up', ['ping', 'Up']],
      ['!ping\twords', null],
      ['!ping\nwords', null],
      ['!ping\r\nx', null],
      ['!ping\u00a0words', null],
      ['!pingpong', null],
      [' !ping', null],
      ['!ping words\nmore', ['ping', 'words\nmore']],
      ['!ping x\r', ['ping', 'x']],
      ['!ping \u00a0words\u00a0', ['ping', 'words']],
      ['!ping \u3000x\u2028', ['ping', 'x']],
      // Python's whitespace is not JavaScript's: U+001C-U+001F and U+0085 are, U+FEFF is not.
      ['!ping \u001cx\u001f', ['ping', 'x']],
      ['!ping \u0085x', ['ping', 'x']],
      ['!ping \ufeffx', ['ping', '\ufeffx']],
      ['!ping \u200bx', ['ping', '\u200bx']],
      ['!echo', ['echo', '']],
      ['!echo   ', ['echo', '']],
      ['!echo hi', ['echo', 'hi']],
      ['!ECHO  a b ', ['echo', 'a b']],
      ['!echo\thi', null],
    ];
    for (const [body, expected] of table) {
      const command = parseCommand(body, '!ping');
      t.same(command ? [command.kind, command.text] : null, expected, named(body));
    }
  },
);

t.test('a reply is read without its quoted fallback, as mautrix trims it before maubot sees the event', async (t) => {
  const reply = (body: string) => ({
    msgtype: 'm.text',
    body,
    'm.relates_to': { 'm.in_reply_to': { event_id: '$question' } },
  });
  const table: [string, string][] = [
    ['> <@alice:x> hi\n\n!ping', '!ping'],
    ['> <@alice:x> hi\n> more\n\n!ping words', '!ping words'],
    ['> * <@alice:x> edited\n\n!ping', '!ping'],
    ['> <@a:x> q\n!ping', '!ping'],
    ['> <@a:x> q\n> \n\n!ping', '!ping'],
    ['> <@a:x> q\n\n \u00a0!ping x\u00a0', '!ping x'],
    // Only lines that start with "> " go: a bare ">" ends the quote.
    ['> <@alice:x> a\n>\n> b\n\n!ping', '>\n> b\n\n!ping'],
    ['> <@a:x> only', '> <@a:x> only'],
    ['>  <@a:x> q\n\n!ping', '>  <@a:x> q\n\n!ping'],
  ];
  for (const [body, expected] of table) t.equal(commandBody(reply(body)), expected, named(body));
  t.equal(
    commandBody({ msgtype: 'm.text', body: '> <@alice:x> hi\n\n!ping' }),
    '> <@alice:x> hi\n\n!ping',
    'no reply, nothing trimmed',
  );
  t.equal(
    commandBody({ msgtype: 'm.text', body: '> <@alice:x> hi\n\n!ping', 'm.relates_to': { 'm.in_reply_to': {} } }),
    '> <@alice:x> hi\n\n!ping',
    'a reply to no event is none',
  );
  t.equal(commandBody({ msgtype: 'm.text', body: 7 }), undefined);
});

t.test(
  'pings in a sync: replies read without their fallback, each event once however often the sync lists it',
  async (t) => {
    const ping = (eventId: string, content: Record<string, unknown>) => ({
      type: 'm.room.message',
      event_id: eventId,
      sender: '@carol:fast.example',
      origin_server_ts: 1_000,
      content,
    });
    const reply = ping('$reply', {
      msgtype: 'm.text',
      body: '> <@alice:slow.example> who is fast?\n\n!ping me',
      'm.relates_to': { 'm.in_reply_to': { event_id: '$question' } },
    });
    const plain = ping('$plain', { msgtype: 'm.text', body: '!ping' });
    const sync = { rooms: { join: { '!room:example.org': { timeline: { events: [reply, plain, reply, plain] } } } } };
    const pings = pingsInSync(sync, () => true, '@pingboard:bot.example', '!ping');
    t.same(
      pings.map((p) => [p.eventId, p.text]),
      [
        ['$reply', 'me'],
        ['$plain', ''],
      ],
    );
  },
);

t.test(
  "a ping's unsigned.age is read where the sync carries a whole non-negative one, and is null otherwise",
  async (t) => {
    const ping = (eventId: string, unsigned?: unknown) => ({
      type: 'm.room.message',
      event_id: eventId,
      sender: '@carol:fast.example',
      origin_server_ts: 1_000,
      content: { msgtype: 'm.text', body: '!ping' },
      ...(unsigned === undefined ? {} : { unsigned }),
    });
    const events = [
      ping('$local', { age: 42 }),
      ping('$zero', { age: 0 }),
      ping('$federated'),
      ping('$other', { transaction_id: 't' }),
      ping('$negative', { age: -3 }),
      ping('$fraction', { age: 1.5 }),
      ping('$text', { age: '42' }),
      ping('$huge', { age: 2 ** 31 }),
      ping('$notObject', 'age'),
    ];
    const sync = { rooms: { join: { '!room:example.org': { timeline: { events } } } } };
    t.same(
      pingsInSync(sync, () => true, '@pingboard:bot.example', '!ping').map((p) => [p.eventId, p.ageMs]),
      [
        ['$local', 42],
        ['$zero', 0],
        ['$federated', null],
        ['$other', null],
        ['$negative', null],
        ['$fraction', null],
        ['$text', null],
        ['$huge', null],
        ['$notObject', null],
      ],
      'every ping is still answered: a malformed age is only left out',
    );
  },
);

// What echo sends, as mautrix serializes it (keys in this order).
const ECHO_PONGS = {
  thread: String.raw`{"msgtype":"m.notice","body":"@carol:fast.example: Pong! (ping \"from the thread\" took 376 ms to arrive)","m.relates_to":{"rel_type":"m.thread","event_id":"$root","is_falling_back":true,"m.in_reply_to":{"event_id":"$ping"},"from":"fast.example","ms":376},"format":"org.matrix.custom.html","formatted_body":"<a href='https://matrix.to/#/@carol:fast.example'>@carol:fast.example</a>: Pong! (<a href='https://matrix.to/#/!room:example.org/$ping'>ping</a> \"from the thread\" took 376 ms to arrive)","pong":{"ms":376,"from":"fast.example","ping":"$ping"}}`,
  reply: String.raw`{"msgtype":"m.notice","body":"@carol:fast.example: Pong! (ping \"quoted \"words\" & mor\" took 376 ms to arrive)","m.relates_to":{"rel_type":"xyz.maubot.pong","event_id":"$ping","from":"fast.example","ms":376},"format":"org.matrix.custom.html","formatted_body":"<a href='https://matrix.to/#/@carol:fast.example'>@carol:fast.example</a>: Pong! (<a href='https://matrix.to/#/!room:example.org/$ping'>ping</a> \"quoted &quot;words&quot; &amp; mor\" took 376 ms to arrive)","pong":{"ms":376,"from":"fast.example","ping":"$ping"}}`,
  plain: `{"msgtype":"m.notice","body":"@carol:fast.example: Pong! (ping took 376 ms to arrive)","m.relates_to":{"rel_type":"xyz.maubot.pong","event_id":"$ping","from":"fast.example","ms":376},"format":"org.matrix.custom.html","formatted_body":"<a href='https://matrix.to/#/@carol:fast.example'>@carol:fast.example</a>: Pong! (<a href='https://matrix.to/#/!room:example.org/$ping'>ping</a> took 376 ms to arrive)","pong":{"ms":376,"from":"fast.example","ping":"$ping"}}`,
};

t.test(
  "the pong is echo's, byte for byte: in a thread its relation keeps from and ms; a reply's quotes its words without the fallback",
  async (t) => {
    const pings = {
      thread: {
        msgtype: 'm.text',
        body: '!ping from the thread',
        'm.relates_to': {
          rel_type: 'm.thread',
          event_id: '$root',
          is_falling_back: true,
          'm.in_reply_to': { event_id: '$last' },
        },
      },
      reply: {
        msgtype: 'm.text',
        body: '> <@alice:slow.example> who is <fast>?\n\n!ping  quoted "words" & more than twenty',
        'm.relates_to': { 'm.in_reply_to': { event_id: '$question' } },
      },
      plain: { msgtype: 'm.text', body: '!ping' },
    };
    for (const [shape, content] of Object.entries(pings)) {
      const sync = {
        rooms: {
          join: {
            '!room:example.org': {
              timeline: {
                events: [
                  {
                    type: 'm.room.message',
                    event_id: '$ping',
                    sender: '@carol:fast.example',
                    origin_server_ts: 1,
                    content,
                  },
                ],
              },
            },
          },
        },
      };
      const [ping] = pingsInSync(sync, () => true, '@pingboard:bot.example', '!ping');
      t.ok(ping, `${shape}: a ping`);
      const pong = buildPong({
        roomId: ping!.roomId,
        pingEventId: ping!.eventId,
        pinger: ping!.sender,
        text: ping!.text,
        delayMs: 376,
        threadRoot: ping!.threadRoot,
      });
      t.equal(JSON.stringify(pong), ECHO_PONGS[shape as keyof typeof ECHO_PONGS], shape);
    }
  },
);

t.test('the default answer limit answers a ping session in full and bounds a flood', async (t) => {
  const perMinute = loadConfig({
    PINGBOARD_HOMESERVER_URL: 'https://hs.example',
    PINGBOARD_BOT_USER_ID: '@pingboard:hs.example',
    PINGBOARD_BOT_ACCESS_TOKEN: 'x',
  }).bot!.answersPerMinute;
  const session = new SenderRateLimiter(perMinute);
  const answered = Array.from({ length: 10 }, (_, i) => session.allow('@alice:a.example', 1_000_000 + i * 1500)).filter(
    Boolean,
  ).length;
  t.equal(answered, 10, 'ten pings 1.5 s apart: all answered, as echo answers them');

  const flood = new SenderRateLimiter(perMinute);
  let inFirstSecond = 0;
  let inTheMinute = 0;
  for (let ms = 0; ms < 60_000; ms += 50) {
    if (!flood.allow('@flood:b.example', ms)) continue;
    inTheMinute++;
    if (ms < 1000) inFirstSecond++;
  }
  t.equal(inFirstSecond, perMinute, 'twenty pings a second: a burst of the limit');
  t.ok(inTheMinute <= 2 * perMinute, `then no more than the limit a minute (${inTheMinute} in the first minute)`);
  t.ok(flood.allow('@alice:a.example', 1000), 'another sender is not held back');
});

t.test('the answer limit is a token bucket: a sender earns answers back at the limit per minute', async (t) => {
  const limiter = new SenderRateLimiter(3);
  t.same(
    [0, 0, 0, 0].map((ms) => limiter.allow('@a:x', ms)),
    [true, true, true, false],
    'three at once, no fourth',
  );
  t.equal(limiter.allow('@a:x', 19_999), false, 'not before a third of a minute');
  t.equal(limiter.allow('@a:x', 20_000), true, 'one back after a third of a minute');
  t.equal(limiter.allow('@a:x', 20_000), false);
  t.same(
    [200_000, 200_000, 200_000, 200_000].map((ms) => limiter.allow('@a:x', ms)),
    [true, true, true, false],
    'a long rest fills the bucket, no further',
  );
  t.equal(limiter.allow('@a:x', 100_000), false, 'a clock that went back earns nothing');
});
