// PingstatGroups as the database returns them, from a plain description:
// per ping server, per pong server, each ping's delay.
import type { PingstatGroups, PingstatPair, PingstatPings } from '../../src/stats/pingstat-data.ts';

export type PongsSpec = Record<string, Record<string, Record<string, number>>>;

export function pingstatGroupsOf(spec: PongsSpec): PingstatGroups {
  const pairs: PingstatPair[] = [];
  const pings = new Map<string, PingstatPings>();
  for (const [pingServer, byPong] of Object.entries(spec)) {
    const ids = new Set<string>();
    for (const [pongServer, diffs] of Object.entries(byPong)) {
      const entries = Object.entries(diffs);
      for (const [id] of entries) ids.add(id);
      pairs.push({
        pingServer,
        pongServer,
        pongs: entries.length,
        delays: Float64Array.from(entries, ([, ms]) => ms),
        diffsJson: entries.map(([id, ms]) => `${JSON.stringify(id)}:${ms}`).join(','),
      });
    }
    pings.set(pingServer, { count: ids.size, json: [...ids].map((id) => JSON.stringify(id)).join(',') });
  }
  return { pairs, pings };
}
