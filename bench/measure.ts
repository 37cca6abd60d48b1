// What the scenarios measure with: medians, timings, a client in a process of its own, a new pong.
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import type { Sample } from '../src/samples/sample.ts';

const run = promisify(execFile);

export function median(values: number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.floor(sorted.length / 2)]!;
}

export async function timed<T>(fn: () => Promise<T>): Promise<[number, T]> {
  const started = performance.now();
  const result = await fn();
  return [performance.now() - started, result];
}

/**
 * Fetches a URL to its last byte with curl, as a client of the service
 * would, in a process of its own (a client in the service's process would
 * take the service's one thread to read what it sends); returns ms and bytes.
 */
export async function timedFetch(url: string): Promise<{ ms: number; bytes: number }> {
  const { stdout } = await run('curl', [
    '-s',
    '-o',
    '/dev/null',
    '-w',
    '%{http_code} %{size_download} %{time_total}',
    url,
  ]);
  const [status, bytes, seconds] = stdout.trim().split(' ');
  if (status !== '200') throw new Error(`${url}: ${status}`);
  return { ms: Number(seconds) * 1000, bytes: Number(bytes) };
}

/** The `n`th pong of a new ping, `n` seconds before `now`, as the bot stores one. */
export function newPong(roomId: string, now: Date, n: number): Sample {
  const measuredAt = new Date(now.getTime() - 1000 * n);
  return {
    roomId,
    pingEventId: `$bench-new-ping-${n}`,
    pingServer: 'hs1.example',
    pinger: '@pinger:hs1.example',
    responder: '@echo:responder1.example',
    responderServer: 'responder1.example',
    delayMs: 250,
    pingTs: new Date(measuredAt.getTime() - 250),
    measuredAt,
    source: 'pong',
    rttMs: null,
  };
}
