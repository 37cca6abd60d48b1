// The one-clock figures of probes that see each other's pings: pure, so the
// arithmetic is tested without a homeserver or a database.
//
// Instants, all taken by one process:
//   S  its send request's first byte went out (monotonic clock)
//   R  the send's round trip: S to the answer's last byte
//   A  the receiving probe's sync response's last byte (monotonic clock)
//   W  the same moment on the process's wall clock
//   T  origin_server_ts, stamped by the sender's server on its own clock
// One-way delay A − S holds no clock but the process's. Two-clock delay
// W − T is what echo bots report. The server stamped T somewhere within
// [S, S + R]; taking its middle, T = wall(S + R/2) + offset, so
//   offset = (A − S) − (W − T) − R/2, within ± R/2.

/** One probe ping as one other probe saw it. */
export interface OneWayMeasurement {
  readonly oneWayMs: number;
  readonly twoClockMs: number;
  readonly sendRttMs: number;
}

export interface OffsetEstimate {
  /** How far the sender server's clock runs ahead of this process's (negative: behind). */
  readonly offsetMs: number;
  /** The true offset lies within offsetMs ± boundMs (the clocks' rates aside). */
  readonly boundMs: number;
}

export function offsetEstimate(m: OneWayMeasurement): OffsetEstimate {
  return { offsetMs: m.oneWayMs - m.twoClockMs - m.sendRttMs / 2, boundMs: m.sendRttMs / 2 };
}

/** A clock is flagged when its offset is beyond what its bound explains, by more than the threshold. */
export function offsetFlagged(estimate: OffsetEstimate, thresholdMs: number): boolean {
  return Math.abs(estimate.offsetMs) > estimate.boundMs + thresholdMs;
}

/** One ordered pair's delivery times over a window. */
export interface PairFigures {
  readonly from: string;
  readonly to: string;
  readonly medianMs: number;
  readonly p90Ms: number;
  readonly count: number;
}

/** One sender server's offset over a window: medians of its per-sample estimates and bounds. */
export interface ServerOffset extends OffsetEstimate {
  readonly server: string;
  readonly samples: number;
  readonly flagged: boolean;
}

export function serverOffset(
  server: string,
  samples: number,
  median: OffsetEstimate,
  thresholdMs: number,
): ServerOffset {
  return { server, samples, ...median, flagged: offsetFlagged(median, thresholdMs) };
}

/** The servers of a matrix, senders and receivers alike, in name order. */
export function matrixServers(pairs: readonly PairFigures[]): string[] {
  return [...new Set(pairs.flatMap((p) => [p.from, p.to]))].sort();
}
