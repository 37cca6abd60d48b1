// Pings and pongs in the format of the existing echo bot (maubot's echo):
// the contract every pong reader in the ping room relies on.
import { escapeHtml } from '../html-escape.ts';
import { humanDuration } from '../duration.ts';
import type { Sample } from '../samples/sample.ts';
import { isValidEventId, isValidServerName, serverOfUserId } from '../matrix-ids.ts';

export type Command =
  | { readonly kind: 'ping'; readonly text: string }
  | { readonly kind: 'echo'; readonly text: string };

/**
 * What Python's `str.strip()` removes: the characters `str.isspace()` accepts
 * (Unicode category Zs, or bidirectional class WS, B or S). Not JavaScript's
 * `trim()`, which also strips U+FEFF and keeps U+001C-U+001F and U+0085.
 */
const PY_STRIP =
  /^[\t\n\v\f\r\x1c-\x1f \x85\xa0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000]+|[\t\n\v\f\r\x1c-\x1f \x85\xa0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000]+$/g;

function pyStrip(text: string): string {
  return text.replace(PY_STRIP, '');
}

/**
 * The command word and its arguments as maubot's command handler splits them
 * (maubot v0.5.2, handlers/command.py, `CommandHandler.__call__`): the body
 * is cut at its first ASCII space only (`_split_in_two(body, " ")`), the word
 * is lowered (`command.lower()`), and a `pass_raw` argument is the rest,
 * stripped as Python strips (`__parse_args__`, `SimpleArgument.match`). So
 * `!ping<TAB>words` and `!ping\nwords` are one unknown word, not a ping, and
 * `!Ping  words` is a ping of `words`.
 *
 * `!ping` (the prefix is configurable, in any case) → ping; `!echo` → echo
 * (echo's `message` argument is required but may be empty: maubot only
 * refuses a missing one); anything else, `!pingpong` included → undefined.
 */
export function parseCommand(body: string, pingPrefix: string): Command | undefined {
  const space = body.indexOf(' ');
  const word = (space === -1 ? body : body.slice(0, space)).toLowerCase();
  const text = space === -1 ? '' : pyStrip(body.slice(space + 1));
  if (word === pingPrefix.toLowerCase()) return { kind: 'ping', text };
  return word === '!echo' ? { kind: 'echo', text } : undefined;
}

const isObject = (value: unknown): value is Record<string, unknown> =>
  typeof value === 'object' && value !== null && !Array.isArray(value);

/**
 * The body a command is read from: a reply's body without its quoted
 * fallback, as mautrix removes it before maubot's handlers see the event
 * (mautrix-python v0.20.8, client/syncer.py `dispatch_event` calls
 * types/event/message.py `TextMessageEventContent.trim_reply_fallback`):
 * only for a reply (`m.in_reply_to` names an event) whose body starts with
 * `> <` or `> * <` and holds a newline, the leading lines that start with
 * `> ` go and the rest is stripped. `> <@alice:x> hi\n\n!ping` is a ping.
 */
export function commandBody(content: Record<string, unknown>): string | undefined {
  const body = content['body'];
  if (typeof body !== 'string') return undefined;
  const relation = content['m.relates_to'];
  const inReplyTo = isObject(relation) ? relation['m.in_reply_to'] : undefined;
  const replyTo = isObject(inReplyTo) ? inReplyTo['event_id'] : undefined;
  if (typeof replyTo !== 'string' || replyTo === '') return body;
  if ((!body.startsWith('> <') && !body.startsWith('> * <')) || !body.includes('\n')) return body;
  const lines = body.split('\n');
  let first = 0;
  while (first < lines.length && lines[first]!.startsWith('> ')) first++;
  return pyStrip(lines.slice(first).join('\n'));
}

/** Edits repeat the original's body; they are not new messages. */
export function isEdit(content: Record<string, unknown>): boolean {
  const relation = content['m.relates_to'] as { rel_type?: unknown } | undefined;
  return content['m.new_content'] !== undefined || relation?.rel_type === 'm.replace';
}

/** A ping as a /sync response carries it. */
export interface SyncedPing {
  readonly roomId: string;
  readonly eventId: string;
  readonly sender: string;
  /** The server part of the sender's ID, port kept. */
  readonly pingServer: string;
  /** The ping's origin_server_ts. */
  readonly ts: number;
  /** The words after the prefix. */
  readonly text: string;
  /** The root of the thread the ping was sent in, if it was: its pong goes there. */
  readonly threadRoot?: string;
  /**
   * Its `unsigned.age` (ms on its homeserver's own clock), where the sync
   * carried a whole non-negative one: Synapse sends it only for events created
   * on that server, Dendrite never. Recorded, never relied on.
   */
  readonly ageMs: number | null;
}

/**
 * The pings in a /sync response's timelines of the rooms `watched` accepts:
 * `m.text` messages that are the ping command (replies included, read
 * without their fallback), not edits, not sent by `ownUserId`; each once,
 * though a response may list an event twice (real Synapse has). The response
 * comes from the network as parsed JSON: anything not shaped like a ping is
 * passed over.
 */
export function pingsInSync(
  sync: unknown,
  watched: (roomId: string) => boolean,
  ownUserId: string,
  pingPrefix: string,
): SyncedPing[] {
  const joined = isObject(sync) && isObject(sync['rooms']) ? sync['rooms']['join'] : undefined;
  if (!isObject(joined)) return [];
  const pings: SyncedPing[] = [];
  const seen = new Set<string>();
  for (const [roomId, room] of Object.entries(joined)) {
    if (
      !watched(roomId) ||
      !isObject(room) ||
      !isObject(room['timeline']) ||
      !Array.isArray(room['timeline']['events'])
    )
      continue;
    for (const event of room['timeline']['events'] as unknown[]) {
      if (!isObject(event) || event['type'] !== 'm.room.message' || event['state_key'] !== undefined) continue;
      const { event_id: eventId, sender, origin_server_ts: ts, content } = event;
      if (
        typeof ts !== 'number' ||
        !Number.isFinite(ts) ||
        !isObject(content) ||
        content['msgtype'] !== 'm.text' ||
        isEdit(content)
      )
        continue;
      const body = commandBody(content);
      const command = body === undefined ? undefined : parseCommand(body, pingPrefix);
      if (
        command?.kind !== 'ping' ||
        typeof eventId !== 'string' ||
        !isValidEventId(eventId) ||
        typeof sender !== 'string' ||
        sender === ownUserId
      )
        continue;
      const pingServer = serverOfUserId(sender);
      if (!pingServer || seen.has(eventId)) continue;
      seen.add(eventId);
      const threadRoot = threadRootOf(content);
      pings.push({
        roomId,
        eventId,
        sender,
        pingServer,
        ts,
        text: command.text,
        ...(threadRoot ? { threadRoot } : {}),
        ageMs: unsignedAge(event['unsigned']),
      });
    }
  }
  return pings;
}

/** An event's `unsigned.age`; null when absent or not a duration a column can hold (a malformed one is no sample's loss). */
export function unsignedAge(unsigned: unknown): number | null {
  const age = isObject(unsigned) ? unsigned['age'] : undefined;
  return typeof age === 'number' && Number.isInteger(age) && age >= 0 && age <= 2 ** 31 - 1 ? age : null;
}

/** The root of the thread a message was sent in, if any. */
export function threadRootOf(content: Record<string, unknown>): string | undefined {
  const relation = content['m.relates_to'];
  if (!isObject(relation) || relation['rel_type'] !== 'm.thread') return undefined;
  const root = relation['event_id'];
  return typeof root === 'string' && isValidEventId(root) ? root : undefined;
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
  readonly threadRoot?: string | undefined;
}

/**
 * A reply in a thread, with the fallback for clients that show no threads:
 * what mautrix's `set_thread_parent` makes of a message's relation (types/
 * event/message.py: `rel_type` and `event_id` replaced, `m.in_reply_to` and
 * `is_falling_back` set; serialized as the RelatesTo fields in their order).
 */
interface ThreadRelation {
  rel_type: 'm.thread';
  event_id: string;
  is_falling_back: true;
  'm.in_reply_to': { event_id: string };
}

/** The relation of an answer to `eventId` in the thread rooted at `root`, as the echo bot's framework answers there. */
export function threadAnswer(root: string, eventId: string): ThreadRelation {
  return { rel_type: 'm.thread', event_id: root, is_falling_back: true, 'm.in_reply_to': { event_id: eventId } };
}

/** The figures echo adds to the relation (`relates_to["from"]`, `["ms"]`): unknown to RelatesTo, they follow its fields and survive a thread. */
interface PongFigures {
  from: string;
  ms: number;
}

export interface PongContent {
  msgtype: 'm.notice';
  body: string;
  'm.relates_to': ({ rel_type: 'xyz.maubot.pong'; event_id: string } | ThreadRelation) & PongFigures;
  format: 'org.matrix.custom.html';
  formatted_body: string;
  pong: { ms: number; from: string; ping: string };
}

/**
 * The pong echo.py's `ping_handler` sends, key for key in the order mautrix
 * serializes it (TextMessageEventContent: msgtype, body, m.relates_to, format,
 * formatted_body, then the unknown `pong`).
 */
export function buildPong(input: PongInput): PongContent {
  const from = input.pinger.slice(input.pinger.indexOf(':') + 1);
  const duration = humanDuration(input.delayMs);
  const words = input.text ? quoted(input.text) : '';
  const textPart = words ? `"${words}" took` : 'took';
  const htmlPart = words ? `"${escapeHtml(words)}" took` : 'took';
  return {
    msgtype: 'm.notice',
    body: `${input.pinger}: Pong! (ping ${textPart} ${duration} to arrive)`,
    // In a thread, maubot's `respond` turns echo's relation into a thread reply (`set_thread_parent`):
    // its type and event change, its `from` and `ms` stay. Readers take the figures from `pong`.
    'm.relates_to': {
      ...(input.threadRoot
        ? threadAnswer(input.threadRoot, input.pingEventId)
        : { rel_type: 'xyz.maubot.pong', event_id: input.pingEventId }),
      from,
      ms: input.delayMs,
    },
    format: 'org.matrix.custom.html',
    // Identifiers are escaped too: a user ID's localpart may hold quotes and angle brackets.
    formatted_body:
      `<a href='https://matrix.to/#/${escapeHtml(input.pinger)}'>${escapeHtml(input.pinger)}</a>: Pong! ` +
      `(<a href='https://matrix.to/#/${escapeHtml(input.roomId)}/${escapeHtml(input.pingEventId)}'>ping</a> ${htmlPart} ${duration} to arrive)`,
    pong: { ms: input.delayMs, from, ping: input.pingEventId },
  };
}

/**
 * The transaction ID of the bot's answer to an event (a pong, an `!echo`, a
 * command's reply): a retried send can never post a second answer.
 */
export function answerTransactionId(kind: 'pong' | 'echo' | 'admin', eventId: string): string {
  return `pingboard-${kind}-${Buffer.from(eventId).toString('base64url')}`;
}

export interface Pong {
  readonly ms: number;
  readonly from: string;
  readonly ping: string;
  readonly responderServer: string;
}

/**
 * The existing aggregator's pong pattern, `^@.+:.+: Pong! \(ping (".+" )?took .+ to arrive\)$`,
 * as Python's `re.search` reads it there: `.` matches anything but a newline,
 * and `$` matches at the end or before a final newline. So a pong whose quoted
 * words hold a newline is not one. As a regular expression it backtracks: a
 * 20 kB notice of colons and "Pong!"s holds the event loop for seconds. This
 * matcher accepts exactly the same bodies in linear time, and bodies longer
 * than any real pong (a user ID of at most 255 characters, 20 quoted
 * characters and a duration) are refused before it.
 */
export const MAX_PONG_BODY_LENGTH = 1000;
const MARK = ': Pong! (ping ';
const END = ' to arrive)';
const QUOTE_END = '" took ';

export function isPongBody(text: string): boolean {
  if (text.length > MAX_PONG_BODY_LENGTH) return false;
  const body = text.endsWith('\n') ? text.slice(0, -1) : text;
  if (body[0] !== '@' || !body.endsWith(END) || body.includes('\n')) return false;
  const middleEnd = body.length - END.length;
  // `@.+:.+` before the mark needs a colon with a character on each side.
  const colon = body.indexOf(':', 2);
  if (colon === -1) return false;
  // The first `" took ` at or after the latest search start (-1: there is none further on).
  // Searches start ever further on and never cover the same text twice.
  let close: number | undefined;
  for (let mark = body.indexOf(MARK, colon + 2); mark !== -1; mark = body.indexOf(MARK, mark + 1)) {
    const middle = mark + MARK.length;
    // `took .+`: the word, then at least one character before the end.
    if (body.startsWith('took ', middle) && middle + 'took '.length < middleEnd) return true;
    // `".+" took .+`: a quote, at least one character, `" took `, at least one character.
    if (body[middle] === '"') {
      if (close === undefined || (close !== -1 && close < middle + 2)) close = body.indexOf(QUOTE_END, middle + 2);
      if (close !== -1 && close + QUOTE_END.length < middleEnd) return true;
    }
  }
  return false;
}
/** Delays beyond this are not measurements (a day); their pongs are rejected. */
const MAX_ABS_PONG_MS = 86_400_000;

/**
 * Reads another bot's pong as the existing aggregator does: a notice whose
 * body matches the echo format and that carries `content.pong` (not
 * `m.relates_to`, which threads replace). Returns why when it is not one.
 */
export function parsePong(sender: string, content: Record<string, unknown>): Pong | { error: string } {
  if (content['msgtype'] !== 'm.notice') return { error: 'not a notice' };
  if (typeof content['body'] !== 'string' || !isPongBody(content['body']))
    return { error: 'body is not in the pong format' };
  const pong = content['pong'];
  if (typeof pong !== 'object' || pong === null) return { error: 'no pong object' };
  const { ms, from, ping } = pong as Record<string, unknown>;
  if (typeof ms !== 'number' || !Number.isInteger(ms) || Math.abs(ms) > MAX_ABS_PONG_MS)
    return { error: `pong.ms is not an integer delay: ${JSON.stringify(ms)}` };
  if (typeof from !== 'string' || !isValidServerName(from))
    return { error: `pong.from is not a server name: ${JSON.stringify(from)?.slice(0, 100)}` };
  if (typeof ping !== 'string' || !isValidEventId(ping))
    return { error: `pong.ping is not an event ID: ${JSON.stringify(ping)?.slice(0, 100)}` };
  const responderServer = serverOfUserId(sender);
  if (!responderServer) return { error: `sender is not a valid user ID: ${sender.slice(0, 100)}` };
  return { ms, from, ping, responderServer };
}

/** A pong event as both the live bot (from sync) and the backfill (from /messages) see it. */
export interface PongEvent {
  /** The room the pong was sent in: its samples are kept under it. */
  readonly roomId: string;
  readonly sender: string;
  /** The pong's origin_server_ts: when its responder measured the delay. */
  readonly ts: number;
  readonly content: Record<string, unknown>;
}

export type PongReading =
  | { readonly kind: 'sample'; readonly sample: Sample }
  /** From a responder that is not trusted: ignored without a word. */
  | { readonly kind: 'untrusted' }
  /** Not a pong; `claimsPong` when it looks like one (worth a log line and a count). */
  | { readonly kind: 'rejected'; readonly reason: string; readonly claimsPong: boolean };

/**
 * The one place a pong becomes a sample, so a pong read live and the same
 * pong read from history are stored with the same fields. `trusted` empty
 * means every sender of a well-formed pong.
 */
export function readPongEvent(event: PongEvent, trusted: ReadonlySet<string>): PongReading {
  if (trusted.size > 0 && !trusted.has(event.sender)) return { kind: 'untrusted' };
  const pong = parsePong(event.sender, event.content);
  if ('error' in pong) {
    const body = event.content['body'];
    return {
      kind: 'rejected',
      reason: pong.error,
      claimsPong: event.content['pong'] !== undefined || (typeof body === 'string' && body.includes('Pong!')),
    };
  }
  return {
    kind: 'sample',
    sample: {
      roomId: event.roomId,
      pingEventId: pong.ping,
      pingServer: pong.from,
      pinger: null,
      responder: event.sender,
      responderServer: pong.responderServer,
      delayMs: pong.ms,
      pingTs: new Date(event.ts - pong.ms),
      measuredAt: new Date(event.ts),
      source: 'pong',
      rttMs: null,
    },
  };
}
