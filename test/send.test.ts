// The bot's message sender over real HTTP against the test homeserver: what
// it stores, how it reads error answers, and the waits it takes (as the
// homeserver advises for a 429, as told for an answer that never comes).
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { MatrixError } from 'matrix-js-sdk';
import t from 'tap';
import { advisedWaitMs } from '../src/matrix/retry.ts';
import { createMessageSender, type MessageSender } from '../src/matrix/send.ts';
import type { Test } from './helpers/database.ts';
import { startTestHomeserver, type TestHomeserver } from './homeserver/index.ts';

const BOT = '@bot:bot.example';

async function world(
  t: Test,
  timeoutMs?: number,
): Promise<{ hs: TestHomeserver; roomId: string; sender: MessageSender; waits: number[] }> {
  const hs = await startTestHomeserver({ servers: { 'bot.example': { delayMs: 0 } } });
  t.teardown(() => hs.stop());
  const { accessToken } = hs.registerUser(BOT);
  const roomId = hs.createRoom(BOT);
  const waits: number[] = [];
  // A trailing slash on the homeserver's URL, as operators write it.
  const sender = createMessageSender({
    homeserverUrl: `${hs.url}/`,
    accessToken: () => accessToken,
    onRateLimited: (ms) => waits.push(ms),
    timeoutMs,
  });
  t.teardown(() => sender.close());
  return { hs, roomId, sender, waits };
}

const messagesIn = (hs: TestHomeserver, roomId: string) => hs.events(roomId).filter((e) => e.type === 'm.room.message');

t.test('a message is stored once, however often its transaction is sent', async (t) => {
  const { hs, roomId, sender } = await world(t);
  const content = { msgtype: 'm.notice', body: 'pong & <b>more</b> ✓' };
  const written: number[] = [];
  const first = await sender.send(roomId, content, 'txn/1 with spaces', (mono) => written.push(mono));
  t.equal(written.length, 1, 'told once the request was written');
  const again = await sender.send(roomId, content, 'txn/1 with spaces');
  const stored = messagesIn(hs, roomId);
  t.equal(stored.length, 1);
  t.same([first, again], [stored[0]!.event_id, stored[0]!.event_id], "the stored event's ID, both times");
  t.equal(stored[0]!.sender, BOT);
  t.same(stored[0]!.content, content);
});

t.test('a 429 is waited out as advised, then the message goes through', async (t) => {
  const { hs, roomId, sender, waits } = await world(t);
  hs.inject({ kind: 'rateLimit', retryAfterMs: 120 }, { path: '/send/', times: 2 });
  const written: number[] = [];
  await sender.send(roomId, { msgtype: 'm.notice', body: 'after the wait' }, 'txn-429', (mono) => written.push(mono));
  t.same(waits, [120, 120]);
  t.equal(written.length, 3, 'each request made is told');
  t.ok(written[2]! - written[0]! >= 240, 'the last after both waits');
  t.equal(messagesIn(hs, roomId).length, 1);
});

t.test("error answers are the SDK's errors, with the status that tells a retry from a refusal", async (t) => {
  const { hs, roomId, sender } = await world(t);
  hs.inject({ kind: 'error', status: 403, errcode: 'M_FORBIDDEN', error: 'You may not post here' }, { path: '/send/' });
  const refused = await sender.send(roomId, { msgtype: 'm.notice', body: 'x' }, 'txn-403').then(
    () => undefined,
    (err: unknown) => err,
  );
  t.ok(refused instanceof MatrixError);
  t.match(refused, { httpStatus: 403, errcode: 'M_FORBIDDEN', message: /You may not post here/ });
  hs.inject({ kind: 'error', status: 502 }, { path: '/send/' });
  const failed = await sender.send(roomId, { msgtype: 'm.notice', body: 'x' }, 'txn-502').then(
    () => undefined,
    (err: unknown) => err,
  );
  t.match(failed, { httpStatus: 502 });
  t.equal(messagesIn(hs, roomId).length, 0, 'nothing was stored');
});

t.test('a dropped connection and an answer that never comes fail without an HTTP status', async (t) => {
  const { hs, roomId, sender } = await world(t, 300);
  hs.inject({ kind: 'disconnect' }, { path: '/send/' });
  const dropped = await sender.send(roomId, { msgtype: 'm.notice', body: 'x' }, 'txn-drop').then(
    () => undefined,
    (err: unknown) => err,
  );
  t.ok(
    dropped instanceof Error && (dropped as { httpStatus?: number }).httpStatus === undefined,
    `dropped: ${String(dropped)}`,
  );
  hs.inject({ kind: 'stall' }, { path: '/send/' });
  await t.rejects(
    sender.send(roomId, { msgtype: 'm.notice', body: 'x' }, 'txn-stall'),
    /no answer from the homeserver within 300 ms/,
  );
  await sender.send(roomId, { msgtype: 'm.notice', body: 'y' }, 'txn-after');
  t.equal(messagesIn(hs, roomId).length, 1, 'the next send works');
});

t.test('the wait a 429 advises: retry_after_ms, else Retry-After, else a second; never over a minute', async (t) => {
  t.equal(advisedWaitMs('{"errcode":"M_LIMIT_EXCEEDED","retry_after_ms":250}', '7'), 250, 'the body wins');
  t.equal(advisedWaitMs('{"errcode":"M_LIMIT_EXCEEDED"}', '7'), 7000, 'the header, in seconds');
  t.equal(advisedWaitMs('<html>busy</html>', '2'), 2000, 'a body that is not JSON');
  t.equal(advisedWaitMs('{"retry_after_ms":-5}', null), 1000, 'a negative advice is no advice');
  t.equal(advisedWaitMs('{"retry_after_ms":"soon"}', 'tomorrow'), 1000);
  t.equal(advisedWaitMs('{"retry_after_ms":86400000}', null), 60_000, 'capped');
  t.equal(advisedWaitMs('', '86400'), 60_000, 'capped');
});

t.test('closing the sender ends a send that waits out a rate limit', async (t) => {
  const { hs, roomId, sender, waits } = await world(t);
  hs.inject({ kind: 'rateLimit', retryAfterMs: 60_000 }, { path: '/send/' });
  const sending = sender.send(roomId, { msgtype: 'm.notice', body: 'x' }, 'txn-closed').then(
    () => 'sent',
    (err: unknown) => `failed: ${String(err)}`,
  );
  // The sender reports the wait as it begins it: not when the homeserver has answered, which it may not have read yet.
  while (waits.length === 0) await new Promise((resolve) => setTimeout(resolve, 10));
  sender.close();
  // Were closing to leave it waiting, the send would be tried again after the 60 s and stored.
  t.match(await sending, /^failed: .*closed/);
  t.equal(messagesIn(hs, roomId).length, 0);
});

t.test('closing the sender ends a send that waits for an answer', async (t) => {
  const { hs, roomId, sender } = await world(t);
  const stalled = hs.inject({ kind: 'stall' }, { path: '/send/' });
  const sending = sender.send(roomId, { msgtype: 'm.notice', body: 'x' }, 'txn-stalled').then(
    () => 'sent',
    (err: unknown) => err,
  );
  while (stalled.hits === 0) await new Promise((resolve) => setTimeout(resolve, 10));
  sender.close();
  // Were closing to leave it waiting, the send would fail on its 30 s answer timeout instead.
  t.match(await sending, { name: 'AbortError', cause: { message: 'the message sender was closed' } });
});

t.test('a redirect fails the send with where it points, for the log', async (t) => {
  const redirecting = http.createServer((request, response) => {
    response.writeHead(308, { location: `https://matrix.example.org${request.url}` });
    response.end();
  });
  await new Promise<void>((resolve) => redirecting.listen(0, '127.0.0.1', resolve));
  t.teardown(() => redirecting.close());
  const { port } = redirecting.address() as AddressInfo;
  const sender = createMessageSender({
    homeserverUrl: `http://127.0.0.1:${port}/base`,
    accessToken: () => 'token',
    onRateLimited: () => {},
  });
  t.teardown(() => sender.close());
  const failed = await sender.send('!room:example.org', { msgtype: 'm.notice', body: 'x' }, 'txn').then(
    () => undefined,
    (err: unknown) => err,
  );
  t.match(failed, {
    httpStatus: 308,
    message:
      'the homeserver redirected the send (308) to https://matrix.example.org/base/_matrix/client/v3/rooms/!room%3Aexample.org/send/m.room.message/txn: set the homeserver URL to where it points',
  });
});
