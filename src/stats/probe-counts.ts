// What probes add to a ping server's figures: pure, so the rules are tested
// without a homeserver or a database.
import { compareNames } from '../order.ts';
import type { ServerOffset } from './one-way.ts';

/** Counts of one ping server's probe pings and probe samples over a window. */
export interface ProbeCounts {
  readonly server: string;
  /** Pings that reached the room (answered or lost); failed sends are not pings. */
  readonly sent: number;
  readonly lost: number;
  /** Sends that never reached the probe's own homeserver. */
  readonly sendFailures: number;
  readonly medianRttMs: number | null;
}

export interface ProbeFigures {
  readonly server: string;
  readonly pingsSent: number;
  readonly pingsLost: number;
  readonly sendFailures: number;
  readonly lossRate: number | null;
  readonly medianRttMs: number | null;
  /**
   * The server's clock against Pingboard's, measured by other probes of the
   * process seeing its probe's pings; null when none did. Its `flagged` is
   * the leaderboard's "clock skew suspected".
   */
  readonly clockOffset: ServerOffset | null;
}

/** Lost pings over pings sent; null when none was sent. */
export function lossRate(sent: number, lost: number): number | null {
  return sent > 0 ? lost / sent : null;
}

export function probeFigures(counts: ProbeCounts, clockOffset: ServerOffset | undefined): ProbeFigures {
  return {
    server: counts.server,
    pingsSent: counts.sent,
    pingsLost: counts.lost,
    sendFailures: counts.sendFailures,
    lossRate: lossRate(counts.sent, counts.lost),
    medianRttMs: counts.medianRttMs,
    clockOffset: clockOffset ?? null,
  };
}

/**
 * One window's figures per server, in name order: every server with probe
 * pings, and every server whose clock was measured (a window's edge may hold
 * the sightings of a ping and not the ping).
 */
export function mergeProbeFigures(counts: readonly ProbeCounts[], offsets: readonly ServerOffset[]): ProbeFigures[] {
  const offsetOf = new Map(offsets.map((o) => [o.server, o]));
  const countsOf = new Map(counts.map((c) => [c.server, c]));
  const servers = [...new Set([...countsOf.keys(), ...offsetOf.keys()])].sort(compareNames);
  return servers.map((server) =>
    probeFigures(
      countsOf.get(server) ?? { server, sent: 0, lost: 0, sendFailures: 0, medianRttMs: null },
      offsetOf.get(server),
    ),
  );
}
