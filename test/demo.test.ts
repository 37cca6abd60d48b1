// `npm run demo` as a newcomer runs it: a live board with rows, pages and
// the newsletter table, then a stop that leaves no process, port or data
// directory behind, whether it is SIGTERM, Ctrl-C in a terminal (SIGINT to
// the whole process group) or the demo being killed outright.
import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import path from 'node:path';
import t from 'tap';
import { BOT, PING_SERVERS, RESPONDERS, sampleDelayMs } from '../demo/plan.ts';
import { serverOfUserId } from '../src/matrix-ids.ts';
import { freePort, processTree } from './helpers/cluster.ts';
import { cleanEnv, NODE, ROOT, waitForExit, type Result } from './helpers/process.ts';
import type { Test } from './helpers/database.ts';
import { until } from './helpers/until.ts';

/** Generous for a loaded machine; the demo aims at well under a minute. */
const LIVE_BOARD_TIMEOUT_MS = 180_000;
const DEMO = `${ROOT}demo/main.ts`;

/** Whether something can listen on `port` now. */
async function portIsFree(port: number): Promise<boolean> {
  const server = createServer();
  return new Promise((resolve) => {
    server.once('error', () => resolve(false));
    server.listen(port, '127.0.0.1', () => server.close(() => resolve(true)));
  });
}

/** Whether `pid` runs: a zombie (exited, not yet reaped by a parent that may not reap) does not. */
function alive(pid: number): boolean {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    return stat.slice(stat.lastIndexOf(')') + 2)[0] !== 'Z';
  } catch {
    return false;
  }
}

interface Demo {
  readonly child: ChildProcess;
  readonly exited: Promise<Result>;
  /** What it has written to stdout so far. */
  stdout(): string;
}

/**
 * Starts `command` in a process group of its own (as a terminal would), killed with its group at the test's end.
 * Its temporary files go in a directory of the test's, removed then: a demo killed outright cannot remove its own.
 */
function startDemo(t: Test, command: readonly string[]): Demo {
  const temporary = mkdtempSync(path.join(tmpdir(), 'pingboard-demo-test-'));
  const child = spawn(command[0]!, command.slice(1), {
    cwd: ROOT,
    env: cleanEnv({ TMPDIR: temporary }),
    stdio: ['ignore', 'pipe', 'pipe'],
    detached: true,
  });
  let stdout = '';
  child.stdout!.on('data', (chunk: Buffer) => {
    stdout += chunk.toString();
  });
  const exited = waitForExit(child, LIVE_BOARD_TIMEOUT_MS + 120_000);
  exited.catch(() => {});
  t.teardown(() => {
    try {
      process.kill(-child.pid!, 'SIGKILL');
    } catch {
      // The group is gone: the test's own checks passed.
    }
    rmSync(temporary, { recursive: true, force: true });
  });
  return { child, exited, stdout: () => stdout };
}

/** The demo's processes: the command run and every process under it. */
function processesOf(demo: Demo): number[] {
  return processTree(demo.child.pid!);
}

/** The demo's data directory, as its banner names it. */
function dataDirOf(stdout: string): string {
  const match = /embedded \(PGlite\) in (\S+),/.exec(stdout);
  if (!match) throw new Error(`no data directory in the banner: ${stdout}`);
  return match[1]!;
}

interface Board {
  servers_ranked: number;
  rows: { server: string; median_ms: number; pings: number; responders: { server: string }[] }[];
  probes: { server: string; pings_sent: number }[];
}

async function board(url: string): Promise<Board | undefined> {
  try {
    const response = await fetch(`${url}/leaderboard.json`);
    return response.ok ? ((await response.json()) as Board) : undefined;
  } catch {
    return undefined;
  }
}

/** Waits for `check` on the board, failing at once if the demo exits meanwhile. */
function untilBoard(demo: Demo, url: string, what: string, check: (b: Board) => boolean): Promise<Board> {
  return until(
    what,
    async () => {
      if (demo.child.exitCode !== null)
        throw new Error(`the demo exited (${demo.child.exitCode}) before ${what}: ${demo.stdout()}`);
      const b = await board(url);
      return b !== undefined && check(b) && b;
    },
    LIVE_BOARD_TIMEOUT_MS,
  );
}

/** A seeded generator of numbers in [0, 1) (mulberry32), so the distribution checks below are the same on every run. */
function seeded(seed: number): () => number {
  return () => {
    seed = (seed + 0x6d2b79f5) | 0;
    let x = Math.imul(seed ^ (seed >>> 15), 1 | seed);
    x = (x + Math.imul(x ^ (x >>> 7), 61 | x)) ^ x;
    return ((x ^ (x >>> 14)) >>> 0) / 2 ** 32;
  };
}

t.test("each simulated server's delays spread around its median; the flaky one spikes now and then", async (t) => {
  const random = seeded(16);
  for (const server of PING_SERVERS) {
    const delays = Array.from({ length: 2000 }, () => sampleDelayMs(server, random)).sort((a, b) => a - b);
    const median = delays[delays.length / 2]!;
    const spikes = server.spikes ? delays.filter((d) => d >= server.spikes!.minMs).length / delays.length : 0;
    if (server.spikes) {
      t.ok(
        spikes > server.spikes.probability * 0.75 && spikes < server.spikes.probability * 1.25,
        `${server.name}: ${(spikes * 100).toFixed(1)} % spikes`,
      );
      t.ok(delays.at(-1)! <= server.spikes.maxMs, `${server.name}: no spike beyond ${server.spikes.maxMs} ms`);
    } else {
      t.ok(
        Math.abs(median / server.medianMs - 1) < 0.1,
        `${server.name}: median ${median} ms, configured ${server.medianMs} ms`,
      );
      t.ok(
        delays[0]! < median && delays.at(-1)! > median * 1.5,
        `${server.name}: single pings stray (${delays[0]}-${delays.at(-1)} ms)`,
      );
    }
  }
  const medians = PING_SERVERS.filter((s) => !s.spikes).map((s) => s.medianMs);
  t.equal(new Set(medians).size, medians.length, 'every server has a delay of its own');
});

t.test(
  'npm run demo: a live board, server pages and the newsletter table; SIGTERM stops every process and frees the port',
  async (t) => {
    const port = await freePort();
    const url = `http://127.0.0.1:${port}`;
    const started = performance.now();
    const demo = startDemo(t, ['npm', 'run', 'demo', '--', '--port', String(port)]);

    const live = await untilBoard(demo, url, 'three ranked servers', (b) => b.servers_ranked >= 3);
    t.comment(
      `time to the first board with ${live.servers_ranked} ranked servers: ${((performance.now() - started) / 1000).toFixed(1)} s`,
    );
    const simulated = new Set(PING_SERVERS.map((s) => s.name));
    t.ok(
      live.rows.length >= 3 &&
        live.rows.every((row) => simulated.has(row.server) && row.median_ms > 0 && row.pings > 0),
      'rows of the simulated servers',
    );
    t.match(demo.stdout(), `${url}/`, 'the banner gives the URL to open');
    t.match(demo.stdout(), /Ctrl-C/, 'and how to stop');

    // The bot's own pongs and both responders' echo-format pongs are read; the probes ping.
    const responderServers = [BOT.userId, ...RESPONDERS.map((r) => r.userId)].map((id) => serverOfUserId(id)!);
    await untilBoard(demo, url, 'pongs of the bot and both responders', (b) =>
      b.rows.some((row) => responderServers.every((s) => row.responders.some((r) => r.server === s))),
    );
    const probed = await untilBoard(demo, url, 'a probe ping', (b) => b.probes.some((p) => p.pings_sent > 0));
    t.ok(
      probed.probes.every((p) => simulated.has(p.server)),
      'probes on simulated servers',
    );

    const server = live.rows[0]!.server;
    const page = await fetch(`${url}/servers/${server}`);
    t.equal(page.status, 200, 'a server page');
    t.match(page.headers.get('content-type'), /^text\/html/);
    t.match(await page.text(), server);
    const newsletter = await fetch(`${url}/leaderboard.md`);
    t.equal(newsletter.status, 200);
    const first = /^\|1\|([^|]+)\|/m.exec(await newsletter.text());
    t.ok(first && simulated.has(first[1]!), 'the newsletter table ranks a simulated server first');
    t.equal((await fetch(`${url}/`)).status, 200, 'the board page');

    const processes = processesOf(demo);
    t.ok(processes.length >= 3, `npm, the demo and its simulated world run (${processes.length} processes)`);
    const dataDir = dataDirOf(demo.stdout());
    t.ok(existsSync(dataDir), 'the embedded database is in a temporary directory');

    demo.child.kill('SIGTERM');
    const result = await demo.exited;
    t.equal(result.code, 0, `exits with 0 (stderr: ${result.stderr})`);
    t.match(result.stdout, /SIGTERM: stopping the demo/);
    t.same(processes.filter(alive), [], 'no process of the demo is left');
    t.ok(await portIsFree(port), 'the port is free');
    t.notOk(existsSync(dataDir), 'the data directory is removed');
  },
);

t.test('Ctrl-C in a terminal (SIGINT to the whole process group) stops the demo and its world', async (t) => {
  const demo = startDemo(t, [NODE, DEMO, '--port', '0']);
  // When a person would press it: once the board is up.
  await until('the board to be live', () => /The board is live/.test(demo.stdout()), LIVE_BOARD_TIMEOUT_MS);
  const processes = processesOf(demo);
  t.equal(processes.length, 2, 'the demo and its simulated world');
  process.kill(-demo.child.pid!, 'SIGINT');
  const result = await demo.exited;
  t.equal(result.code, 0, `exits with 0 (stderr: ${result.stderr})`);
  t.match(result.stdout, /SIGINT: stopping the demo/);
  t.same(processes.filter(alive), [], 'no process of the demo is left');
  t.notOk(existsSync(dataDirOf(demo.stdout())), 'the data directory is removed');
});

t.test('the simulated world does not outlive a demo that is killed outright', async (t) => {
  const demo = startDemo(t, [NODE, DEMO, '--port', '0']);
  const world = await until(
    'the world process',
    () => processesOf(demo).find((pid) => pid !== demo.child.pid),
    LIVE_BOARD_TIMEOUT_MS,
  );
  demo.child.kill('SIGKILL');
  await demo.exited;
  await until('the world process to exit', () => !alive(world), 30_000);
  t.pass('the world exited with its parent');
});

t.test('a bad --port is refused at once, naming it, and leaves nothing behind', async (t) => {
  const demo = startDemo(t, [NODE, DEMO, '--port', '70000']);
  const result = await demo.exited;
  t.equal(result.code, 2);
  t.match(result.stderr, /--port: expected a decimal integer from 0 to 65535, got "70000"/);
  t.equal(result.stdout, '', 'nothing started');
});
