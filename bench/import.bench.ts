// Import into a big table: `prefill` rows already stored (written by the
// database itself, from generate_series, with the digest triggers off: they
// stand for weeks already imported), then the real import path (`pingboard
// import`'s importFiles) times a file of samples shaped like the room's:
// 300 servers, 10 responders, Matrix-like event IDs (43 characters of a
// hash, so each lands anywhere in the primary key's index).
import { once } from 'node:events';
import { createWriteStream } from 'node:fs';
import { sql } from 'kysely';
import { loadConfig } from '../src/config.ts';
import { createStatistics } from '../src/open.ts';
import { importFiles } from '../src/cli/import-files.ts';
import type { Database } from '../src/db/database.ts';
import type { ImportCounts } from '../src/samples/import.ts';
import { sampleToRecord } from '../src/samples/sample.ts';
import { generateSamples } from './dataset.ts';
import type { Figures } from './leaderboard.bench.ts';

/** Issue 14: samples/s sustained into a table already holding 10M rows. */
export const IMPORT_TARGET_PER_SECOND: Readonly<Record<string, number>> = { postgres: 50_000, pglite: 30_000 };

export interface ImportBenchOptions {
  readonly database: Database;
  readonly roomId: string;
  /** Rows stored before the import. */
  readonly prefill: number;
  /** Samples in the file imported. */
  readonly samples: number;
  readonly ndjsonPath: string;
  readonly now: Date;
}

/** Rows the prefill writes per statement: one transaction each, progress between them. */
const PREFILL_CHUNK = 1_000_000;

export async function importBench(options: ImportBenchOptions, log: (line: string) => void): Promise<Figures> {
  const { database, roomId, prefill, now } = options;
  const db = database.db;
  const started = performance.now();
  for (let from = 1; from <= prefill; from += PREFILL_CHUNK) {
    const to = Math.min(prefill, from + PREFILL_CHUNK - 1);
    // One statement per chunk in a transaction of its own, with triggers off
    // (session_replication_role): the prefill stands for rows whose digests are not the import's concern.
    await db.transaction().execute(async (tx) => {
      await sql`set local session_replication_role = replica`.execute(tx);
      await sql`insert into samples (room_id, ping_event_id, ping_server, pinger, responder, responder_server,
          delay_ms, ping_ts, measured_at, source)
        select ${roomId}, '$' || translate(encode(sha256(('prefill' || (g / 9))::bytea), 'base64'), '+/=', '-_'),
          'hs' || (g / 9) % 300 || '.example', '@user:hs' || (g / 9) % 300 || '.example',
          '@echo:responder' || g % 9 || '.example', 'responder' || g % 9 || '.example',
          100 + (g * 7919) % 1000, at, at, 'pong'
        from generate_series(${from}::bigint, ${to}::bigint) g,
          lateral (select ${now}::timestamptz - interval '7 days' - g * interval '0.5 s' as at) t`.execute(tx);
    });
    log(`prefilled ${to} rows (${((performance.now() - started) / 1000).toFixed(0)} s)`);
  }
  await sql`analyze samples`.execute(db);
  // The prefill stands for weeks stored long ago: what it left unwritten is written out before the
  // import starts, not by a checkpoint its WAL would ask for in the middle of the import. The
  // import's own WAL asks for checkpoints as a long import's does (at PostgreSQL's default
  // max_wal_size of 1 GB, one about every 300,000 samples).
  const settled = performance.now();
  await sql`checkpoint`.execute(db);
  log(`prefill written out (${((performance.now() - settled) / 1000).toFixed(0)} s)`);

  await writeRoomSamples(options);
  const counts: ImportCounts = { read: 0, stored: 0, duplicate: 0, rejected: 0 };
  const checkpointsBefore = await checkpoints(database);
  const importStarted = performance.now();
  // Each batch's report is kept, so the pace of the import's last quarter can be told apart from its average.
  const progress: { readonly at: number; readonly stored: number }[] = [];
  let batchesEnded = importStarted;
  await importFiles(db, createStatistics(loadConfig({}), database, { now: () => now }), [options.ndjsonPath], counts, {
    onProgress: ({ stored }) => progress.push({ at: performance.now(), stored }),
    // What follows is the planner's statistics and the digests.
    onFinishing: () => (batchesEnded = performance.now()),
  });
  const ended = performance.now();
  const checkpointsAfter = await checkpoints(database);
  const seconds = (ended - importStarted) / 1000;
  const batchSeconds = (batchesEnded - importStarted) / 1000;
  // Sustained: what the import keeps up while it stores, the target's figure. What follows the
  // last batch (the planner's statistics, the week's digests) is paid once, at the end, and grows
  // with the week's samples rather than with the import's length.
  const sustained = batchSeconds > 0 ? Math.round(counts.stored / batchSeconds) : 0;
  // A table that grows as it is written slows its writes down: the last quarter's pace shows whether this one did.
  const lastQuarter = progress.find((report) => report.stored >= counts.stored * 0.75);
  const lastQuarterPace =
    lastQuarter && batchesEnded > lastQuarter.at
      ? Math.round(((counts.stored - lastQuarter.stored) / (batchesEnded - lastQuarter.at)) * 1000)
      : 0;
  log(`imported ${counts.stored} samples in ${seconds.toFixed(1)} s`);
  const target = IMPORT_TARGET_PER_SECOND[database.engine]!;
  return {
    'rows before the import': prefill,
    'samples imported': counts.stored,
    'samples/s sustained, while its batches are stored': sustained,
    'samples/s over its last quarter': lastQuarterPace,
    'samples/s of the whole import, analyze and digests included': Math.round(counts.stored / seconds),
    'of its seconds: the batches': batchSeconds.toFixed(1),
    'of its seconds: analyze and digests after them': ((ended - batchesEnded) / 1000).toFixed(1),
    ...(checkpointsBefore !== undefined && { 'checkpoints begun during it': checkpointsAfter! - checkpointsBefore }),
    [`target samples/s sustained`]: `${target} ${sustained >= target ? 'met' : 'NOT met'}`,
  };
}

/** Checkpoints PostgreSQL has begun (its WAL's volume or its timer asked for them); on PostgreSQL only, undefined on PGlite. */
async function checkpoints(database: Database): Promise<number | undefined> {
  if (database.engine !== 'postgres') return undefined;
  const { rows } = await sql<{ begun: number }>`
    select (checkpoints_timed + checkpoints_req)::int as begun from pg_stat_bgwriter`.execute(database.db);
  return rows[0]!.begun;
}

/** The room's week as `pingboard import` reads it, with event IDs like Matrix's (a hash, base64url). */
export async function writeRoomSamples(
  options: Pick<ImportBenchOptions, 'roomId' | 'samples' | 'ndjsonPath' | 'now'>,
): Promise<void> {
  const out = createWriteStream(options.ndjsonPath);
  let buffer = '';
  for (const sample of generateSamples({
    servers: 300,
    samples: options.samples,
    responders: 10,
    roomId: options.roomId,
    end: options.now,
    seed: 14,
    matrixEventIds: true,
  })) {
    buffer += `${JSON.stringify(sampleToRecord(sample))}\n`;
    if (buffer.length > 1 << 20) {
      if (!out.write(buffer)) await once(out, 'drain');
      buffer = '';
    }
  }
  out.end(buffer);
  await once(out, 'finish');
}
