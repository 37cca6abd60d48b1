/**
 * Runs the test homeserver as its own process, for tests that kill and
 * restart a homeserver. All state is in memory: a restarted process starts
 * empty (users given on the command line are registered again, with the same
 * fixed tokens if `--token` is used, so clients can keep their credentials).
 *
 *   node test/homeserver/main.ts --port 8008 \
 *     --server slow.example=300 --server skewed.example=0,-1500 \
 *     --user @bot:bot.example=secret --token @bot:bot.example=bot-token \
 *     --admin-token admin --debug
 *
 * On startup one JSON line is printed to stdout: {"url": ..., "port": ...}.
 * With --admin-token, helpers are callable as POST /_test/{operation} with
 * body {"args": [...]} (see index.ts). SIGTERM/SIGINT stop it cleanly.
 */

import { parseArgs } from 'node:util';
import { startTestHomeserver } from './index.ts';
import type { ServerConfig } from './store.ts';

const usage = `usage: main.ts [--port N] [--host H] [--server name=delayMs[,clockOffsetMs]]...
               [--user @name:server=password]... [--token @name:server=accessToken]...
               [--room-version V] [--admin-token T] [--debug]`;

/** Splits `left=right` at the last `=` (server names and user IDs may contain `:`, not `=`). */
function pair(arg: string, what: string): [string, string] {
  const i = arg.lastIndexOf('=');
  if (i < 1) throw new Error(`bad ${what} "${arg}"\n${usage}`);
  return [arg.slice(0, i), arg.slice(i + 1)];
}

function main(): void {
  const { values } = parseArgs({
    options: {
      port: { type: 'string', default: '0' },
      host: { type: 'string', default: '127.0.0.1' },
      server: { type: 'string', multiple: true, default: [] },
      user: { type: 'string', multiple: true, default: [] },
      token: { type: 'string', multiple: true, default: [] },
      'room-version': { type: 'string' },
      'admin-token': { type: 'string' },
      debug: { type: 'boolean', default: false },
      help: { type: 'boolean', default: false },
    },
  });
  if (values.help) {
    console.log(usage);
    return;
  }
  const servers: Record<string, Partial<ServerConfig>> = {};
  for (const s of values.server) {
    const [name, spec] = pair(s, '--server');
    const [delay, offset] = spec.split(',').map(Number);
    if (delay === undefined || !Number.isFinite(delay) || (offset !== undefined && !Number.isFinite(offset)))
      throw new Error(`bad --server "${s}"\n${usage}`);
    servers[name] = { delayMs: delay, clockOffsetMs: offset ?? 0 };
  }
  const port = Number(values.port);
  if (!Number.isInteger(port)) throw new Error(`bad --port\n${usage}`);

  void startTestHomeserver({
    port,
    host: values.host,
    servers,
    debug: values.debug,
    ...(values['room-version'] ? { defaultRoomVersion: values['room-version'] } : {}),
    ...(values['admin-token'] ? { adminToken: values['admin-token'] } : {}),
  }).then(
    (hs) => {
      for (const u of values.user) {
        const [userId, password] = pair(u, '--user');
        hs.registerUser(userId, { password });
      }
      for (const t of values.token) {
        const [userId, accessToken] = pair(t, '--token');
        hs.registerUser(userId, { accessToken });
      }
      console.log(JSON.stringify({ url: hs.url, port: hs.port }));
      const stop = (): void => void hs.stop().then(() => process.exit(0));
      process.once('SIGTERM', stop);
      process.once('SIGINT', stop);
    },
    (err: unknown) => {
      console.error(err instanceof Error ? err.message : err);
      process.exit(1);
    },
  );
}

main();
