// HTTP load from a second process (autocannon), so the server under test
// does not share its event loop with the load generator.
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import { fileURLToPath } from 'node:url';

const run = promisify(execFile);
const AUTOCANNON = fileURLToPath(new URL('../node_modules/.bin/autocannon', import.meta.url));

export interface LoadResult {
  readonly requests: number;
  readonly requestsPerSecond: number;
  readonly p50Ms: number;
  readonly p99Ms: number;
  /** Failed requests: connection errors and the client's own timeouts (those counted in `timeouts` too). */
  readonly errors: number;
  readonly timeouts: number;
  readonly non2xx: number;
  readonly status5xx: number;
  readonly meanBytes: number;
}

/**
 * Autocannon sends no Accept-Encoding of its own; `headers` adds request headers (a browser's Accept-Encoding, say).
 * Several URLs: the connections are spread over them, one load generator for several servers.
 */
export async function load(
  url: string | readonly string[],
  connections: number,
  seconds: number,
  headers: Record<string, string> = {},
): Promise<LoadResult> {
  const urls = typeof url === 'string' ? [url] : url;
  for (const target of urls)
    if (!/^http:\/\/(127\.0\.0\.1|localhost)[:/]/.test(target))
      throw new Error(`load tests only target this machine, not ${target}`);
  const headerArgs = Object.entries(headers).flatMap(([name, value]) => ['-H', `${name}=${value}`]);
  const { stdout } = await run(
    AUTOCANNON,
    ['--json', '-c', String(connections), '-d', String(seconds), ...headerArgs, ...urls],
    { maxBuffer: 64 << 20 },
  );
  const r = JSON.parse(stdout) as {
    requests: { average: number; total: number };
    latency: { p50: number; p99: number };
    errors: number;
    timeouts: number;
    non2xx: number;
    '5xx': number;
    throughput: { total: number };
  };
  return {
    requests: r.requests.total,
    requestsPerSecond: r.requests.average,
    p50Ms: r.latency.p50,
    p99Ms: r.latency.p99,
    errors: r.errors,
    timeouts: r.timeouts,
    non2xx: r.non2xx,
    status5xx: r['5xx'],
    meanBytes: r.requests.total > 0 ? r.throughput.total / r.requests.total : 0,
  };
}
