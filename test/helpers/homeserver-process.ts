// The test homeserver as a process of its own (test/homeserver/main.ts), for
// tests and benches whose services run as processes too, or that must not
// share an event loop with it. Its helpers are called over its admin API.
import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';

const HOMESERVER = fileURLToPath(new URL('../homeserver/main.ts', import.meta.url));
const ADMIN_TOKEN = 'test-admin';

export interface HomeserverProcess {
  readonly url: string;
  /** Calls one of the homeserver's helpers over its admin API (see test/homeserver/README.md). */
  call<T = unknown>(operation: string, ...args: unknown[]): Promise<T>;
  stop(): void;
}

export interface HomeserverProcessOptions {
  /** Server name → ms of federation delay. */
  readonly delays?: Readonly<Record<string, number>>;
  /** Server name → ms its clock is off (0 when not named): its events' origin_server_ts are stamped on that clock. */
  readonly clockOffsets?: Readonly<Record<string, number>>;
  /** User ID → password. */
  readonly passwords?: Readonly<Record<string, string>>;
  /** User ID → fixed access token, kept across restarts of the process. */
  readonly tokens?: Readonly<Record<string, string>>;
}

export async function startHomeserverProcess(options: HomeserverProcessOptions = {}): Promise<HomeserverProcess> {
  const args = [HOMESERVER, '--port', '0', '--admin-token', ADMIN_TOKEN];
  for (const [server, delay] of Object.entries(options.delays ?? {}))
    args.push('--server', `${server}=${delay},${options.clockOffsets?.[server] ?? 0}`);
  for (const [user, password] of Object.entries(options.passwords ?? {})) args.push('--user', `${user}=${password}`);
  for (const [user, token] of Object.entries(options.tokens ?? {})) args.push('--token', `${user}=${token}`);
  const child = spawn(process.execPath, args, { stdio: ['ignore', 'pipe', 'inherit'] });
  const [line] = (await once(createInterface({ input: child.stdout! }), 'line')) as [string];
  const url = (JSON.parse(line) as { url: string }).url;
  const call = async <T>(operation: string, ...callArgs: unknown[]): Promise<T> => {
    const response = await fetch(`${url}/_test/${operation}`, {
      method: 'POST',
      headers: { authorization: `Bearer ${ADMIN_TOKEN}`, 'content-type': 'application/json' },
      body: JSON.stringify({ args: callArgs }),
    });
    if (!response.ok) throw new Error(`${operation}: ${response.status} ${await response.text()}`);
    return ((await response.json()) as { result: T }).result;
  };
  return { url, call, stop: () => child.kill('SIGTERM') };
}
