// The `pingboard` command as a real process: run to completion, or serve
// until stopped (SIGTERM) or killed. Shared by the CLI and fault tests.
import { spawn, type ChildProcess } from 'node:child_process';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import type { Test } from './database.ts';

export const ROOT = fileURLToPath(new URL('../..', import.meta.url));
export const NODE = path.join(ROOT, 'node_modules', '.bin', 'node');
export const MAIN = path.join(ROOT, 'src', 'main.ts');

/** The environment without any Pingboard setting of the machine running the tests. */
export function cleanEnv(extra: Record<string, string>): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = {};
  for (const [key, value] of Object.entries(process.env)) {
    if (!key.startsWith('PINGBOARD_') && key !== 'DATABASE_URL') env[key] = value;
  }
  return { ...env, ...extra };
}

export interface Result {
  readonly code: number | null;
  readonly signal: NodeJS.Signals | null;
  readonly stdout: string;
  readonly stderr: string;
}

export function waitForExit(child: ChildProcess, timeoutMs: number): Promise<Result> {
  let stdout = '';
  let stderr = '';
  child.stdout!.setEncoding('utf8').on('data', (chunk: string) => {
    stdout += chunk;
  });
  child.stderr!.setEncoding('utf8').on('data', (chunk: string) => {
    stderr += chunk;
  });
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => {
      child.kill('SIGKILL');
      reject(new Error(`pingboard did not exit within ${timeoutMs} ms; stderr: ${stderr}`));
    }, timeoutMs);
    child.on('error', reject);
    child.on('close', (code, signal) => {
      clearTimeout(timer);
      resolve({ code, signal, stdout, stderr });
    });
  });
}

/**
 * How long a spawned process may take before a test gives up on it: a safety
 * net, not a measure. A loaded machine (load 14 seen in CI-like runs) takes
 * 15–30 s to open an embedded database alone, so anything tighter fails
 * tests whose process is merely slow.
 */
export const PROCESS_TIMEOUT_MS = 300_000;

/** Starts `pingboard ARGS…` in `cwd`: the process, to signal, and how it ended, once it has. */
export function startPingboard(
  cwd: string,
  args: string[],
  env: Record<string, string>,
  timeoutMs = PROCESS_TIMEOUT_MS,
): { child: ChildProcess; exited: Promise<Result> } {
  const child = spawn(NODE, [MAIN, ...args], { cwd, env: cleanEnv(env), stdio: ['ignore', 'pipe', 'pipe'] });
  return { child, exited: waitForExit(child, timeoutMs) };
}

/** Runs `pingboard ARGS…` in `cwd` to completion. */
export function runPingboard(
  cwd: string,
  args: string[],
  env: Record<string, string>,
  timeoutMs = PROCESS_TIMEOUT_MS,
): Promise<Result> {
  return startPingboard(cwd, args, env, timeoutMs).exited;
}

export interface Server {
  readonly url: string;
  readonly child: ChildProcess;
  /** Sends SIGTERM and resolves with how the process ended. */
  stop(): Promise<Result>;
  /** Sends `signal` and resolves with how the process ended. */
  kill(signal: NodeJS.Signals): Promise<Result>;
}

/**
 * Starts `pingboard serve` in `cwd` on a free port and waits for its "pingboard started" log line.
 * `command`: another way of starting it, such as `npm start`.
 */
export async function servePingboard(
  t: Pick<Test, 'teardown'>,
  cwd: string,
  env: Record<string, string>,
  command: readonly string[] = [NODE, MAIN, 'serve'],
): Promise<Server> {
  const child = spawn(command[0]!, command.slice(1), {
    cwd,
    env: cleanEnv({ PINGBOARD_PORT: '0', PINGBOARD_LOG_LEVEL: 'info', ...env }),
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  const exited = waitForExit(child, PROCESS_TIMEOUT_MS);
  exited.catch(() => {});
  t.teardown(() => {
    if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
  });
  const url = await new Promise<string>((resolve, reject) => {
    let buffered = '';
    const timer = setTimeout(
      () => reject(new Error(`serve did not log "pingboard started" within ${PROCESS_TIMEOUT_MS} ms`)),
      PROCESS_TIMEOUT_MS,
    );
    child.stdout!.on('data', (chunk: Buffer | string) => {
      buffered += chunk.toString();
      for (const line of buffered.split('\n')) {
        if (!line.includes('"pingboard started"')) continue;
        clearTimeout(timer);
        resolve((JSON.parse(line) as { url: string }).url);
      }
    });
    exited.then((r) => reject(new Error(`serve exited early (${r.code ?? r.signal}): ${r.stderr}${r.stdout}`)), reject);
  });
  const kill = async (signal: NodeJS.Signals) => {
    child.kill(signal);
    return exited;
  };
  return { url, child, stop: () => kill('SIGTERM'), kill };
}

/** `text` as a regular expression that matches it literally (paths in messages). */
export function escapeRegExp(text: string): string {
  return text.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
}
