// The ranking counts one figure per (ping, pong server): that server's first
// pong to the ping, as the aggregator does. pingstat.py's save_pong is a
// plain insert on the key (room_id, ping_id, pong_server): the first pong a
// server sends for a ping is stored, and a second bot of the same server is
// refused by the key. Samples keep every account's pong; the ranking's
// figures are chosen here, on the pong's time (the bot's own answers: their
// pong event's origin_server_ts once learnt, pong_ts; every other sample's
// measured_at is its pong's time), ties broken by responder in byte order so
// every engine picks the same. A bot's own measured_at is when the ping
// arrived, before its pong was stamped: ordering on it would put the bot
// ahead of another bot of its server that the aggregator saw first.
//
// Hours stay those of measured_at (digests.ts): a figure counts in the hour,
// and the window, its sample was measured in.
//
// Which pong is first is a matter of all the pongs of that server to that
// ping, wherever they fall: a second bot's pong may land in a later hour, a
// later window, or be stored before the first. Each condition below looks
// the ping's other samples up by the primary key (room_id, ping_event_id, …).
import { sql, type RawBuilder } from 'kysely';

/** Orders the rows of a query on `samples` as pongs arrive: a row's first pong of its server comes before the others. */
export const PONG_ORDER = sql`coalesce(pong_ts, measured_at), responder collate "C"`;

/**
 * True when another pong of `sample`'s server to its ping came before it:
 * `sample` is then no figure of the ranking. (`sample` names a row of samples.)
 */
export function laterPongOfServer(sample: string): RawBuilder<boolean> {
  const s = sql.ref(sample);
  return sql<boolean>`exists (
    select 1 from samples earlier
    where earlier.room_id = ${s}.room_id and earlier.ping_event_id = ${s}.ping_event_id
      and earlier.responder_server = ${s}.responder_server
      and (coalesce(earlier.pong_ts, earlier.measured_at) < coalesce(${s}.pong_ts, ${s}.measured_at)
        or (coalesce(earlier.pong_ts, earlier.measured_at) = coalesce(${s}.pong_ts, ${s}.measured_at)
          and earlier.responder collate "C" < ${s}.responder collate "C")))`;
}

export interface PongRow {
  readonly ping_event_id: string;
  readonly responder_server: string;
}

/**
 * Tells the first row of each (ping, responder server) from the others, of
 * rows given in PONG_ORDER, over as many calls as the rows come in.
 */
export class FirstPongFilter {
  // Most pings have one pong per server, so mostly one name per ping.
  readonly #seen = new Map<string, string | string[]>();

  /** True for the first row of its (ping, responder server), false for any later one. */
  isFirst(row: PongRow): boolean {
    const servers = this.#seen.get(row.ping_event_id);
    if (servers === undefined) this.#seen.set(row.ping_event_id, row.responder_server);
    else if (typeof servers === 'string') {
      if (servers === row.responder_server) return false;
      this.#seen.set(row.ping_event_id, [servers, row.responder_server]);
    } else {
      if (servers.includes(row.responder_server)) return false;
      servers.push(row.responder_server);
    }
    return true;
  }
}
