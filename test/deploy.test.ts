// The container files as an operator uses them: the compose file must pass
// the compose CLI's own validation from a fresh clone, with or without the
// example environment file, and hand every setting to the service. And every
// way of starting Pingboard runs Node with the same heap settings.
import { execFileSync, spawnSync } from 'node:child_process';
import { copyFileSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import t from 'tap';
import { loadConfig, SETTINGS } from '../src/config.ts';

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
