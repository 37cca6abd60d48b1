// The project's test homeserver in a process of its own, for the benches that
// drive Matrix clients: its work must not share the measured event loop.
import { spawn, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';

const HOMESERVER = fileURLToPath(new URL('../test/homeserver/main.ts', import.meta.url));
const ADMIN_TOKEN = 'bench-admin';
/** The bot's account on every bench homeserver, with this password. */
export const BENCH_BOT = '@pingboard:bot.example';
export const BENCH_BOT_PASSWORD = 'bench-password';

export interface HomeserverProcess {
  readonly url: string;
  readonly child: ChildProcess;
  /** Calls one of the homeserver's helpers over its admin API (see test/homeserver/README.md). */
  call(operation: string, ...args: unknown[]): Promise<unknown>;
  stop(): void;
}

/** Starts the homeserver with the bot's account and `delays` (server name → ms of federation delay). */
export async function startHomeserverProcess(delays: Record<string, number> = {}): Promise<HomeserverProcess> {
  const args = [HOMESERVER, '--port', '0', '--admin-token', ADMIN_TOKEN, '--user', `${BENCH_BOT}=${BENCH_BOT_PASSWORD}`];
  for (const [server, delay] of Object.entries(delays)) args.push('--server', `${server}=${delay}`);
  const child = spawn(process.execPath, args, { stdio: ['ignore', 'pipe', 'inherit'] });
  const [line] = await once(createInterface({ input: child.stdout! }), 'line') as [string];
  const url = (JSON.parse(line) as { url: string }).url;
  const call = async (operation: string, ...callArgs: unknown[]): Promise<unknown> => {
    const response = await fetch(`${url}/_test/${operation}`, {
      method: 'POST', headers: { authorization: `Bearer ${ADMIN_TOKEN}`, 'content-type': 'application/json' }, body: JSON.stringify({ args: callArgs }),
    });
    if (!response.ok) throw new Error(`${operation}: ${response.status} ${await response.text()}`);
    return ((await response.json()) as { result: unknown }).result;
  };
  return { url, child, call, stop: () => child.kill('SIGTERM') };
}
