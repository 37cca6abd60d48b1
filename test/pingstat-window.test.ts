// max_age / min_age of the aggregator-compatible routes, read as maubot's
// pingstat reads them (pingstat.py `_get_min_max_age`: Python's int(), the
// default on ValueError, the span capped by max_delta). Expected values were
// checked with CPython 3.11's int().
import t from 'tap';
import { PINGSTAT_WEEK_MS, pingstatWindow, pythonInt } from '../src/stats/pingstat-window.ts';

t.test("pythonInt reads what Python's int() reads and refuses the rest", async (t) => {
  const cases: [string, bigint | undefined][] = [
    ['5', 5n],
    [' 5 ', 5n],
    ['\t-3\n', -3n],
    ['+7', 7n],
    ['-0', 0n],
    ['007', 7n],
    ['1_000', 1000n],
    ['0_0', 0n],
    ['\u00a012\u3000', 12n],
    ['\u0085 9', 9n],
    ['١٢٣', 123n],
    ['１２', 12n],
    ['\u{1D7D9}\u{1D7E0}', 18n],
    ['٣_٣', 33n],
    ['99999999999999999999', 99999999999999999999n],
    ['1'.repeat(4300), BigInt('1'.repeat(4300))],
    [`${'1_'.repeat(2150)}1`, BigInt('1'.repeat(2151))],
    ['', undefined],
    ['   ', undefined],
    ['abc', undefined],
    ['1.5', undefined],
    ['1e3', undefined],
    ['0x10', undefined],
    ['-1e400', undefined],
    ['1e400', undefined],
    ['inf', undefined],
    ['nan', undefined],
    ['1__0', undefined],
    ['_1', undefined],
    ['1_', undefined],
    ['+_1', undefined],
    ['- 5', undefined],
    ['+-1', undefined],
    ['1 2', undefined],
    ['\u001c5\u001f', undefined],
    ['\ufeff1', undefined],
    ['1'.repeat(4301), undefined],
    ['0'.repeat(4301), undefined],
  ];
  for (const [text, expected] of cases)
    t.equal(
      pythonInt(text),
      expected,
      JSON.stringify(text.length > 30 ? `${text.slice(0, 20)}… (${text.length})` : text),
    );
});

t.test("pingstatWindow: pingstat's window for every max_age / min_age", async (t) => {
  const now = new Date('2026-11-21T12:00:00Z');
  const at = (iso: string) => new Date(iso);
  const DEFAULT = { start: at('2026-11-14T12:00:00Z'), end: now };
  const week = PINGSTAT_WEEK_MS;
  const cases: [string, { max_age?: string; min_age?: string }, bigint, { start: Date; end: Date } | 'empty'][] = [
    ['no parameters: the last week', {}, week, DEFAULT],
    ['not an int to Python: the default', { max_age: 'abc', min_age: '1.5' }, week, DEFAULT],
    ['empty: the default', { max_age: '', min_age: '' }, week, DEFAULT],
    ['1e400: the default', { max_age: '1e400', min_age: '-1e400' }, week, DEFAULT],
    [
      'spaces and underscores',
      { max_age: ' 86_400 ', min_age: '+3600' },
      week,
      { start: at('2026-11-20T12:00:00Z'), end: at('2026-11-21T11:00:00Z') },
    ],
    ['99999999999 s: capped to a week', { max_age: '99999999999' }, week, DEFAULT],
    ['twenty digits: capped to a week', { max_age: '99999999999999999999' }, week, DEFAULT],
    [
      'capped: the week before now - min_age',
      { max_age: '1_000_000', min_age: '86400' },
      week,
      { start: at('2026-11-13T12:00:00Z'), end: at('2026-11-20T12:00:00Z') },
    ],
    [
      'negative min_age: the end in the future, the span still one week',
      { min_age: '-86400' },
      week,
      { start: at('2026-11-15T12:00:00Z'), end: at('2026-11-22T12:00:00Z') },
    ],
    ['negative max_age: empty', { max_age: '-1' }, week, 'empty'],
    ['min_age beyond max_age: empty', { max_age: '3600', min_age: '7200' }, week, 'empty'],
    ['min_age far in the past: empty', { min_age: '99999999999999999999' }, week, 'empty'],
    ['min_age far in the future, span capped: empty', { min_age: '-99999999999999999999' }, week, 'empty'],
    ['raw rows: no cap', { max_age: `${30 * 86_400}` }, 0n, { start: at('2026-10-22T12:00:00Z'), end: now }],
    [
      'raw rows: a window beyond the epoch reaches back to year 1',
      { max_age: '99999999999999999999' },
      0n,
      { start: at('0001-01-01T00:00:00Z'), end: now },
    ],
    [
      'raw rows: both ends far apart',
      { max_age: '99999999999999999999', min_age: '-99999999999999999999' },
      0n,
      { start: at('0001-01-01T00:00:00Z'), end: at('9999-12-31T23:59:59.999Z') },
    ],
    ['zero width', { max_age: '0', min_age: '0' }, week, { start: now, end: now }],
  ];
  for (const [name, ages, span, expected] of cases) {
    const window = pingstatWindow(now, ages, span);
    t.ok(Number.isFinite(window.start.getTime()) && Number.isFinite(window.end.getTime()), `${name}: valid dates`);
    if (expected === 'empty') t.ok(window.start > window.end, `${name}: start after end`);
    else t.same(window, expected, name);
  }
});
