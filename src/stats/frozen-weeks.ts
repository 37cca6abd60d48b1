// Frozen weeks: a closed week's table, computed once and never changed, so a
// published newsletter table can always be reproduced.
import type { Db } from '../db/database.ts';
import type { FrozenWeekRow } from '../db/schema.ts';
import type { StatsConfig } from '../config.ts';
import { exclusionsFromJson, exclusionsJson, type Exclusion } from './exclusions.ts';
import type { RankedServer } from './ranking.ts';

export interface FrozenWeek {
  readonly roomId: string;
  readonly week: string;
  readonly start: Date;
  readonly end: Date;
  readonly frozenAt: Date;
  readonly filters: StatsConfig;
  readonly servers: readonly RankedServer[];
  /** The servers left out of the ranking, with their reasons. */
  readonly exclusions: readonly Exclusion[];
  /** 1, then one more each time the week is frozen again. */
  readonly version: number;
}

type WeekToFreeze = Omit<FrozenWeek, 'frozenAt' | 'version'>;

/** The stored table of a week: what a first freeze inserts and a re-freeze writes over. */
function frozenTable(week: WeekToFreeze) {
  return {
    filters: JSON.stringify(week.filters),
    ranking: JSON.stringify(week.servers),
    exclusions: exclusionsJson(week.exclusions),
  };
}

function frozenWeekRow(week: WeekToFreeze) {
  return { room_id: week.roomId, week: week.week, starts_at: week.start, ends_at: week.end, ...frozenTable(week) };
}

/** Stores the week unless it is already frozen; returns the stored version either way. */
export async function storeFrozenWeek(db: Db, week: WeekToFreeze): Promise<FrozenWeek> {
  await db
    .insertInto('frozen_weeks')
    .values(frozenWeekRow(week))
    .onConflict((oc) => oc.columns(['room_id', 'week']).doNothing())
    .execute();
  const stored = await findFrozenWeek(db, week.roomId, week.week);
  if (!stored) throw new Error(`frozen week ${week.roomId} ${week.week} vanished after insert`);
  return stored;
}

/** The version of a week stored now (undefined: not frozen): one index lookup, where the week itself holds its table. */
export async function frozenWeekVersion(db: Db, roomId: string, week: string): Promise<number | undefined> {
  const row = await db
    .selectFrom('frozen_weeks')
    .select('version')
    .where('room_id', '=', roomId)
    .where('week', '=', week)
    .executeTakeFirst();
  return row?.version;
}

export async function findFrozenWeek(db: Db, roomId: string, week: string): Promise<FrozenWeek | undefined> {
  const row = await db
    .selectFrom('frozen_weeks')
    .selectAll()
    .where('room_id', '=', roomId)
    .where('week', '=', week)
    .executeTakeFirst();
  return row && frozenWeekOfRow(row);
}

/**
 * Replaces a frozen week's table (after an exclusion, say): the version it
 * replaces moves to the week's history with who replaced it and why, so what
 * was published stays readable. Returns the new version.
 */
export async function refreezeWeek(db: Db, week: WeekToFreeze, by: string, reason: string): Promise<FrozenWeek> {
  await db.transaction().execute(async (tx) => {
    const current = await tx
      .selectFrom('frozen_weeks')
      .selectAll()
      .where('room_id', '=', week.roomId)
      .where('week', '=', week.week)
      .forUpdate()
      .executeTakeFirst();
    if (!current) {
      await tx.insertInto('frozen_weeks').values(frozenWeekRow(week)).execute();
      return;
    }
    await tx
      .insertInto('frozen_week_history')
      .values({
        room_id: current.room_id,
        week: current.week,
        version: current.version,
        starts_at: current.starts_at,
        ends_at: current.ends_at,
        frozen_at: current.frozen_at,
        filters: JSON.stringify(current.filters),
        ranking: JSON.stringify(current.ranking),
        exclusions: JSON.stringify(current.exclusions),
        superseded_by: by,
        reason,
      })
      .execute();
    await tx
      .updateTable('frozen_weeks')
      .set({ ...frozenTable(week), frozen_at: new Date(), version: current.version + 1 })
      .where('room_id', '=', week.roomId)
      .where('week', '=', week.week)
      .execute();
  });
  const stored = await findFrozenWeek(db, week.roomId, week.week);
  if (!stored) throw new Error(`frozen week ${week.roomId} ${week.week} vanished after re-freezing`);
  return stored;
}

export interface SupersededWeek extends FrozenWeek {
  readonly supersededAt: Date;
  readonly supersededBy: string;
  readonly reason: string;
}

/** A stored version of a week's table, current or replaced: both tables share these columns. */
function frozenWeekOfRow(row: FrozenWeekRow): FrozenWeek {
  return {
    roomId: row.room_id,
    week: row.week,
    start: row.starts_at,
    end: row.ends_at,
    frozenAt: row.frozen_at,
    filters: parseJson(row.filters) as StatsConfig,
    servers: parseJson(row.ranking) as RankedServer[],
    exclusions: exclusionsFromJson(row.exclusions),
    version: row.version,
  };
}

/** The versions a frozen week replaced, newest first. */
export async function frozenWeekHistory(db: Db, roomId: string, week: string): Promise<SupersededWeek[]> {
  const rows = await db
    .selectFrom('frozen_week_history')
    .selectAll()
    .where('room_id', '=', roomId)
    .where('week', '=', week)
    .orderBy('version', 'desc')
    .execute();
  return rows.map((row) => ({
    ...frozenWeekOfRow(row),
    supersededAt: row.superseded_at,
    supersededBy: row.superseded_by,
    reason: row.reason,
  }));
}

export interface FrozenWeekSummary {
  readonly week: string;
  readonly start: Date;
  readonly end: Date;
  readonly frozenAt: Date;
  readonly servers: number;
  readonly version: number;
}

export async function listFrozenWeeks(db: Db, roomId: string): Promise<FrozenWeekSummary[]> {
  const rows = await db
    .selectFrom('frozen_weeks')
    .select(['week', 'starts_at', 'ends_at', 'frozen_at', 'version'])
    .select((eb) => eb.fn<number>('jsonb_array_length', [eb.ref('ranking')]).as('servers'))
    .where('room_id', '=', roomId)
    .orderBy('starts_at', 'desc')
    .execute();
  return rows.map((r) => ({
    week: r.week,
    start: r.starts_at,
    end: r.ends_at,
    frozenAt: r.frozen_at,
    servers: Number(r.servers),
    version: r.version,
  }));
}

/** jsonb arrives parsed from `pg` and PGlite alike; strings are tolerated for safety. */
function parseJson(value: unknown): unknown {
  return typeof value === 'string' ? JSON.parse(value) : value;
}
