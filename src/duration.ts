// Human-readable durations exactly as the existing echo bot writes them in
// pongs (its Python `prettify_diff`), including Python's rounding: round half
// to even, decided on the exact binary value of the float; and as the
// aggregator's page writes its figures.

/** Python's `round(x, digits)`, as the string Python prints for the result. */
function pythonRound(x: number, digits: 0 | 1): string {
  const sign = x < 0 ? '-' : '';
  const magnitude = Math.abs(x);
  // toFixed uses the exact value of the double, so only true ties need care.
  const exact = magnitude.toFixed(60);
  const dot = exact.indexOf('.');
  const tail = exact.slice(dot + 1 + digits);
  let rounded = magnitude.toFixed(digits);
  if (/^50*$/.test(tail)) {
    const kept = exact.slice(0, dot + 1 + digits).replace('.', '');
    const lastDigit = Number(kept[kept.length - 1]);
    if (lastDigit % 2 === 0) rounded = exact.slice(0, digits === 0 ? dot : dot + 1 + digits);
  }
  const text = `${sign}${rounded}`;
  return text === '-0' || text === '-0.0' ? text.slice(1) : text;
}

function plural(value: number, unit: string, digits: 0 | 1): string {
  const text = pythonRound(value, digits);
  return Number(text) === 1 ? `${text} ${unit}` : `${text} ${unit}s`;
}

/** Python's divmod for floats: the quotient is floored, the remainder takes the divisor's sign. */
function divmod(a: number, b: number): [number, number] {
  const quotient = Math.floor(a / b);
  return [quotient, a - quotient * b];
}

/**
 * A figure on the aggregator's HTML page, which writes it with its own
 * `prettify_diff`: under 10 s it prints Python's `round(x, 1)`, so a float (a
 * mean, the median of an even count) keeps one decimal (`376.0 ms`) and an
 * int (the median of an odd count of whole delays) none.
 */
export function pingstatDuration(ms: number, pythonFloat: boolean): string {
  if (Math.abs(ms) < 10_000) return `${pythonFloat ? pythonRound(ms, 1) : String(ms)} ms`;
  return humanDuration(ms);
}

/** `376 ms`, `1.5 seconds`, `2 minutes and 5 seconds`, `1 hour, 0 minutes and 3 seconds`, … */
export function humanDuration(ms: number): string {
  if (Math.abs(ms) < 10_000) return `${ms} ms`;
  if (Math.abs(ms) < 60_000) return plural(ms / 1000, 'second', 1);
  const [minutes, seconds] = divmod(ms / 1000, 60);
  if (Math.abs(minutes) < 60) return `${plural(minutes, 'minute', 0)} and ${plural(seconds, 'second', 0)}`;
  const [hours, minutesOfHour] = divmod(minutes, 60);
  if (Math.abs(hours) < 24) {
    return `${plural(hours, 'hour', 0)}, ${plural(minutesOfHour, 'minute', 0)} and ${plural(seconds, 'second', 0)}`;
  }
  const [days, hoursOfDay] = divmod(hours, 24);
  return `${plural(days, 'day', 0)}, ${plural(hoursOfDay, 'hour', 0)}, ${plural(minutesOfHour, 'minute', 0)} and ${plural(seconds, 'second', 0)}`;
}

/**
 * A delay on the web pages, one style everywhere: milliseconds with at most
 * one decimal (`444.5 ms`, never a float's noise such as 280.60000000000014)
 * under 10 s, seconds with at most one decimal from there (`600 s`, `12.3 s`).
 */
export function pageDuration(ms: number): string {
  const tenths = Math.round(ms * 10) / 10;
  // `|| 0`: a negative value that rounds to zero is written `0`, not `-0`.
  if (Math.abs(tenths) < 10_000) return `${tenths || 0} ms`;
  return `${Math.round(ms / 100) / 10} s`;
}
