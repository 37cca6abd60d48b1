// What src/matrix/sdk-internals.ts relies on, checked against the pinned
// matrix-js-sdk and Node's own fetch: each test fails when an upgrade changes
// what the module counts on, before the service silently stops doing it.
//
// First, before the SDK: its modules bind the root logger's methods when they load.
import {
  REQUEST_CREATE,
  REQUEST_TRAILERS,
  SEND_HEADERS,
  clearRelationIndex,
  encodeUri,
  fetchStampingArrival,
  startSyncing,
  stopSyncing,
  unrefSdkRequestTimers,
  withoutCapabilityPolling,
  withParsedJson,
  type Arrival,
} from '../src/matrix/sdk-internals.ts';
import { createServer } from 'node:http';
import { once } from 'node:events';
import type { AddressInfo } from 'node:net';
import { subscribe, unsubscribe } from 'node:diagnostics_channel';
import t from 'tap';
import { createClient, MatrixEvent, MemoryStore, Method, Room } from 'matrix-js-sdk';
import { logger as sdkRootLogger } from 'matrix-js-sdk/lib/logger.js';
import { createLogger } from '../src/log.ts';
import { routeSdkLogs } from '../src/matrix/sdk-logs.ts';
import { startTestHomeserver } from './homeserver/index.ts';
import type { Test } from './helpers/database.ts';
import { until } from './helpers/until.ts';

interface Line {
  level: number;
  library?: string;
  context?: string;
  msg: string;
}

function collectingLogger(context: string): { log: ReturnType<typeof createLogger>; lines: Line[] } {
  const lines: Line[] = [];
  const log = createLogger('debug', { write: (line: string) => lines.push(JSON.parse(line) as Line) }).child({
    context,
  });
  return { log, lines };
}

/** A real Room of the real SDK, fed events as a sync would feed them (no homeserver needed: nothing is requested). */
function roomWithPingAndPong(): { room: Room; ping: MatrixEvent; pong: MatrixEvent } {
  const client = createClient({ baseUrl: 'http://127.0.0.1:9', userId: '@bot:hs' });
  const room = new Room('!r:hs', client, '@bot:hs');
  const ping = new MatrixEvent({
    event_id: '$ping',
    type: 'm.room.message',
    room_id: '!r:hs',
    sender: '@a:hs',
    origin_server_ts: 1,
    content: { msgtype: 'm.text', body: '!ping' },
  });
  const pong = new MatrixEvent({
    event_id: '$pong',
    type: 'm.room.message',
    room_id: '!r:hs',
    sender: '@b:hs',
    origin_server_ts: 2,
    content: { msgtype: 'm.notice', body: 'Pong!', 'm.relates_to': { rel_type: 'xyz.maubot.pong', event_id: '$ping' } },
  });
  return { room, ping, pong };
}

t.test("the SDK's root logger is loglevel's, with a methodFactory its children inherit", async (t) => {
  const root = sdkRootLogger as unknown as { methodFactory?: unknown; rebuild?: unknown; getChild?: unknown };
  t.type(root.methodFactory, 'function');
  t.type(root.rebuild, 'function');
  t.type(root.getChild, 'function');
});

t.test(
  "the SDK's own lines are routed once, for the process: a later client's log context does not take them over",
  async (t) => {
    const service = collectingLogger('service');
    const client = collectingLogger('a probe');
    routeSdkLogs(service.log);
    routeSdkLogs(client.log);
    (sdkRootLogger.getChild('[child]') as unknown as { error(...args: unknown[]): void }).error(
      'it broke',
      new Error('badly'),
    );
    t.same(client.lines, []);
    t.match(
      service.lines,
      [{ level: 40, library: 'matrix-js-sdk', context: 'service', msg: '[child] it broke badly' }],
      "an error as a warning, with its child's name",
    );

    // A module that bound the root's method when it loaded (event-timeline-set.js's debuglog) writes there too.
    const { room, ping } = roomWithPingAndPong();
    await room.addLiveEvents([ping], { addToState: false });
    await room.addLiveEvents([ping], { addToState: false });
    t.match(service.lines.at(-1), {
      level: 20,
      library: 'matrix-js-sdk',
      msg: 'EventTimelineSet.addLiveEvent: ignoring duplicate event $ping',
    });
  },
);

t.test(
  "a room's relation index is the private map the SDK fills from every related event; clearing it empties it",
  async (t) => {
    const { room, ping, pong } = roomWithPingAndPong();
    await room.addLiveEvents([ping, pong], { addToState: false });
    const index = (room.relations as unknown as { relations?: unknown }).relations;
    t.ok(index instanceof Map, 'Room.relations.relations is a Map');
    t.same([...(index as Map<string, unknown>).keys()], ['$ping'], 'keyed by the related event');
    room.resetLiveTimeline(null, null);
    t.equal((index as Map<string, unknown>).size, 1, 'a timeline reset leaves it');
    clearRelationIndex(room);
    t.equal((index as Map<string, unknown>).size, 0);
  },
);

t.test("the deep import of the SDK's path templating resolves and encodes as its requests do", async (t) => {
  t.type(encodeUri, 'function');
  t.equal(
    encodeUri('/rooms/$roomId/send/$type/$txn', { $roomId: '!r:hs', $type: 'm.room.message', $txn: 'a/b' }),
    '/rooms/!r%3Ahs/send/m.room.message/a%2Fb',
  );
});

t.test('the SDK reads a JSON body with json(), so a response parsed once is not parsed again', async (t) => {
  const hs = await startTestHomeserver({ servers: { 'bot.example': { delayMs: 0 } } });
  t.teardown(() => hs.stop());
  const { accessToken } = hs.registerUser('@bot:bot.example');
  const parsedOnce = { next_batch: 'parsed once' };
  const client = createClient({
    baseUrl: hs.url,
    userId: '@bot:bot.example',
    accessToken,
    fetchFn: async (input, init) => withParsedJson(await fetch(input, init), parsedOnce),
  });
  t.equal(
    await client.http.authedRequest(Method.Get, '/sync', { timeout: '0' }),
    parsedOnce,
    'the very object handed over',
  );
});

t.test("the timer the SDK arms for a request's local timeout does not keep the process alive", async (t) => {
  const server = createServer((_req, res) => res.end('{"next_batch":"s1"}'));
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  t.teardown(() => server.close());
  unrefSdkRequestTimers();
  const client = createClient({ baseUrl: `http://127.0.0.1:${(server.address() as AddressInfo).port}` });
  const timersHolding = () => process.getActiveResourcesInfo().filter((r) => r === 'Timeout').length;
  const before = timersHolding();
  const pending = client.http.request(Method.Get, '/sync', undefined, undefined, {
    localTimeoutMs: 60_000,
    priority: undefined,
  });
  t.equal(timersHolding(), before, "its 60 s timer was armed unref'd");
  t.same(await pending, { next_batch: 's1' });
  t.equal(timersHolding(), before, 'nor is it left holding the process once the request has ended');
});

t.test("a started client polls the server's capabilities, unless told not to", async (t) => {
  unrefSdkRequestTimers();
  const hs = await startTestHomeserver({ servers: { 'bot.example': { delayMs: 0 } } });
  t.teardown(() => hs.stop());
  const started = async (userId: string, polling: boolean) => {
    const { accessToken } = hs.registerUser(userId);
    const client = createClient({ baseUrl: hs.url, userId, accessToken });
    if (!polling) withoutCapabilityPolling(client);
    await client.startClient();
    t.teardown(() => client.stopClient());
    return client;
  };
  const polling = await started('@polling:bot.example', true);
  // Stopped once its poll has ended, which leaves no timer armed after the stop.
  await until('the poll to end', () => polling.getCachedCapabilities() !== undefined, 60_000);
  t.equal(hs.countRequests({ path: '/capabilities', userId: '@polling:bot.example' }), 1, 'the SDK polls at start');
  const quiet = await started('@quiet:bot.example', false);
  await until('the first sync', () => quiet.getSyncState() !== null, 60_000);
  t.equal(hs.countRequests({ path: '/capabilities', userId: '@quiet:bot.example' }), 0, 'not this client');
});

t.test(
  'undici announces a request synchronously inside fetch(), its headers going out with the path, and its last byte',
  async (t) => {
    const server = createServer((_req, res) => res.end('{"ok":true}'));
    server.listen(0, '127.0.0.1');
    await once(server, 'listening');
    t.teardown(() => server.close());
    const url = `http://127.0.0.1:${(server.address() as AddressInfo).port}/_matrix/client/v3/sync?since=s1`;

    const seen: { channel: string; request: unknown }[] = [];
    const listeners = [REQUEST_CREATE, SEND_HEADERS, REQUEST_TRAILERS].map((channel) => {
      const listener = (message: unknown) => seen.push({ channel, request: (message as { request: unknown }).request });
      subscribe(channel, listener);
      return () => unsubscribe(channel, listener);
    });
    t.teardown(() => {
      for (const stop of listeners) stop();
    });

    const responding = fetch(url);
    t.same(
      seen.map((s) => s.channel),
      [REQUEST_CREATE],
      'announced before fetch() returned',
    );
    const body = await (await responding).text();
    t.equal(body, '{"ok":true}');
    t.same(
      seen.map((s) => s.channel),
      [REQUEST_CREATE, SEND_HEADERS, REQUEST_TRAILERS],
    );
    t.ok(
      seen.every((s) => s.request === seen[0]!.request),
      'each message names the same request object',
    );
    t.equal(
      (seen[1]!.request as { path?: unknown }).path,
      '/_matrix/client/v3/sync?since=s1',
      "the headers' message carries the path, with its query",
    );

    const arrival: Arrival = { mono: 0, ms: 0 };
    const stamped = await fetchStampingArrival(url, undefined, arrival);
    t.ok(arrival.mono > 0 && arrival.ms > 0, 'the last byte stamped the arrival');
    const stampedAt = arrival.mono;
    await stamped.text();
    t.ok(arrival.mono === stampedAt && arrival.mono <= performance.now(), 'before the body was handed over, and once');
  },
);

/** A homeserver, and the rejections left unhandled while the test runs (a handler here would hide them). */
async function watchedWorld(t: Test) {
  const hs = await startTestHomeserver({ servers: { 'bot.example': { delayMs: 0 } } });
  t.teardown(() => hs.stop());
  const unhandled: unknown[] = [];
  const onUnhandled = (reason: unknown) => unhandled.push(reason);
  process.on('unhandledRejection', onUnhandled);
  t.teardown(() => process.off('unhandledRejection', onUnhandled));
  return { hs, unhandled };
}

/** Node reports a rejection left unhandled once the microtasks after it have run, before the next macrotask. */
async function afterUnhandledReports(): Promise<void> {
  await new Promise((resolve) => setImmediate(resolve));
  await new Promise((resolve) => setImmediate(resolve));
}

t.test(
  "a client stopped while it awaits the server's versions does not sync on: the loop the SDK starts afterwards is stopped",
  async (t) => {
    const { hs, unhandled } = await watchedWorld(t);
    // Held long enough for the stop to come while startClient waits (the SDK does not abort that request).
    const versions = hs.inject({ kind: 'delay', ms: 2000 }, { path: '/versions' });
    const { accessToken } = hs.registerUser('@bot:bot.example');
    const client = createClient({ baseUrl: hs.url, userId: '@bot:bot.example', accessToken });
    withoutCapabilityPolling(client);
    const started = startSyncing(client, {});
    await until('startClient to ask for the versions', () => versions.hits > 0);
    stopSyncing(client);
    await started;
    const syncApi = (client as unknown as { syncApi?: { running?: boolean } }).syncApi;
    t.equal(syncApi, undefined, 'no sync loop left on the stopped client');
    await afterUnhandledReports();
    t.same(unhandled, [], 'nothing left unhandled');
  },
);

t.test(
  'a client stopped while it reads its saved sync token, before its first sync request, leaves no unhandled rejection',
  async (t) => {
    const { hs, unhandled } = await watchedWorld(t);
    // The SDK reads the saved token, gets its filter, then awaits the token before it makes its first sync
    // request (sync.ts): a stop while the token is read is met by a request made afterwards, already aborted,
    // which the stopped loop never awaits.
    let releaseToken = () => {};
    let filterStored = () => {};
    const atTokenWait = new Promise<void>((resolve) => {
      filterStored = resolve;
    });
    class SlowStore extends MemoryStore {
      override getSavedSyncToken(): Promise<string | null> {
        return new Promise((resolve) => {
          releaseToken = () => resolve(null);
        });
      }
      override setFilterIdByName(name: string, id?: string): void {
        super.setFilterIdByName(name, id);
        filterStored();
      }
    }
    const { accessToken } = hs.registerUser('@bot:bot.example');
    const client = createClient({
      baseUrl: hs.url,
      userId: '@bot:bot.example',
      accessToken,
      store: new SlowStore(),
    });
    withoutCapabilityPolling(client);
    await client.startClient();
    await atTokenWait;
    // The filter's continuations are microtasks: after them the SDK waits for the token.
    await new Promise((resolve) => setImmediate(resolve));
    stopSyncing(client);
    releaseToken();
    await afterUnhandledReports();
    t.same(unhandled, [], 'nothing left unhandled');
    t.equal(hs.countRequests({ path: '/sync', userId: '@bot:bot.example' }), 0, 'no sync reached the homeserver');
  },
);

t.test(
  'a client stopped while its first sync request waits on the saved sync leaves no unhandled rejection',
  async (t) => {
    const { hs, unhandled } = await watchedWorld(t);
    // The SDK sends its first /sync, then awaits the store's saved sync before the loop that awaits
    // that request (sync.ts); a store that reads a database is slow enough for a stop to land between.
    let releaseSavedSync = () => {};
    class SlowStore extends MemoryStore {
      override getSavedSync(): ReturnType<MemoryStore['getSavedSync']> {
        return new Promise((resolve) => {
          releaseSavedSync = () => resolve(null);
        });
      }
    }
    const stopped = (userId: string) => {
      const { accessToken } = hs.registerUser(userId);
      const client = createClient({ baseUrl: hs.url, userId, accessToken, store: new SlowStore() });
      withoutCapabilityPolling(client);
      return client;
    };
    const client = stopped('@bot:bot.example');
    await client.startClient();
    await until(
      'the first /sync to be sent',
      () => hs.countRequests({ path: '/sync', userId: '@bot:bot.example' }) > 0 || undefined,
      60_000,
    );
    // Read, never awaited: a handler attached here would hide what the test looks for.
    const syncApi = (client as unknown as { syncApi?: { currentSyncRequest?: unknown } }).syncApi;
    // instanceof, not t.type: tap's assertion would handle the promise.
    t.ok(syncApi?.currentSyncRequest instanceof Promise, 'the pinned SDK keeps the request where stopSyncing looks');
    stopSyncing(client);
    releaseSavedSync();
    // The abort rejects at once.
    await afterUnhandledReports();
    t.same(unhandled, [], 'nothing left unhandled');
  },
);
