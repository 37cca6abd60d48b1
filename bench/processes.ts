// The processes the Matrix benches run beside their own: the project's test
// homeserver, and the service as `npm start` runs it (bot-service.ts), each
// alone so neither's work shares the measured event loop or memory.
import { fork, spawn } from 'node:child_process';
import { once } from 'node:events';
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { freePort } from '../test/helpers/cluster.ts';
import { until } from '../test/helpers/until.ts';
import {
  startHomeserverProcess as startTestHomeserverProcess,
  type HomeserverProcess,
} from '../test/helpers/homeserver-process.ts';
import type { ServiceReport } from './bot-service.ts';

export type { HomeserverProcess };

const SERVICE = fileURLToPath(new URL('./bot-service.ts', import.meta.url));
const MAIN = fileURLToPath(new URL('../src/main.ts', import.meta.url));
const START_SCRIPT = (
  JSON.parse(readFileSync(new URL('../package.json', import.meta.url), 'utf8')) as { scripts: { start: string } }
).scripts.start.split(' ');
/** The Node flags `npm start` runs the service with (the V8 heap settings its memory figures depend on), read from package.json. */
export const SERVICE_NODE_FLAGS = START_SCRIPT.filter((arg) => arg.startsWith('--'));
/**
 * The variables `npm start` sets (Node's compile cache, which spares loading
 * the type stripper; glibc's allocator settings), read from package.json;
 * the cache's directory, relative there, made absolute.
 */
export const SERVICE_ENV: Readonly<Record<string, string>> = Object.fromEntries(
  START_SCRIPT.filter((arg) => /^[A-Z_]+=/.test(arg)).map((arg) => {
    const [name, value] = [arg.slice(0, arg.indexOf('=')), arg.slice(arg.indexOf('=') + 1)];
    return [
      name,
      name === 'NODE_COMPILE_CACHE' ? path.resolve(fileURLToPath(new URL('..', import.meta.url)), value) : value,
    ];
  }),
);
/** The bot's account on every bench homeserver, with this password. */
export const BENCH_BOT = '@pingboard:bot.example';
export const BENCH_BOT_PASSWORD = 'bench-password';
/** The pinging servers of the bot and probe benches, with the delivery delay (ms) the homeserver gives each. */
export const BENCH_DELAYS: Readonly<Record<string, number>> = {
  'near.example': 25,
  'mid.example': 120,
  'far.example': 300,
};

/**
 * Starts the homeserver with the bot's account and `delays` (server name → ms
 * of federation delay), each server's clock off by `clockOffsets` (ms, 0 when not named).
 */
export function startHomeserverProcess(
  delays: Record<string, number> = {},
  clockOffsets: Record<string, number> = {},
): Promise<HomeserverProcess> {
  return startTestHomeserverProcess({ delays, clockOffsets, passwords: { [BENCH_BOT]: BENCH_BOT_PASSWORD } });
}

export interface ServiceProcess {
  /** The bot's counts, overhead figures and memory, after a full collection. */
  report(): Promise<ServiceReport>;
  stop(): Promise<void>;
}

/** Starts the service with the bot configured by `env`, and waits until it listens. */
export async function startServiceProcess(env: Record<string, string>): Promise<ServiceProcess> {
  const child = fork(SERVICE, [], {
    env: { ...process.env, ...SERVICE_ENV, ...env },
    execArgv: ['--expose-gc', ...SERVICE_NODE_FLAGS],
    stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
  });
  const [ready] = (await once(child, 'message')) as [unknown];
  if (ready !== 'ready') throw new Error(`the service process said ${JSON.stringify(ready)}`);
  const report = async () => {
    child.send('report');
    const [answer] = (await once(child, 'message')) as [ServiceReport];
    return answer;
  };
  const stop = async () => {
    const exited = once(child, 'exit');
    child.send('stop');
    await exited;
  };
  return { report, stop };
}

/** `pingboard serve` as `npm start` runs it. */
export interface ServeProcess {
  readonly base: string;
  /** The process's peak resident size so far (Linux's VmHWM), in MB. */
  peakRssMb(): number;
  /** The process's resident size now (Linux's VmRSS), in MB. */
  residentMb(): number;
  stop(): Promise<void>;
}

/** Starts `pingboard serve` with the flags of `npm start`, configured by `env`, and waits until it answers /healthz. */
export async function startServe(env: Record<string, string>): Promise<ServeProcess> {
  const port = await freePort();
  const child = spawn(process.execPath, [...SERVICE_NODE_FLAGS, MAIN, 'serve'], {
    env: {
      ...process.env,
      ...SERVICE_ENV,
      PINGBOARD_LOG_LEVEL: 'warn',
      ...env,
      PINGBOARD_PORT: String(port),
      PINGBOARD_HOST: '127.0.0.1',
    },
    stdio: ['ignore', 'ignore', 'inherit'],
  });
  const exited = once(child, 'exit');
  const base = `http://127.0.0.1:${port}`;
  let exitCode: number | null | undefined;
  void exited.then(([code]) => (exitCode = code as number | null));
  try {
    await until(
      'the service to answer with its database open',
      () => {
        if (exitCode !== undefined) throw new Error(`pingboard serve exited (${exitCode}) before it answered`);
        return fetch(`${base}/healthz`).then(
          (response) => response.ok,
          () => false,
        );
      },
      120_000,
    );
  } catch (err) {
    child.kill('SIGKILL');
    throw err;
  }
  const statusMb = (field: string) => {
    const kib = new RegExp(`^${field}:\\s+(\\d+) kB$`, 'm').exec(
      readFileSync(`/proc/${child.pid}/status`, 'utf8'),
    )?.[1];
    return Math.round(Number(kib) / 1024);
  };
  return {
    base,
    peakRssMb: () => statusMb('VmHWM'),
    residentMb: () => statusMb('VmRSS'),
    async stop() {
      child.kill('SIGTERM');
      await exited;
    },
  };
}
