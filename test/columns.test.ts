// The leaderboard's figures from packed columns (pure), and the digest packing.
import t from 'tap';
import { columnsFromRows, figuresFromColumns } from '../src/stats/columns.ts';
import { decodeDigest, encodeDigest, HOUR_MS } from '../src/stats/digests.ts';
import { ascending, figuresOfSorted } from '../src/stats/figures.ts';

const HOUR = Date.UTC(2026, 10, 20, 10);
const WINDOW = { start: new Date(HOUR), end: new Date(HOUR + HOUR_MS), endInclusive: false };
const FILTER = { minDelayMs: 10, maxDelayMs: 600_000 };

function row(server: string, responder: string, ping: string, delay: number, offset = 0) {
  return { ping_server: server, responder_server: responder, ping_event_id: ping, delay_ms: delay, measured_at: new Date(HOUR + offset) };
}

t.test('figures match an independent computation on random data, split across chunks', async (t) => {
  let seed = 7;
  const random = () => ((seed = (seed * 1103515245 + 12345) % 2 ** 31) / 2 ** 31);
  const rows = Array.from({ length: 5000 }, (_, i) => row(`s${Math.floor(random() * 20)}.example`, `r${i % 3}.example`, `$p${Math.floor(i / 3)}`, 10 + Math.floor(random() * 5000), Math.floor(random() * HOUR_MS)));
  const chunks = [columnsFromRows(rows.slice(0, 1234)), columnsFromRows(rows.slice(1234))];
  const figures = figuresFromColumns(chunks, WINDOW, FILTER);
  t.same(figures.map((f) => f.server), [...new Set(rows.map((r) => r.ping_server))].sort(), 'every server, in name order');
  for (const f of figures) {
    const own = rows.filter((r) => r.ping_server === f.server);
    const expected = figuresOfSorted(own.map((r) => r.delay_ms).sort(ascending));
    t.equal(f.medianMs, expected.medianMs);
    t.equal(f.p90Ms, expected.p90Ms);
    t.equal(f.minMs, expected.minMs);
    t.equal(f.maxMs, expected.maxMs);
    t.ok(Math.abs(f.meanMs - expected.meanMs) < 1e-9);
    t.ok(Math.abs(f.gmeanMs - expected.gmeanMs) < 1e-9);
    t.equal(f.samples, own.length);
    t.equal(f.pings, new Set(own.map((r) => r.ping_event_id)).size);
    for (const r of f.responders) {
      const mine = own.filter((o) => o.responder_server === r.server);
      t.equal(r.medianMs, figuresOfSorted(mine.map((m) => m.delay_ms).sort(ascending)).medianMs);
      t.equal(r.samples, mine.length);
    }
  }
});

t.test('the window and the delay filter select samples; a forged pong does not steal a ping', async (t) => {
  const rows = [
    row('a.example', 'r.example', '$1', 100, 0),
    row('a.example', 'r.example', '$2', 9, 10),
    row('a.example', 'r.example', '$3', 600_001, 20),
    row('a.example', 'r.example', '$4', 300, HOUR_MS),
    row('a.example', 'q.example', '$1', 200, 30),
    row('b.example', 'q.example', '$1', 400, 40),
  ];
  const [a, b] = figuresFromColumns([columnsFromRows(rows)], WINDOW, FILTER);
  t.hasStrict(a, { server: 'a.example', samples: 2, pings: 1, medianMs: 150 });
  t.same(a!.responders.map((r) => [r.server, r.pings]), [['q.example', 1], ['r.example', 1]]);
  t.hasStrict(b, { server: 'b.example', samples: 1, pings: 1 });
  const inclusive = figuresFromColumns([columnsFromRows(rows)], { ...WINDOW, endInclusive: true }, FILTER);
  t.equal(inclusive[0]!.samples, 3, 'an inclusive end takes the sample at the end instant');
  t.same(figuresFromColumns([], WINDOW, FILTER), []);
});

t.test('a digest round-trips its columns', async (t) => {
  const columns = columnsFromRows([row('a.example:8448', 'r.example', '$x', 123, 5), row('[::1]:8448', 'r.example', '$y', -5, HOUR_MS - 1)]);
  const encoded = encodeDigest(columns, HOUR);
  t.equal(encoded.samples, 2);
  const decoded = decodeDigest({ hour: new Date(HOUR), ...encoded });
  t.same(decoded.servers, columns.servers);
  t.same([...decoded.delay], [123, -5]);
  t.same([...decoded.measuredAt], [HOUR + 5, HOUR + HOUR_MS - 1]);
  const empty = decodeDigest({ hour: new Date(HOUR), ...encodeDigest(columnsFromRows([]), HOUR) });
  t.same([empty.servers, empty.delay.length], [[], 0]);
});
