// The embedded database's memory: peak resident size of an empty room's
// processes as a person runs them (the flags of `npm start`), against issue
// 14's target. A new data directory is a copy of a database made once, as
// `npm install` makes it, by a process of its own: that process's peak is
// shown apart, and no command or service carries it.
import { spawnSync } from 'node:child_process';
import { readFileSync, rmSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { writeRoomSamples } from './import.bench.ts';
import type { Figures } from './leaderboard.bench.ts';
import { SERVICE_ENV, SERVICE_NODE_FLAGS, startServe } from './processes.ts';

/** Issue 14: an empty room's command or service on PGlite under this many MB resident (900 MB before). */
export const EMBEDDED_TARGET_MB = 250;

const MAIN = fileURLToPath(new URL('../src/main.ts', import.meta.url));
const PEAK_RSS = fileURLToPath(new URL('./peak-rss.ts', import.meta.url));
const CREATE_PGLITE = fileURLToPath(new URL('../src/db/create-pglite.ts', import.meta.url));

export async function embeddedBench(
  dir: string,
  roomId: string,
  importSamples: number,
  log: (line: string) => void,
): Promise<Figures> {
  const dataDir = path.join(dir, 'embedded');
  const report = path.join(dir, 'peak-rss.txt');
  const env = {
    ...process.env,
    ...SERVICE_ENV,
    PINGBOARD_DATA_DIR: dataDir,
    PINGBOARD_ROOMS: roomId,
    PINGBOARD_LOG_LEVEL: 'warn',
    NODE_OPTIONS: `--import=${PEAK_RSS}`,
    BENCH_PEAK_RSS_FILE: report,
  };
  /** The peak of each process `args` ran (with `options.env`, else the room's), by script: main.ts, and create-pglite.ts where a database was made. */
  const peaks = (args: string[], options: { refused?: string; env?: Record<string, string | undefined> } = {}) => {
    rmSync(report, { force: true });
    const result = spawnSync(process.execPath, args, { env: options.env ?? env, encoding: 'utf8' });
    if (result.status !== 0 && (options.refused === undefined || !result.stderr.includes(options.refused)))
      throw new Error(`${args.join(' ')} failed: ${result.stderr}`);
    return new Map(
      readFileSync(report, 'utf8')
        .trim()
        .split('\n')
        .map((line) => line.split(' ') as [string, string]),
    );
  };
  // An empty room's table is refused with that reason, after the database was opened and read.
  const leaderboardCommand = () =>
    Number(peaks([...SERVICE_NODE_FLAGS, MAIN, 'leaderboard'], { refused: 'the table is empty' }).get('main.ts'));

  log('making a database as npm install makes the template');
  const maker = Number(peaks(['--liftoff-only', CREATE_PGLITE, path.join(dir, 'template')]).get('create-pglite.ts'));
  peaks(['--liftoff-only', CREATE_PGLITE, '--template']);
  log('leaderboard on a new data directory');
  const created = leaderboardCommand();
  log('leaderboard on the existing data directory');
  const existing = leaderboardCommand();

  log('serve, idle, then answering /leaderboard.md and stats.json');
  const service = await startServe(env);
  let serveIdle: number;
  let serveServing: number;
  try {
    serveIdle = service.peakRssMb();
    for (const route of ['/leaderboard.md', `/rooms/${encodeURIComponent(roomId)}/stats.json`]) {
      const response = await fetch(`${service.base}${route}`);
      // An empty room has no table yet (404); a failure would not have done the work measured.
      if (response.status >= 500) throw new Error(`${route} answered ${response.status}`);
      await response.arrayBuffer();
    }
    serveServing = service.peakRssMb();
  } finally {
    await service.stop();
  }
  const figure = (mb: number) => `${mb} MB ${mb < EMBEDDED_TARGET_MB ? 'met' : 'NOT met'}`;
  return {
    'making the template, once (npm install; not the target)': `${maker} MB`,
    'new dir (a copy): leaderboard command peak': figure(created),
    'existing dir: leaderboard command peak': figure(existing),
    'serve idle peak': figure(serveIdle),
    'serve after two requests peak': figure(serveServing),
    ...(importSamples > 0 && (await importThroughService(dir, env, roomId, importSamples, peaks, log))),
  };
}

/**
 * A room's week imported through a running service's channel, as the README's
 * quick start has it (`pingboard import` beside `npm start`): the service
 * stores the samples and builds the week's digests in its own process. Not
 * an empty room, so no target: the figures say what such an import costs.
 */
async function importThroughService(
  dir: string,
  env: Record<string, string | undefined>,
  roomId: string,
  samples: number,
  peaks: (args: string[], options: { env: Record<string, string | undefined> }) => Map<string, string>,
  log: (line: string) => void,
): Promise<Figures> {
  const ndjsonPath = path.join(dir, 'week.ndjson');
  await writeRoomSamples({ roomId, samples, ndjsonPath, now: new Date() });
  const serviceEnv = { ...env, PINGBOARD_DATA_DIR: path.join(dir, 'embedded-import') };
  log(`serve, importing ${samples} samples through its channel`);
  const service = await startServe(serviceEnv);
  try {
    const before = service.peakRssMb();
    const started = performance.now();
    const command = peaks([...SERVICE_NODE_FLAGS, MAIN, 'import', ndjsonPath], { env: serviceEnv });
    const seconds = (performance.now() - started) / 1000;
    return {
      [`import of ${samples} samples through serve's channel (s)`]: seconds.toFixed(1),
      'serve peak before it': `${before} MB`,
      'serve peak while it stores and builds the digests': `${service.peakRssMb()} MB`,
      'serve resident after it': `${service.residentMb()} MB`,
      'the import command itself, peak': `${command.get('main.ts')} MB`,
    };
  } finally {
    await service.stop();
  }
}
