// The container files as an operator uses them: the compose file must pass
// the compose CLI's own validation with the example environment file. And
// every way of starting Pingboard runs Node with the same heap settings.
import { execFileSync, spawnSync } from 'node:child_process';
import { copyFileSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import t from 'tap';

const ROOT = fileURLToPath(new URL('..', import.meta.url));

/** `docker compose` (v2) or `docker-compose` (v1), whichever this machine has. */
function composeCommand(): string[] | undefined {
  if (spawnSync('docker', ['compose', 'version'], { stdio: 'ignore' }).status === 0) return ['docker', 'compose'];
  if (spawnSync('docker-compose', ['version'], { stdio: 'ignore' }).status === 0) return ['docker-compose'];
  return undefined;
}

const compose = composeCommand();

t.test('docker-compose.yml validates with .env.example', { skip: compose ? false : 'no compose CLI on this machine (.ci/run installs one)' }, async (t) => {
  const dir = mkdtempSync(path.join(tmpdir(), 'pingboard-compose-'));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  copyFileSync(path.join(ROOT, 'docker-compose.yml'), path.join(dir, 'docker-compose.yml'));
  copyFileSync(path.join(ROOT, '.env.example'), path.join(dir, '.env'));
  const [command, ...args] = compose!;
  const config = execFileSync(command!, [...args, 'config'], { cwd: dir, encoding: 'utf8' });
  t.match(config, /pgdata/, 'the database lives in a named volume');
  t.match(config, /service_healthy/, 'Pingboard waits for a healthy database');
  t.match(config, /\/healthz/, 'Pingboard has a health check');
  t.match(config, /PINGBOARD_ROOMS/, 'the settings come from the env file');
});

/** The `--` options before the script in a command line. */
function nodeFlags(args: readonly string[]): string[] {
  return args.filter((arg) => arg.startsWith('--'));
}

t.test('npm start, npm run pingboard, the bin and the image run Node with the same flags', async (t) => {
  const scripts = (JSON.parse(readFileSync(path.join(ROOT, 'package.json'), 'utf8')) as { scripts: Record<string, string> }).scripts;
  const start = nodeFlags(scripts['start']!.split(' '));
  t.ok(start.length > 0, 'npm start sets the heap flags');
  t.same(nodeFlags(scripts['pingboard']!.split(' ')), start, 'npm run pingboard');
  const shebang = readFileSync(path.join(ROOT, 'src', 'main.ts'), 'utf8').split('\n')[0]!;
  t.same(nodeFlags(shebang.split(' ')), start, 'the bin\'s shebang');
  const cmd = /^CMD (\[.*\])$/m.exec(readFileSync(path.join(ROOT, 'Dockerfile'), 'utf8'))?.[1];
  t.same(nodeFlags(JSON.parse(cmd!) as string[]), start, 'the image\'s command');
});

t.test('the bin runs through its shebang, as npx pingboard runs it', async (t) => {
  const bin = path.join(ROOT, 'node_modules', '.bin');
  const result = spawnSync(path.join(ROOT, 'src', 'main.ts'), ['help'], {
    encoding: 'utf8', env: { ...process.env, PATH: `${bin}${path.delimiter}${process.env['PATH'] ?? ''}` },
  });
  t.equal(result.status, 0, result.stderr);
  t.match(result.stdout, /^Usage: pingboard/);
});
