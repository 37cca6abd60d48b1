// What a backfill tells its operator: a progress line while it runs and the
// counts at the end. Pure, so the wording is tested directly.

export interface BackfillCounts {
  /** Message events read from the rooms' history. */
  events: number;
  /** Well-formed pongs of trusted responders within the window. */
  pongs: number;
  /** Samples stored by this run; the rest of the pongs were stored already. */
  stored: number;
  duplicate: number;
  /** Notices that claim to be pongs but are malformed. */
  rejected: number;
  /** Rooms of the lineages whose history was read. */
  rooms: number;
  /** The oldest origin_server_ts read, in ms; undefined before the first event. */
  reachedMs: number | undefined;
}

export function emptyCounts(): BackfillCounts {
  return { events: 0, pongs: 0, stored: 0, duplicate: 0, rejected: 0, rooms: 0, reachedMs: undefined };
}

const number = (n: number) => n.toLocaleString('en');

/** `2026-11-01 12:34 UTC`, or `nothing yet`. */
export function formatReached(ms: number | undefined): string {
  return ms === undefined ? 'nothing yet' : `${new Date(ms).toISOString().slice(0, 16).replace('T', ' ')} UTC`;
}

/** One terminal line: events scanned, samples recorded, the date reached and the rate. */
export function formatProgress(counts: BackfillCounts, elapsedMs: number): string {
  const rate = Math.round(counts.events / Math.max(0.001, elapsedMs / 1000));
  return (
    `${number(counts.events)} events scanned, ${number(counts.stored)} samples recorded` +
    `${counts.duplicate ? ` (${number(counts.duplicate)} already stored)` : ''}, reached ${formatReached(counts.reachedMs)}, ${number(rate)} events/s`
  );
}

/** The closing line of the command. */
export function formatSummary(counts: BackfillCounts, elapsedMs: number): string {
  return (
    `scanned ${counts.events} events in ${counts.rooms} ${counts.rooms === 1 ? 'room' : 'rooms'}, pongs ${counts.pongs}, ` +
    `stored ${counts.stored}, duplicate ${counts.duplicate}, malformed ${counts.rejected}, reached ${formatReached(counts.reachedMs)} ` +
    `in ${(elapsedMs / 1000).toFixed(1)} s`
  );
}
