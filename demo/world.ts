// The demo's simulated Matrix world, in a child process of the demo: the
// project's test homeserver hosting the dozen ping servers, the bot's and
// the responders' servers, the ping room, its users pinging on a schedule and
// two echo-style responders.
//
// The test homeserver lives in test/ because it is a test tool; the demo is
// the one other place that needs a Matrix server nobody has to install, and
// it is run from a clone (`npm run demo`), where test/ is present (the
// container image carries neither). It runs here, apart from Pingboard, so
// its federation timers fire on time while Pingboard's embedded database
// keeps the other process busy: the delays on the board are the simulated ones.
//
// Protocol with the parent (IPC): this process sends { kind: 'ready', url }
// once the room is set up and the responders sync; the parent answers 'go'
// (start pinging) once Pingboard's bot syncs, and 'stop' to end.
import { createLogger } from '../src/log.ts';
import { serverOfUserId } from '../src/matrix-ids.ts';
import { startTestHomeserver } from '../test/homeserver/index.ts';
import { startEchoResponder } from './echo.ts';
import {
  BOT,
  FIRST_PING_WITHIN_MS,
  PING_INTERVAL_MS,
  PING_PREFIX,
  PING_SERVERS,
  PROBES,
  RESPONDERS,
  ROOM_ALIAS,
  ROOM_ALIAS_NAME,
  ROOM_CREATOR,
  sampleDelayMs,
  userIdsOf,
  type SimulatedServer,
} from './plan.ts';

export type WorldMessage = { readonly kind: 'ready'; readonly url: string };

// The demo ends this process once Pingboard has stopped, so the bot never sees
// its homeserver vanish: a Ctrl-C, which reaches both processes, is the
// parent's to handle. If the parent dies without a word, its channel closes:
// nothing here outlives it. Everything is in memory, so exiting is stopping.
process.on('SIGINT', () => {});
process.on('SIGTERM', () => {});
process.on('disconnect', () => process.exit(0));
process.on('message', (message) => {
  if (message === 'stop') process.exit(0);
});
// The channel may have closed while the modules loaded, before the listener above.
if (!process.connected) process.exit(0);

// Its only lines are the responders' failures.
const log = createLogger('warn', process.stderr as never).child({ component: 'demo-world' });

const hs = await startTestHomeserver({
  servers: Object.fromEntries([
    [serverOfUserId(BOT.userId)!, { delayMs: BOT.delayMs }],
    ...RESPONDERS.map((r) => [serverOfUserId(r.userId)!, { delayMs: r.delayMs }]),
    ...PING_SERVERS.map((s) => [s.name, { delayMs: s.medianMs }]),
  ]),
});
hs.registerUser(ROOM_CREATOR);
hs.registerUser(BOT.userId, { accessToken: BOT.accessToken });
for (const account of [...RESPONDERS, ...PROBES]) hs.registerUser(account.userId, { accessToken: account.accessToken });
const roomId = hs.createRoom(ROOM_CREATOR, {
  room_alias_name: ROOM_ALIAS_NAME,
  name: 'Ping room (demo)',
  preset: 'public_chat',
});
for (const server of PING_SERVERS) {
  for (const userId of userIdsOf(server)) {
    hs.registerUser(userId);
    hs.join(userId, ROOM_ALIAS);
  }
}
// Pingboard's bot and probes join by themselves, as they do in a real room.
for (const responder of RESPONDERS) hs.join(responder.userId, ROOM_ALIAS);
await Promise.all(
  RESPONDERS.map((r) =>
    startEchoResponder({
      homeserverUrl: hs.url,
      userId: r.userId,
      accessToken: r.accessToken,
      pingPrefix: PING_PREFIX,
      log,
    }),
  ),
);

const between = (min: number, max: number) => min + Math.random() * (max - min);

/** One of the server's users pings, with this ping's own federation delay, then the next ping is planned. */
function pingFrom(server: SimulatedServer): void {
  const users = userIdsOf(server);
  hs.setServer(server.name, { delayMs: sampleDelayMs(server) });
  hs.sendMessage(users[Math.floor(Math.random() * users.length)]!, roomId, PING_PREFIX);
  setTimeout(() => pingFrom(server), between(PING_INTERVAL_MS.min, PING_INTERVAL_MS.max));
}

process.on('message', (message) => {
  if (message !== 'go') return;
  for (const server of PING_SERVERS) setTimeout(() => pingFrom(server), between(0, FIRST_PING_WITHIN_MS));
});
process.send!({ kind: 'ready', url: hs.url } satisfies WorldMessage);
