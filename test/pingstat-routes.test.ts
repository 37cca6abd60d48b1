// The aggregator-compatible routes, byte for byte, on a varied dataset: what
// they answer through fastify against the answer computed from the window's
// raw rows.
import t from 'tap';
import type { WeekConfig } from '../src/config.ts';
import { buildApp } from '../src/http/app.ts';
import { excludeServer } from '../src/operator/exclusions.ts';
import { pingstatRawRows, pingstatStats, renderPingstatHtmlOld } from '../src/render/pingstat.ts';
import type { Sample } from '../src/samples/sample.ts';
import { recordSamples, samplesInWindow } from '../src/samples/repository.ts';
import { Statistics } from '../src/stats/leaderboard.ts';
import { PINGSTAT_WEEK_MS, pingstatWindow } from '../src/stats/pingstat-window.ts';
import { RoomRegistry } from '../src/stats/rooms.ts';
import { forEachEngine, type TestDatabase } from './helpers/database.ts';
import { random } from '../bench/dataset.ts';

const NOW = new Date('2026-11-21T00:00:00Z');
const WEEKS: WeekConfig = { timeZone: 'UTC', closeWeekday: 1, closeHour: 0, graceMinutes: 60 };
const FILTER = { minDelayMs: 10, maxDelayMs: 600_000 };
const OLD_ROOM = '!old:example.org';
const ROOM = '!ping:example.org';
const DISCLAIMER = 'Ping times may not be <representative>';
const HOUR = 3_600_000;

function pong(roomId: string, pingEventId: string, pingServer: string, responder: string, delayMs: number, measuredAt: number): Sample {
  const responderServer = responder.startsWith('@') ? responder.slice(responder.indexOf(':') + 1) : responder;
  return {
    roomId, pingEventId, pingServer, pinger: `@u:${pingServer}`, responder, responderServer, delayMs,
    pingTs: new Date(measuredAt - delayMs), measuredAt: new Date(measuredAt), source: 'pong', rttMs: null,
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

async function appFor(database: TestDatabase) {
  const statistics = new Statistics({ db: database.db, stats: { ...FILTER, minPings: 1 }, weeks: WEEKS, cacheSeconds: 60, now: () => NOW });
  const rooms = new RoomRegistry([{ id: ROOM, disclaimer: DISCLAIMER }], [{ reference: ROOM, id: ROOM, roomIds: [OLD_ROOM, ROOM] }]);
  return buildApp({ database, statistics, rooms, cacheSeconds: 60 });
}

forEachEngine(t, (t, database) => {
  t.test('stats.json, stats.raw.json and the HTML table: the same bytes as the in-process implementation', async (t) => {
    await recordSamples(database.db, dataset());
    await excludeServer(database.db, ROOM, { server: 'excluded.example', reason: 'test', excludedBy: 'operator' });
    const app = await appFor(database);
    const base = `/rooms/${encodeURIComponent(ROOM)}`;
    for (const query of ['', '?max_age=86400', '?max_age=999999999&min_age=3600', '?max_age=-1', `?max_age=${30 * 86_400}`]) {
      const params = new URLSearchParams(query.slice(1));
      const ages = { max_age: params.get('max_age') ?? undefined, min_age: params.get('min_age') ?? undefined };
      const window = pingstatWindow(NOW, ages, PINGSTAT_WEEK_MS);
      const stats = pingstatStats((await samplesInWindow(database.db, [OLD_ROOM, ROOM], window.start, window.end)).filter((s) => s.pingServer !== 'excluded.example'), FILTER, DISCLAIMER);
      const rawWindow = pingstatWindow(NOW, ages, 0n);
      const raw = pingstatRawRows(await samplesInWindow(database.db, [OLD_ROOM, ROOM], rawWindow.start, rawWindow.end));

      const json = await app.inject(`${base}/stats.json${query}`);
      t.equal(json.statusCode, 200);
      t.match(json.headers['content-type'], 'application/json');
      t.equal(json.body, JSON.stringify(stats), `stats.json${query}`);
      t.equal((await app.inject(`${base}/stats.raw.json${query}`)).body, JSON.stringify(raw), `stats.raw.json${query}`);
      t.equal((await app.inject(`${base}/stats${query}`)).body, renderPingstatHtmlOld(stats, ROOM), `stats${query} (HTML)`);
      t.equal((await app.inject({ url: `${base}/stats${query}`, headers: { accept: 'application/json' } })).body, JSON.stringify(stats), `stats${query} (JSON)`);
      if (query === '') {
        t.ok(Object.keys(stats.pings).length > 30, 'the default window holds many servers');
        t.ok(raw.length > 3000, 'and many rows');
        t.same(stats.pings['dup.example']!.pongs['two.example']!.diffs, { $dup1: 900, $dup2: 300, $dup3: 220 }, 'the rules the dataset tests held');
      }
    }
  });
});
