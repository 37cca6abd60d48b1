/**
 * Sync and room-event filters (spec: "Filtering"). Only what a bot needs is
 * honoured: room lists, timeline limit, event types/senders (with `*`
 * wildcards), include_leave and lazy_load_members. Other fields are accepted
 * and ignored.
 */

import { MatrixError, type StoredEvent, badParam } from './model.ts';

export interface EventFilter {
  types: RegExp[] | undefined;
  notTypes: RegExp[];
  senders: Set<string> | undefined;
  notSenders: Set<string>;
  limit: number | undefined;
  lazyMembers: boolean;
  redundantMembers: boolean;
}

export interface SyncFilter {
  rooms: Set<string> | undefined;
  notRooms: Set<string>;
  includeLeave: boolean;
  timeline: EventFilter;
  /** Default 10 timeline events per room, like Synapse. */
  timelineLimit: number;
  lazyMembers: boolean;
  redundantMembers: boolean;
}

type Json = Record<string, unknown>;

const isObj = (v: unknown): v is Json => typeof v === 'object' && v !== null && !Array.isArray(v);

function strings(v: unknown, name: string): string[] | undefined {
  if (v === undefined) return undefined;
  if (!Array.isArray(v) || !v.every((s) => typeof s === 'string')) throw badParam(`${name} must be a list of strings`);
  return v;
}

/** Type patterns may use `*` as a wildcard for any sequence of characters. */
function globs(v: unknown, name: string): RegExp[] | undefined {
  return strings(v, name)?.map(
    (p) =>
      new RegExp(
        `^${p
          .split('*')
          .map((s) => s.replace(/[.+?^${}()|[\]\\]/g, '\\$&'))
          .join('.*')}$`,
      ),
  );
}

export function parseEventFilter(v: unknown): EventFilter {
  const f = v === undefined ? {} : v;
  if (!isObj(f)) throw badParam('filter must be an object');
  const limit = f['limit'];
  if (limit !== undefined && (typeof limit !== 'number' || !Number.isInteger(limit) || limit < 0))
    throw badParam('limit must be a non-negative integer');
  const senders = strings(f['senders'], 'senders');
  return {
    types: globs(f['types'], 'types'),
    notTypes: globs(f['not_types'], 'not_types') ?? [],
    senders: senders && new Set(senders),
    notSenders: new Set(strings(f['not_senders'], 'not_senders')),
    limit,
    lazyMembers: f['lazy_load_members'] === true,
    redundantMembers: f['include_redundant_members'] === true,
  };
}

export function parseSyncFilter(v: unknown): SyncFilter {
  if (!isObj(v)) throw badParam('filter must be an object');
  const room = v['room'] ?? {};
  if (!isObj(room)) throw badParam('room filter must be an object');
  const rooms = strings(room['rooms'], 'rooms');
  const timeline = parseEventFilter(room['timeline']);
  const state = parseEventFilter(room['state']);
  return {
    rooms: rooms && new Set(rooms),
    notRooms: new Set(strings(room['not_rooms'], 'not_rooms')),
    includeLeave: room['include_leave'] === true,
    timeline,
    timelineLimit: timeline.limit ?? 10,
    lazyMembers: state.lazyMembers || timeline.lazyMembers,
    redundantMembers: state.redundantMembers || timeline.redundantMembers,
  };
}

/** Whether an event passes a room event filter (the limit is applied by the caller). */
export function matches(f: EventFilter, ev: StoredEvent): boolean {
  if (f.types && !f.types.some((r) => r.test(ev.type))) return false;
  if (f.notTypes.some((r) => r.test(ev.type))) return false;
  if (f.senders && !f.senders.has(ev.sender)) return false;
  return !f.notSenders.has(ev.sender);
}

/**
 * Filter IDs are the filter itself (base64url JSON), so no storage is needed
 * and an ID stays valid after the process restarts with empty memory (the SDK
 * keeps using the ID it uploaded before).
 */
export function filterId(definition: unknown): string {
  return `f${Buffer.from(JSON.stringify(definition)).toString('base64url')}`;
}

/** The filter behind an ID made by {@link filterId}, or undefined. */
export function filterById(id: string): unknown {
  if (!/^f[A-Za-z0-9_-]+$/.test(id)) return undefined;
  try {
    return JSON.parse(Buffer.from(id.slice(1), 'base64url').toString('utf8'));
  } catch {
    return undefined;
  }
}

/** The `filter` query parameter of /sync: a filter ID or inline JSON. */
export function resolveSyncFilter(param: string | null): SyncFilter {
  if (param === null || param === '') return parseSyncFilter({});
  if (param.startsWith('{')) return parseSyncFilter(parseJson(param));
  const stored = filterById(param);
  if (stored === undefined) throw new MatrixError(400, 'M_INVALID_PARAM', `unknown filter ${param}`);
  return parseSyncFilter(stored);
}

export function parseJson(text: string): unknown {
  try {
    return JSON.parse(text);
  } catch {
    throw new MatrixError(400, 'M_NOT_JSON', 'invalid JSON');
  }
}
