// The JSON leaderboard for dashboards: the same selection as the markdown
// table, with every figure and the window it was computed over.
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

export function rankedServerJson(server: RankedServer) {
  return {
    rank: server.rank,
    server: server.server,
    ...figuresJson(server),
    responders: server.responders.map((r) => ({ server: r.server, ...figuresJson(r) })),
  };
}

export function windowJson(board: Leaderboard) {
  return {
    kind: board.week === null ? 'rolling' as const : 'week' as const,
    week: board.week,
    start: board.window.start.toISOString(),
    end: board.window.end.toISOString(),
    end_inclusive: board.window.endInclusive,
    frozen: board.frozenAt !== null,
    frozen_at: board.frozenAt?.toISOString() ?? null,
  };
}

export function renderLeaderboardJson(board: Leaderboard, limit: number) {
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
    rows: board.servers.slice(0, limit).map(rankedServerJson),
  };
}

export type LeaderboardJson = ReturnType<typeof renderLeaderboardJson>;
