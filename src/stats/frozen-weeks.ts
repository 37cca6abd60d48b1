// Frozen weeks: a closed week's table, computed once and never changed, so a
// published newsletter table can always be reproduced.
import type { Db } from '../db/database.ts';
import type { StatsConfig } from '../config.ts';
import type { RankedServer } from './ranking.ts';

export interface FrozenWeek {
  readonly roomId: string;
  readonly week: string;
  readonly start: Date;
  readonly end: Date;
  readonly frozenAt: Date;
  readonly filters: StatsConfig;
  readonly servers: readonly RankedServer[];
}

/** Stores the week unless it is already frozen; returns the stored version either way. */
export async function storeFrozenWeek(db: Db, week: Omit<FrozenWeek, 'frozenAt'>): Promise<FrozenWeek> {
  await db.insertInto('frozen_weeks')
    .values({
      room_id: week.roomId,
      week: week.week,
      starts_at: week.start,
      ends_at: week.end,
      filters: JSON.stringify(week.filters),
      ranking: JSON.stringify(week.servers),
    })
    .onConflict((oc) => oc.columns(['room_id', 'week']).doNothing())
    .execute();
  const stored = await findFrozenWeek(db, week.roomId, week.week);
  if (!stored) throw new Error(`frozen week ${week.roomId} ${week.week} vanished after insert`);
  return stored;
}

export async function findFrozenWeek(db: Db, roomId: string, week: string): Promise<FrozenWeek | undefined> {
  const row = await db.selectFrom('frozen_weeks').selectAll()
    .where('room_id', '=', roomId).where('week', '=', week).executeTakeFirst();
  if (!row) return undefined;
  return {
    roomId: row.room_id,
    week: row.week,
    start: row.starts_at,
    end: row.ends_at,
    frozenAt: row.frozen_at,
    filters: parseJson(row.filters) as StatsConfig,
    servers: parseJson(row.ranking) as RankedServer[],
  };
}

export interface FrozenWeekSummary {
  readonly week: string;
  readonly start: Date;
  readonly end: Date;
  readonly frozenAt: Date;
  readonly servers: number;
}

export async function listFrozenWeeks(db: Db, roomId: string): Promise<FrozenWeekSummary[]> {
  const rows = await db.selectFrom('frozen_weeks')
    .select(['week', 'starts_at', 'ends_at', 'frozen_at'])
    .select((eb) => eb.fn<number>('jsonb_array_length', [eb.ref('ranking')]).as('servers'))
    .where('room_id', '=', roomId)
    .orderBy('starts_at', 'desc')
    .execute();
  return rows.map((r) => ({ week: r.week, start: r.starts_at, end: r.ends_at, frozenAt: r.frozen_at, servers: Number(r.servers) }));
}

/** jsonb arrives parsed from `pg` and PGlite alike; strings are tolerated for safety. */
function parseJson(value: unknown): unknown {
  return typeof value === 'string' ? JSON.parse(value) : value;
}
