// Answers made once and shared (src/http/shared-body.ts), ranges of spilled files among them: no database.
import { once } from 'node:events';
import { readdirSync, readlinkSync, realpathSync, rmSync, truncateSync } from 'node:fs';
import { createServer, get } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { Writable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { buffer, text } from 'node:stream/consumers';
import t from 'tap';
import { SharedBodyCache, type SharedBody } from '../src/http/shared-body.ts';
import { SpillDirectory } from '../src/spill.ts';
import type { Test } from './helpers/database.ts';
import { until } from './helpers/until.ts';

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
  const cache = new SharedBodyCache(60_000, 1 << 20, 1 << 30);
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
  const cache = new SharedBodyCache(60_000, 1 << 20, 1 << 30);
  const { state, make } = controlled();
  const body = cache.get('k', 0, make);
  const waiting = [body.started(), cache.get('k', 0, make).started()];
  state.fail(new Error('database is unavailable'));
  for (const started of waiting) await t.rejects(started, /database is unavailable/);
  cache.get('k', 1, make);
  t.equal(state.runs, 2, 'not kept: made again');
});

t.test('answers live for the TTL, within the byte budget', async (t) => {
  const cache = new SharedBodyCache(1000, 10, 1 << 30);
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

  const uncached = new SharedBodyCache(0, 10, 1 << 30);
  const body = uncached.get('k', 0, make);
  t.equal(uncached.get('k', 0, make), body, 'with no TTL, an answer is still shared while it is made');
  state.body!.write('x');
  state.finish();
  await text(body.stream());
  uncached.get('k', 0, make);
  t.equal(state.runs, 6, 'and not kept after');
});

t.test('an expired answer is made again even when the clock was set back meanwhile', async (t) => {
  const cache = new SharedBodyCache(1000, 1 << 20, 1 << 30);
  const { state, make } = controlled();
  const finishWith = async (key: string, now: number) => {
    const body = cache.get(key, now, make);
    state.body!.write('x');
    state.finish();
    await text(body.stream());
  };
  await finishWith('made first, expires last', 1000);
  await finishWith('made after the clock went back', 500);
  cache.get('made after the clock went back', 1600, make);
  t.equal(state.runs, 3, 'expired at 1500: made again, though an older answer lives');
});

t.test('text and bytes already encoded keep their order, in chunks and across them', async (t) => {
  const cache = new SharedBodyCache(60_000, 1 << 20, 1 << 30);
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
  const cache = new SharedBodyCache(60_000, 1 << 20, 1 << 30);
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

/** A spill directory holding `bytes`, patterned so that a piece out of place shows. */
function spilled(t: Test, length: number) {
  const spill = new SpillDirectory(tmpdir(), 1 << 30, (err) => t.fail(String(err)), 0);
  t.teardown(() => spill.close());
  const bytes = Buffer.alloc(length);
  for (let i = 0; i < length; i++) bytes[i] = (i * 7 + (i >> 13)) % 251;
  return { bytes, file: spill.keep(bytes)! };
}

/** A finished body of one range: the whole of a spilled file of `length` bytes. */
async function oneRangeBody(t: Test, length: number) {
  const { bytes, file } = spilled(t, length);
  const cache = new SharedBodyCache(60_000, 1 << 20, 1 << 30);
  const body = cache.get('one range', 0, async (made) => made.write({ file, start: 0, end: bytes.length }));
  await body.started();
  return { bytes, file, body };
}

t.test('ranges of spilled files join an answer in order, read for each client', async (t) => {
  const { bytes, file } = spilled(t, 3_000_000);
  const cache = new SharedBodyCache(60_000, 1 << 20, 1 << 30);
  const { state, make } = controlled();
  const body = cache.get('ranges', 0, make);
  const early = buffer(body.stream());
  state.body!.write('[');
  state.body!.write({ file, start: 1_000_000, end: 2_500_000 });
  state.body!.write(',');
  state.body!.write({ file, start: 10, end: 300_001 });
  state.body!.write({ file, start: 5, end: 5 });
  state.body!.write(']');
  state.finish();
  const expected = Buffer.concat([
    Buffer.from('['),
    bytes.subarray(1_000_000, 2_500_000),
    Buffer.from(','),
    bytes.subarray(10, 300_001),
    Buffer.from(']'),
  ]);
  t.ok((await early).equals(expected), 'a client reading while it is made');
  t.ok((await buffer(cache.get('ranges', 1, make).stream())).equals(expected), 'one reading it from the cache');
  t.equal(body.byteLength, 3, 'the ranges are not counted as kept in memory');
  t.equal(state.runs, 1, 'made once');
});

t.test('a piece is read into a buffer used again only once the destination has written it', async (t) => {
  const { bytes, body } = await oneRangeBody(t, 2_000_000);
  // As a socket does, the destination holds each buffer it was handed until its write's callback, and sends
  // what the buffer holds then: a buffer read into again before that would send the wrong bytes.
  const sent: Buffer[] = [];
  const buffers = new Set<ArrayBufferLike>();
  const destination = new Writable({
    highWaterMark: 16 * 1024,
    write(chunk: Buffer, _encoding, callback) {
      buffers.add(chunk.buffer);
      setTimeout(() => {
        sent.push(Buffer.from(chunk));
        callback();
      }, 1);
    },
  });
  await pipeline(body.stream(destination), destination);
  t.ok(Buffer.concat(sent).equals(bytes), 'every byte as it was');
  t.ok(buffers.size < 8, `a few buffers for ${sent.length} pieces (${buffers.size})`);
});

t.test('clients over HTTP, slow and fast, get every byte of a spilled range', async (t) => {
  const { bytes, file } = spilled(t, 4_000_000);
  const cache = new SharedBodyCache(60_000, 1 << 20, 1 << 30);
  const body = cache.get('http', 0, async (made) => {
    made.write('<');
    made.write({ file, start: 0, end: bytes.length });
    made.write('>');
  });
  await body.started();
  const server = createServer((_request, response) => {
    pipeline(body.stream(response), response).catch(() => {});
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  t.teardown(() => server.close());
  const { port } = server.address() as AddressInfo;
  const expected = Buffer.concat([Buffer.from('<'), bytes, Buffer.from('>')]);
  /** Reads the answer, pausing after each chunk until the next turn of the event loop (or at once). */
  const fetchBody = (slow: boolean) =>
    new Promise<Buffer>((resolve, reject) => {
      get({ port, host: '127.0.0.1', path: '/' }, (response) => {
        const chunks: Buffer[] = [];
        response.on('data', (chunk: Buffer) => {
          chunks.push(chunk);
          if (slow) {
            response.pause();
            setImmediate(() => response.resume());
          }
        });
        response.on('end', () => resolve(Buffer.concat(chunks)));
        response.on('error', reject);
      }).on('error', reject);
    });
  const [slow, fast, other] = await Promise.all([fetchBody(true), fetchBody(false), fetchBody(true)]);
  t.ok(slow.equals(expected), 'a slow client');
  t.ok(fast.equals(expected), 'a fast one beside it');
  t.ok(other.equals(expected), 'and another slow one');
});

t.test('a spilled file gone: the client reading it fails, and the body is made again for the next', async (t) => {
  const { file } = spilled(t, 300_000);
  const cache = new SharedBodyCache(60_000, 1 << 20, 1 << 30);
  const { state, make } = controlled();
  const body = cache.get('gone', 0, make);
  state.body!.write({ file, start: 0, end: file.length });
  state.finish();
  await body.started();
  rmSync(file.path);
  await t.rejects(buffer(body.stream()), { code: 'ENOENT' }, 'the client reading it gets an error, not a short answer');
  t.equal(body.broken, true, 'the body is broken');
  t.equal(file.unreadable, true, 'and the file marked, for the text to be written again');
  t.not(cache.get('gone', 1, make), body, 'the next client gets a new body');
  t.equal(state.runs, 2, 'made again');
});

t.test('a client gone midway leaves the file whole, and no file open', async (t) => {
  // More than the loopback's socket buffers hold (4 MB sent, 32 MB received at most here): the answer
  // cannot be all sent, and its file closed, before the client has its first bytes.
  const { bytes, file, body } = await oneRangeBody(t, 48_000_000);
  /** Whether this process has the file open, by its descriptors' targets. */
  const fileOpen = () =>
    readdirSync('/proc/self/fd').some((fd) => {
      try {
        return readlinkSync(`/proc/self/fd/${fd}`) === realpathSync(file.path);
      } catch {
        return false;
      }
    });
  let served: Promise<unknown> = Promise.resolve();
  const server = createServer((_request, response) => {
    served = once(response, 'close');
    pipeline(body.stream(response), response).catch(() => {});
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  t.teardown(() => server.close());
  const { port } = server.address() as AddressInfo;
  await new Promise<void>((resolve, reject) => {
    const request = get({ port, host: '127.0.0.1', path: '/' }, (response) => {
      response.once('data', () => {
        t.ok(fileOpen(), 'the file is open while the answer is read');
        request.destroy();
        resolve();
      });
    }).on('error', (err) => ((err as NodeJS.ErrnoException).code === 'ECONNRESET' ? undefined : reject(err)));
  });
  await served;
  // Its handle is let go of once a read on it is done: waited for, by this process's descriptors.
  await until('the answer to close its file', () => !fileOpen());
  t.equal(file.unreadable, false, 'the file is not taken for lost');
  t.equal(body.broken, false, 'nor the body for broken');
  t.ok((await buffer(body.stream())).equals(bytes), 'the next client reads it whole');
});

t.test('a file cut short fails its client as one gone does', async (t) => {
  const { file, body } = await oneRangeBody(t, 300_000);
  truncateSync(file.path, 1000);
  await t.rejects(buffer(body.stream()), { name: 'TruncatedFileError' });
  t.equal(body.broken, true);
  t.equal(file.unreadable, true);
});

t.test('bodies keeping spilled files are dropped past their own budget, the oldest first', async (t) => {
  const { file } = spilled(t, 300_000);
  // Memory enough for everything; the files' budget for one body of 200 kB.
  const cache = new SharedBodyCache(60_000, 1 << 20, 250_000);
  const { state, make } = controlled();
  const finish = async (key: string, now: number) => {
    const body = cache.get(key, now, make);
    state.body!.write({ file, start: 0, end: 200_000 });
    state.finish();
    await buffer(body.stream());
    return body;
  };
  const older = await finish('older', 0);
  t.equal(older.fileBytes, 200_000, 'counted');
  await finish('newer', 1);
  t.equal(state.runs, 2);
  cache.get('newer', 2, make);
  t.equal(state.runs, 2, 'the newest is kept');
  cache.get('older', 3, make);
  t.equal(state.runs, 3, 'the oldest was dropped');
});
