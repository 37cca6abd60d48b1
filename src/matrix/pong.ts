// Pings and pongs in the format of the existing echo bot (maubot's echo):
// the contract every pong reader in the ping room relies on.
import { escapeHtml } from '../render/html-escape.ts';
import { humanDuration } from '../render/duration.ts';
import { isValidEventId, isValidServerName, serverOfUserId } from './ids.ts';

export type Command =
  | { readonly kind: 'ping'; readonly text: string }
  | { readonly kind: 'echo'; readonly text: string };

/**
 * `!ping`, `!ping some words` → ping; `!echo words` → echo; anything else
 * (including `!pingpong`) → undefined. The prefix is configurable; echo
 * shares its `!`.
 */
export function parseCommand(body: string, pingPrefix: string): Command | undefined {
  if (body.startsWith(pingPrefix)) {
    const rest = body.slice(pingPrefix.length);
    if (rest === '' || /^\s/.test(rest)) return { kind: 'ping', text: rest.trim() };
    return undefined;
  }
  const echo = /^!echo\s+([\s\S]+)$/.exec(body);
  return echo ? { kind: 'echo', text: echo[1]! } : undefined;
}

/** The first 20 characters (code points, as Python slices) of a ping's words. */
function quoted(text: string): string {
  return [...text].slice(0, 20).join('');
}

export interface PongInput {
  readonly roomId: string;
  readonly pingEventId: string;
  readonly pinger: string;
  readonly text: string;
  readonly delayMs: number;
}

export interface PongContent {
  msgtype: 'm.notice';
  format: 'org.matrix.custom.html';
  body: string;
  formatted_body: string;
  'm.relates_to': { rel_type: 'xyz.maubot.pong'; event_id: string; from: string; ms: number };
  pong: { ms: number; from: string; ping: string };
}

export function buildPong(input: PongInput): PongContent {
  const from = input.pinger.slice(input.pinger.indexOf(':') + 1);
  const duration = humanDuration(input.delayMs);
  const words = input.text ? quoted(input.text) : '';
  const textPart = words ? `"${words}" took` : 'took';
  const htmlPart = words ? `"${escapeHtml(words)}" took` : 'took';
  return {
    msgtype: 'm.notice',
    format: 'org.matrix.custom.html',
    body: `${input.pinger}: Pong! (ping ${textPart} ${duration} to arrive)`,
    formatted_body: `<a href='https://matrix.to/#/${input.pinger}'>${input.pinger}</a>: Pong! ` +
      `(<a href='https://matrix.to/#/${input.roomId}/${input.pingEventId}'>ping</a> ${htmlPart} ${duration} to arrive)`,
    'm.relates_to': { rel_type: 'xyz.maubot.pong', event_id: input.pingEventId, from, ms: input.delayMs },
    pong: { ms: input.delayMs, from, ping: input.pingEventId },
  };
}

/** The transaction ID of the pong to a ping: a retried send can never make a second pong. */
export function pongTransactionId(pingEventId: string): string {
  return `pingboard-pong-${Buffer.from(pingEventId).toString('base64url')}`;
}

export interface Pong {
  readonly ms: number;
  readonly from: string;
  readonly ping: string;
  readonly responderServer: string;
}

const PONG_BODY = /^@.+:.+: Pong! \(ping (".+" )?took .+ to arrive\)$/s;
/** Delays beyond this are not measurements (a day); their pongs are rejected. */
const MAX_ABS_PONG_MS = 86_400_000;

/**
 * Reads another bot's pong as the existing aggregator does: a notice whose
 * body matches the echo format and that carries `content.pong` (not
 * `m.relates_to`, which threads replace). Returns why when it is not one.
 */
export function parsePong(sender: string, content: Record<string, unknown>): Pong | { error: string } {
  if (content['msgtype'] !== 'm.notice') return { error: 'not a notice' };
  if (typeof content['body'] !== 'string' || !PONG_BODY.test(content['body'])) return { error: 'body is not in the pong format' };
  const pong = content['pong'];
  if (typeof pong !== 'object' || pong === null) return { error: 'no pong object' };
  const { ms, from, ping } = pong as Record<string, unknown>;
  if (typeof ms !== 'number' || !Number.isInteger(ms) || Math.abs(ms) > MAX_ABS_PONG_MS) return { error: `pong.ms is not an integer delay: ${JSON.stringify(ms)}` };
  if (typeof from !== 'string' || !isValidServerName(from)) return { error: `pong.from is not a server name: ${JSON.stringify(from)?.slice(0, 100)}` };
  if (typeof ping !== 'string' || !isValidEventId(ping)) return { error: `pong.ping is not an event ID: ${JSON.stringify(ping)?.slice(0, 100)}` };
  const responderServer = serverOfUserId(sender);
  if (!responderServer) return { error: `sender is not a valid user ID: ${sender.slice(0, 100)}` };
  return { ms, from, ping, responderServer };
}
