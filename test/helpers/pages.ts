// A known room for the web pages' tests (rendered and in a browser): a
// rolling week, the frozen week before it, probe figures and a server named
// with HTML and markdown metacharacters.
import type { WeekConfig } from '../../src/config.ts';
import { buildApp } from '../../src/http/app.ts';
import { offsetEstimate } from '../../src/stats/one-way.ts';
import { recordOneWaySamples, recordProbePing } from '../../src/stats/probe-pings.ts';
import { recordSamples } from '../../src/samples/repository.ts';
import { Statistics } from '../../src/stats/leaderboard.ts';
import { RoomRegistry } from '../../src/stats/rooms.ts';
import type { TestDatabase } from './database.ts';
import { ROOM, sample } from './samples.ts';
import { OperatorControls } from '../../src/operator/controls.ts';

export const NOW = new Date('2026-11-21T00:00:00Z');
export const WEEKS: WeekConfig = { timeZone: 'UTC', closeWeekday: 1, closeHour: 0, graceMinutes: 60 };
export const OTHER_ROOM = '!other:example.org';
/** Not a valid server name, so only a direct write can store it: the worst a page may meet. */
export const HOSTILE_SERVER = '<img src=x onerror=alert(1)>|*b*_[x](y)';

/**
 * Freezes the last closed week (2026-W46 at NOW) of `rooms`, as the service's
 * scheduler does: reading a week never freezes it.
 */
export async function freezeClosedWeek(database: TestDatabase, rooms: readonly string[] = [ROOM]): Promise<void> {
  const statistics = new Statistics({
    db: database.db,
    stats: { minDelayMs: 10, maxDelayMs: 600_000, minPings: 1 },
    weeks: WEEKS,
    cacheSeconds: 0,
    now: () => NOW,
  });
  await statistics.freezeDueWeeks(rooms.map((id) => RoomRegistry.untracked(id)));
}

/** The operator's token of `pageApp(database, { operator: true })`. */
export const OPERATOR_TOKEN = 'pages-operator-token-0123456789abcdef';

export async function pageApp(database: TestDatabase, options: { operator?: boolean } = {}) {
  const statistics = new Statistics({
    db: database.db,
    stats: { minDelayMs: 10, maxDelayMs: 600_000, minPings: 1 },
    weeks: WEEKS,
    cacheSeconds: 60,
    now: () => NOW,
  });
  const rooms = new RoomRegistry([
    { id: ROOM, disclaimer: 'Test <disclaimer>' },
    { id: OTHER_ROOM, disclaimer: 'Other' },
  ]);
  const operator = options.operator
    ? { controls: new OperatorControls(database.db, statistics), token: OPERATOR_TOKEN }
    : undefined;
  return buildApp({ database, statistics, rooms, cacheSeconds: 60, operator });
}

/**
 * Rolling week (to NOW): fairydust.space 376; neko.dev 444 and 445 (median
 * 444.5; the 445 is a probe's, with a 300 ms round trip; another probe saw
 * that probe's ping and found neko.dev's clock 600 ± 2 ms ahead: flagged);
 * HOSTILE_SERVER 500. Week 2026-W46 (frozen on first use): old.example 250,
 * neko.dev 300, fairydust.space 370. The other room: x.example 120.
 */
export async function seedPages(database: TestDatabase): Promise<void> {
  const thisWeek = new Date('2026-11-20T10:00:00Z');
  const lastWeek = new Date('2026-11-12T10:00:00Z');
  await recordSamples(database.db, [
    sample({ pingServer: 'fairydust.space', delayMs: 376, measuredAt: thisWeek }),
    sample({
      pingServer: 'neko.dev',
      pingEventId: '$nk1',
      delayMs: 444,
      measuredAt: thisWeek,
      pinger: '@<b>bold</b>:neko.dev',
    }),
    sample({
      pingServer: 'neko.dev',
      pingEventId: '$nk2',
      delayMs: 445,
      measuredAt: thisWeek,
      responder: '@probe-bot:other.example',
      responderServer: 'other.example',
      source: 'probe',
      rttMs: 300,
    }),
    sample({ pingServer: HOSTILE_SERVER, delayMs: 500, measuredAt: thisWeek }),
    sample({ pingServer: 'old.example', delayMs: 250, measuredAt: lastWeek }),
    sample({ pingServer: 'neko.dev', delayMs: 300, measuredAt: lastWeek }),
    sample({ pingServer: 'fairydust.space', delayMs: 370, measuredAt: lastWeek }),
    sample({ roomId: OTHER_ROOM, pingServer: 'x.example', delayMs: 120, measuredAt: thisWeek }),
  ]);
  for (const [seq, outcome] of [
    [1, 'answered'],
    [2, 'lost'],
  ] as const) {
    await recordProbePing(database.db, {
      probeId: 'p1',
      seq,
      sentAt: new Date(thisWeek.getTime() + seq * 60_000),
      roomId: ROOM,
      pingServer: 'neko.dev',
      pingEventId: `$probe${seq}`,
      outcome,
      pongs: outcome === 'answered' ? 1 : 0,
      error: null,
    });
  }
  const measurement = { oneWayMs: 80, twoClockMs: 80 - 602, sendRttMs: 4 };
  await recordOneWaySamples(database.db, [
    {
      roomId: ROOM,
      pingEventId: '$probe1',
      senderProbe: 'p1',
      senderServer: 'neko.dev',
      receiverProbe: 'p2',
      receiverServer: 'fairydust.space',
      originTs: new Date(thisWeek.getTime() + 60_000),
      measuredAt: new Date(thisWeek.getTime() + 60_080),
      ...measurement,
      ...offsetEstimate(measurement),
    },
  ]);
}

/** `count` servers with one ping each at `measuredAt`: s0.example at 100 ms, s1.example at 101 ms and so on, ranked in that order. */
export async function seedServers(
  database: TestDatabase,
  count: number,
  options: { roomId?: string; measuredAt: Date },
): Promise<string[]> {
  const servers = Array.from({ length: count }, (_, i) => `s${i}.example`);
  await recordSamples(
    database.db,
    servers.map((pingServer, i) =>
      sample({ roomId: options.roomId ?? ROOM, pingServer, delayMs: 100 + i, measuredAt: options.measuredAt }),
    ),
  );
  return servers;
}

const ENTITIES: Record<string, string> = { '&amp;': '&', '&lt;': '<', '&gt;': '>', '&quot;': '"', '&#x27;': "'" };

/** The text of an element's escaped content, as a browser's textContent gives it. */
export function unescapeHtml(html: string): string {
  return html.replace(/&(amp|lt|gt|quot|#x27);/g, (entity) => ENTITIES[entity]!);
}
