/**
 * `GET /sync`. Each server name has its own stream: every event reaching a
 * server's view of a room (and every account-data change) gets the next
 * position, and a sync token is just "everything up to position N". So an
 * incremental sync is a binary search per room, and a long-poll is woken by
 * the store as soon as anything is delivered to the user's server.
 */

import { type SyncFilter, matches } from './filter.ts';
import {
  type RoomView,
  STRIPPED_STATE_TYPES,
  type StoredEvent,
  membershipOf,
  stateKeyOf,
  toClientEvent,
  toStrippedEvent,
} from './model.ts';
import type { AccountDataEntry, Device, Store } from './store.ts';
import { getOrInsert } from '../../src/collections.ts';

type Json = Record<string, unknown>;

export interface SyncRequest {
  since: string | undefined;
  timeoutMs: number;
  filter: SyncFilter;
  fullState: boolean;
}

interface Waiter {
  retry: () => void;
  cancel: () => void;
}

export class SyncService {
  private readonly store: Store;
  private readonly waiters = new Map<string, Set<Waiter>>();
  /**
   * Member events sent to each device, with the stream position of the response
   * that carried them. Lazy loading sends a sender's membership only once (like
   * Synapse without include_redundant_members); a response counts as received
   * once the client syncs with a `since` at or after its position.
   */
  private readonly sentMembers = new Map<string, Map<string, number>>();

  constructor(store: Store) {
    this.store = store;
  }

  /** Answers a /sync, long-polling until something is visible, the timeout, or the client goes away. */
  sync(device: Device, req: SyncRequest, signal: AbortSignal): Promise<Json> {
    const since = req.since === undefined ? undefined : this.store.parseToken(req.since);
    const first = this.compute(device, since, req.filter, req.fullState);
    if (first.body || since === undefined || req.timeoutMs <= 0) return Promise.resolve(first.body ?? first.empty());
    const server = this.store.user(device.userId).server;
    return new Promise((resolve, reject) => {
      const waiters = getOrInsert(this.waiters, server, () => new Set());
      const finish = (body: Json | undefined): void => {
        waiters.delete(waiter);
        clearTimeout(timer);
        signal.removeEventListener('abort', onAbort);
        if (body) resolve(body);
        else reject(signal.reason ?? new Error('server stopped'));
      };
      const waiter: Waiter = {
        retry: () => {
          const r = this.compute(device, since, req.filter, req.fullState);
          if (r.body) finish(r.body);
        },
        cancel: () => finish(undefined),
      };
      const onAbort = (): void => finish(undefined);
      const timer = setTimeout(() => {
        const r = this.compute(device, since, req.filter, req.fullState);
        finish(r.body ?? r.empty());
      }, req.timeoutMs);
      waiters.add(waiter);
      signal.addEventListener('abort', onAbort);
    });
  }

  /** Called by the store when something new reached `server`. */
  wake(server: string): void {
    for (const w of [...(this.waiters.get(server) ?? [])]) w.retry();
  }

  /** Number of syncs currently long-polling (useful to wait for a client to be idle). */
  get polling(): number {
    let n = 0;
    for (const set of this.waiters.values()) n += set.size;
    return n;
  }

  /**
   * Builds the sync response. `body` is undefined when an incremental sync has
   * nothing new; `empty()` then builds the empty response with the next token.
   */
  private compute(
    device: Device,
    since: number | undefined,
    filter: SyncFilter,
    fullState: boolean,
  ): { body: Json | undefined; empty: () => Json } {
    const store = this.store;
    const user = store.user(device.userId);
    const server = store.server(user.server);
    if (since === undefined) this.sentMembers.delete(device.key);
    const known = getOrInsert(this.sentMembers, device.key, () => new Map());

    const join: Json = {};
    const invite: Json = {};
    const leave: Json = {};
    let any = false;
    for (const room of server.userRooms.get(user.userId) ?? []) {
      if ((filter.rooms && !filter.rooms.has(room.id)) || filter.notRooms.has(room.id)) continue;
      const view = room.view(server.name);
      const member = view.state.members.get(user.userId);
      if (!member) continue;
      const memberPos = view.positions.get(member.event_id) ?? 0;
      const membership = membershipOf(member);
      const before = membershipOf(view.replaced.get(member.event_id));
      const accountData = changedAccountData(user.roomAccountData.get(room.id), since);
      const ctx: RoomSync = {
        view,
        device,
        filter,
        known,
        since,
        stream: server.stream,
        userId: user.userId,
        token: (n) => store.token(n),
      };

      if (membership === 'join') {
        const fresh = since === undefined || (memberPos > since && before !== 'join');
        const start = fresh ? 0 : view.indexAfter(since);
        const tl = timeline(ctx, start, view.events.length);
        if (!fresh && !fullState && tl.events.length === 0 && tl.skipped.length === 0 && accountData.length === 0)
          continue;
        const state =
          fresh || fullState
            ? fullStateAt(ctx, tl.first, tl.events)
            : tl.limited
              ? gapState(ctx, start, tl.first, tl.events)
              : lazyMembers(ctx, view.rewind(tl.first), tl.events);
        join[room.id] = {
          summary: summary(view, user.userId),
          state: { events: withSkipped(ctx, state, tl).map((e) => toClientEvent(e, view, device.accessToken, false)) },
          timeline: tl.json,
          ephemeral: { events: [] },
          account_data: { events: accountData },
          unread_notifications: { notification_count: 0, highlight_count: 0 },
        };
        any = true;
      } else if (membership === 'invite') {
        if (since !== undefined && memberPos <= since) continue;
        const stripped = STRIPPED_STATE_TYPES.map((t) => view.state.get(t, '')).filter((e) => e !== undefined);
        const inviter = view.state.members.get(member.sender);
        if (inviter && inviter !== member) stripped.push(inviter);
        invite[room.id] = {
          invite_state: {
            events: [...stripped.map(toStrippedEvent), toClientEvent(member, view, device.accessToken, false)],
          },
        };
        any = true;
      } else if (membership === 'leave' || membership === 'ban') {
        if (since === undefined ? !filter.includeLeave : memberPos <= since) continue;
        // Only a former member may see what happened until it left; a rejected invite shows just the leave.
        const end = view.indexAfter(memberPos);
        const start = before !== 'join' ? end - 1 : since === undefined ? 0 : view.indexAfter(since);
        const tl = timeline(ctx, start, end);
        const state = before === 'join' ? fullStateAt(ctx, tl.first, tl.events) : [];
        leave[room.id] = {
          state: { events: withSkipped(ctx, state, tl).map((e) => toClientEvent(e, view, device.accessToken, false)) },
          timeline: tl.json,
          account_data: { events: accountData },
        };
        any = true;
      }
    }
    const accountData = changedAccountData(user.accountData, since);
    const next = store.token(server.stream);
    const empty = (): Json => syncBody(next, {}, {}, {}, []);
    if (!any && accountData.length === 0 && since !== undefined) return { body: undefined, empty };
    return { body: syncBody(next, join, invite, leave, accountData), empty };
  }

  /** Ends all waiting syncs and their timers (their connections are destroyed by the HTTP layer). */
  close(): void {
    for (const set of this.waiters.values()) for (const w of [...set]) w.cancel();
    this.waiters.clear();
  }
}

interface RoomSync {
  view: RoomView;
  device: Device;
  filter: SyncFilter;
  known: Map<string, number>;
  since: number | undefined;
  /** Stream position of this response (its next_batch). */
  stream: number;
  userId: string;
  token: (stream: number) => string;
}

/** Whether the device is known to have received a member event. */
function has(ctx: RoomSync, eventId: string): boolean {
  const at = ctx.known.get(eventId);
  return at !== undefined && ctx.since !== undefined && at <= ctx.since;
}

function remember(ctx: RoomSync, eventId: string): void {
  if (!has(ctx, eventId)) ctx.known.set(eventId, ctx.stream);
}

function syncBody(next: string, join: Json, invite: Json, leave: Json, accountData: Json[]): Json {
  return {
    next_batch: next,
    rooms: { join, invite, leave, knock: {} },
    account_data: { events: accountData },
    presence: { events: [] },
    to_device: { events: [] },
    device_lists: { changed: [], left: [] },
    device_one_time_keys_count: {},
  };
}

function changedAccountData(map: Map<string, AccountDataEntry> | undefined, since: number | undefined): Json[] {
  const out: Json[] = [];
  for (const [type, e] of map ?? [])
    if (since === undefined || e.stream > since) out.push({ type, content: e.content });
  return out;
}

/**
 * The last `limit` matching events of `view.events[start, end)`. `first` is the
 * index of the earliest event looked at; `limited` says older ones were left out.
 */
function timeline(ctx: RoomSync, start: number, end: number): Timeline {
  const { view, filter } = ctx;
  const events: StoredEvent[] = [];
  // Newest filtered-out state event per key, unless a later returned event sets that key anyway.
  const skipped = new Map<string, StoredEvent>();
  const returnedKeys = new Set<string>();
  let i = end - 1;
  for (; i >= start && events.length < filter.timelineLimit; i--) {
    const ev = view.events[i];
    if (!ev) continue;
    const key = ev.state_key === undefined ? undefined : stateKeyOf(ev.type, ev.state_key);
    if (matches(filter.timeline, ev)) {
      events.push(ev);
      if (key !== undefined) returnedKeys.add(key);
    } else if (key !== undefined && !skipped.has(key) && !returnedKeys.has(key)) {
      skipped.set(key, ev);
    }
  }
  events.reverse();
  const first = i + 1;
  const limited = i >= start;
  const firstStream = view.streams[first];
  for (const ev of events) if (ev.type === 'm.room.member') remember(ctx, ev.event_id);
  const json = {
    events: events.map((e) => toClientEvent(e, view, ctx.device.accessToken, false)),
    limited,
    prev_batch: ctx.token(firstStream === undefined ? ctx.stream : firstStream - 1),
  };
  return { events, first, limited, json, skipped: [...skipped.values()] };
}

interface Timeline {
  events: StoredEvent[];
  /** Index in the view of the earliest event looked at. */
  first: number;
  limited: boolean;
  json: Json;
  /**
   * State events inside the timeline window that the timeline filter dropped.
   * They are sent in `state` so a filtered client still learns e.g. a tombstone.
   */
  skipped: StoredEvent[];
}

/** The `state` section: what the client must apply before the timeline. */
function withSkipped(ctx: RoomSync, state: StoredEvent[], tl: Timeline): StoredEvent[] {
  const skipped = tl.skipped.filter(
    (e) => !(ctx.filter.lazyMembers && e.type === 'm.room.member' && e.state_key !== ctx.userId),
  );
  if (skipped.length === 0) return state;
  const replaced = new Set(skipped.map((e) => stateKeyOf(e.type, e.state_key ?? '')));
  return [...state.filter((e) => !replaced.has(stateKeyOf(e.type, e.state_key ?? ''))), ...skipped];
}

/** State just before `view.events[first]`; lazily only the members the client needs. */
function fullStateAt(ctx: RoomSync, first: number, events: StoredEvent[]): StoredEvent[] {
  const { view } = ctx;
  const rewound = view.rewind(first);
  const at = (key: string, current: StoredEvent | undefined): StoredEvent | undefined =>
    rewound.has(key) ? rewound.get(key) : current;
  const out: StoredEvent[] = [];
  for (const [key, ev] of view.state.other) {
    const e = at(key, ev);
    if (e) out.push(e);
  }
  if (ctx.filter.lazyMembers) {
    out.push(...lazyMembers(ctx, rewound, events, true));
  } else {
    for (const [userId, ev] of view.state.members) {
      const e = at(stateKeyOf('m.room.member', userId), ev);
      if (e) out.push(e);
    }
  }
  return out;
}

/** For a limited incremental sync: the state keys that changed in the gap, as of the timeline start. */
function gapState(ctx: RoomSync, start: number, first: number, events: StoredEvent[]): StoredEvent[] {
  const { view } = ctx;
  const rewound = view.rewind(first);
  const keys = new Map<string, StoredEvent>();
  for (let i = start; i < first; i++) {
    const ev = view.events[i];
    if (ev?.state_key === undefined || (ctx.filter.lazyMembers && ev.type === 'm.room.member')) continue;
    keys.set(stateKeyOf(ev.type, ev.state_key), ev);
  }
  const out: StoredEvent[] = [];
  for (const [key, ev] of keys) {
    const e = rewound.has(key) ? rewound.get(key) : view.state.get(ev.type, ev.state_key ?? '');
    if (e) out.push(e);
  }
  return ctx.filter.lazyMembers ? [...out, ...lazyMembers(ctx, rewound, events)] : out;
}

/**
 * Lazy-loaded members: membership (as of the timeline start) of the timeline's
 * senders, plus the syncing user on full-state syncs, skipping what the device has.
 */
function lazyMembers(
  ctx: RoomSync,
  rewound: Map<string, StoredEvent | undefined>,
  events: StoredEvent[],
  includeSelf = false,
): StoredEvent[] {
  if (!ctx.filter.lazyMembers) return [];
  const users = new Set(events.map((e) => e.sender));
  if (includeSelf) users.add(ctx.userId);
  const out: StoredEvent[] = [];
  for (const userId of users) {
    const key = stateKeyOf('m.room.member', userId);
    const ev = rewound.has(key) ? rewound.get(key) : ctx.view.state.members.get(userId);
    if (!ev || (!ctx.filter.redundantMembers && !includeSelf && has(ctx, ev.event_id))) continue;
    remember(ctx, ev.event_id);
    out.push(ev);
  }
  return out;
}

/** Room summary for clients that lazy-load members: counts and up to 5 heroes. */
function summary(view: RoomView, self: string): Json {
  const heroes: string[] = [];
  for (const [userId, ev] of view.state.members) {
    if (heroes.length >= 5) break;
    const m = membershipOf(ev);
    if (userId !== self && (m === 'join' || m === 'invite')) heroes.push(userId);
  }
  return {
    'm.heroes': heroes,
    'm.joined_member_count': view.state.joined,
    'm.invited_member_count': view.state.invited,
  };
}
