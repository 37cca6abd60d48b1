// What `pingboard serve` writes on stdout: its log, one JSON object a line,
// whatever the libraries it runs want to say.
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import t from 'tap';
import { startTestHomeserver } from './homeserver/index.ts';
import { testEngines } from './helpers/database.ts';
import { PROCESS_TIMEOUT_MS, servePingboard } from './helpers/process.ts';
import { until } from './helpers/until.ts';

const dir = mkdtempSync(path.join(tmpdir(), 'pingboard-logs-'));
t.teardown(() => rmSync(dir, { recursive: true, force: true }));

t.test(
  "serve writes nothing but JSON lines on stdout: the SDK's line about a duplicate event goes through the log, at debug",
  { skip: !testEngines().includes('pglite') && 'PINGBOARD_TEST_ENGINES excludes pglite' },
  async (t) => {
    const bot = '@pingboard:bot.example';
    const pinger = '@carol:fast.example';
    const hs = await startTestHomeserver({
      servers: { 'bot.example': { delayMs: 0 }, 'fast.example': { delayMs: 10 } },
    });
    t.teardown(() => hs.stop());
    hs.registerUser(bot, { password: 'bot-password' });
    hs.registerUser(pinger);
    const roomId = hs.createRoom(pinger, { room_alias_name: 'ping', preset: 'public_chat' });
    hs.sendMessage(pinger, roomId, 'hello before the bot came');
    // Every sync lists its events twice, as Synapse once sent one: the SDK says it ignores the second copy.
    const repeated = hs.inject({ kind: 'repeatTimeline' }, { path: '/sync', userId: bot, times: Infinity });
    const server = await servePingboard(t, dir, {
      PINGBOARD_DATA_DIR: path.join(dir, 'pglite-logs'),
      PINGBOARD_ROOMS: '#ping:fast.example',
      PINGBOARD_HOMESERVER_URL: hs.url,
      PINGBOARD_BOT_USER_ID: bot,
      PINGBOARD_BOT_PASSWORD: 'bot-password',
      PINGBOARD_LOG_LEVEL: 'debug',
    });
    // The first sync after a start is backlog: ping until one is answered.
    await until(
      'a ping answered',
      async () => {
        const ping = hs.sendMessage(pinger, roomId, '!ping');
        await hs
          .nextEvent((ev) => (ev.content as { pong?: { ping?: string } }).pong?.ping === ping, 2000)
          .catch(() => undefined);
        return hs.events(roomId).some((ev) => (ev.content as { pong?: { ping?: string } }).pong?.ping === ping);
      },
      PROCESS_TIMEOUT_MS,
    );
    t.ok(repeated.hits > 1, "the bot's syncs listed their events twice");
    const { stdout, code } = await server.stop();
    t.equal(code, 0);
    const lines = stdout.split('\n').filter((line) => line !== '');
    const parsed = lines.map((line) => {
      try {
        return JSON.parse(line) as { level?: number; library?: string; msg?: string };
      } catch {
        return line;
      }
    });
    t.same(
      parsed.filter((line) => typeof line === 'string'),
      [],
      'every line is JSON',
    );
    t.ok(
      parsed.some(
        (line) =>
          typeof line === 'object' &&
          line.level === 20 &&
          line.library === 'matrix-js-sdk' &&
          line.msg?.includes('EventTimelineSet.addLiveEvent: ignoring duplicate event'),
      ),
      "the SDK's duplicate-event line, as a debug line of its own",
    );
  },
);
