// `npm run demo`: Pingboard live on this machine with nothing to install or
// configure. A child process (world.ts) simulates the Matrix side; this one
// runs Pingboard as `pingboard serve` runs it (start.ts), configured through
// the same settings an operator sets (config.ts), on the embedded database in
// a temporary directory. Ctrl-C or SIGTERM stops both and removes the directory.
//
// First: the SDK's modules must find our log methods when they load (see sdk-logs.ts).
import '../src/matrix/sdk-logs.ts';
import { fork } from 'node:child_process';
import { once } from 'node:events';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { parseArgs } from 'node:util';
import { ClientEvent, SyncState, type MatrixClient } from 'matrix-js-sdk';
import { ConfigError, loadConfig } from '../src/config.ts';
import { onStopSignal } from '../src/cli/stop-signals.ts';
import { parseDecimalInteger } from '../src/decimal.ts';
import { InputError, StartupError } from '../src/errors.ts';
import { createLogger } from '../src/log.ts';
import type { Database } from '../src/db/database.ts';
import { openMigratedDatabase } from '../src/open.ts';
import { start, type Service } from '../src/start.ts';
import { BOT, PING_INTERVAL_MS, PING_PREFIX, PING_SERVERS, PROBES, RESPONDERS, ROOM_ALIAS } from './plan.ts';
import type { WorldMessage } from './world.ts';

const USAGE = `Usage: npm run demo [-- --port N]

Runs Pingboard against a dozen simulated Matrix homeservers on this machine,
on the embedded database in a temporary directory, until Ctrl-C.

  --port N   the port of Pingboard's pages and API (default: PINGBOARD_PORT, else 8080; 0: any free port)

PINGBOARD_HOST and PINGBOARD_LOG_LEVEL (default: error) are read from the
environment; every other setting is the demo's own.
`;

const WORLD = new URL('./world.ts', import.meta.url).pathname;
/** Probes ping every 20 seconds, often enough to fill their columns within a minute; with their jitter and timeout, a ping ends before the next tick. */
const PROBE_INTERVAL_SECONDS = 20;
const PROBE_JITTER_SECONDS = 3;
const PROBE_TIMEOUT_SECONDS = 15;
/** The board counts as live once this many servers are ranked. */
const LIVE_BOARD_SERVERS = 3;

/** The demo's settings that do not depend on the homeserver, as an operator would set them in the environment. */
function baseSettings(dataDir: string, port: string): Record<string, string> {
  return {
    PINGBOARD_DATA_DIR: dataDir,
    PINGBOARD_HOST: process.env['PINGBOARD_HOST'] ?? '127.0.0.1',
    PINGBOARD_PORT: port,
    // Errors only: the terminal shows the demo's own lines. (At warn, each Matrix client logs a dozen
    // lines about the push rules the test homeserver leaves to the SDK's defaults.)
    PINGBOARD_LOG_LEVEL: process.env['PINGBOARD_LOG_LEVEL'] ?? 'error',
    PINGBOARD_ROOMS: ROOM_ALIAS,
    // Tables recomputed every few seconds rather than every minute: a board that moves.
    PINGBOARD_CACHE_SECONDS: '5',
  };
}

/** The bot and the probes, on the simulated homeserver. */
function matrixSettings(homeserverUrl: string): Record<string, string> {
  return {
    PINGBOARD_HOMESERVER_URL: homeserverUrl,
    PINGBOARD_BOT_USER_ID: BOT.userId,
    PINGBOARD_BOT_ACCESS_TOKEN: BOT.accessToken,
    PINGBOARD_PROBES: JSON.stringify(
      PROBES.map((p) => ({ id: p.id, homeserver_url: homeserverUrl, user_id: p.userId, access_token: p.accessToken })),
    ),
    PINGBOARD_PROBE_SCHEDULE: `*/${PROBE_INTERVAL_SECONDS} * * * * *`,
    PINGBOARD_PROBE_JITTER_SECONDS: String(PROBE_JITTER_SECONDS),
    PINGBOARD_PROBE_TIMEOUT_SECONDS: String(PROBE_TIMEOUT_SECONDS),
    PINGBOARD_PROBE_RESPONDERS: [BOT.userId, ...RESPONDERS.map((r) => r.userId)].join(','),
  };
}

interface World {
  /** The homeserver's URL, once the room is set up and the responders sync. */
  readonly ready: Promise<string>;
  /** Resolves when the process has exited, however. */
  readonly exited: Promise<unknown>;
  go(): void;
  stop(): Promise<void>;
}

/** The simulated side failed; what it wrote to stderr says why. */
class WorldError extends Error {}

/** A world that has not exited within this long of being told to stop is killed. */
const WORLD_STOP_MS = 10_000;

function startWorld(): World {
  const child = fork(WORLD, [], { stdio: ['ignore', 'inherit', 'inherit', 'ipc'] });
  const exited = once(child, 'exit');
  const ready = new Promise<string>((resolve, reject) => {
    child.once('message', (message: WorldMessage) => resolve(message.url));
    exited.then(
      ([code, signal]) =>
        reject(new WorldError(`the simulated homeserver exited (code ${code}, signal ${signal}) before it was ready`)),
      reject,
    );
  });
  ready.catch(() => {});
  return {
    ready,
    exited,
    go: () => child.send('go'),
    stop: async () => {
      if (child.exitCode !== null || child.signalCode !== null) return;
      child.send('stop');
      const timer = setTimeout(() => child.kill('SIGKILL'), WORLD_STOP_MS);
      await exited.catch(() => {});
      clearTimeout(timer);
    },
  };
}

/** Resolves once the bot is in step with its homeserver: pings sent before would not be answered live. */
function botSynced(client: MatrixClient): Promise<void> {
  const inStep = () => client.getSyncState() === SyncState.Prepared || client.getSyncState() === SyncState.Syncing;
  if (inStep()) return Promise.resolve();
  return new Promise((resolve) => {
    const onSync = () => {
      if (!inStep()) return;
      client.off(ClientEvent.Sync, onSync);
      resolve();
    };
    client.on(ClientEvent.Sync, onSync);
  });
}

function banner(url: string, dataDir: string): string {
  const sorted = [...PING_SERVERS].sort((a, b) => a.medianMs - b.medianMs);
  const regular = sorted.filter((s) => !s.spikes && s.medianMs < 1000);
  const slow = sorted.filter((s) => !s.spikes && s.medianMs >= 1000);
  const flaky = sorted.filter((s) => s.spikes);
  const links: [string, string][] = [
    ['/', 'the leaderboard (reload to see it move)'],
    [`/servers/${regular[0]!.name}`, "one server's page"],
    ['/leaderboard.md', 'the newsletter table (markdown)'],
    ['/leaderboard.json', 'the same as JSON'],
    ['/docs', 'the API'],
  ];
  const width = Math.max(...links.map(([p]) => url.length + p.length));
  return `
  Pingboard demo is running. Open:

${links.map(([p, what]) => `    ${(url + p).padEnd(width)}  ${what}`).join('\n')}

  Simulated on this machine (nothing leaves it):
    - ${PING_SERVERS.length} homeservers: ${regular.length} with median delays from ${regular[0]!.medianMs} to ${regular.at(-1)!.medianMs} ms,
      ${slow.map((s) => `${s.name} (~${s.medianMs / 1000} s)`).join(', ')}, ${flaky.map((s) => `${s.name} (now and then ${s.spikes!.minMs / 1000}-${s.spikes!.maxMs / 1000} s)`).join(', ')}
    - their users, sending ${PING_PREFIX} in ${ROOM_ALIAS} every ${PING_INTERVAL_MS.min / 1000}-${PING_INTERVAL_MS.max / 1000} s per server
    - two echo-style responders: ${RESPONDERS.map((r) => r.userId).join(', ')}
    - Pingboard's bot ${BOT.userId}, and ${PROBES.length} probes pinging every ${PROBE_INTERVAL_SECONDS} s
  Database: embedded (PGlite) in ${dataDir}, deleted at exit.

  Press Ctrl-C to stop.
`;
}

/** Tells, once, when the board first ranks a few servers, and how long that took from the start. */
async function announceLiveBoard(url: string, stopped: () => boolean): Promise<void> {
  while (!stopped()) {
    try {
      const board = (await (await fetch(`${url}/leaderboard.json`)).json()) as { servers_ranked?: number };
      if ((board.servers_ranked ?? 0) >= LIVE_BOARD_SERVERS) {
        process.stdout.write(
          `  The board is live: ${board.servers_ranked} servers ranked, ${(performance.now() / 1000).toFixed(1)} s after the start.\n`,
        );
        return;
      }
    } catch {
      // Stopping, or not ready yet: asked again below.
    }
    await new Promise((resolve) => setTimeout(resolve, 1000));
  }
}

async function main(argv: string[]): Promise<number> {
  const { values } = parseArgs({
    args: argv,
    options: { port: { type: 'string' }, help: { type: 'boolean', short: 'h' } },
  });
  if (values.help) {
    process.stdout.write(USAGE);
    return 0;
  }
  const port =
    values.port === undefined
      ? (process.env['PINGBOARD_PORT'] ?? '8080')
      : String(parseDecimalInteger('--port', values.port, 0, 65535));
  let stopSignal: string | undefined;
  const signalled = new Promise<string>((resolve) =>
    onStopSignal((signal) => {
      stopSignal = signal;
      resolve(signal);
    }),
  );
  const dataDir = mkdtempSync(path.join(tmpdir(), 'pingboard-demo-'));
  let world: World | undefined;
  let database: Database | undefined;
  let service: Service | undefined;
  try {
    // Checked before anything starts: a bad PINGBOARD_PORT is told at once, not after the database.
    const base = baseSettings(dataDir, port);
    const baseConfig = loadConfig(base);
    const log = createLogger(baseConfig.logLevel, process.stderr as never);
    process.stdout.write(
      'Starting the Pingboard demo: simulated homeservers, and Pingboard on its embedded database (a first start takes 10-30 s)...\n',
    );
    // The embedded database's first start is most of the wait: the world starts meanwhile, in its own process.
    world = startWorld();
    const [homeserver, opened] = await Promise.allSettled([world.ready, openMigratedDatabase(baseConfig, log)]);
    if (opened.status === 'fulfilled') database = opened.value;
    if (homeserver.status === 'rejected') throw homeserver.reason;
    if (opened.status === 'rejected') throw opened.reason;
    if (stopSignal) return 0;
    service = await start(loadConfig({ ...base, ...matrixSettings(homeserver.value) }), log, { database: database! });
    const ready = await Promise.race([botSynced(service.bot!.client).then(() => true), signalled.then(() => false)]);
    if (!ready) return 0;
    world.go();
    process.stdout.write(banner(service.url, dataDir));
    void announceLiveBoard(service.url, () => stopSignal !== undefined);
    const ended = await Promise.race([signalled, world.exited.then(() => undefined)]);
    if (ended === undefined) {
      process.stderr.write('pingboard demo: the simulated homeserver stopped unexpectedly; stopping\n');
      return 1;
    }
    process.stdout.write(`\n  ${ended}: stopping the demo...\n`);
    return 0;
  } finally {
    await service?.stop();
    await database?.destroy();
    await world?.stop();
    rmSync(dataDir, { recursive: true, force: true });
  }
}

try {
  process.exitCode = await main(process.argv.slice(2));
} catch (err) {
  if ((err as { code?: string }).code?.startsWith('ERR_PARSE_ARGS_')) {
    process.stderr.write(`pingboard demo: ${(err as Error).message}\n\n${USAGE}`);
    process.exit(2);
  }
  const known =
    err instanceof WorldError || err instanceof ConfigError || err instanceof InputError || err instanceof StartupError;
  const hint =
    err instanceof StartupError && err.setting === 'PINGBOARD_PORT'
      ? '; choose another port with: npm run demo -- --port N (0: any free port)'
      : '';
  process.stderr.write(`pingboard demo: ${known ? (err as Error).message : ((err as Error).stack ?? err)}${hint}\n`);
  process.exitCode = known ? 2 : 1;
}
// The SDK leaves timers behind after its clients stop (see test/homeserver/README.md): they must not keep the demo alive.
process.exit();
