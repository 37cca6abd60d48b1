// The window of the aggregator-compatible routes, read from `max_age` and
// `min_age` exactly as maubot's pingstat reads them (pingstat.py,
// `_get_min_max_age`): `int(request.query[...]) * 1000`, a value Python's
// `int()` refuses falls back to the default, and `iter_pongs` keeps
// `now - max_age <= pong_timestamp <= now - min_age`. A tool that works
// against the aggregator must get the same rows here, whatever it sends.

/** What `int()` strips at both ends: Python's `str.isspace()` less the ASCII separators U+001C-U+001F. */
const PY_SPACE = '\\t\\n\\v\\f\\r \\x85\\xa0\\u1680\\u2000-\\u200a\\u2028\\u2029\\u202f\\u205f\\u3000';
/** CPython's `int(str)` grammar in base 10: sign, digits with single underscores between them. */
const PY_INT = new RegExp(`^[${PY_SPACE}]*([+-]?)(\\p{Nd}+(?:_\\p{Nd}+)*)[${PY_SPACE}]*$`, 'u');
/** Python 3.11+ (and the security releases before it) refuse longer decimal strings: `sys.get_int_max_str_digits()`. */
const PY_INT_MAX_STR_DIGITS = 4300;

/**
 * The value of a decimal digit of any script, as Python reads it (`int('٣')` is 3).
 * Unicode assigns decimal digits only in contiguous runs of whole 0-9 sets,
 * so a digit's value is its distance from the start of its run, modulo 10.
 */
function digitValue(codePoint: number): number {
  let start = codePoint;
  while (/\p{Nd}/u.test(String.fromCodePoint(start - 1))) start--;
  return (codePoint - start) % 10;
}

/** Python's `int(text)`, or undefined where Python raises ValueError. */
export function pythonInt(text: string): bigint | undefined {
  const match = PY_INT.exec(text);
  if (!match) return undefined;
  const digits = match[2]!.replaceAll('_', '');
  let ascii = '';
  for (const char of digits) ascii += char >= '0' && char <= '9' ? char : String(digitValue(char.codePointAt(0)!));
  if (ascii.length > PY_INT_MAX_STR_DIGITS) return undefined;
  const value = BigInt(ascii);
  return match[1] === '-' ? -value : value;
}

const SECOND_MS = 1000n;
export const PINGSTAT_WEEK_MS = 7n * 86_400n * SECOND_MS;

// Dates PostgreSQL, PGlite and JavaScript all hold and write plainly (years
// 1 to 9999); every sample lies inside (imports are checked to 2014-2100,
// pongs carry their servers' clocks). A window reaching past either end is
// cut there, which keeps the same samples; one wholly outside is empty.
const EARLIEST_MS = BigInt(Date.parse('0001-01-01T00:00:00.000Z'));
const LATEST_MS = BigInt(Date.parse('9999-12-31T23:59:59.999Z'));
const EMPTY: PingstatWindow = { start: new Date(Number(LATEST_MS)), end: new Date(Number(EARLIEST_MS)) };

export interface PingstatAges {
  readonly max_age?: string | undefined;
  readonly min_age?: string | undefined;
}

function agesMs(ages: PingstatAges): { maxAge: bigint; minAge: bigint } {
  const read = (text: string | undefined) => (text === undefined ? undefined : pythonInt(text));
  return { maxAge: (read(ages.max_age) ?? 7n * 86_400n) * SECOND_MS, minAge: (read(ages.min_age) ?? 0n) * SECOND_MS };
}

/** The same for every query that means the same ages (`max_age=abc` and none, say), whatever the time. */
export function pingstatAgesKey(ages: PingstatAges): string {
  const { maxAge, minAge } = agesMs(ages);
  return `${maxAge}|${minAge}`;
}

export interface PingstatWindow {
  /** Inclusive at both ends; a start after the end selects nothing. */
  readonly start: Date;
  readonly end: Date;
}

/**
 * The window for the query's ages at `now`. `maxSpanMs` is pingstat's
 * `max_delta`: one week for the statistics, 0 (no cap) for the raw rows.
 */
export function pingstatWindow(now: Date, ages: PingstatAges, maxSpanMs: bigint): PingstatWindow {
  const { minAge, maxAge: asked } = agesMs(ages);
  let maxAge = asked;
  if (0n < maxSpanMs && maxSpanMs < maxAge - minAge) maxAge = minAge + maxSpanMs;
  const nowMs = BigInt(now.getTime());
  const start = nowMs - maxAge;
  const end = nowMs - minAge;
  if (start > end || end < EARLIEST_MS || start > LATEST_MS) return EMPTY;
  return {
    start: new Date(Number(start < EARLIEST_MS ? EARLIEST_MS : start)),
    end: new Date(Number(end > LATEST_MS ? LATEST_MS : end)),
  };
}
