// Integers as people and tools write them in URLs and on the command line:
// plain decimal digits. `Number()` (and ajv's coercion, which uses it) also
// reads `1e400` as Infinity, `0x10` as 16 and ` 5`, `+5` or `-0` as numbers,
// so a limit of 1,000 could be passed with Infinity and two spellings of one
// value could be cached apart.
import { InputError, quoteValue } from './errors.ts';

/** Digits only, no sign, no leading zero; 15 digits at most, so every one is an exact double. */
const DECIMAL_INTEGER = /^(0|[1-9][0-9]{0,14})$/;

export function isDecimalInteger(text: string): boolean {
  return DECIMAL_INTEGER.test(text);
}

/** `raw` as an integer from `min` to `max`; an InputError naming `parameter` otherwise. */
export function parseDecimalInteger(parameter: string, raw: string | undefined, min: number, max: number): number {
  const value = raw !== undefined && isDecimalInteger(raw) ? Number(raw) : Number.NaN;
  if (!(value >= min && value <= max))
    throw new InputError(
      parameter,
      `expected a decimal integer from ${min} to ${max}, got ${raw === undefined ? 'nothing' : quoteValue(raw)}`,
    );
  return value;
}
