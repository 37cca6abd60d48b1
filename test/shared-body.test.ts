// Answers made once and shared (src/http/shared-body.ts): pure, no database.
import { text } from 'node:stream/consumers';
import t from 'tap';
import { SharedBodyCache, type SharedBody } from '../src/http/shared-body.ts';

/** A make function that writes what it is told when told, and counts its runs. */
function controlled() {
  const state = { runs: 0, body: undefined as SharedBody | undefined, finish: () => {}, fail: (_err: Error) => {} };
  const make = (body: SharedBody) => {
    state.runs++;
    state.body = body;
    return new Promise<void>((resolve, reject) => {
      state.finish = resolve;
      state.fail = reject;
    });
  };
  return { state, make };
}

t.test('clients asking while an answer is made share it, from its first byte', async (t) => {
  const cache = new SharedBodyCache(60_000, 1 << 20);
  const { state, make } = controlled();
  const first = cache.get('k', 0, make);
  const second = cache.get('k', 0, make);
  t.equal(first, second, 'the same body');
  t.equal(state.runs, 1, 'made once');
  const early = text(first.stream());
  // Text is shared in chunks of 64 kB: this is the first.
  state.body!.write('{"a":');
  state.body!.write('x'.repeat(100_000));
  await first.started();
  const late = cache.get('k', 1, make);
  state.body!.write('}');
  state.finish();
  const expected = `{"a":${'x'.repeat(100_000)}}`;
  t.equal(await early, expected, 'a stream opened before the first byte gets every byte');
  t.equal(await text(late.stream()), expected, 'one opened midway too');
  t.equal(await text(cache.get('k', 2, make).stream()), expected, 'and one after the end, from the cache');
  t.equal(state.runs, 1, 'still made once');
});

t.test('a failure before the first byte is an error to every waiting client, and the next asks again', async (t) => {
  const cache = new SharedBodyCache(60_000, 1 << 20);
  const { state, make } = controlled();
  const body = cache.get('k', 0, make);
  const waiting = [body.started(), cache.get('k', 0, make).started()];
  state.fail(new Error('database is unavailable'));
  for (const started of waiting) await t.rejects(started, /database is unavailable/);
  cache.get('k', 1, make);
  t.equal(state.runs, 2, 'not kept: made again');
});

t.test('answers live for the TTL, within the byte budget', async (t) => {
  const cache = new SharedBodyCache(1000, 10);
  const { state, make } = controlled();
  const finishWith = async (key: string, now: number, bytes: string) => {
    const body = cache.get(key, now, make);
    state.body!.write(bytes);
    state.finish();
    await text(body.stream());
  };
  await finishWith('a', 0, '12345678');
  cache.get('a', 999, make);
  t.equal(state.runs, 1, 'kept within the TTL');
  await finishWith('a', 1000, '12345678');
  t.equal(state.runs, 2, 'made again once it expired');
  await finishWith('b', 1001, '1234');
  cache.get('b', 1002, make);
  t.equal(state.runs, 3, 'the newest is kept');
  await finishWith('a', 1003, '12');
  t.equal(state.runs, 4, 'the oldest was dropped to fit the budget');

  const uncached = new SharedBodyCache(0, 10);
  const body = uncached.get('k', 0, make);
  t.equal(uncached.get('k', 0, make), body, 'with no TTL, an answer is still shared while it is made');
  state.body!.write('x');
  state.finish();
  await text(body.stream());
  uncached.get('k', 0, make);
  t.equal(state.runs, 6, 'and not kept after');
});

t.test('text and bytes already encoded keep their order, in chunks and across them', async (t) => {
  const cache = new SharedBodyCache(60_000, 1 << 20);
  const { state, make } = controlled();
  const body = cache.get('mixed', 0, make);
  const read = text(body.stream());
  const big = Buffer.from('é'.repeat(40_000));
  state.body!.write('[');
  state.body!.write(Buffer.from('"ü",'));
  state.body!.write('"\u2028",');
  state.body!.write(big);
  state.body!.write(']');
  state.finish();
  t.equal(await read, `["ü","\u2028",${'é'.repeat(40_000)}]`);
});

t.test('a small part of a larger buffer is copied into the answer, a large one shared as it is', async (t) => {
  const cache = new SharedBodyCache(60_000, 1 << 20);
  const { state, make } = controlled();
  const body = cache.get('parts', 0, make);
  const whole = Buffer.alloc(64 * 1024, 'a');
  const mostly = Buffer.alloc(8 * 1024, 'b');
  state.body!.write(whole.subarray(0, 5000));
  state.body!.write(mostly.subarray(0, 6000));
  state.finish();
  await body.started();
  // Changed after it was written: the copy keeps what was written, the shared one shows the change.
  whole.fill('x');
  mostly.fill('y');
  const read = await text(body.stream());
  t.equal(read, `${'a'.repeat(5000)}${'y'.repeat(6000)}`);
  t.equal(body.byteLength, 11_000, 'counted as written');
});
