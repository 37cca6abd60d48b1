// A PostgreSQL server of a test's own (initdb + pg_ctl on a free port, in a
// temporary directory), for tests that stop and start the database: the
// shared server on 5432 is never touched.
import { execFileSync } from 'node:child_process';
import { chownSync, existsSync, mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { testEngines } from './database.ts';

export interface Cluster {
  /** postgres://postgres@127.0.0.1:PORT/postgres */
  readonly url: string;
  stop(): void;
  start(): void;
  /** Sends `signal` to the server and every process it started: SIGSTOP hangs it (connections open, nothing answered), SIGCONT resumes it. */
  signal(signal: 'SIGSTOP' | 'SIGCONT'): void;
  destroy(): void;
}

/** The PIDs of `root` and of every process below it, from /proc. */
export function processTree(root: number): number[] {
  const parents = new Map<number, number>();
  for (const entry of readdirSync('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    try {
      // The command name (field 2) is in parentheses and may hold spaces: the parent PID follows the last ")".
      const stat = readFileSync(`/proc/${entry}/stat`, 'utf8');
      parents.set(Number(entry), Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[1]));
    } catch {
      // Gone since the listing.
    }
  }
  const tree = [root];
  for (let i = 0; i < tree.length; i++) {
    for (const [pid, parent] of parents) if (parent === tree[i]) tree.push(pid);
  }
  return tree;
}

/** The server binaries of the installed PostgreSQL, or undefined when there are none. */
/** Why a test that needs a PostgreSQL cluster of its own cannot run here, or false when it can. */
export function ownClusterSkip(): string | false {
  if (!testEngines().includes('postgres')) return 'PostgreSQL is not among PINGBOARD_TEST_ENGINES';
  return postgresBinDir() ? false : 'no PostgreSQL server binaries to make a cluster of its own';
}

export function postgresBinDir(): string | undefined {
  const root = '/usr/lib/postgresql';
  if (!existsSync(root)) return undefined;
  const version = readdirSync(root)
    .sort((a, b) => Number(b) - Number(a))
    .find((v) => existsSync(path.join(root, v, 'bin', 'initdb')));
  return version === undefined ? undefined : path.join(root, version, 'bin');
}

/** A TCP port free at the time of asking. */
export async function freePort(): Promise<number> {
  const server = createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as { port: number };
  await new Promise((resolve) => server.close(resolve));
  return port;
}

export interface PrimaryCluster extends Cluster {
  /**
   * A hot standby of this cluster, streaming from it (pg_basebackup -R), on a
   * port of its own, with `settings` added to its server's; destroy it before its primary.
   */
  startStandby(settings?: Readonly<Record<string, string>>): Promise<Cluster>;
}

/** A throwaway cluster's directory, and a way to run the server's tools on it (as postgres when we are root). */
function clusterDirectory(): { dir: string; data: string; run: (tool: string, args: string[]) => void } {
  const bin = postgresBinDir();
  if (!bin) throw new Error('no PostgreSQL server binaries under /usr/lib/postgresql');
  const dir = mkdtempSync(path.join(tmpdir(), 'pingboard-cluster-'));
  // initdb refuses to run as root: the cluster belongs to the postgres user when there is one.
  const asPostgres = process.getuid?.() === 0;
  if (asPostgres)
    chownSync(
      dir,
      Number(execFileSync('id', ['-u', 'postgres']).toString()),
      Number(execFileSync('id', ['-g', 'postgres']).toString()),
    );
  const run = (tool: string, args: string[]) => {
    const command = path.join(bin, tool);
    execFileSync(asPostgres ? 'runuser' : command, asPostgres ? ['-u', 'postgres', '--', command, ...args] : args, {
      stdio: 'pipe',
    });
  };
  return { dir, data: path.join(dir, 'data'), run };
}

export async function startCluster(): Promise<PrimaryCluster> {
  const { dir, data, run } = clusterDirectory();
  // -A trust also trusts replication connections from 127.0.0.1, which a standby makes.
  run('initdb', ['-D', data, '-A', 'trust', '-U', 'postgres', '--no-sync']);
  const cluster = await runCluster(dir, data, run);
  return {
    get url() {
      return cluster.url;
    },
    start: cluster.start,
    stop: cluster.stop,
    signal: cluster.signal,
    destroy: cluster.destroy,
    startStandby: async (settings = {}) => {
      const standby = clusterDirectory();
      const { hostname, port } = new URL(cluster.url);
      // -R writes primary_conninfo and standby.signal: the copy starts as a standby streaming from here.
      standby.run('pg_basebackup', [
        '-D',
        standby.data,
        '-h',
        hostname,
        '-p',
        port,
        '-U',
        'postgres',
        '-R',
        '-X',
        'stream',
      ]);
      return runCluster(standby.dir, standby.data, standby.run, settings);
    },
  };
}

/** Starts the server of `data` on a free port, its socket and log in `dir`. */
async function runCluster(
  dir: string,
  data: string,
  run: (tool: string, args: string[]) => void,
  settings: Readonly<Record<string, string>> = {},
): Promise<Cluster> {
  const extra = Object.entries(settings)
    .map(([name, value]) => ` -c ${name}=${value}`)
    .join('');
  const log = path.join(dir, 'log');
  let port = 0;
  const start = () => {
    try {
      run('pg_ctl', [
        '-D',
        data,
        '-o',
        // wal_level=replica is the default; said here because a standby (startStandby) depends on it.
        `-p ${port} -k ${dir} -c listen_addresses=127.0.0.1 -c fsync=off -c wal_level=replica${extra}`,
        '-l',
        log,
        '-w',
        'start',
      ]);
    } catch (err) {
      throw new Error(
        `the test's PostgreSQL did not start on port ${port}: ${existsSync(log) ? readFileSync(log, 'utf8').slice(-2000) : (err as Error).message}`,
      );
    }
  };
  const stop = () => run('pg_ctl', ['-D', data, '-m', 'fast', '-w', 'stop']);
  // A free port can be taken by another process before the server binds it: try another.
  for (let attempt = 1; ; attempt++) {
    port = await freePort();
    try {
      start();
      break;
    } catch (err) {
      if (attempt === 3) throw err;
    }
  }
  const signal = (name: 'SIGSTOP' | 'SIGCONT') => {
    const postmaster = Number(readFileSync(path.join(data, 'postmaster.pid'), 'utf8').split('\n')[0]);
    for (const pid of processTree(postmaster)) {
      try {
        process.kill(pid, name);
      } catch (err) {
        // A backend that ended since the listing needs no signal.
        if ((err as NodeJS.ErrnoException).code !== 'ESRCH') throw err;
      }
    }
  };
  return {
    get url() {
      return `postgres://postgres@127.0.0.1:${port}/postgres`;
    },
    start,
    stop,
    signal,
    destroy: () => {
      try {
        // A hung server cannot stop.
        signal('SIGCONT');
        stop();
      } catch {
        // Already stopped.
      }
      rmSync(dir, { recursive: true, force: true });
    },
  };
}
