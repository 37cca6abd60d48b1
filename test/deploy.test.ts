// The container files as an operator uses them: the compose file must pass
// the compose CLI's own validation with the example environment file.
import { execFileSync, spawnSync } from 'node:child_process';
import { copyFileSync, mkdtempSync, rmSync } from 'node:fs';
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
