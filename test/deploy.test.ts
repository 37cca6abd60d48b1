// The container files as an operator uses them: the compose file must pass
// the compose CLI's own validation from a fresh clone, with or without the
// example environment file, and hand every setting to both instances; the
// proxy's config (deploy/haproxy.cfg) must name exactly those instances, and
// run by HAProxy it must keep answering when one of two real `serve`
// processes is killed. And every way of starting Pingboard runs Node with the
// same heap settings.
import { execFileSync, spawnSync } from 'node:child_process';
import { copyFileSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import t from 'tap';
import { loadConfig, SETTINGS } from '../src/config.ts';
import { openTestDatabase, testEngines } from './helpers/database.ts';
import { HAPROXY_CFG, haproxySkip, proxyServers, startProxy } from './helpers/haproxy.ts';
import { servePingboard, type Server } from './helpers/process.ts';
import { until } from './helpers/until.ts';

const ROOT = fileURLToPath(new URL('..', import.meta.url));

/** `docker compose` (v2) or `docker-compose` (v1), whichever this machine has. */
function composeCommand(): string[] | undefined {
  if (spawnSync('docker', ['compose', 'version'], { stdio: 'ignore' }).status === 0) return ['docker', 'compose'];
  if (spawnSync('docker-compose', ['version'], { stdio: 'ignore' }).status === 0) return ['docker-compose'];
  return undefined;
}

const compose = composeCommand();

const noCompose = compose ? false : 'no compose CLI on this machine (.ci/run installs one)';

/** `compose config` in a directory holding docker-compose.yml and, when given, that file as .env. */
function composeConfig(envFile: string | undefined): string {
  const dir = mkdtempSync(path.join(tmpdir(), 'pingboard-compose-'));
  try {
    copyFileSync(path.join(ROOT, 'docker-compose.yml'), path.join(dir, 'docker-compose.yml'));
    if (envFile !== undefined) copyFileSync(envFile, path.join(dir, '.env'));
    const [command, ...args] = compose!;
    return execFileSync(command!, [...args, 'config'], {
      cwd: dir,
      encoding: 'utf8',
      stdio: ['ignore', 'pipe', 'pipe'],
    });
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

t.test('docker-compose.yml validates with .env.example', { skip: noCompose }, async (t) => {
  const config = composeConfig(path.join(ROOT, '.env.example'));
  t.match(config, /pgdata/, 'the database lives in a named volume');
  t.match(config, /service_healthy/, 'Pingboard waits for a healthy database');
  t.match(config, /\/healthz/, 'Pingboard has a health check');
  t.match(config, /PINGBOARD_ROOMS: '?!your-ping-room-id:example\.org/, 'the settings come from the env file');
  // A setting added to .env must reach the service, whichever it is.
  for (const { env } of SETTINGS) t.match(config, new RegExp(`^ +${env}:`, 'm'), `${env} is passed to the service`);
});

/** Each service of `compose config`'s output, as the text of its block. */
function composeServices(config: string): Map<string, string> {
  const services = new Map<string, string>();
  let inServices = false;
  let current: string | undefined;
  for (const line of config.split('\n')) {
    const topLevel = /^(\S[^:]*):/.exec(line);
    if (topLevel) {
      inServices = topLevel[1] === 'services';
      current = undefined;
      continue;
    }
    const service = inServices ? /^ {2}(\S+):\s*$/.exec(line) : null;
    if (service) {
      current = service[1]!;
      services.set(current, '');
    } else if (current !== undefined) services.set(current, `${services.get(current)}${line}\n`);
  }
  return services;
}

/** The environment lines of a service's block, sorted. */
const environmentOf = (block: string) =>
  block
    .split('\n')
    .filter((line) => /^ {6}[A-Z_]+:/.test(line))
    .sort();

t.test(
  'docker-compose.yml: two instances behind one port, the proxy naming exactly them',
  { skip: noCompose },
  async (t) => {
    const services = composeServices(composeConfig(path.join(ROOT, '.env.example')));
    const instances = [...services].filter(([, block]) => /^ {6}DATABASE_URL:/m.test(block)).map(([name]) => name);
    t.strictSame(instances.sort(), ['pingboard', 'pingboard-2'], 'two Pingboard instances');
    const [first, second] = instances.map((name) => services.get(name)!);
    t.strictSame(environmentOf(second!), environmentOf(first!), 'with the same settings, so the same database');
    for (const name of instances) {
      t.notMatch(services.get(name)!, /^ {4}ports:/m, `${name} publishes no port of its own`);
      t.match(services.get(name)!, /^ {6}PINGBOARD_PORT: '?8080'?$/m, `${name} listens on 8080`);
    }
    const proxy = services.get('proxy');
    t.ok(proxy, 'a proxy service');
    t.match(proxy, /127\.0\.0\.1:8080:8080/, 'publishes the one port, on 127.0.0.1');
    t.match(proxy, /deploy\/haproxy\.cfg:\/usr\/local\/etc\/haproxy\/haproxy\.cfg:ro/, 'with the config of the repo');
    t.match(proxy, /image: haproxy:/, 'an official HAProxy image');
    const servers = proxyServers(readFileSync(HAPROXY_CFG, 'utf8'));
    t.strictSame(
      servers.map((s) => s.host).sort(),
      instances,
      'deploy/haproxy.cfg sends to every instance and nothing else',
    );
    t.ok(
      servers.every((s) => s.port === '8080'),
      'on their port',
    );
  },
);

t.test('deploy/haproxy.cfg is valid for HAProxy', { skip: haproxySkip() }, async (t) => {
  const result = spawnSync('haproxy', ['-c', '-f', HAPROXY_CFG], { encoding: 'utf8' });
  t.equal(result.status, 0, 'haproxy -c accepts it', { output: result.stderr + result.stdout });
});

t.test(
  'deploy/haproxy.cfg, run by HAProxy in front of two `serve` on one PostgreSQL: both serve, and killing one loses no request',
  {
    skip:
      haproxySkip() || (testEngines().includes('postgres') ? false : 'PostgreSQL is not among PINGBOARD_TEST_ENGINES'),
  },
  async (t) => {
    const database = await openTestDatabase('postgres');
    t.teardown(() => database.destroy());
    const dir = mkdtempSync(path.join(tmpdir(), 'pingboard-proxy-'));
    t.teardown(() => rmSync(dir, { recursive: true, force: true }));
    const env = { DATABASE_URL: database.url!, PINGBOARD_ROOMS: '!proxied:example.org' };
    const instances = [await servePingboard(t, dir, env), await servePingboard(t, dir, env)];
    const proxy = await startProxy(instances.map((i) => i.url));
    t.teardown(() => proxy.stop());
    const instanceOf = async () => {
      const res = await fetch(`${proxy.url}/healthz`, { signal: AbortSignal.timeout(60_000) });
      return { status: res.status, id: ((await res.json()) as { instance?: { id: string } }).instance?.id };
    };
    const seen = new Set<string>();
    await until(
      'the proxy to hand requests to both instances',
      async () => {
        const { id } = await instanceOf();
        if (id) seen.add(id);
        return seen.size === 2;
      },
      60_000,
    );
    t.equal(seen.size, 2, 'round robin: both instances answer through the one port');

    const [killed, survivor] = instances as [Server, Server];
    const survivorId = ((await (await fetch(`${survivor.url}/healthz`)).json()) as { instance: { id: string } })
      .instance.id;
    await killed.kill('SIGKILL');
    const after = await Promise.all(Array.from({ length: 20 }, instanceOf));
    t.strictSame(
      after.filter((a) => a.status !== 200),
      [],
      'every request after the kill is answered (a refused connection is tried again on the other)',
    );
    t.ok(
      after.every((a) => a.id === survivorId),
      'by the instance that is left',
    );
  },
);

t.test('docker-compose.yml validates from a fresh clone, with no .env', { skip: noCompose }, async (t) => {
  const config = composeConfig(undefined);
  t.match(config, /POSTGRES_PASSWORD: pingboard/, 'the database gets the default password');
  t.match(
    config,
    /DATABASE_URL: postgres:\/\/pingboard:pingboard@postgres:5432\/pingboard/,
    'and Pingboard the same one',
  );
});

/** The variables an env file sets (KEY=VALUE lines; # starts a comment line). */
function envFile(file: string): Record<string, string> {
  const env: Record<string, string> = {};
  for (const line of readFileSync(file, 'utf8').split('\n')) {
    const match = /^([A-Z_]+)=(.*)$/.exec(line);
    if (match) env[match[1]!] = match[2]!;
  }
  return env;
}

t.test('.env.example names what a deployment needs, and Pingboard accepts it as it is', async (t) => {
  const env = envFile(path.join(ROOT, '.env.example'));
  const known = new Set(['POSTGRES_PASSWORD', ...SETTINGS.map((s) => s.env)]);
  t.strictSame(
    Object.keys(env).filter((name) => !known.has(name)),
    [],
    'every variable is a setting',
  );
  for (const name of [
    'POSTGRES_PASSWORD',
    'PINGBOARD_ROOMS',
    'PINGBOARD_HOMESERVER_URL',
    'PINGBOARD_BOT_USER_ID',
    'PINGBOARD_BOT_ACCESS_TOKEN',
    'PINGBOARD_BOT_PASSWORD',
    'PINGBOARD_ADMIN_TOKEN',
  ]) {
    t.ok(name in env, `${name} is listed`);
  }
  t.doesNotThrow(() => loadConfig(env), 'a copy to .env starts the service');
});

t.test('.dockerignore keeps dependencies, data and secrets out of the build context', async (t) => {
  const ignored = new Set(
    readFileSync(path.join(ROOT, '.dockerignore'), 'utf8')
      .split('\n')
      .map((line) => line.trim().replace(/\/$/, ''))
      .filter((line) => line !== '' && !line.startsWith('#')),
  );
  for (const entry of ['node_modules', 'data', '.git', '.env', 'bench/results', 'test/artifacts'])
    t.ok(ignored.has(entry), entry);
});

/** The `--` options before the script in a command line. */
function nodeFlags(args: readonly string[]): string[] {
  return args.filter((arg) => arg.startsWith('--'));
}

t.test('npm start, npm run pingboard, the bin and the image run Node with the same flags', async (t) => {
  const scripts = (
    JSON.parse(readFileSync(path.join(ROOT, 'package.json'), 'utf8')) as { scripts: Record<string, string> }
  ).scripts;
  const start = nodeFlags(scripts['start']!.split(' '));
  t.ok(start.length > 0, 'npm start sets the heap flags');
  t.same(nodeFlags(scripts['pingboard']!.split(' ')), start, 'npm run pingboard');
  const shebang = readFileSync(path.join(ROOT, 'src', 'main.ts'), 'utf8').split('\n')[0]!;
  t.same(nodeFlags(shebang.split(' ')), start, "the bin's shebang");
  const entrypoint = /^ENTRYPOINT (\[.*\])$/m.exec(readFileSync(path.join(ROOT, 'Dockerfile'), 'utf8'))?.[1];
  t.same(nodeFlags(JSON.parse(entrypoint!) as string[]), start, "the image's entry point");
});

t.test('the bin runs through its shebang, as npx pingboard runs it', async (t) => {
  const bin = path.join(ROOT, 'node_modules', '.bin');
  const result = spawnSync(path.join(ROOT, 'src', 'main.ts'), ['help'], {
    encoding: 'utf8',
    env: { ...process.env, PATH: `${bin}${path.delimiter}${process.env['PATH'] ?? ''}` },
  });
  t.equal(result.status, 0, result.stderr);
  t.match(result.stdout, /^Usage: pingboard/);
});
