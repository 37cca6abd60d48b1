// The one description of the tables: queries are typed from it, and row types
// stay inside the data layer (repositories return domain objects).
import type { ColumnType, Generated, Insertable, Selectable } from 'kysely';

/** Written as a Date or ISO string, always read back as a Date. */
type Timestamp = ColumnType<Date, Date | string, Date | string>;

export const SAMPLE_SOURCES = ['echo', 'pong', 'probe'] as const;
export type SampleSource = (typeof SAMPLE_SOURCES)[number];

export interface SampleTable {
  room_id: string;
  ping_event_id: string;
  ping_server: string;
  pinger: string | null;
  responder: string;
  responder_server: string;
  delay_ms: number;
  ping_ts: Timestamp;
  measured_at: Timestamp;
  /** For the bot's own answers: its pong event's origin_server_ts, once seen (null before, and for samples read from a pong). */
  pong_ts: ColumnType<Date | null, Date | string | null | undefined, Date | string | null>;
  recorded_at: ColumnType<Date, Date | string | undefined, never>;
  source: SampleSource;
  rtt_ms: number | null;
  /** For the bot's own answers: the ping event's `unsigned.age` as its sync carried it; null where it carried none. */
  ping_age_ms: ColumnType<number | null, number | null | undefined, number | null>;
}

export interface FrozenWeekTable {
  room_id: string;
  week: string;
  starts_at: Timestamp;
  ends_at: Timestamp;
  frozen_at: ColumnType<Date, Date | string | undefined, Date | string>;
  /** The filters the table was computed with, JSON. */
  filters: ColumnType<unknown, string, string>;
  /** Every ranked server with its figures, JSON. */
  ranking: ColumnType<unknown, string, string>;
  /** 1 when first frozen; each re-freeze adds one (the replaced version goes to frozen_week_history). */
  version: ColumnType<number, number | undefined, number>;
  /** The exclusions the table was computed with, JSON. */
  exclusions: ColumnType<unknown, string | undefined, string>;
}

export interface FrozenWeekHistoryTable {
  room_id: string;
  week: string;
  version: number;
  starts_at: Timestamp;
  ends_at: Timestamp;
  frozen_at: Timestamp;
  filters: ColumnType<unknown, string, never>;
  ranking: ColumnType<unknown, string, never>;
  exclusions: ColumnType<unknown, string, never>;
  superseded_at: ColumnType<Date, Date | string | undefined, never>;
  /** Who re-froze the week: "operator" (HTTP), "operator (cli)" or a room admin's user ID. */
  superseded_by: string;
  reason: string;
}

export interface ServerExclusionTable {
  /** The tracked room's ID (its configured ID): an exclusion covers its whole lineage. */
  room_id: string;
  server: string;
  reason: string;
  excluded_by: string;
  excluded_at: ColumnType<Date, Date | string | undefined, never>;
}

export interface BotStateTable {
  key: string;
  value: string;
  updated_at: ColumnType<Date, Date | string | undefined, Date | string>;
}

export interface HourlyDigestTable {
  room_id: string;
  hour: Timestamp;
  samples: number;
  /** The hour's figures (one per ping and pong server, stats/first-pongs.ts) as numbers (server_names ids, ping keys, delays), base64: layout in stats/digests.ts. */
  columns: string;
  /** Each figure's measured_at, whole milliseconds from the hour's start, base64 int32s; null where built before they were kept. */
  measured_offsets: ColumnType<string | null, string | null | undefined, string | null>;
  built_at: ColumnType<Date, Date | string | undefined, Date | string>;
  /** Never the same for two stored digests (a sequence): what a process keeping digests in memory compares. */
  generation: ColumnType<string, never, string>;
}

/** Each (room, hour of pong time) that holds samples, with a version every change of its samples renews (a trigger). */
export interface SampleHourTable {
  room_id: string;
  hour: Timestamp;
  /** Never the same twice (a sequence): what a process keeping the hour's rows in memory compares. */
  version: ColumnType<string, never, never>;
}

/** Every server name a digest refers to, numbered once for all rooms. */
export interface ServerNameTable {
  id: Generated<number>;
  name: string;
}

/** One row, its epoch moved on by every update, delete or truncate of server_names (a trigger): names a process keeps by id hold while it stays. */
export interface ServerNamesEpochTable {
  epoch: ColumnType<string, never, never>;
}

export const PROBE_OUTCOMES = ['answered', 'lost', 'send_failed'] as const;
export type ProbeOutcome = (typeof PROBE_OUTCOMES)[number];

/** One ping a probe tried to send, and what became of it. */
export interface ProbePingTable {
  probe_id: string;
  sent_at: Timestamp;
  seq: number;
  room_id: string;
  ping_server: string;
  ping_event_id: string | null;
  outcome: ProbeOutcome;
  pongs: number;
  error: string | null;
}

/** A probe ping seen by another probe of the same process (src/probes/matrix.ts). */
export interface OneWaySampleTable {
  room_id: string;
  ping_event_id: string;
  sender_probe: string;
  sender_server: string;
  receiver_probe: string;
  receiver_server: string;
  origin_ts: Timestamp;
  measured_at: Timestamp;
  one_way_ms: number;
  two_clock_ms: number;
  send_rtt_ms: number;
  offset_ms: number;
  offset_bound_ms: number;
}

/** What the bot learnt of a configured room (an ID or an alias): its ID and its upgrade lineage. */
export interface TrackedRoomTable {
  reference: string;
  room_id: string;
  room_ids: string[];
  updated_at: ColumnType<Date, Date | string | undefined, Date | string>;
}

export interface Tables {
  samples: SampleTable;
  frozen_weeks: FrozenWeekTable;
  frozen_week_history: FrozenWeekHistoryTable;
  server_exclusions: ServerExclusionTable;
  bot_state: BotStateTable;
  hourly_digests: HourlyDigestTable;
  server_names: ServerNameTable;
  server_names_epoch: ServerNamesEpochTable;
  probe_pings: ProbePingTable;
  one_way_samples: OneWaySampleTable;
  tracked_rooms: TrackedRoomTable;
  sample_hours: SampleHourTable;
}

export type SampleRow = Selectable<SampleTable>;
export type NewSampleRow = Insertable<SampleTable>;
export type FrozenWeekRow = Selectable<FrozenWeekTable>;
export type { Generated };
