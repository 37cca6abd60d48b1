// `--since`: how far back a backfill reads, as a span before now (`30d`,
// `12h`, `2w`) or a date or time (`2026-10-01`, `2026-10-01T12:00:00Z`).
import { InputError, quoteValue } from '../errors.ts';

const UNIT_MS: Record<string, number> = { h: 3_600_000, d: 86_400_000, w: 7 * 86_400_000 };
/** Ten years: further back than any ping room has existed. */
const MAX_SPAN_MS = 3650 * 86_400_000;

/** The moment `raw` names, at or before `now`; an InputError naming `option` otherwise. */
export function parseSince(raw: string, now: Date, option = '--since'): Date {
  const text = raw.trim();
  const allowed = `expected a span before now such as 7d, 12h or 2w, or a date such as 2026-10-01 (UTC) or an ISO 8601 time`;
  const span = /^(\d{1,6})([hdw])$/i.exec(text);
  let ms: number;
  if (span) {
    const spanMs = Number(span[1]) * UNIT_MS[span[2]!.toLowerCase()]!;
    if (spanMs === 0 || spanMs > MAX_SPAN_MS)
      throw new InputError(option, `expected a span from 1h to 3650d, got ${quoteValue(raw)}`);
    ms = now.getTime() - spanMs;
  } else if (/^\d{4}-\d{2}-\d{2}$/.test(text)) {
    ms = Date.parse(`${text}T00:00:00Z`);
    // Date.parse rolls 2026-02-31 over to March: only real dates pass.
    if (!Number.isFinite(ms) || new Date(ms).toISOString().slice(0, 10) !== text)
      throw new InputError(option, `${allowed}, got ${quoteValue(raw)}`);
  } else if (/^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}(:\d{2}(\.\d+)?)?(Z|[+-]\d{2}:\d{2})$/i.test(text)) {
    ms = Date.parse(text);
    if (!Number.isFinite(ms)) throw new InputError(option, `${allowed}, got ${quoteValue(raw)}`);
  } else {
    throw new InputError(option, `${allowed}, got ${quoteValue(raw)}`);
  }
  if (ms > now.getTime()) throw new InputError(option, `${quoteValue(raw)} is in the future`);
  if (now.getTime() - ms > MAX_SPAN_MS) throw new InputError(option, `${quoteValue(raw)} is more than ten years ago`);
  return new Date(ms);
}
