// Ranking: pure, so ties, filters and ordering are tested without a database.
import { compareNames } from '../order.ts';
import type { Figures } from './figures.ts';

export interface ResponderFigures extends Figures {
  readonly server: string;
  readonly pings: number;
  readonly samples: number;
}

export interface ServerFigures extends Figures {
  readonly server: string;
  /** Distinct pings from this server. */
  readonly pings: number;
  /** Measurements of those pings, one per pong server: its first pong (first-pongs.ts). */
  readonly samples: number;
  readonly responders: readonly ResponderFigures[];
}

export interface RankedServer extends ServerFigures {
  /** Competition ranking: equal medians share a rank, the next rank skips (1, 2, 2, 4). */
  readonly rank: number;
}

/**
 * Servers with at least `minPings` pings, by ascending median; equal medians
 * share a rank and are listed by server name.
 */
export function rankServers(servers: readonly ServerFigures[], minPings: number): RankedServer[] {
  const eligible = servers
    .filter((s) => s.pings >= minPings)
    .sort((a, b) => a.medianMs - b.medianMs || compareNames(a.server, b.server));
  const ranked: RankedServer[] = [];
  for (const [index, server] of eligible.entries()) {
    const previous = ranked[index - 1];
    ranked.push({ ...server, rank: previous?.medianMs === server.medianMs ? previous.rank : index + 1 });
  }
  return ranked;
}
