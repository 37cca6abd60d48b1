// What a backfill remembers between runs, per configured room (in bot_state):
// the span of history it has read completely, and the walk in progress.
// A walk reads backwards from a position (room and pagination token) until
// origin_server_ts falls below its stop time or the history ends. Pure: the
// walk itself is in backfill.ts.

/** Where a walk continues: a room and a /messages token; a null token is the room's newest event. */
export interface Position {
  readonly roomId: string;
  readonly token: string | null;
}

/** History read completely: every event with fromMs ≤ ts ≤ toMs (fromMs null: since the lineage's first room began). */
export interface Span {
  readonly fromMs: number | null;
  readonly toMs: number;
  /** Where to continue to read further back; null when the history ends there. */
  readonly oldest: Position | null;
}

export interface Walk {
  /** The newest time it covers: when it started from the newest event. */
  readonly toMs: number;
  /** It stops after the page whose oldest event is older than this. */
  readonly stopMs: number;
  /** The next page to read. */
  readonly position: Position;
}

export interface Coverage {
  readonly covered?: Span;
  /** An interrupted walk: the next run continues it. */
  readonly pending?: Walk;
}

export function coverageKey(configuredRoomId: string): string {
  return `backfill:${configuredRoomId}`;
}

function isPosition(value: unknown): value is Position {
  const p = value as Position | null;
  return (
    typeof p === 'object' &&
    p !== null &&
    typeof p.roomId === 'string' &&
    (p.token === null || typeof p.token === 'string')
  );
}

/** Reads the stored JSON; anything unreadable counts as nothing stored (walking again is only slower). */
export function parseCoverage(raw: string | undefined): Coverage {
  if (raw === undefined) return {};
  try {
    const value = JSON.parse(raw) as { covered?: Span; pending?: Walk };
    const covered = value.covered;
    const pending = value.pending;
    return {
      ...(covered &&
      typeof covered.toMs === 'number' &&
      (covered.fromMs === null || typeof covered.fromMs === 'number') &&
      (covered.oldest === null || isPosition(covered.oldest))
        ? { covered }
        : {}),
      ...(pending &&
      typeof pending.toMs === 'number' &&
      typeof pending.stopMs === 'number' &&
      isPosition(pending.position)
        ? { pending }
        : {}),
    };
  } catch {
    return {};
  }
}

const from = (span: Span) => span.fromMs ?? -Infinity;

/** Joins a finished walk's span to what was covered; a span that does not touch it replaces it when newer. */
export function mergeSpan(covered: Span | undefined, done: Span): Span {
  if (!covered) return done;
  if (from(done) > covered.toMs || done.toMs < from(covered)) return done.toMs >= covered.toMs ? done : covered;
  const older = from(done) <= from(covered) ? done : covered;
  return { fromMs: older.fromMs, toMs: Math.max(done.toMs, covered.toMs), oldest: older.oldest };
}

/**
 * The next walk that brings the coverage down to `sinceMs` and up to `nowMs`:
 * an interrupted one first, then the history newer than what was covered,
 * then the part older than it. Undefined when nothing is left to read.
 */
export function nextWalk(coverage: Coverage, sinceMs: number, nowMs: number, newest: Position): Walk | undefined {
  if (coverage.pending) return coverage.pending;
  const covered = coverage.covered;
  if (!covered || covered.toMs < sinceMs) return { toMs: nowMs, stopMs: sinceMs, position: newest };
  if (covered.toMs < nowMs) return { toMs: nowMs, stopMs: covered.toMs, position: newest };
  if (from(covered) > sinceMs && covered.oldest)
    return { toMs: from(covered), stopMs: sinceMs, position: covered.oldest };
  return undefined;
}
