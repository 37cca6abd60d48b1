// The aggregator-compatible routes, byte for byte, on a varied dataset: what
// they answer through fastify against an answer computed here, plainly, from
// the stored rows, by pingstat's rules (pingstat.py get_room_data, iter_pongs
// and its table's primary key: the first pong of a server to a ping counts).
import { readdirSync, rmSync } from 'node:fs';
import { get } from 'node:http';
import { tmpdir } from 'node:os';
import path from 'node:path';
import t from 'tap';
import { sql } from 'kysely';
import { exactSum } from '../src/stats/figures.ts';
import { libmExp, libmLog } from '../src/stats/libm.ts';
import type { WeekConfig } from '../src/config.ts';
import { buildApp } from '../src/http/app.ts';
import { excludeServer } from '../src/stats/exclusions.ts';
import { compareNames } from '../src/order.ts';
import { renderPingstatHtml } from '../src/render/pingstat.ts';
import type { PingstatSummary } from '../src/stats/pingstat-summary.ts';
import type { Sample } from '../src/samples/sample.ts';
import { recordSamples, sampleFromRow } from '../src/samples/repository.ts';
import { Statistics } from '../src/stats/leaderboard.ts';
import { PINGSTAT_WEEK_MS, pingstatWindow, type PingstatWindow } from '../src/stats/pingstat-window.ts';
import { RoomRegistry } from '../src/stats/rooms.ts';
import { SpillDirectory } from '../src/spill.ts';
import { forEachEngine, type TestDatabase } from './helpers/database.ts';
import { random } from '../bench/dataset.ts';

const NOW = new Date('2026-11-21T00:00:00Z');
const WEEKS: WeekConfig = { timeZone: 'UTC', closeWeekday: 1, closeHour: 0, graceMinutes: 60 };
const FILTER = { minDelayMs: 10, maxDelayMs: 600_000 };
const OLD_ROOM = '!old:example.org';
const ROOM = '!ping:example.org';
const DISCLAIMER = 'Ping times may not be <representative>';
const HOUR = 3_600_000;

function pong(
  roomId: string,
  pingEventId: string,
  pingServer: string,
  responder: string,
  delayMs: number,
  measuredAt: number,
): Sample {
  const responderServer = responder.startsWith('@') ? responder.slice(responder.indexOf(':') + 1) : responder;
  return {
    roomId,
    pingEventId,
    pingServer,
    pinger: `@u:${pingServer}`,
    responder,
    responderServer,
    delayMs,
    pingTs: new Date(measuredAt - delayMs),
    measuredAt: new Date(measuredAt),
    source: 'pong',
    rttMs: null,
  };
}

/**
 * Log-normal delays from many servers and responders over eight days, and
 * the cases the rules decide: two accounts of one server answering a ping
 * (the first pong counts, even when the filter drops it), pingstat rows known
 * by server only, delays outside the filter, negative ones, equal times and
 * medians, an excluded server, a room's predecessor, ids that JSON escapes.
 */
function dataset(): Sample[] {
  const rand = random(7);
  const normal = () => Math.sqrt(-2 * Math.log(1 - rand())) * Math.cos(2 * Math.PI * rand());
  const samples: Sample[] = [];
  const responders = ['@echo:r1.example', '@echo:r2.example', '@bot:r2.example', 'r3.example', '@echo:r4.example:8448'];
  for (let ping = 0; ping < 1500; ping++) {
    const server = `hs${Math.floor(rand() ** 2 * 40)}.example`;
    const at = NOW.getTime() - Math.floor(rand() * 8 * 24 * HOUR);
    const roomId = rand() < 0.2 ? OLD_ROOM : ROOM;
    for (const responder of responders) {
      if (rand() < 0.3) continue;
      const delay = Math.round(Math.exp(5.7 + 0.6 * normal()) * (rand() < 0.02 ? 3000 : 1)) - (rand() < 0.01 ? 400 : 0);
      // Equal times now and then, so the order's later keys decide.
      samples.push(pong(roomId, `$p${ping}`, server, responder, delay, rand() < 0.1 ? at : at + delay));
    }
  }
  const t0 = NOW.getTime() - 2 * HOUR;
  samples.push(
    // Two accounts of one server: the earlier pong counts, whatever its delay.
    pong(ROOM, '$dup1', 'dup.example', '@b:two.example', 900, t0 + 5),
    pong(ROOM, '$dup1', 'dup.example', '@a:two.example', 100, t0 + 9),
    // The first is outside the filter: the statistics take the second, the raw rows the first.
    pong(ROOM, '$dup2', 'dup.example', '@a:two.example', 5, t0),
    pong(ROOM, '$dup2', 'dup.example', '@b:two.example', 300, t0 + 1),
    // The same time: the responder decides.
    pong(ROOM, '$dup3', 'dup.example', '@b:two.example', 210, t0),
    pong(ROOM, '$dup3', 'dup.example', '@a:two.example', 220, t0),
    // Equal medians, ordered by name.
    pong(ROOM, '$tie1', 'tie-b.example', '@echo:r1.example', 333, t0),
    pong(ROOM, '$tie2', 'tie-a.example', '@echo:r1.example', 333, t0),
    pong(ROOM, '$ex1', 'excluded.example', '@echo:r1.example', 1, t0),
    pong(ROOM, '$ex2', 'excluded.example', '@echo:r1.example', 50, t0),
    pong(ROOM, '$"quoted\\id\u00e9\u2028', 'escape.example', '@echo:r1.example', 77, t0),
    pong(ROOM, '$huge', 'slow.example', '@echo:r1.example', 600_000, t0),
    pong(ROOM, '$over', 'slow.example', '@echo:r1.example', 600_001, t0),
    pong(ROOM, '$edge', 'edge.example', '@echo:r1.example', 40, NOW.getTime() - 7 * 24 * HOUR),
  );
  return samples;
}

/** The window's rows in the order pingstat's insertion order gives (by pong time, then ping, then responder). */
function inWindow(samples: readonly Sample[], window: PingstatWindow): Sample[] {
  return samples
    .filter((s) => s.measuredAt >= window.start && s.measuredAt <= window.end)
    .sort(
      (a, b) =>
        a.measuredAt.getTime() - b.measuredAt.getTime() ||
        compareNames(a.pingEventId, b.pingEventId) ||
        compareNames(a.responder, b.responder),
    );
}

/** median, mean and gmean as pingstat computes them: an integer sum, and the geometric mean over math.fsum (exactSum, checked against CPython in render.test.ts) of the C library's logarithms (libm.test.ts). */
function figures(values: number[]) {
  const sorted = [...values].sort((a, b) => a - b);
  const mid = sorted.length >> 1;
  const sum = sorted.reduce((a, b) => a + b, 0);
  return {
    mean: sum / sorted.length,
    median: sorted.length % 2 ? sorted[mid]! : (sorted[mid - 1]! + sorted[mid]!) / 2,
    gmean: libmExp(exactSum(sorted.map(libmLog)) / sorted.length),
  };
}

interface ReferencePong {
  diffs: Record<string, number>;
  mean: number;
  median: number;
  gmean: number;
}
interface ReferenceServer {
  pongs: Record<string, ReferencePong>;
  pings: string[];
  mean: number;
  median: number;
  gmean: number;
}

function referenceStats(samples: readonly Sample[], window: PingstatWindow, excluded: string) {
  const servers = new Map<string, { pings: Set<string>; pongs: Map<string, Map<string, number>> }>();
  for (const s of inWindow(samples, window)) {
    if (s.delayMs < FILTER.minDelayMs || s.delayMs > FILTER.maxDelayMs || s.pingServer === excluded) continue;
    const server = servers.get(s.pingServer) ?? {
      pings: new Set<string>(),
      pongs: new Map<string, Map<string, number>>(),
    };
    servers.set(s.pingServer, server);
    const diffs = server.pongs.get(s.responderServer) ?? new Map<string, number>();
    server.pongs.set(s.responderServer, diffs);
    if (diffs.has(s.pingEventId)) continue;
    diffs.set(s.pingEventId, s.delayMs);
    server.pings.add(s.pingEventId);
  }
  const ranked: [string, ReferenceServer][] = [...servers].map(([name, server]) => {
    const pongs = [...server.pongs].sort((a, b) => compareNames(a[0], b[0]));
    return [
      name,
      {
        pongs: Object.fromEntries(
          pongs.map(([pong, diffs]) => [pong, { diffs: Object.fromEntries(diffs), ...figures([...diffs.values()]) }]),
        ),
        pings: [...server.pings],
        ...figures(pongs.flatMap(([, diffs]) => [...diffs.values()])),
      },
    ];
  });
  ranked.sort((a, b) => a[1].median - b[1].median || compareNames(a[0], b[0]));
  return {
    disclaimer: DISCLAIMER,
    pings: Object.fromEntries(ranked),
    mean: ranked.length > 0 ? ranked.reduce((sum, [, s]) => sum + s.mean, 0) / ranked.length : 0,
    pongservers: [...new Set([...servers.values()].flatMap((s) => [...s.pongs.keys()]))].sort(compareNames),
  };
}

/**
 * The reference as pingstat's json.dumps spells it (without its spaces): means and geometric means
 * are floats, a median is one when it averages two delays (an even count), and the mean of the
 * means is a float unless no server is listed (the int 0). A float keeps its `.0` when whole.
 */
function pingstatText(stats: ReturnType<typeof referenceStats>): string {
  const float = (value: number) => `\u0000${value}`; // a marker, spelt below
  const median = (value: number, delays: number) => (delays % 2 === 0 ? float(value) : value);
  const marked = {
    ...stats,
    pings: Object.fromEntries(
      Object.entries(stats.pings).map(([name, server]) => {
        const pongs = Object.entries(server.pongs).map(([pong, p]) => {
          const delays = Object.keys(p.diffs).length;
          return [
            pong,
            { diffs: p.diffs, mean: float(p.mean), median: median(p.median, delays), gmean: float(p.gmean) },
          ] as const;
        });
        const delays = pongs.reduce((n, [, p]) => n + Object.keys(p.diffs).length, 0);
        return [
          name,
          {
            pongs: Object.fromEntries(pongs),
            pings: server.pings,
            mean: float(server.mean),
            median: median(server.median, delays),
            gmean: float(server.gmean),
          },
        ];
      }),
    ),
    mean: Object.keys(stats.pings).length > 0 ? float(stats.mean) : 0,
  };
  return JSON.stringify(marked).replace(/"\\u0000([^"]+)"/g, (_, n: string) => (/[.e]/.test(n) ? n : `${n}.0`));
}

function referenceRaw(samples: readonly Sample[], window: PingstatWindow) {
  const seen = new Set<string>();
  return inWindow(samples, window)
    .filter((s) => {
      const key = `${s.roomId} ${s.pingEventId} ${s.responderServer}`;
      if (seen.has(key)) return false;
      seen.add(key);
      return true;
    })
    .map((s) => ({
      room_id: ROOM,
      ping_id: s.pingEventId,
      pong_server: s.responderServer,
      ping_server: s.pingServer,
      receive_diff: s.delayMs,
      pong_timestamp: s.measuredAt.getTime(),
    }));
}

/** The reference in the shape the HTML table is drawn from. */
function summaryOf(stats: ReturnType<typeof referenceStats>): PingstatSummary {
  return {
    disclaimer: stats.disclaimer,
    mean: stats.mean,
    pongservers: stats.pongservers,
    servers: Object.entries(stats.pings).map(([server, s]) => ({
      server,
      pings: s.pings.length,
      mean: s.mean,
      median: s.median,
      gmean: s.gmean,
      json: Buffer.alloc(0),
      jsonLost: false,
      jsonBytes: 0,
      pongs: Object.entries(s.pongs).map(
        ([pong, p]) =>
          [pong, { pongs: Object.keys(p.diffs).length, mean: p.mean, median: p.median, gmean: p.gmean }] as const,
      ),
    })),
  };
}

async function appFor(database: TestDatabase, spill?: SpillDirectory) {
  const statistics = new Statistics({
    db: database.db,
    stats: { ...FILTER, minPings: 1 },
    weeks: WEEKS,
    cacheSeconds: 60,
    now: () => NOW,
  });
  const rooms = new RoomRegistry(
    [{ id: ROOM, disclaimer: DISCLAIMER }],
    [{ reference: ROOM, id: ROOM, roomIds: [OLD_ROOM, ROOM] }],
  );
  return { app: await buildApp({ database, statistics, rooms, cacheSeconds: 60, spill }), statistics };
}

forEachEngine(t, (t, database) => {
  t.test("stats.json, stats.raw.json and the HTML table: the bytes pingstat's rules give", async (t) => {
    await recordSamples(database.db, dataset());
    // What was stored (a pingstat row and an account's pong of one server may not both be).
    const stored = (
      await database.db.selectFrom('samples').selectAll().where('room_id', 'in', [OLD_ROOM, ROOM]).execute()
    ).map(sampleFromRow);
    await excludeServer(database.db, ROOM, { server: 'excluded.example', reason: 'test', excludedBy: 'operator' });
    const { app } = await appFor(database);
    const base = `/rooms/${encodeURIComponent(ROOM)}`;
    for (const query of [
      '',
      '?max_age=86400',
      '?max_age=999999999&min_age=3600',
      '?max_age=-1',
      `?max_age=${30 * 86_400}`,
    ]) {
      const params = new URLSearchParams(query.slice(1));
      const ages = { max_age: params.get('max_age') ?? undefined, min_age: params.get('min_age') ?? undefined };
      const window = pingstatWindow(NOW, ages, PINGSTAT_WEEK_MS);
      const stats = referenceStats(stored, window, 'excluded.example');
      const raw = referenceRaw(stored, pingstatWindow(NOW, ages, 0n));

      const json = await app.inject(`${base}/stats.json${query}`);
      t.equal(json.statusCode, 200);
      t.match(json.headers['content-type'], 'application/json');
      t.equal(json.body, pingstatText(stats), `stats.json${query}`);
      t.equal((await app.inject(`${base}/stats.raw.json${query}`)).body, JSON.stringify(raw), `stats.raw.json${query}`);
      t.equal(
        (await app.inject(`${base}/stats${query}`)).body,
        renderPingstatHtml(summaryOf(stats), ROOM),
        `stats${query} (HTML)`,
      );
      t.equal(
        (await app.inject({ url: `${base}/stats${query}`, headers: { accept: 'application/json' } })).body,
        pingstatText(stats),
        `stats${query} (JSON)`,
      );
      if (query === '') {
        t.ok(Object.keys(stats.pings).length > 30, 'the default window holds many servers');
        t.ok(raw.length > 3000, 'and many rows');
        t.same(
          stats.pings['dup.example']!.pongs['two.example']!.diffs,
          { $dup1: 900, $dup2: 300, $dup3: 220 },
          'the rules the dataset tests held',
        );
      }
    }
  });
});

forEachEngine(t, (t, database) => {
  t.test(
    'the routes answer from the week kept in memory, reading again only hours whose version changed',
    async (t) => {
      const at = NOW.getTime() - 3 * HOUR;
      await recordSamples(database.db, [pong(ROOM, '$kept', 'kept.example', '@echo:r1.example', 123, at)]);
      const { app, statistics } = await appFor(database);
      const url = `/rooms/${encodeURIComponent(ROOM)}/stats.raw.json`;
      t.match((await app.inject(url)).body, '"$kept"', 'the first answer reads the week');
      // A write that leaves the hour's version as it was (triggers off, as session_replication_role = replica
      // does) is not seen by the kept week, which the database's own path would have read.
      await database.db.transaction().execute(async (tx) => {
        await sql`set local session_replication_role = replica`.execute(tx);
        await sql`insert into samples (room_id, ping_event_id, ping_server, responder, responder_server, delay_ms, ping_ts, measured_at, source)
        values (${ROOM}, '$unversioned', 'kept.example', '@echo:r1.example', 'r1.example', 124, ${new Date(at)}, ${new Date(at + 1)}, 'pong')`.execute(
          tx,
        );
      });
      statistics.forgetLiveTables();
      t.notMatch(
        (await app.inject(url)).body,
        '"$unversioned"',
        'an hour whose version is unchanged is not read again',
      );
      await recordSamples(database.db, [pong(ROOM, '$versioned', 'kept.example', '@echo:r1.example', 125, at + 2)]);
      statistics.forgetLiveTables();
      const body = (await app.inject(url)).body;
      t.match(body, '"$versioned"', 'a write renews the hour');
      t.match(body, '"$unversioned"', 'and the hour is read again whole');
    },
  );
});

/** A GET's body over a connection of its own; rejects when the answer is cut short. */
function textOnNewConnection(url: string): Promise<string> {
  return new Promise((resolve, reject) => {
    get(url, { agent: false }, (response) => {
      const chunks: Buffer[] = [];
      response.on('data', (chunk: Buffer) => chunks.push(chunk));
      response.on('end', () => resolve(Buffer.concat(chunks).toString()));
      response.on('error', reject);
    }).on('error', reject);
  });
}

forEachEngine(t, (t, database) => {
  t.test(
    'raw rows kept in a spill directory: the same bytes over HTTP, and written again when their files go',
    async (t) => {
      await recordSamples(database.db, dataset());
      const spill = new SpillDirectory(tmpdir(), 1 << 30, (err) => t.fail(String(err)), 0);
      t.teardown(() => spill.close());
      const { app } = await appFor(database, spill);
      t.teardown(() => app.close());
      const { app: inMemory } = await appFor(database);
      const base = `${await app.listen({ host: '127.0.0.1', port: 0 })}/rooms/${encodeURIComponent(ROOM)}`;
      for (const query of ['', '?max_age=86400', '?max_age=999999999&min_age=3600']) {
        const expected = (await inMemory.inject(`/rooms/${encodeURIComponent(ROOM)}/stats.raw.json${query}`)).body;
        const answer = await fetch(`${base}/stats.raw.json${query}`);
        t.equal(answer.status, 200);
        t.equal(await answer.text(), expected, `stats.raw.json${query}: as the rows kept in memory give`);
      }
      t.ok(spill.bytes > 100_000, 'the hours were kept in files');
      t.ok(readdirSync(spill.path).length > 24, 'a file for each hour');

      // A cleaner of temporary files empties the directory: the client then reading gets an answer cut short,
      // never a whole-looking wrong one, and the next client the whole answer again, from files written again.
      for (const name of readdirSync(spill.path)) rmSync(path.join(spill.path, name));
      const head = await fetch(`${base}/stats.raw.json`, { method: 'HEAD' });
      t.equal(head.status, 200, 'HEAD');
      t.match(head.headers.get('content-type'), 'application/json');
      t.equal(spill.losses, 0, 'a HEAD reads no file: it found none gone');
      const expected = (await inMemory.inject(`/rooms/${encodeURIComponent(ROOM)}/stats.raw.json`)).body;
      // Each on a connection of its own: the one cut short is closed by the service.
      await t.rejects(textOnNewConnection(`${base}/stats.raw.json`), 'cut short');
      t.equal(spill.losses, 1, 'the file found gone');
      t.equal(await textOnNewConnection(`${base}/stats.raw.json`), expected, 'the next answer is whole');
      t.ok(readdirSync(spill.path).length > 24, 'written again');
    },
  );
});
