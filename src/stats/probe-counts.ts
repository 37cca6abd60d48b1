// What probes add to a ping server's figures: pure, so the rules are tested
// without a homeserver or a database.

/** Counts of one ping server's probe pings and probe samples over a window. */
export interface ProbeCounts {
  readonly server: string;
  /** Pings that reached the room (answered or lost); failed sends are not pings. */
  readonly sent: number;
  readonly lost: number;
  /** Sends that never reached the probe's own homeserver. */
  readonly sendFailures: number;
  /** Samples with a round trip (one per pong a probe read). */
  readonly samples: number;
  readonly medianRttMs: number | null;
  /** Probe samples whose one-way delay is negative or longer than their own round trip. */
  readonly impossibleDelays: number;
}

export interface ProbeFigures {
  readonly server: string;
  readonly pingsSent: number;
  readonly pingsLost: number;
  readonly sendFailures: number;
  readonly lossRate: number | null;
  readonly medianRttMs: number | null;
  /** Null when no probe sample measured the server's clock against a round trip. */
  readonly clockSkewSuspected: boolean | null;
}

/** Lost pings over pings sent; null when none was sent. */
export function lossRate(sent: number, lost: number): number | null {
  return sent > 0 ? lost / sent : null;
}

/**
 * A one-way delay cannot be negative, nor longer than the round trip it is
 * part of, unless the clocks of the ping's server and the responder
 * disagree. One such sample may be a hiccup; most of them is a clock.
 */
export function clockSkewSuspected(samples: number, impossibleDelays: number): boolean | null {
  if (samples === 0) return null;
  return impossibleDelays * 2 > samples;
}

export function probeFigures(counts: ProbeCounts): ProbeFigures {
  return {
    server: counts.server,
    pingsSent: counts.sent,
    pingsLost: counts.lost,
    sendFailures: counts.sendFailures,
    lossRate: lossRate(counts.sent, counts.lost),
    medianRttMs: counts.medianRttMs,
    clockSkewSuspected: clockSkewSuspected(counts.samples, counts.impossibleDelays),
  };
}
