// An echo-style responder, as the echo bot (maubot's echo) answers in real
// ping rooms: it long-polls /sync over the Client-Server API like any client,
// and answers each `!ping` with echo's pong (src/matrix/pong.ts), the delay
// being its own clock at arrival minus the ping's origin_server_ts. Pingboard
// records these pongs as it records echo's. Plain HTTP rather than the SDK:
// a responder needs only /sync and /send, and two SDK clients would cost the
// demo more CPU than Pingboard's own bot.
import { setTimeout as sleep } from 'node:timers/promises';
import { buildPong, pingsInSync, type SyncedPing } from '../src/matrix/pong.ts';
import type { Logger } from '../src/log.ts';

export interface EchoResponderOptions {
  readonly homeserverUrl: string;
  readonly userId: string;
  readonly accessToken: string;
  readonly pingPrefix: string;
  readonly log: Logger;
}

/** Messages only, and enough of them per sync that a burst of pings is never cut. */
const FILTER = JSON.stringify({
  presence: { types: [] },
  room: { timeline: { limit: 100, types: ['m.room.message'] }, state: { lazy_load_members: true } },
});
const LONG_POLL_MS = 30_000;
const RETRY_MS = 1000;

/**
 * Resolves once the responder's first sync is done, and answers pings from
 * then on, for the life of the process: pings sent before are not answered,
 * as echo answers none after a restart.
 */
export async function startEchoResponder(options: EchoResponderOptions): Promise<void> {
  const { homeserverUrl, userId, accessToken, pingPrefix, log } = options;
  const headers = { authorization: `Bearer ${accessToken}` };

  const sync = async (since: string | undefined): Promise<{ next_batch: string }> => {
    const query = new URLSearchParams({ filter: FILTER, timeout: since === undefined ? '0' : String(LONG_POLL_MS) });
    if (since !== undefined) query.set('since', since);
    const response = await fetch(`${homeserverUrl}/_matrix/client/v3/sync?${query}`, { headers });
    if (!response.ok) throw new Error(`sync answered ${response.status}: ${await response.text()}`);
    return (await response.json()) as { next_batch: string };
  };

  const answer = async (ping: SyncedPing): Promise<void> => {
    const content = buildPong({
      roomId: ping.roomId,
      pingEventId: ping.eventId,
      pinger: ping.sender,
      text: ping.text,
      delayMs: Date.now() - ping.ts,
      threadRoot: ping.threadRoot,
    });
    const path = `/_matrix/client/v3/rooms/${encodeURIComponent(ping.roomId)}/send/m.room.message/${encodeURIComponent(`pong-${ping.eventId}`)}`;
    try {
      const response = await fetch(`${homeserverUrl}${path}`, {
        method: 'PUT',
        headers: { ...headers, 'content-type': 'application/json' },
        body: JSON.stringify(content),
      });
      if (!response.ok) throw new Error(`send answered ${response.status}: ${await response.text()}`);
    } catch (err) {
      log.warn({ err: (err as Error).message, responder: userId }, 'a pong could not be sent');
    }
  };

  let since = (await sync(undefined)).next_batch;
  void (async () => {
    for (;;) {
      try {
        const response = await sync(since);
        since = response.next_batch;
        for (const ping of pingsInSync(response, () => true, userId, pingPrefix)) void answer(ping);
      } catch (err) {
        log.warn({ err: (err as Error).message, responder: userId }, 'sync failed; trying again');
        await sleep(RETRY_MS);
      }
    }
  })();
}
