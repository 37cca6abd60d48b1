// The aggregator-compatible figures from the week kept in memory, computed
// again only for the ping servers whose pongs in the window changed. A new
// pong changes one ping server's figures of a few hundred: walking,
// summarising and writing the others again was most of an answer's time.
import type { SpillDirectory } from '../spill.ts';
import { PingServerWalk, serverRowsInWindow } from './pong-hours.ts';
import type { PongSnapshot } from './pong-store.ts';
import {
  rankPingstatServers,
  SPILLED_MEMBER_MIN_BYTES,
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
  /** Of its stats.json member, or the lists it is written from. */
  readonly bytes: number;
}

interface KeptFigures {
  /** The dictionary the servers are numbered in (its ID: a set must not keep a dropped one alive). */
  readonly dictionary: number;
  servers: Map<number, KeptServer>;
  bytes: number;
}

/**
 * Bytes of stats.json members (or the lists they are written from) kept over
 * every set of figures (one set per lineage, window ages and filter asked,
 * the ages from the query string), in memory or in spilled files, the least
 * recently asked set dropped first: a week of a million rows is 19 MB of
 * them.
 */
const KEPT_BYTES = 64 * 1024 * 1024;

const jsonBytes = (figures: PingstatServerFigures | undefined) => figures?.jsonBytes ?? 0;

function sameNumbers(a: readonly number[], b: readonly number[]): boolean {
  if (a.length !== b.length) return false;
  for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) return false;
  return true;
}

export class PingstatSummaries {
  readonly #kept = new Map<string, KeptFigures>();
  readonly #keptBytes: number;
  readonly #spill: SpillDirectory | undefined;

  /** `spill`: where large stats.json members are kept (in memory without one). */
  constructor(spill?: SpillDirectory, keptBytes = KEPT_BYTES) {
    this.#spill = spill;
    this.#keptBytes = keptBytes;
  }

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
    if (kept?.dictionary !== dictionary.id) kept = { dictionary: dictionary.id, servers: new Map(), bytes: 0 };
    this.#kept.set(keptKey, kept);
    const excludedSet = new Set(excluded);
    const servers = new Map<number, KeptServer>();
    const figures: PingstatServerFigures[] = [];
    let walk: PingServerWalk | undefined;
    // The members these figures write, in one file: a client reads them one after another.
    const keep = this.#spill?.appender(SPILLED_MEMBER_MIN_BYTES);
    for (const rows of serverRowsInWindow(snapshot.hours, window).values()) {
      const name = dictionary.names[rows.server]!;
      if (excludedSet.has(name)) continue;
      let server = kept.servers.get(rows.server);
      if (server === undefined || !sameNumbers(server.signature, rows.signature) || server.figures?.jsonLost) {
        walk ??= new PingServerWalk(dictionary);
        const group = walk.group(rows, filter);
        const computed = group && summarisePingServer(name, group.pairs, group.pings, keep);
        server = { signature: rows.signature, figures: computed, bytes: jsonBytes(computed) };
      }
      servers.set(rows.server, server);
      if (server.figures !== undefined) figures.push(server.figures);
    }
    kept.servers = servers;
    kept.bytes = 0;
    for (const server of servers.values()) kept.bytes += server.bytes;
    let total = 0;
    for (const set of this.#kept.values()) total += set.bytes;
    for (const [oldest, set] of this.#kept) {
      if (total <= this.#keptBytes || set === kept) break;
      this.#kept.delete(oldest);
      total -= set.bytes;
    }
    return rankPingstatServers(figures, disclaimer);
  }
}
