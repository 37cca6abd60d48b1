/**
 * Read endpoints of a room, all answered from the reader's server view:
 * `/messages` pagination, `/context`, `/event`, `/state`, `/members`,
 * `/joined_members`. Pagination tokens are stream positions of the reader's
 * server (the same tokens as /sync), so `/messages` is a binary search plus a
 * scan of `limit` events, however long the room is.
 */

import { type EventFilter, matches, parseEventFilter, parseJson } from './filter.ts';
import {
  type RoomView,
  type StoredEvent,
  badParam,
  membershipOf,
  notFound,
  stateKeyOf,
  toClientEvent,
} from './model.ts';
import type { Device, Store } from './store.ts';

type Json = Record<string, unknown>;

/** Readable part of the user's view: `[0, end)` (a former member reads up to its leave). */
function readable(store: Store, userId: string, roomId: string): { view: RoomView; end: number } {
  const { view, until } = store.readableUntil(store.room(roomId), userId);
  return { view, end: until === Infinity ? view.events.length : view.indexAfter(until) };
}

function eventFilter(param: string | null): EventFilter {
  return parseEventFilter(param ? parseJson(param) : undefined);
}

/** Member events (current state) of the senders of `events`, for lazy-loading clients. */
function senderMembers(view: RoomView, events: StoredEvent[], device: Device): Json[] {
  const out: Json[] = [];
  for (const sender of new Set(events.map((e) => e.sender))) {
    const m = view.state.members.get(sender);
    if (m) out.push(toClientEvent(m, view, device.accessToken, true));
  }
  return out;
}

/** `GET /rooms/{roomId}/messages` with from/to/dir/limit/filter. */
export function messages(store: Store, device: Device, roomId: string, q: URLSearchParams): Json {
  const { view, end: readableEnd } = readable(store, device.userId, roomId);
  const dir = q.get('dir') ?? 'b';
  if (dir !== 'b' && dir !== 'f') throw badParam('dir must be b or f');
  const limitParam = q.get('limit');
  const limit = limitParam === null ? 10 : Number(limitParam);
  if (!Number.isInteger(limit) || limit < 0) throw badParam('limit must be a non-negative integer');
  const filter = eventFilter(q.get('filter'));
  const stream = store.server(view.server).stream;
  const pos = (name: string): number | undefined => {
    const t = q.get(name);
    if (t === null || t === '') return undefined;
    const n = store.parseToken(t);
    if (n === undefined) throw badParam(`${name} token is from an earlier server run`);
    return n;
  };
  const from = pos('from') ?? (dir === 'b' ? stream : 0);
  const to = pos('to');
  const max = Math.min(limit, 1000);
  const chunk: StoredEvent[] = [];
  const out: Json = { start: store.token(from) };
  if (dir === 'b') {
    const stop = to === undefined ? 0 : view.indexAfter(to);
    let i = Math.min(view.indexAfter(from), readableEnd) - 1;
    for (; i >= stop && chunk.length < max; i--) {
      const ev = view.events[i];
      if (ev && matches(filter, ev)) chunk.push(ev);
    }
    // More events remain before index i+1: continue from just after events[i].
    const next = view.streams[i];
    if (i >= stop && next !== undefined) out['end'] = store.token(next);
  } else {
    const stop = Math.min(readableEnd, to === undefined ? view.events.length : view.indexAfter(to));
    const startIdx = view.indexAfter(from);
    let i = startIdx;
    for (; i < stop && chunk.length < max; i++) {
      const ev = view.events[i];
      if (ev && matches(filter, ev)) chunk.push(ev);
    }
    // Forward pagination keeps a token to resume from later, even at the live end.
    const last = view.streams[i - 1];
    if (i > startIdx && last !== undefined) out['end'] = store.token(last);
  }
  out['chunk'] = chunk.map((e) => toClientEvent(e, view, device.accessToken, true));
  if (filter.lazyMembers) out['state'] = senderMembers(view, chunk, device);
  return out;
}

/** Index of an event in the reader's view, or 404 if the reader cannot see it. */
function locate(store: Store, device: Device, roomId: string, eventId: string): { view: RoomView; index: number } {
  const { view, end } = readable(store, device.userId, roomId);
  const stream = view.positions.get(eventId);
  const index = stream === undefined ? -1 : view.indexAfter(stream) - 1;
  if (index < 0 || index >= end) throw notFound(`event ${eventId} not found`);
  return { view, index };
}

export function getEvent(store: Store, device: Device, roomId: string, eventId: string): Json {
  const { view, index } = locate(store, device, roomId, eventId);
  const ev = view.events[index];
  if (!ev) throw notFound(`event ${eventId} not found`);
  return toClientEvent(ev, view, device.accessToken, true);
}

/** `GET /rooms/{roomId}/context/{eventId}`: an event with `limit` events around it. */
export function context(store: Store, device: Device, roomId: string, eventId: string, q: URLSearchParams): Json {
  const { view, index } = locate(store, device, roomId, eventId);
  const limit = Math.min(Number(q.get('limit') ?? 10), 1000);
  if (!Number.isInteger(limit) || limit < 0) throw badParam('limit must be a non-negative integer');
  const filter = eventFilter(q.get('filter'));
  const { end } = readable(store, device.userId, roomId);
  const before: StoredEvent[] = [];
  const after: StoredEvent[] = [];
  let b = index - 1;
  for (; b >= 0 && before.length < Math.floor(limit / 2); b--)
    if (matches(filter, view.events[b]!)) before.push(view.events[b]!);
  let a = index + 1;
  for (; a < end && after.length < Math.ceil(limit / 2); a++)
    if (matches(filter, view.events[a]!)) after.push(view.events[a]!);
  const ev = view.events[index]!;
  const json = (e: StoredEvent): Json => toClientEvent(e, view, device.accessToken, true);
  return {
    event: json(ev),
    events_before: before.map(json),
    events_after: after.map(json),
    start: store.token(b >= 0 ? view.streams[b]! : 0),
    end: store.token(view.streams[a - 1]!),
    state: filter.lazyMembers
      ? senderMembers(view, [ev, ...before, ...after], device)
      : currentState(view, end).map(json),
  };
}

/** Room state at the end of the readable range (current state for members). */
function currentState(view: RoomView, end: number): StoredEvent[] {
  const rewound = end === view.events.length ? new Map<string, StoredEvent | undefined>() : view.rewind(end);
  const out: StoredEvent[] = [];
  for (const [key, ev] of view.state.other) {
    const e = rewound.has(key) ? rewound.get(key) : ev;
    if (e) out.push(e);
  }
  for (const [userId, ev] of view.state.members) {
    const key = stateKeyOf('m.room.member', userId);
    const e = rewound.has(key) ? rewound.get(key) : ev;
    if (e) out.push(e);
  }
  return out;
}

export function roomState(store: Store, device: Device, roomId: string): Json[] {
  const { view, end } = readable(store, device.userId, roomId);
  return currentState(view, end).map((e) => toClientEvent(e, view, device.accessToken, true));
}

/** `GET /rooms/{roomId}/state/{type}/{key}`: the content, or the event with `?format=event`. */
export function stateEvent(
  store: Store,
  device: Device,
  roomId: string,
  type: string,
  stateKey: string,
  format: string | null,
): Json {
  const { view, end } = readable(store, device.userId, roomId);
  const key = stateKeyOf(type, stateKey);
  const rewound = end === view.events.length ? undefined : view.rewind(end);
  const ev = rewound?.has(key) ? rewound.get(key) : view.state.get(type, stateKey);
  if (!ev) throw notFound(`no ${type} state with key "${stateKey}"`);
  return format === 'event' ? toClientEvent(ev, view, device.accessToken, true) : ev.content;
}

/** `GET /rooms/{roomId}/members` with `membership` / `not_membership` (the `at` token is ignored). */
export function members(store: Store, device: Device, roomId: string, q: URLSearchParams): Json {
  const { view, end } = readable(store, device.userId, roomId);
  const only = q.get('membership');
  const not = q.get('not_membership');
  const chunk = currentState(view, end)
    .filter((e) => e.type === 'm.room.member')
    .filter((e) => (only === null || membershipOf(e) === only) && (not === null || membershipOf(e) !== not))
    .map((e) => toClientEvent(e, view, device.accessToken, true));
  return { chunk };
}

export function joinedMembers(store: Store, device: Device, roomId: string): Json {
  const { view } = readable(store, device.userId, roomId);
  const joined: Json = {};
  for (const [userId, ev] of view.state.members) {
    if (membershipOf(ev) !== 'join') continue;
    const { displayname, avatar_url } = ev.content;
    joined[userId] = { display_name: displayname ?? null, avatar_url: avatar_url ?? null };
  }
  return { joined };
}
