// The echo bot's rules, as the deployed echo bot applies them.
import t from 'tap';
import { loadConfig } from '../src/config.ts';
import { SenderRateLimiter } from '../src/matrix/rate-limit.ts';

t.test('the default answer limit answers a ping session in full and bounds a flood', async (t) => {
  const perMinute = loadConfig({ PINGBOARD_HOMESERVER_URL: 'https://hs.example', PINGBOARD_BOT_USER_ID: '@pingboard:hs.example', PINGBOARD_BOT_ACCESS_TOKEN: 'x' }).bot!.answersPerMinute;
  const session = new SenderRateLimiter(perMinute);
  const answered = Array.from({ length: 10 }, (_, i) => session.allow('@alice:a.example', 1_000_000 + i * 1500)).filter(Boolean).length;
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
  t.same([0, 0, 0, 0].map((ms) => limiter.allow('@a:x', ms)), [true, true, true, false], 'three at once, no fourth');
  t.equal(limiter.allow('@a:x', 19_999), false, 'not before a third of a minute');
  t.equal(limiter.allow('@a:x', 20_000), true, 'one back after a third of a minute');
  t.equal(limiter.allow('@a:x', 20_000), false);
  t.same([200_000, 200_000, 200_000, 200_000].map((ms) => limiter.allow('@a:x', ms)), [true, true, true, false], 'a long rest fills the bucket, no further');
  t.equal(limiter.allow('@a:x', 100_000), false, 'a clock that went back earns nothing');
});
