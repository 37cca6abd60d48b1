// The proxy of docker-compose.yml (deploy/haproxy.cfg) run by the machine's
// HAProxy in front of `serve` processes on this machine: the repo's config
// with its one port and its servers' addresses made local, nothing else
// changed. For the deploy test and the instances bench.
import { spawn, spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { freePort } from './cluster.ts';
import { ROOT } from './process.ts';
import { until } from './until.ts';

export const HAPROXY_CFG = path.join(ROOT, 'deploy', 'haproxy.cfg');

/** Why the proxy cannot run here, or false when it can. */
export function haproxySkip(): string | false {
  return spawnSync('haproxy', ['-v'], { stdio: 'ignore' }).status === 0
    ? false
    : 'no haproxy on this machine (.ci/run installs it)';
}

/** The `server NAME HOST:PORT …` lines of a config. */
export function proxyServers(cfg: string): { name: string; host: string; port: string }[] {
  return [...cfg.matchAll(/^[ \t]*server\s+(\S+)\s+(\S+):(\d+)\b/gm)].map(([, name, host, port]) => ({
    name: name!,
    host: host!,
    port: port!,
  }));
}

/**
 * deploy/haproxy.cfg with `bind :PORT` on 127.0.0.1:`port` and one server
 * line per URL, each like the config's first (its options kept).
 */
export function localProxyConfig(port: number, upstreams: readonly string[]): string {
  const cfg = readFileSync(HAPROXY_CFG, 'utf8');
  const serverLine = /^([ \t]*server[ \t]+)\S+[ \t]+\S+(.*)$/m;
  const [first, indent, options] = serverLine.exec(cfg) ?? [];
  if (first === undefined) throw new Error(`${HAPROXY_CFG} has no server line`);
  const servers = upstreams.map((url, i) => `${indent}instance-${i + 1} ${new URL(url).host}${options}`).join('\n');
  const bind = /^([ \t]*bind[ \t]+):\d+$/m;
  if (!bind.test(cfg)) throw new Error(`${HAPROXY_CFG} has no "bind :PORT" line`);
  return cfg
    .replace(bind, `$1127.0.0.1:${port}`)
    .replace(/^[ \t]*server[ \t].*\n/gm, '')
    .replace(/^([ \t]*default-server[ \t].*)$/m, `$1\n${servers}`);
}

export interface Proxy {
  readonly url: string;
  stop(): void;
}

/** HAProxy with the repo's config in front of `upstreams`; resolves once it answers /healthz through one of them. */
export async function startProxy(upstreams: readonly string[]): Promise<Proxy> {
  const dir = mkdtempSync(path.join(tmpdir(), 'pingboard-haproxy-'));
  const port = await freePort();
  const cfgPath = path.join(dir, 'haproxy.cfg');
  writeFileSync(cfgPath, localProxyConfig(port, upstreams));
  const child = spawn('haproxy', ['-db', '-f', cfgPath], { stdio: 'ignore' });
  const stop = () => {
    if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
    rmSync(dir, { recursive: true, force: true });
  };
  const url = `http://127.0.0.1:${port}`;
  try {
    await until(
      'HAProxy to answer',
      async () => {
        if (child.exitCode !== null) throw new Error(`haproxy exited (${child.exitCode}) with ${cfgPath}`);
        try {
          return (await fetch(`${url}/healthz`)).ok;
        } catch {
          return false;
        }
      },
      60_000,
    );
  } catch (err) {
    stop();
    throw err;
  }
  return { url, stop };
}
