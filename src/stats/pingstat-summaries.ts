// The aggregator-compatible figures from the week kept in memory, computed
// again only for the ping servers whose pongs in the window changed. A new
// pong changes one ping server's figures of a few hundred: walking,
// summarising and writing the others again was most of an answer's time.
import type { PongDictionary } from './pong-hours.ts';
import { PingServerWalk, serverRowsInWindow } from './pong-hours.ts';
import type { PongSnapshot } from './pong-store.ts';
import {
  rankPingstatServers,
  summarisePingServer,
  type PingstatServerFigures,
  type PingstatSummary,
} from './pingstat-summary.ts';
import type { PingstatWindow } from './pingstat-window.ts';
import type { DelayFilter } from './repository.ts';

interface KeptServer {
  /** The signature of the rows its figures came from (ServerRowsInWindow). */
  readonly signature: readonly number[];
  /** Undefined when the filter kept none of its pongs. */
  readonly figures: PingstatServerFigures | undefined;
}

interface KeptFigures {
  readonly dictionary: PongDictionary;
  servers: Map<number, KeptServer>;
}

/** Sets of figures kept (one per lineage, window ages and filter asked), the least recently asked dropped first. */
const KEPT_SETS = 8;

function sameNumbers(a: readonly number[], b: readonly number[]): boolean {
  if (a.length !== b.length) return false;
  for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) return false;
  return true;
}

export class PingstatSummaries {
  readonly #kept = new Map<string, KeptFigures>();

  /**
   * The summary of the snapshot's pongs in the window, as summarisePingstat
   * gives it from the database's groups. `key` names the lineage and the
   * window's ages: figures are reused under the same key only, for servers
   * whose rows in the window are the same ones.
   */
  summary(
    key: string,
    snapshot: PongSnapshot,
    window: PingstatWindow,
    filter: DelayFilter,
    excluded: readonly string[],
    disclaimer: string,
  ): PingstatSummary {
    const { dictionary } = snapshot;
    const keptKey = JSON.stringify([key, filter.minDelayMs, filter.maxDelayMs]);
    let kept = this.#kept.get(keptKey);
    this.#kept.delete(keptKey);
    // A dictionary made again numbers servers and pings anew.
    if (kept?.dictionary !== dictionary) kept = { dictionary, servers: new Map() };
    this.#kept.set(keptKey, kept);
    for (const [oldest] of this.#kept) {
      if (this.#kept.size <= KEPT_SETS) break;
      this.#kept.delete(oldest);
    }
    const excludedSet = new Set(excluded);
    const servers = new Map<number, KeptServer>();
    const figures: PingstatServerFigures[] = [];
    let walk: PingServerWalk | undefined;
    for (const rows of serverRowsInWindow(snapshot.hours, window).values()) {
      const name = dictionary.names[rows.server]!;
      if (excludedSet.has(name)) continue;
      let server = kept.servers.get(rows.server);
      if (server === undefined || !sameNumbers(server.signature, rows.signature)) {
        walk ??= new PingServerWalk(dictionary);
        const group = walk.group(rows, filter);
        server = {
          signature: rows.signature,
          figures: group && summarisePingServer(name, group.pairs, group.pings),
        };
      }
      servers.set(rows.server, server);
      if (server.figures !== undefined) figures.push(server.figures);
    }
    kept.servers = servers;
    return rankPingstatServers(figures, disclaimer);
  }
}
