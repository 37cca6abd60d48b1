// `npm run bench`: runs each scenario on PostgreSQL and on PGlite and prints
// a table of figures. Scale with BENCH_SAMPLES / BENCH_SERVERS; choose engines
// with BENCH_ENGINES (default "postgres,pglite"); PostgreSQL is reached through
// BENCH_POSTGRES_URL (default postgres://postgres@127.0.0.1:5432/postgres).
import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { cpus, freemem, loadavg, totalmem, tmpdir } from 'node:os';
import path from 'node:path';
import pg from 'pg';
import { migrateToLatest, openDatabase, type Database } from '../src/db/database.ts';
import { writeNdjson } from './dataset.ts';
import { EMBEDDED_TARGET_MB, embeddedBench } from './embedded.bench.ts';
import { IMPORT_TARGET_PER_SECOND, importBench } from './import.bench.ts';
import { growthBench } from './growth.bench.ts';
import { backfillBench } from './backfill.bench.ts';
import { botBench } from './bot.bench.ts';
import { clocksBench } from './clocks.bench.ts';
import { leaderboardBench, type Figures } from './leaderboard.bench.ts';
import { instancesBench, instancesThroughputBench } from './instances.bench.ts';
import { loadBench } from './load.bench.ts';
import { pageBench } from './page.bench.ts';
import { botRoom, PINGSTAT_ANCHOR_SECONDS, pingstatBench } from './pingstat.bench.ts';
import { startHomeserverProcess } from './processes.ts';
import { probesBench } from './probes.bench.ts';

const SAMPLES = Number(process.env['BENCH_SAMPLES'] ?? 1_000_000);
const SERVERS = Number(process.env['BENCH_SERVERS'] ?? 10_000);
const ENGINES = (process.env['BENCH_ENGINES'] ?? 'postgres,pglite').split(',');
const ADMIN_URL = process.env['BENCH_POSTGRES_URL'] ?? 'postgres://postgres@127.0.0.1:5432/postgres';
const LOAD_SECONDS = Number(process.env['BENCH_LOAD_SECONDS'] ?? 10);
const ROOM = '!bench:pingboard.example';
const SCENARIOS = (
  process.env['BENCH_SCENARIOS'] ??
  'leaderboard,bot,probes,clocks,backfill,page,load,pingstat,instances,instances-http,embedded,import,growth'
).split(',');
const PINGSTAT_SIZES = (process.env['BENCH_PINGSTAT_SAMPLES'] ?? '10000,100000,1000000').split(',').map(Number);
const PINGSTAT_RUNS = Number(process.env['BENCH_PINGSTAT_RUNS'] ?? 3);
const PINGSTAT_BOT = process.env['BENCH_PINGSTAT_BOT'] !== '0';
/** The size at which 50 clients hit each route. */
const GROWTH_SIZES = (process.env['BENCH_GROWTH_SAMPLES'] ?? '10000,100000,1000000,10000000').split(',').map(Number);
const PINGSTAT_LOAD_SAMPLES = Number(process.env['BENCH_PINGSTAT_LOAD_SAMPLES'] ?? 100_000);
const BACKFILL_SIZES = (process.env['BENCH_BACKFILL_EVENTS'] ?? '50000,200000').split(',').map(Number);
const PROBE_ROUNDS = Number(process.env['BENCH_PROBE_ROUNDS'] ?? 50);
const PROBE_BURST = Number(process.env['BENCH_PROBE_BURST'] ?? 100);
const CLOCK_ROUNDS = Number(process.env['BENCH_CLOCK_ROUNDS'] ?? 25);
const BOT_PINGS = Number(process.env['BENCH_BOT_PINGS'] ?? 10_000);
const BOT_MEMBERS = Number(process.env['BENCH_BOT_MEMBERS'] ?? 10_000);
const BOT_SETTLE_SECONDS = Number(process.env['BENCH_BOT_SETTLE_SECONDS'] ?? 10);
const BOT_PACED_PINGS = Number(process.env['BENCH_BOT_PACED_PINGS'] ?? 1000);
const BOT_PACE_MS = Number(process.env['BENCH_BOT_PACE_MS'] ?? 50);
const IMPORT_PREFILL = Number(process.env['BENCH_IMPORT_PREFILL'] ?? 10_000_000);
const IMPORT_SAMPLES = Number(process.env['BENCH_IMPORT_SAMPLES'] ?? 1_000_000);
// The embedded scenario's week imported through a running service (0: not run).
const EMBEDDED_IMPORT_SAMPLES = Number(process.env['BENCH_EMBEDDED_IMPORT_SAMPLES'] ?? 1_000_000);
const LOAD_SAMPLES = Number(process.env['BENCH_LOAD_SAMPLES'] ?? 200_000);
const LOAD_SERVERS = Number(process.env['BENCH_LOAD_SERVERS'] ?? 2_000);
const LOAD_TEST_SECONDS = Number(process.env['BENCH_LOAD_TEST_SECONDS'] ?? 30);
const PAGE_SERVERS = Number(process.env['BENCH_PAGE_SERVERS'] ?? 200);
const PAGE_SAMPLES = Number(process.env['BENCH_PAGE_SAMPLES'] ?? 200_000);
const PAGE_REQUESTS = Number(process.env['BENCH_PAGE_REQUESTS'] ?? 500);
const FAILOVER_KILLS = Number(process.env['BENCH_FAILOVER_KILLS'] ?? 10);
const INSTANCES_HTTP_SAMPLES = Number(process.env['BENCH_INSTANCES_HTTP_SAMPLES'] ?? 100_000);
const INSTANCES_HTTP_SERVERS = Number(process.env['BENCH_INSTANCES_HTTP_SERVERS'] ?? 1_000);
const INSTANCES_HTTP_CONNECTIONS = Number(process.env['BENCH_INSTANCES_HTTP_CONNECTIONS'] ?? 100);
const INSTANCES_HTTP_ROUNDS = Number(process.env['BENCH_INSTANCES_HTTP_ROUNDS'] ?? 3);

const log = (line: string) => process.stderr.write(`  ${line}\n`);

/** Databases this run made: named after its process, so two benches on one server never drop each other's. */
const benchDatabases: string[] = [];

/** A fresh PostgreSQL database for one scenario; returns its URL. */
async function freshPostgres(scenario: string): Promise<string> {
  const name = `${scenario}_${process.pid}`;
  const admin = new pg.Client({ connectionString: ADMIN_URL });
  await admin.connect();
  await admin.query(`drop database if exists ${name} with (force)`);
  await admin.query(`create database ${name}`);
  await admin.end();
  benchDatabases.push(name);
  const url = new URL(ADMIN_URL);
  url.pathname = `/${name}`;
  return url.toString();
}

async function dropBenchDatabases(): Promise<void> {
  const admin = new pg.Client({ connectionString: ADMIN_URL });
  await admin.connect();
  for (const name of benchDatabases) await admin.query(`drop database if exists ${name} with (force)`);
  await admin.end();
}

async function openBenchDatabase(engine: string, dir: string): Promise<Database> {
  if (engine === 'pglite') return openDatabase({ url: undefined, dataDir: path.join(dir, 'pglite') });
  return openDatabase({ url: await freshPostgres('pingboard_bench'), dataDir: '' });
}

/**
 * The pingstat routes at each size on each engine, their data under
 * `workDir`, in the room `roomId`, the service's bot there if `botEnv` is given.
 */
async function pingstatScenario(
  workDir: string,
  room: { roomId: string; botEnv?: Record<string, string> },
): Promise<void> {
  for (const samples of PINGSTAT_SIZES) {
    const results = new Map<string, Figures>();
    for (const engine of ENGINES) {
      log(`pingstat routes, ${samples} samples, on ${engine}:`);
      const dataDir = path.join(mkdtempSync(path.join(workDir, 'pingstat-')), 'pglite');
      const url = engine === 'pglite' ? undefined : await freshPostgres('pingboard_bench');
      // Closed by the bench, which hands the data to a service of its own (and on any failure).
      const database = await openDatabase({ url, dataDir: url === undefined ? dataDir : '' });
      await migrateToLatest(database.db);
      results.set(
        engine,
        await pingstatBench(
          {
            database,
            url,
            dataDir,
            ...room,
            samples,
            runs: PINGSTAT_RUNS,
            loadSeconds: samples === PINGSTAT_LOAD_SAMPLES ? LOAD_SECONDS : 0,
          },
          log,
        ),
      );
    }
    const anchor = PINGSTAT_ANCHOR_SECONDS[samples];
    console.log(
      `\nIssue #14 (pingstat routes): ${samples} samples, 300 ping servers, 10 responders, seven days; the service ${room.botEnv ? 'with its bot in the room' : 'with no Matrix account'}; pingstat's stats.json: ${anchor === undefined ? 'not measured' : `${anchor} s`}\n`,
    );
    printTable(results);
  }
}

function printTable(results: Map<string, Figures>): void {
  const engines = [...results.keys()];
  const names = [...new Set(engines.flatMap((e) => Object.keys(results.get(e)!)))];
  const width = Math.max(...names.map((n) => n.length));
  console.log(`| ${'figure'.padEnd(width)} | ${engines.map((e) => e.padStart(12)).join(' | ')} |`);
  console.log(`|${'-'.repeat(width + 2)}|${engines.map(() => `${'-'.repeat(13)}:`).join('|')}|`);
  for (const name of names) {
    console.log(
      `| ${name.padEnd(width)} | ${engines.map((e) => String(results.get(e)![name] ?? '').padStart(12)).join(' | ')} |`,
    );
  }
  // Other work on the machine slows every figure: the load goes with them.
  console.log(
    `\nload average (1, 5, 15 min) at the end: ${loadavg()
      .map((load) => load.toFixed(1))
      .join(', ')}`,
  );
}

// Each scenario runs in a process of its own, so one's memory never shows in another's figures.
if (SCENARIOS.length > 1) {
  for (const scenario of SCENARIOS) {
    const child = spawnSync(process.execPath, [...process.execArgv, ...process.argv.slice(1)], {
      stdio: 'inherit',
      env: { ...process.env, BENCH_SCENARIOS: scenario },
    });
    if (child.status !== 0) process.exit(child.status ?? 1);
  }
  process.exit(0);
}

const dir = mkdtempSync(path.join(tmpdir(), 'pingboard-bench-'));
try {
  console.log(
    `machine: ${cpus()[0]?.model ?? 'unknown cpu'}, ${cpus().length} cores, ${Math.round(totalmem() / 2 ** 30)} GiB (${Math.round(freemem() / 2 ** 30)} free), Node ${process.version}`,
  );
  if (SCENARIOS.includes('leaderboard')) {
    const now = new Date();
    const ndjson = path.join(dir, 'week.ndjson');
    log(`generating ${SAMPLES} samples over ${SERVERS} servers`);
    await writeNdjson(ndjson, { servers: SERVERS, samples: SAMPLES, responders: 4, roomId: ROOM, end: now, seed: 42 });
    const results = new Map<string, Figures>();
    for (const engine of ENGINES) {
      log(`${engine}:`);
      const database = await openBenchDatabase(engine, dir);
      try {
        await migrateToLatest(database.db);
        results.set(
          engine,
          await leaderboardBench(
            { database, ndjson, roomId: ROOM, now, loadSeconds: LOAD_SECONDS, connections: 50 },
            log,
          ),
        );
      } finally {
        await database.destroy();
      }
    }
    console.log(
      `\nIssue #2 (samples, statistics, leaderboard): ${SAMPLES} samples, ${SERVERS} ping servers, 4 responders\n`,
    );
    printTable(results);
  }

  if (SCENARIOS.includes('bot')) {
    log('bot on postgres:');
    const databaseUrl = await freshPostgres('pingboard_bench_bot');
    const database = await openDatabase({ url: databaseUrl, dataDir: '' });
    try {
      await migrateToLatest(database.db);
      const figures = await botBench(
        {
          database,
          databaseUrl,
          pings: BOT_PINGS,
          pacedPings: BOT_PACED_PINGS,
          paceMs: BOT_PACE_MS,
          members: BOT_MEMBERS,
          settleSeconds: BOT_SETTLE_SECONDS,
        },
        log,
      );
      console.log(
        `\nIssue #3 (echo bot): ${BOT_PINGS} pings back to back, then ${BOT_PACED_PINGS} ${BOT_PACE_MS} ms apart, in a room of ${BOT_MEMBERS} members, PostgreSQL\n`,
      );
      printTable(new Map([['postgres', figures]]));
    } finally {
      await database.destroy();
    }
  }

  if (SCENARIOS.includes('probes')) {
    log('probes on postgres:');
    const databaseUrl = await freshPostgres('pingboard_bench_probes');
    const database = await openDatabase({ url: databaseUrl, dataDir: '' });
    try {
      await migrateToLatest(database.db);
      const figures = await probesBench({ database, databaseUrl, rounds: PROBE_ROUNDS, burst: PROBE_BURST }, log);
      console.log(
        `\nIssue #4 (probes): 3 probes (25, 120, 300 ms) × ${PROBE_ROUNDS} rounds, then ${PROBE_BURST} probes at once, PostgreSQL\n`,
      );
      printTable(new Map([['postgres', figures]]));
    } finally {
      await database.destroy();
    }
  }

  if (SCENARIOS.includes('clocks')) {
    log('clocks on postgres:');
    const database = await openDatabase({ url: await freshPostgres('pingboard_bench_clocks'), dataDir: '' });
    try {
      await migrateToLatest(database.db);
      const figures = await clocksBench({ database, rounds: CLOCK_ROUNDS }, log);
      console.log(
        `\nIssue #18 (one clock): 4 probes (20, 45, 70, 30 ms; the last 2 s fast) × ${CLOCK_ROUNDS} rounds, 12 ordered pairs, PostgreSQL\n`,
      );
      printTable(new Map([['postgres', figures]]));
    } finally {
      await database.destroy();
    }
  }

  if (SCENARIOS.includes('backfill')) {
    const results = new Map<string, Figures>();
    for (const engine of ENGINES) {
      log(`backfill on ${engine}:`);
      results.set(
        engine,
        await backfillBench(
          {
            sizes: BACKFILL_SIZES,
            openDatabase: async () => {
              const database = await openBenchDatabase(engine, mkdtempSync(path.join(dir, 'backfill-')));
              await migrateToLatest(database.db);
              return database;
            },
          },
          log,
        ),
      );
    }
    console.log(
      `\nIssue #5 (backfill): histories of ${BACKFILL_SIZES.join(' and ')} events over three rooms, test homeserver in a second process\n`,
    );
    printTable(results);
  }

  if (SCENARIOS.includes('page')) {
    const results = new Map<string, Figures>();
    for (const engine of ENGINES) {
      log(`page on ${engine}:`);
      const database = await openBenchDatabase(engine, mkdtempSync(path.join(dir, 'page-')));
      try {
        await migrateToLatest(database.db);
        results.set(
          engine,
          await pageBench(
            {
              database,
              roomId: ROOM,
              servers: PAGE_SERVERS,
              samples: PAGE_SAMPLES,
              requests: PAGE_REQUESTS,
              loadSeconds: LOAD_SECONDS,
              now: new Date(),
            },
            log,
          ),
        );
      } finally {
        await database.destroy();
      }
    }
    console.log(
      `\nIssue #6 (web pages): ${PAGE_SERVERS} ping servers, ${PAGE_SAMPLES} samples over two weeks, ${PAGE_REQUESTS} requests per page\n`,
    );
    printTable(results);
  }

  if (SCENARIOS.includes('load')) {
    log('load on postgres:');
    const databaseUrl = await freshPostgres('pingboard_bench_load');
    const database = await openDatabase({ url: databaseUrl, dataDir: '' });
    try {
      await migrateToLatest(database.db);
      const figures = await loadBench(
        {
          database,
          databaseUrl,
          ndjsonPath: path.join(dir, 'load.ndjson'),
          samples: LOAD_SAMPLES,
          servers: LOAD_SERVERS,
          connections: 200,
          seconds: LOAD_TEST_SECONDS,
          everyRouteSeconds: LOAD_SECONDS,
        },
        log,
      );
      console.log(
        `\nIssue #7 (load): a frozen week of ${LOAD_SAMPLES} samples from ${LOAD_SERVERS} servers, 200 connections, ${LOAD_TEST_SECONDS} s per endpoint, PostgreSQL\n`,
      );
      printTable(new Map([['postgres', figures]]));
    } finally {
      await database.destroy();
    }
  }
  if (SCENARIOS.includes('instances')) {
    log('instances on postgres:');
    const figures = await instancesBench(
      { databaseUrl: await freshPostgres('pingboard_bench_instances'), kills: FAILOVER_KILLS },
      log,
    );
    console.log(
      `\nIssue #19 (instances): three serve processes on one PostgreSQL, the leader killed ${FAILOVER_KILLS} times (SIGKILL)\n`,
    );
    printTable(new Map([['postgres', figures]]));
  }
  if (SCENARIOS.includes('instances-http')) {
    log('instances-http on postgres:');
    const figures = await instancesThroughputBench(
      {
        databaseUrl: await freshPostgres('pingboard_bench_instances_http'),
        ndjsonPath: path.join(dir, 'instances-http.ndjson'),
        samples: INSTANCES_HTTP_SAMPLES,
        servers: INSTANCES_HTTP_SERVERS,
        connections: INSTANCES_HTTP_CONNECTIONS,
        seconds: LOAD_SECONDS,
        rounds: INSTANCES_HTTP_ROUNDS,
      },
      log,
    );
    console.log(
      `\nIssue #19 (instances, HTTP): /leaderboard.md (a rolling week of ${INSTANCES_HTTP_SAMPLES} samples from ${INSTANCES_HTTP_SERVERS} servers) served by 1, 2 and 3 serve processes on one PostgreSQL, ${INSTANCES_HTTP_CONNECTIONS} connections, ${LOAD_SECONDS} s each, median of ${INSTANCES_HTTP_ROUNDS} rounds, load average ${loadavg()[0]!.toFixed(1)} at the end\n`,
    );
    printTable(new Map([['postgres', figures]]));
  }
  if (SCENARIOS.includes('pingstat')) {
    // As deployed, the service has a bot (matrix-js-sdk and its sync state are in its memory): its
    // room on the test homeserver is the bench's room. BENCH_PINGSTAT_BOT=0: a service with no Matrix account.
    const homeserver = PINGSTAT_BOT ? await startHomeserverProcess({ 'bot.example': 0, 'ping.example': 0 }) : undefined;
    try {
      await pingstatScenario(dir, homeserver ? await botRoom(homeserver) : { roomId: ROOM });
    } finally {
      homeserver?.stop();
    }
  }
  if (SCENARIOS.includes('growth')) {
    // PostgreSQL only: the sizes issue 14 asks for reach past what the embedded database is for.
    const results = new Map<string, Figures>();
    for (const samples of GROWTH_SIZES) {
      log(`growth: ${samples} samples in the week, on postgres:`);
      const database = await openBenchDatabase('postgres', dir);
      try {
        await migrateToLatest(database.db);
        results.set(String(samples), await growthBench({ database, roomId: ROOM, samples, now: new Date() }, log));
      } finally {
        await database.destroy();
      }
    }
    console.log(
      '\nIssue #14 (growth): a week of samples from 300 ping servers and 10 responders, PostgreSQL; columns by samples\n',
    );
    printTable(results);
  }
  if (SCENARIOS.includes('import')) {
    const results = new Map<string, Figures>();
    for (const engine of ENGINES) {
      log(`import into ${IMPORT_PREFILL} rows, on ${engine}:`);
      const engineDir = mkdtempSync(path.join(dir, 'import-'));
      const database = await openBenchDatabase(engine, engineDir);
      try {
        await migrateToLatest(database.db);
        results.set(
          engine,
          await importBench(
            {
              database,
              roomId: ROOM,
              prefill: IMPORT_PREFILL,
              samples: IMPORT_SAMPLES,
              ndjsonPath: path.join(engineDir, 'room.ndjson'),
              now: new Date(),
            },
            log,
          ),
        );
      } finally {
        await database.destroy();
      }
    }
    console.log(
      `\nIssue #14 (import): ${IMPORT_SAMPLES} samples into ${IMPORT_PREFILL} rows; target ${Object.entries(
        IMPORT_TARGET_PER_SECOND,
      )
        .map(([engine, target]) => `${target}/s on ${engine}`)
        .join(', ')} (7,500/s by 4.2M rows before)\n`,
    );
    printTable(results);
  }
  if (SCENARIOS.includes('embedded')) {
    log('embedded database, an empty room:');
    const figures = await embeddedBench(mkdtempSync(path.join(dir, 'embedded-')), ROOM, EMBEDDED_IMPORT_SAMPLES, log);
    console.log(`\nIssue #14 (embedded database): peak RSS, target under ${EMBEDDED_TARGET_MB} MB (900 MB before)\n`);
    printTable(new Map([['pglite', figures]]));
  }
} finally {
  rmSync(dir, { recursive: true, force: true });
  await dropBenchDatabases();
}
process.exit(0);
