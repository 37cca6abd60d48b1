// The leaderboard's figures from packed columns (pure), and the digest packing.
import t from 'tap';
import { quantileSorted } from 'simple-statistics';
import {
  columnsFromRows,
  FiguresScratch,
  figuresFromColumns,
  PingNumbers,
  pingKey,
  prepareFigures,
} from '../src/stats/columns.ts';
import { DigestNames, encodeDigest } from '../src/stats/digests.ts';
import { ascending, figuresOfSorted, quantileOfSortedRun } from '../src/stats/figures.ts';
import { FirstPongFilter } from '../src/stats/first-pongs.ts';
import type { Test } from './helpers/database.ts';

const FILTER = { minDelayMs: 10, maxDelayMs: 600_000 };

/** server_names as a map: what a read of `ids` from it returns. */
const readFrom = (table: ReadonlyMap<number, string>) => async (ids: readonly number[]) =>
  new Map(ids.flatMap((id) => (table.has(id) ? [[id, table.get(id)!] as const] : [])));

/** Digest names that have read every server of `ids` (name to id) from server_names, as a process reading digests does. */
async function namesKnowing(ids: ReadonlyMap<string, number>): Promise<DigestNames> {
  const names = new DigestNames();
  await names.learnNames([...ids.values()], '1', readFrom(new Map([...ids].map(([name, id]) => [id, name]))));
  return names;
}

function row(server: string, responder: string, ping: string, delay: number) {
  return { ping_server: server, responder_server: responder, ping_event_id: ping, delay_ms: delay };
}

function randomRows(seed: number, count: number, delay: (random: () => number) => number, servers = 20) {
  const random = () => {
    seed = (seed * 1103515245 + 12345) % 2 ** 31;
    return seed / 2 ** 31;
  };
  // Three responders per ping, so chunk boundaries split some pings' samples.
  const pingServers = Array.from({ length: Math.ceil(count / 3) }, () => `s${Math.floor(random() * servers)}.example`);
  return Array.from({ length: count }, (_, i) =>
    row(pingServers[Math.floor(i / 3)]!, `r${(i * 7) % 3}.example`, `$p${Math.floor(i / 3)}`, delay(random)),
  );
}

function checkAgainstIndependent(
  t: Test,
  rows: ReturnType<typeof row>[],
  figures: ReturnType<typeof figuresFromColumns>,
) {
  t.same(
    figures.map((f) => f.server),
    [...new Set(rows.map((r) => r.ping_server))].sort(),
    'every server, in name order',
  );
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
      t.same(
        { ...r },
        {
          server: r.server,
          ...figuresOfSorted(mine.map((m) => m.delay_ms).sort(ascending)),
          samples: mine.length,
          pings: new Set(mine.map((m) => m.ping_event_id)).size,
        },
      );
    }
    t.same(
      f.responders.map((r) => r.server),
      [...new Set(own.map((o) => o.responder_server))].sort(),
      'responders in name order',
    );
  }
}

t.test('figures match an independent computation on random data, split across chunks', async (t) => {
  const rows = randomRows(7, 5000, (random) => 10 + Math.floor(random() * 5000));
  const figures = figuresFromColumns([columnsFromRows(rows.slice(0, 1234)), columnsFromRows(rows.slice(1234))], FILTER);
  checkAgainstIndependent(t, rows, figures);
  t.equal(
    figures.reduce((sum, f) => sum + f.pings, 0),
    Math.ceil(5000 / 3),
    'a ping whose samples lie in two chunks counts once',
  );
});

t.test('a filter too wide for 32-bit sort keys gives the same figures', async (t) => {
  const filter = { minDelayMs: 1, maxDelayMs: 2_000_000_000 };
  const rows = randomRows(11, 3000, (random) => 1 + Math.floor(random() * 1_999_999_999));
  checkAgainstIndependent(
    t,
    rows,
    figuresFromColumns([columnsFromRows(rows.slice(0, 1000)), columnsFromRows(rows.slice(1000))], filter),
  );
});

t.test(
  "a server with more samples than the engine's sort is given (4,096) is sorted by digits, to the same figures",
  async (t) => {
    // Three servers of about 5,000 samples each, and the keys of a wide filter (Float64 keys) too.
    const rows = randomRows(31, 15_000, (random) => 10 + Math.floor(random() * 60_000), 3);
    t.ok(
      [...Map.groupBy(rows, (r) => r.ping_server).values()].every((own) => own.length > 4096),
      'every server past the engine sort',
    );
    checkAgainstIndependent(
      t,
      rows,
      figuresFromColumns([columnsFromRows(rows.slice(0, 7000)), columnsFromRows(rows.slice(7000))], FILTER),
    );
    // A long run whose numbers share their high digit (small delays, while another server's large one sets how
    // many digits there are): that digit moves nothing, and its pass is skipped.
    const shared = [
      ...randomRows(33, 6000, (random) => 10 + Math.floor(random() * 400), 1),
      ...randomRows(34, 30, (random) => 10 + Math.floor(random() * 500_000), 1).map((r) => ({
        ...r,
        ping_server: 'far.example',
        ping_event_id: `${r.ping_event_id}-far`,
      })),
    ];
    checkAgainstIndependent(t, shared, figuresFromColumns([columnsFromRows(shared)], FILTER));
    const wide = randomRows(32, 15_000, (random) => 1 + Math.floor(random() * 1_999_999_999), 3);
    checkAgainstIndependent(
      t,
      wide,
      figuresFromColumns([columnsFromRows(wide)], { minDelayMs: 1, maxDelayMs: 2_000_000_000 }),
    );
  },
);

t.test('the delay filter selects samples; a forged pong does not steal a ping', async (t) => {
  const rows = [
    row('a.example', 'r.example', '$1', 100),
    row('a.example', 'r.example', '$2', 9),
    row('a.example', 'r.example', '$3', 600_001),
    row('a.example', 'r.example', '$4', 600_000),
    row('a.example', 'q.example', '$1', 200),
    row('b.example', 'q.example', '$1', 400),
  ];
  const [a, b] = figuresFromColumns([columnsFromRows(rows)], FILTER);
  t.hasStrict(a, { server: 'a.example', samples: 3, pings: 2, medianMs: 200, minMs: 100, maxMs: 600_000 });
  t.same(
    a!.responders.map((r) => [r.server, r.pings]),
    [
      ['q.example', 1],
      ['r.example', 2],
    ],
  );
  t.hasStrict(b, { server: 'b.example', samples: 1, pings: 1 });
  t.same(figuresFromColumns([], FILTER), []);
  t.throws(
    () => figuresFromColumns([columnsFromRows(rows)], { minDelayMs: 0, maxDelayMs: 10 }),
    /must start at 1 ms or more, not 0/,
    'no geometric mean of a zero delay',
  );
});

t.test("a run's quantiles are simple-statistics' quantileSorted of the run", async (t) => {
  const rows = randomRows(3, 400, (random) => 10 + Math.floor(random() * 900));
  const values = Int32Array.from(rows, (r) => r.delay_ms).sort();
  let checked = 0;
  for (const [start, end] of [
    [0, 1],
    [0, 2],
    [5, 8],
    [17, 117],
    [0, 400],
    [399, 400],
    [123, 124 + 9],
  ] as const) {
    const run = [...values.subarray(start, end)];
    for (const p of [0.5, 0.9]) {
      t.equal(quantileOfSortedRun(values, start, end, p), quantileSorted(run, p), `[${start}, ${end}) at ${p}`);
      checked++;
    }
  }
  t.equal(checked, 14);
});

t.test('ping numbers and scratch kept from table to table give each the figures fresh ones give', async (t) => {
  const kept = { pings: new PingNumbers(), scratch: new FiguresScratch() };
  const chunked = (rows: ReturnType<typeof row>[]) => [
    columnsFromRows(rows.slice(0, rows.length >> 1)),
    columnsFromRows(rows.slice(rows.length >> 1)),
  ];
  const large = chunked(randomRows(21, 30_000, (random) => 10 + Math.floor(random() * 5000)));
  const small = chunked(randomRows(22, 300, (random) => 10 + Math.floor(random() * 500)));
  // Delays to 2,000,000 ms, let through: sort keys of three radix digits rather than two.
  const wideFilter = { minDelayMs: 10, maxDelayMs: 2_000_000 };
  const wide = chunked(randomRows(23, 3000, (random) => 10 + Math.floor(random() * 2_000_000)));
  const overlapping = [large[1]!, ...chunked(randomRows(24, 6000, (random) => 10 + Math.floor(random() * 800)))];
  for (const [name, chunks, filter] of [
    ['large', large, FILTER],
    ['small after large', small, FILTER],
    ['large again, the same chunks', large, FILTER],
    ['wide', wide, wideFilter],
    ['a kept chunk beside new ones', overlapping, FILTER],
    ['small again', small, FILTER],
  ] as const)
    t.same(figuresFromColumns(chunks, filter, kept), figuresFromColumns(chunks, filter), name);
  // More than 2 * pings + 4,096 numbered: the numbers start again.
  const many = chunked(randomRows(25, 240_000, (random) => 10 + Math.floor(random() * 3000)));
  t.same(figuresFromColumns(many, FILTER, kept), figuresFromColumns(many, FILTER), 'eighty thousand pings');
  t.ok(kept.pings.count >= 80_000);
  t.same(figuresFromColumns(small, FILTER, kept), figuresFromColumns(small, FILTER), 'small after them');
  t.ok(kept.pings.count < 1000, 'the numbers of the pings no table holds any more were dropped');
});

t.test(
  'a table of prepared chunks numbers only the pings they do not hold, and gives the figures fresh numbers give',
  async (t) => {
    const rows = randomRows(31, 15_000, (random) => 10 + Math.floor(random() * 3000));
    const pingsIn = (part: ReturnType<typeof row>[]) => new Set(part.map((r) => r.ping_event_id)).size;
    // What a digest build keeps, prepared; then a table that also holds a chunk made at the table (a window's first hour).
    const prepared = [columnsFromRows(rows.slice(0, 10_000)), columnsFromRows(rows.slice(10_000, 13_000))];
    const kept = { pings: new PingNumbers(), scratch: new FiguresScratch() };
    prepareFigures(prepared, kept.pings);
    t.equal(kept.pings.count, pingsIn(rows.slice(0, 13_000)), 'every ping of the prepared chunks numbered');
    const preparedNumbers = kept.pings.numbersOf(prepared, { preparing: true });
    const chunks = [columnsFromRows(rows.slice(13_000)), ...prepared];
    t.same(
      figuresFromColumns(chunks, FILTER, kept),
      figuresFromColumns(chunks, FILTER),
      'the figures of fresh numbers',
    );
    t.equal(kept.pings.count, pingsIn(rows), 'the table numbered only the pings of the chunk it made');
    t.ok(
      kept.pings.numbersOf(prepared, { preparing: true }).every((numbers, i) => numbers === preparedNumbers[i]),
      "and kept the prepared chunks' numbers as they were",
    );
    // A build's preparation of a few hours after a wider table (5,000 pings: more than twice its own and 4,096
    // more, past which a table's numbers start again): the wider table's numbers stay.
    const before = kept.pings.numbersOf(chunks).map((numbers) => [...numbers]);
    prepareFigures([columnsFromRows(rows.slice(0, 30))], kept.pings);
    t.equal(kept.pings.count, pingsIn(rows), 'preparing fewer chunks drops no number');
    t.same(
      kept.pings.numbersOf(chunks).map((numbers) => [...numbers]),
      before,
      'the wider table keeps its numbers',
    );
    // With no table since, preparations drop what they far outnumber, as tables do: numbers do not grow without one.
    const unasked = new PingNumbers();
    prepareFigures(prepared, unasked);
    prepareFigures([columnsFromRows(rows.slice(0, 30))], unasked);
    t.equal(unasked.count, pingsIn(rows.slice(0, 30)), 'the numbers of a preparation no table asked for start again');
  },
);

t.test("names only raw rows hold are merged into the digests' dictionary, which may grow", async (t) => {
  const ids = new Map(['b.example', 'd.example', 'r.example', 'q.example'].map((name, i) => [name, i + 1]));
  const names = await namesKnowing(ids);
  const hour = columnsFromRows([row('d.example', 'r.example', '$1', 100), row('b.example', 'r.example', '$2', 200)]);
  const named = names.named(encodeDigest(hour, ids));
  const raw = columnsFromRows([
    row('e.example', 'r.example', '$3', 50),
    row('a.example', 's.example', '$4', 70),
    row('d.example', 'q.example', '$5', 80),
    row('c.example', 'r.example', '$1', 90),
  ]);
  const kept = { pings: new PingNumbers(), scratch: new FiguresScratch() };
  const merged = figuresFromColumns([named, raw], FILTER, kept);
  t.same(merged, figuresFromColumns([hour, raw], FILTER), 'as if every chunk were raw');
  t.same(
    merged.map((f) => f.server),
    ['a.example', 'b.example', 'c.example', 'd.example', 'e.example'],
  );
  t.same(
    merged[3]!.responders.map((r) => r.server),
    ['q.example', 'r.example'],
  );
  // Now with the digests' dictionary the largest, so its order is kept, then grown.
  const one = columnsFromRows([row('c.example', 'r.example', '$7', 30)]);
  t.same(figuresFromColumns([named, one], FILTER, kept), figuresFromColumns([hour, one], FILTER));
  ids.set('ba.example', 9);
  await names.learnNames([9], '1', readFrom(new Map([...ids].map(([name, id]) => [id, name]))));
  const laterHour = columnsFromRows([row('ba.example', 'q.example', '$6', 60)]);
  const later = names.named(encodeDigest(laterHour, ids));
  t.equal(later.servers, named.servers, 'a later digest shares the dictionary, grown');
  t.same(
    figuresFromColumns([named, later, one], FILTER, kept),
    figuresFromColumns([hour, laterHour, one], FILTER),
    'the order kept for the dictionary is redone once it has grown',
  );
  // server_names emptied by hand and filled again: id 9 now names another server.
  await names.learnNames(
    [9],
    '2',
    readFrom(new Map([...ids].map(([name, id]) => [id, name === 'ba.example' ? 'z.example' : name]))),
  );
  const renamed = names.named(encodeDigest(laterHour, ids));
  t.not(renamed.servers, named.servers, 'new dictionaries');
  t.same(renamed.servers, ['z.example']);
  t.same(later.servers.at(-1), 'ba.example', 'a digest named before keeps its names');
});

t.test('names are read again only for ids not known, until server_names changes', async (t) => {
  // server_names as a map, and what each read asked it for.
  let table = new Map<number, string>([
    [1, 'a.example'],
    [2, 'b.example'],
    [3, 'r.example'],
  ]);
  const asked: number[][] = [];
  const read = async (ids: readonly number[]) => {
    asked.push([...ids].sort((x, y) => x - y));
    return readFrom(table)(ids);
  };
  const names = new DigestNames();
  const hour = columnsFromRows([row('a.example', 'r.example', '$1', 100), row('b.example', 'r.example', '$2', 200)]);
  const ids = new Map([...table].map(([id, name]) => [name, id]));
  await names.learnNames([1, 3], '1', read);
  await names.learnNames([1, 2, 3], '1', read);
  await names.learnNames([2, 3], '1', read);
  t.same(asked, [[1, 3], [2]], 'at one epoch, each id is read once; none read when all are known');
  t.same(names.named(encodeDigest(hour, ids)).servers, ['a.example', 'b.example']);

  // Emptied by hand and numbered again: the epoch moved, and the next read asks for every id known.
  table = new Map([
    [1, 'b.example'],
    [2, 'a.example'],
  ]);
  await names.learnNames([1], '2', read);
  t.same(asked.at(-1), [1, 2, 3], 'the epoch moved: every id known, with those asked for');
  const renumbered = new Map([
    ['b.example', 1],
    ['a.example', 2],
    ['r.example', 3],
  ]);
  table.set(3, 'r.example');
  await names.learnNames([1, 2, 3], '2', read);
  t.same(asked.at(-1), [3], 'id 3, gone from the whole read, was forgotten: read again');
  const named = names.named(encodeDigest(hour, renumbered));
  t.same(
    [...named.server].map((i) => named.servers[i]),
    ['a.example', 'b.example'],
    'named by the new ids, in new dictionaries',
  );

  // The epoch's row gone: every read asks for every id.
  asked.length = 0;
  await names.learnNames([1], null, read);
  await names.learnNames([1], null, read);
  t.same(asked, [
    [1, 2, 3],
    [1, 2, 3],
  ]);
});

t.test('a named digest keeps no view of the buffer it was decoded from', async (t) => {
  const ids = new Map(['b.example', 'd.example', 'r.example'].map((name, i) => [name, i + 1]));
  const hour = columnsFromRows([row('d.example', 'r.example', '$1', 100), row('b.example', 'r.example', '$2', 70_000)]);
  const named = (await namesKnowing(ids)).named(encodeDigest(hour, ids));
  // The delays need 4 bytes: stored at the width the arithmetic uses, they were once kept as views.
  for (const column of ['pingKeys', 'server', 'responder', 'ping', 'delay'] as const)
    t.equal(named[column].buffer.byteLength, named[column].byteLength, `${column}: an array of its own`);
  t.same(figuresFromColumns([named], FILTER), figuresFromColumns([hour], FILTER));
});

t.test('a named digest keeps its indexes in the narrowest integers the shared dictionaries need', async (t) => {
  // 100 servers, then 100 more: the shared dictionary passes 128 names between the two digests.
  const hourRows = (from: number) =>
    Array.from({ length: 300 }, (_, i) =>
      row(`s${from + (i % 100)}.example`, `r${i % 3}.example`, `$h${from}p${i}`, 10 + ((i * 37) % 900)),
    );
  const first = columnsFromRows(hourRows(0));
  const second = columnsFromRows(hourRows(100));
  const all = [...new Set([...first.servers, ...first.responders, ...second.servers, ...second.responders])];
  const ids = new Map(all.map((name, i) => [name, i + 1]));
  const names = await namesKnowing(ids);
  const [a, b] = [first, second].map((hour) => names.named(encodeDigest(hour, ids)));
  t.same(
    [a!.server, a!.responder, a!.ping, b!.server, b!.responder].map((column) => column.constructor.name),
    ['Int8Array', 'Int8Array', 'Int16Array', 'Int16Array', 'Int8Array'],
  );
  t.same(figuresFromColumns([a!, b!], FILTER), figuresFromColumns([first, second], FILTER));
});

t.test('index columns are as wide as the shared dictionaries need, at the edges of each width', async (t) => {
  for (const [count, width] of [
    [128, 'Int8Array'],
    [129, 'Int16Array'],
    [32_768, 'Int16Array'],
    [32_769, 'Int32Array'],
  ] as const) {
    // The last server's index is count - 1, the largest the width must hold.
    const hour = columnsFromRows(
      Array.from({ length: count }, (_, i) => row(`s${i}.example`, 'r.example', `$p${i}`, 10 + (i % 500))),
    );
    const ids = new Map([...hour.servers, ...hour.responders].map((name, i) => [name, i + 1]));
    const named = (await namesKnowing(ids)).named(encodeDigest(hour, ids));
    t.equal(named.server.constructor.name, width, `${count} servers`);
    t.same([...named.server], [...hour.server], `${count} servers: every index as it was`);
  }
});

t.test('a digest that ends before its columns do is refused, not read from what the buffer held before', async (t) => {
  const long = columnsFromRows(randomRows(3, 900, (random) => 10 + Math.floor(random() * 1000)));
  const short = columnsFromRows(randomRows(4, 300, (random) => 10 + Math.floor(random() * 1000)));
  const ids = new Map([...long.servers, ...long.responders].map((name, i) => [name, i + 1]));
  const names = await namesKnowing(ids);
  names.named(encodeDigest(long, ids));
  const stored = encodeDigest(short, ids);
  // Cut inside the delays, the last column: the head and the other columns are whole.
  const cut = { ...stored, columns: stored.columns.slice(0, stored.columns.length - 400) };
  t.throws(() => names.named(cut), /an hourly digest is cut short: \d+ bytes, where it needs \d+ \(samples: 300\)/);
  t.same(
    figuresFromColumns([names.named(stored)], FILTER),
    figuresFromColumns([short], FILTER),
    'the whole digest is still read',
  );
});

t.test('ping keys tell event IDs apart and are stable', async (t) => {
  const keys = new Int32Array(2 * 50_000);
  for (let i = 0; i < 50_000; i++) pingKey(`$${i.toString(36)}:example.org`, keys, 2 * i);
  const distinct = new Set(Array.from({ length: 50_000 }, (_, i) => `${keys[2 * i]},${keys[2 * i + 1]}`));
  t.equal(distinct.size, 50_000, 'no two of 50,000 similar IDs share a key');
  const again = new Int32Array(2);
  pingKey('$0:example.org', again, 0);
  t.same([...again], [keys[0], keys[1]]);
});

t.test('digests round-trip their columns, names through server ids, sharing one dictionary', async (t) => {
  const first = columnsFromRows([
    row('a.example:8448', 'r.example', '$x', 123),
    row('[::1]:8448', 'r.example', '$y', -5),
    row('[::1]:8448', 's.example', '$y', 7),
  ]);
  const second = columnsFromRows([
    row('b.example', 's.example', '$z', 40),
    row('a.example:8448', 's.example', '$x', 50),
  ]);
  const ids = new Map(
    ['s.example', 'a.example:8448', 'r.example', '[::1]:8448', 'b.example'].map((name, i) => [name, 10 + 3 * i]),
  );
  const encoded = [encodeDigest(first, ids), encodeDigest(second, ids)];
  t.same(
    encoded.map((e) => e.samples),
    [3, 2],
  );
  const digestNames = await namesKnowing(ids);
  const decoded = encoded.map((digest) => digestNames.named(digest));
  t.equal(decoded[0]!.servers, decoded[1]!.servers, 'one dictionary of servers for every digest');
  t.equal(decoded[0]!.responders, decoded[1]!.responders, 'and one of responders');
  [first, second].forEach((original, c) => {
    const back = decoded[c]!;
    const sameRows = (columns: typeof original) =>
      [...columns.delay].map((delay, i) => [
        columns.servers[columns.server[i]!],
        columns.responders[columns.responder[i]!],
        columns.ping[i],
        delay,
      ]);
    t.same(sameRows(back), sameRows(original), `digest ${c}: every sample's names, ping and delay`);
    t.same([...back.pingKeys], [...original.pingKeys], `digest ${c}: the ping keys`);
  });
  t.same(
    figuresFromColumns(decoded, FILTER),
    figuresFromColumns([first, second], FILTER),
    'the same figures as the columns they came from',
  );
  const wide = columnsFromRows(randomRows(5, 5000, (random) => 10 + Math.floor(random() * 100_000)));
  const wideIds = new Map([...wide.servers, ...wide.responders].map((name, i) => [name, 1000 + i]));
  const wideBack = (await namesKnowing(wideIds)).named(encodeDigest(wide, wideIds));
  t.same(
    figuresFromColumns([wideBack], FILTER),
    figuresFromColumns([wide], FILTER),
    'columns of 1, 2 and 4 bytes (20 servers, 1,667 pings, delays to 100,000 ms)',
  );
  const corrupt = Buffer.from(encodeDigest(first, ids).columns, 'base64');
  corrupt.writeInt32LE(3, 12);
  const knowing = await namesKnowing(ids);
  t.throws(() => knowing.named({ samples: 3, columns: corrupt.toString('base64') }), /a column 3 bytes wide/);
  const knowingOne = await namesKnowing(new Map([['s.example', 10]]));
  t.throws(() => knowingOne.named(encodeDigest(first, ids)), /server id 13, which is not in server_names/);
  for (const badId of [0, -3, 2 ** 30]) {
    const corruptIds = new Map([...ids].map(([name, id]) => [name, name === 'a.example:8448' ? badId : id]));
    const fresh = await namesKnowing(ids);
    t.throws(
      () => fresh.named(encodeDigest(first, corruptIds)),
      new RegExp(`server id ${badId}, which is not in server_names`),
      `a digest naming id ${badId} is refused`,
    );
  }
  const empty = (await namesKnowing(ids)).named(encodeDigest(columnsFromRows([]), ids));
  t.same([empty.servers, empty.delay.length, empty.pingKeys.length], [[], 0, 0]);
});

t.test(
  'FirstPongFilter passes the first row of each (ping, responder server), in the order given, however the rows come',
  async (t) => {
    const pong = (ping: string, responder: string, delay: number) => ({
      ping_event_id: ping,
      responder_server: responder,
      delay_ms: delay,
    });
    const rows = [
      pong('$1', 'b.example', 50),
      pong('$1', 'a.example', 300),
      pong('$1', 'b.example', 20),
      pong('$2', 'b.example', 40),
      pong('$1', 'c.example', 90),
      pong('$1', 'b.example', 10),
      pong('$1', 'a.example', 5),
      pong('$2', 'a.example', 7),
    ];
    const all = new FirstPongFilter();
    t.same(
      rows.filter((row) => all.isFirst(row)).map((r) => r.delay_ms),
      [50, 300, 40, 90, 7],
    );
    // In two parts, as a cursor's fetches bring them: what the first part passed, the second does not.
    const parts = new FirstPongFilter();
    const first = rows.slice(0, 3).filter((row) => parts.isFirst(row));
    const second = rows.slice(3).filter((row) => parts.isFirst(row));
    t.same(
      [first, second].map((part) => part.map((r) => r.delay_ms)),
      [
        [50, 300],
        [40, 90, 7],
      ],
    );
  },
);
