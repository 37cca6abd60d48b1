import { openDatabase, migrateToLatest } from '../src/db/database.ts';
import { recordSamples } from '../src/samples/repository.ts';
import { generateSamples } from './dataset.ts';
import { PongStore } from '../src/stats/pong-store.ts';
import { rawRowsFromHours } from '../src/stats/pong-hours.ts';
import { pingstatWindow } from '../src/stats/pingstat-window.ts';
import { newPong } from './measure.ts';
const url = 'postgres://postgres@127.0.0.1:5432/postgres';
const { Client } = (await import('pg')).default;
const admin = new Client({ connectionString: url });
await admin.connect();
await admin.query('drop database if exists tmpraw');
await admin.query('create database tmpraw');
await admin.end();
const database = await openDatabase({ url: url.replace(/postgres$/, 'tmpraw'), dataDir: '' });
await migrateToLatest(database.db);
const now = new Date();
const roomId = '!r:x';
const n = Number(process.argv[2] ?? 10000);
await recordSamples(database.db, [
  ...generateSamples({ servers: 300, samples: n, responders: 10, roomId, end: now, seed: 14 }),
]);
const store = new PongStore();
const window = pingstatWindow(now, {}, 0n);
for (let round = 0; round < 8; round++) {
  await recordSamples(database.db, [newPong(roomId, now, round + 1)]);
  const t0 = performance.now();
  const snap = (await store.snapshot(database.db, [roomId], window, now))!;
  const t1 = performance.now();
  let bytes = 0,
    pieces = 0;
  for (const b of rawRowsFromHours(snap.hours, snap.dictionary, window, roomId)) {
    bytes += b.length;
    pieces++;
  }
  const t2 = performance.now();
  console.log(`snap ${(t1 - t0).toFixed(1)} raw ${(t2 - t1).toFixed(1)} ms ${bytes} bytes ${pieces} pieces`);
}
await database.destroy();
