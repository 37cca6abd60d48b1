// What the demo simulates, shared by the process that runs Pingboard
// (main.ts) and the one that runs the simulated Matrix world (world.ts).
// Everything lives on the test homeserver, in memory, on 127.0.0.1: the
// names are under .example and no request leaves the machine.

export interface SimulatedServer {
  readonly name: string;
  /** The median of its federation delay; delays are log-normal around it. */
  readonly medianMs: number;
  /** The log-normal's σ: how far single pings stray from the median. */
  readonly spread: number;
  /** Now and then a ping is held this long instead (a server that is sometimes overloaded). */
  readonly spikes?: { readonly probability: number; readonly minMs: number; readonly maxMs: number };
  /** The people who ping from it. */
  readonly users: readonly string[];
}

const SPREAD = 0.35;

/** The dozen servers whose users ping, fastest first as configured (single pings vary). */
export const PING_SERVERS: readonly SimulatedServer[] = [
  { name: 'aurora.example', medianMs: 110, spread: SPREAD, users: ['alice', 'amir'] },
  { name: 'basalt.example', medianMs: 140, spread: SPREAD, users: ['bruno', 'bea'] },
  { name: 'cedar.example', medianMs: 180, spread: SPREAD, users: ['chen', 'cleo'] },
  { name: 'delta.example', medianMs: 230, spread: SPREAD, users: ['dana', 'dmitri'] },
  { name: 'ember.example', medianMs: 290, spread: SPREAD, users: ['emma', 'eli'] },
  { name: 'fjord.example', medianMs: 360, spread: SPREAD, users: ['freya', 'finn'] },
  { name: 'granite.example', medianMs: 450, spread: SPREAD, users: ['grace', 'gustav'] },
  { name: 'harbor.example', medianMs: 560, spread: SPREAD, users: ['hana', 'hugo'] },
  { name: 'iris.example', medianMs: 700, spread: SPREAD, users: ['ines', 'ivan'] },
  { name: 'juniper.example', medianMs: 880, spread: SPREAD, users: ['jade', 'jonas'] },
  { name: 'slow.example', medianMs: 3200, spread: 0.5, users: ['sam', 'sofia'] },
  {
    name: 'flaky.example',
    medianMs: 200,
    spread: SPREAD,
    spikes: { probability: 0.2, minMs: 4000, maxMs: 25_000 },
    users: ['fay', 'felix'],
  },
];

/** Pingboard's bot, on a server of its own that is close to everyone. */
export const BOT = { userId: '@pingboard:pingboard.example', accessToken: 'demo-token-pingboard', delayMs: 10 };

/** Who creates the ping room; its alias is on that server. */
export const ROOM_CREATOR = '@host:pingboard.example';
export const ROOM_ALIAS_NAME = 'ping';
export const ROOM_ALIAS = `#${ROOM_ALIAS_NAME}:pingboard.example`;

/** Two echo-style responders, each on a server of its own. */
export const RESPONDERS: readonly {
  readonly userId: string;
  readonly accessToken: string;
  readonly delayMs: number;
}[] = [
  { userId: '@echo:echo1.example', accessToken: 'demo-token-echo1', delayMs: 40 },
  { userId: '@echo:echo2.example', accessToken: 'demo-token-echo2', delayMs: 90 },
];

/** Pingboard's probes: accounts on three of the servers, measuring round trips on their own clock. */
export const PROBES: readonly { readonly id: string; readonly userId: string; readonly accessToken: string }[] = [
  'aurora.example',
  'harbor.example',
  'flaky.example',
].map((server) => ({
  id: `probe-${server.split('.')[0]}`,
  userId: `@probe:${server}`,
  accessToken: `demo-token-probe-${server}`,
}));

/** Each server's users ping, one of them at a time, at a random moment in this range after the last ping. */
export const PING_INTERVAL_MS = { min: 4000, max: 12_000 };
/** The first ping of each server comes this soon after the bot is ready, so the board fills at once. */
export const FIRST_PING_WITHIN_MS = 3000;

export const PING_PREFIX = '!ping';

/** Federation delays never exceed this (a minute), so a spike cannot hold a server's later pings for long. */
const MAX_DELAY_MS = 60_000;

/** One ping's federation delay on `server`: log-normal around its median, or a spike. `random` gives numbers in [0, 1). */
export function sampleDelayMs(server: SimulatedServer, random: () => number = Math.random): number {
  if (server.spikes && random() < server.spikes.probability) {
    const { minMs, maxMs } = server.spikes;
    return Math.round(minMs * (maxMs / minMs) ** random());
  }
  // Box-Muller: a standard normal from two uniforms (1 - u keeps the logarithm finite).
  const normal = Math.sqrt(-2 * Math.log(1 - random())) * Math.cos(2 * Math.PI * random());
  return Math.round(Math.min(server.medianMs * Math.exp(server.spread * normal), MAX_DELAY_MS));
}

export function userIdsOf(server: SimulatedServer): string[] {
  return server.users.map((name) => `@${name}:${server.name}`);
}
