// Building samples for tests: only what a test cares about is spelled out.
import type { Sample } from '../../src/samples/sample.ts';

export const ROOM = '!ping:maunium.net';

let counter = 0;

export function sample(overrides: Partial<Sample> & { pingServer: string; delayMs: number }): Sample {
  counter++;
  const measuredAt = overrides.measuredAt ?? new Date(Date.UTC(2026, 10, 18, 12, 0, 0) + counter);
  return {
    roomId: ROOM,
    pingEventId: `$ping${counter}`,
    pinger: `@user:${overrides.pingServer}`,
    responder: '@echo:maunium.net',
    responderServer: 'maunium.net',
    pingTs: new Date(measuredAt.getTime() - overrides.delayMs),
    source: 'pong',
    rttMs: null,
    ...overrides,
    measuredAt,
  };
}
