// Servers taken out of a room's rankings, each with the reason shown beside
// the table. Live tables leave them out at once; a frozen week only when it
// is frozen again, so a published table stays reproducible.
import type { Db } from '../db/database.ts';

export interface Exclusion {
  readonly server: string;
  readonly reason: string;
  /** "operator" for the HTTP API, or the room admin's user ID. */
  readonly excludedBy: string;
  readonly excludedAt: Date;
}

export async function listExclusions(db: Db, roomId: string): Promise<Exclusion[]> {
  const rows = await db
    .selectFrom('server_exclusions')
    .selectAll()
    .where('room_id', '=', roomId)
    .orderBy('server')
    .execute();
  return rows.map((r) => ({
    server: r.server,
    reason: r.reason,
    excludedBy: r.excluded_by,
    excludedAt: r.excluded_at,
  }));
}

/** Excludes a server, or replaces the reason of an exclusion in place. */
export async function excludeServer(
  db: Db,
  roomId: string,
  exclusion: Omit<Exclusion, 'excludedAt'>,
): Promise<Exclusion> {
  const row = await db
    .insertInto('server_exclusions')
    .values({ room_id: roomId, server: exclusion.server, reason: exclusion.reason, excluded_by: exclusion.excludedBy })
    .onConflict((oc) =>
      oc.columns(['room_id', 'server']).doUpdateSet({ reason: exclusion.reason, excluded_by: exclusion.excludedBy }),
    )
    .returningAll()
    .executeTakeFirstOrThrow();
  return { server: row.server, reason: row.reason, excludedBy: row.excluded_by, excludedAt: row.excluded_at };
}

/** Includes a server again; false when it was not excluded. */
export async function includeServer(db: Db, roomId: string, server: string): Promise<boolean> {
  const result = await db
    .deleteFrom('server_exclusions')
    .where('room_id', '=', roomId)
    .where('server', '=', server)
    .executeTakeFirst();
  return Number(result.numDeletedRows) > 0;
}

/** Exclusions as stored with a frozen table (JSON), and back. */
export function exclusionsJson(exclusions: readonly Exclusion[]): string {
  return JSON.stringify(
    exclusions.map((e) => ({
      server: e.server,
      reason: e.reason,
      excluded_by: e.excludedBy,
      excluded_at: e.excludedAt.toISOString(),
    })),
  );
}

export function exclusionsFromJson(value: unknown): Exclusion[] {
  const list = (typeof value === 'string' ? JSON.parse(value) : value) as {
    server: string;
    reason: string;
    excluded_by: string;
    excluded_at: string;
  }[];
  return list.map((e) => ({
    server: e.server,
    reason: e.reason,
    excludedBy: e.excluded_by,
    excludedAt: new Date(e.excluded_at),
  }));
}
