// `npm run bench`: runs each scenario on PostgreSQL and on PGlite and prints
// a table of figures. Scale with BENCH_SAMPLES / BENCH_SERVERS; choose engines
// with BENCH_ENGINES (default "postgres,pglite"); PostgreSQL is reached through
// BENCH_POSTGRES_URL (default postgres://postgres@127.0.0.1:5432/postgres).
import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { cpus, freemem, totalmem, tmpdir } from 'node:os';
import path from 'node:path';
import pg from 'pg';
import { migrateToLatest, openDatabase, type Database } from '../src/db/database.ts';
import { writeNdjson } from './dataset.ts';
import { botBench } from './bot.bench.ts';
import { leaderboardBench, type Figures } from './leaderboard.bench.ts';

const SAMPLES = Number(process.env['BENCH_SAMPLES'] ?? 1_000_000);
const SERVERS = Number(process.env['BENCH_SERVERS'] ?? 10_000);
const ENGINES = (process.env['BENCH_ENGINES'] ?? 'postgres,pglite').split(',');
const ADMIN_URL = process.env['BENCH_POSTGRES_URL'] ?? 'postgres://postgres@127.0.0.1:5432/postgres';
const LOAD_SECONDS = Number(process.env['BENCH_LOAD_SECONDS'] ?? 10);
const ROOM = '!bench:pingboard.example';
const SCENARIOS = (process.env['BENCH_SCENARIOS'] ?? 'leaderboard,bot').split(',');
const BOT_PINGS = Number(process.env['BENCH_BOT_PINGS'] ?? 10_000);
const BOT_MEMBERS = Number(process.env['BENCH_BOT_MEMBERS'] ?? 10_000);
const BOT_SETTLE_SECONDS = Number(process.env['BENCH_BOT_SETTLE_SECONDS'] ?? 10);
const BOT_PACED_PINGS = Number(process.env['BENCH_BOT_PACED_PINGS'] ?? 1000);
const BOT_PACE_MS = Number(process.env['BENCH_BOT_PACE_MS'] ?? 50);

const log = (line: string) => process.stderr.write(`  ${line}\n`);

/** A fresh PostgreSQL database for one scenario; returns its URL. */
async function freshPostgres(name: string): Promise<string> {
  const admin = new pg.Client({ connectionString: ADMIN_URL });
  await admin.connect();
  await admin.query(`drop database if exists ${name} with (force)`);
  await admin.query(`create database ${name}`);
  await admin.end();
  const url = new URL(ADMIN_URL);
  url.pathname = `/${name}`;
  return url.toString();
}

async function openBenchDatabase(engine: string, dir: string): Promise<Database> {
  if (engine === 'pglite') return openDatabase({ url: undefined, dataDir: path.join(dir, 'pglite') });
  return openDatabase({ url: await freshPostgres('pingboard_bench'), dataDir: '' });
}

function printTable(results: Map<string, Figures>): void {
  const engines = [...results.keys()];
  const names = [...new Set(engines.flatMap((e) => Object.keys(results.get(e)!)))];
  const width = Math.max(...names.map((n) => n.length));
  console.log(`| ${'figure'.padEnd(width)} | ${engines.map((e) => e.padStart(12)).join(' | ')} |`);
  console.log(`|${'-'.repeat(width + 2)}|${engines.map(() => `${'-'.repeat(13)}:`).join('|')}|`);
  for (const name of names) {
    console.log(`| ${name.padEnd(width)} | ${engines.map((e) => String(results.get(e)![name] ?? '').padStart(12)).join(' | ')} |`);
  }
}

// Each scenario runs in a process of its own, so one's memory never shows in another's figures.
if (SCENARIOS.length > 1) {
  for (const scenario of SCENARIOS) {
    const child = spawnSync(process.execPath, [...process.execArgv, ...process.argv.slice(1)], {
      stdio: 'inherit', env: { ...process.env, BENCH_SCENARIOS: scenario },
    });
    if (child.status !== 0) process.exit(child.status ?? 1);
  }
  process.exit(0);
}

const dir = mkdtempSync(path.join(tmpdir(), 'pingboard-bench-'));
try {
  console.log(`machine: ${cpus()[0]?.model ?? 'unknown cpu'}, ${cpus().length} cores, ${Math.round(totalmem() / 2 ** 30)} GiB (${Math.round(freemem() / 2 ** 30)} free), Node ${process.version}`);
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
        results.set(engine, await leaderboardBench({ database, ndjson, roomId: ROOM, now, loadSeconds: LOAD_SECONDS, connections: 50 }, log));
      } finally {
        await database.destroy();
      }
    }
    console.log(`\nIssue #2 (samples, statistics, leaderboard): ${SAMPLES} samples, ${SERVERS} ping servers, 4 responders\n`);
    printTable(results);
  }

  if (SCENARIOS.includes('bot')) {
    log('bot on postgres:');
    const databaseUrl = await freshPostgres('pingboard_bench_bot');
    const database = await openDatabase({ url: databaseUrl, dataDir: '' });
    try {
      await migrateToLatest(database.db);
      const figures = await botBench({ database, databaseUrl, pings: BOT_PINGS, pacedPings: BOT_PACED_PINGS, paceMs: BOT_PACE_MS, members: BOT_MEMBERS, settleSeconds: BOT_SETTLE_SECONDS }, log);
      console.log(`\nIssue #3 (echo bot): ${BOT_PINGS} pings back to back, then ${BOT_PACED_PINGS} ${BOT_PACE_MS} ms apart, in a room of ${BOT_MEMBERS} members, PostgreSQL\n`);
      printTable(new Map([['postgres', figures]]));
    } finally {
      await database.destroy();
    }
  }
} finally {
  rmSync(dir, { recursive: true, force: true });
}
process.exit(0);
