// The JSON leaderboard for dashboards: the same selection as the markdown
// table, with every figure and the window it was computed over.
import type { ProbeFigures } from '../stats/probe-counts.ts';
import type { Exclusion } from '../stats/exclusions.ts';
import type { Figures } from '../stats/figures.ts';
import type { Leaderboard } from '../stats/leaderboard.ts';
import type { RankedServer } from '../stats/ranking.ts';

function figuresJson(f: Figures & { pings: number; samples: number }) {
  return {
    median_ms: f.medianMs,
    mean_ms: f.meanMs,
    gmean_ms: f.gmeanMs,
    p90_ms: f.p90Ms,
    min_ms: f.minMs,
    max_ms: f.maxMs,
    pings: f.pings,
    samples: f.samples,
  };
}

/** The probe figures every row carries: null where no probe measured the server (or, for the clock, saw its pings). */
export function probeFieldsJson(probe: ProbeFigures | undefined) {
  const clock = probe?.clockOffset ?? null;
  return {
    median_rtt_ms: probe?.medianRttMs ?? null,
    loss_rate: probe?.lossRate ?? null,
    clock_offset_ms: clock?.offsetMs ?? null,
    clock_offset_bound_ms: clock?.boundMs ?? null,
    clock_skew_suspected: clock?.flagged ?? null,
  };
}

export function probeFiguresJson(probe: ProbeFigures) {
  return {
    server: probe.server,
    pings_sent: probe.pingsSent,
    pings_lost: probe.pingsLost,
    send_failures: probe.sendFailures,
    ...probeFieldsJson(probe),
  };
}

export function rankedServerJson(server: RankedServer, probe?: ProbeFigures) {
  return {
    rank: server.rank,
    server: server.server,
    ...figuresJson(server),
    ...probeFieldsJson(probe),
    responders: server.responders.map((r) => ({ server: r.server, ...figuresJson(r) })),
  };
}

export function windowJson(board: Leaderboard) {
  return {
    kind: board.week === null ? ('rolling' as const) : ('week' as const),
    week: board.week,
    start: board.window.start.toISOString(),
    end: board.window.end.toISOString(),
    end_inclusive: board.window.endInclusive,
    frozen: board.frozenAt !== null,
    frozen_at: board.frozenAt?.toISOString() ?? null,
    version: board.version,
  };
}

export function exclusionJson(exclusion: Exclusion) {
  return {
    server: exclusion.server,
    reason: exclusion.reason,
    excluded_by: exclusion.excludedBy,
    excluded_at: exclusion.excludedAt.toISOString(),
  };
}

/** `probes`: the probe figures of the window (probeFiguresInWindow), every probed server, ranked or not. */
export function renderLeaderboardJson(board: Leaderboard, limit: number, probes: readonly ProbeFigures[] = []) {
  const probeOf = new Map(probes.map((p) => [p.server, p]));
  return {
    room: board.room.id,
    room_ids: [...board.room.roomIds],
    disclaimer: board.room.disclaimer,
    window: windowJson(board),
    generated_at: board.generatedAt.toISOString(),
    filters: {
      min_delay_ms: board.filters.minDelayMs,
      max_delay_ms: board.filters.maxDelayMs,
      min_pings: board.filters.minPings,
    },
    servers_ranked: board.servers.length,
    rows: board.servers.slice(0, limit).map((s) => rankedServerJson(s, probeOf.get(s.server))),
    excluded: board.exclusions.map(exclusionJson),
    probes: probes.map(probeFiguresJson),
  };
}

export type LeaderboardJson = ReturnType<typeof renderLeaderboardJson>;
