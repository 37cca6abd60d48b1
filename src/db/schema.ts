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
  recorded_at: ColumnType<Date, Date | string | undefined, never>;
  source: SampleSource;
  rtt_ms: number | null;
}

export interface FrozenWeekTable {
  room_id: string;
  week: string;
  starts_at: Timestamp;
  ends_at: Timestamp;
  frozen_at: ColumnType<Date, Date | string | undefined, never>;
  /** The filters the table was computed with, JSON. */
  filters: ColumnType<unknown, string, never>;
  /** Every ranked server with its figures, JSON. */
  ranking: ColumnType<unknown, string, never>;
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
  servers: string;
  responders: string;
  pings: string;
  columns: Uint8Array;
  built_at: ColumnType<Date, Date | string | undefined, Date | string>;
}

export interface Tables {
  samples: SampleTable;
  frozen_weeks: FrozenWeekTable;
  bot_state: BotStateTable;
  hourly_digests: HourlyDigestTable;
}

export type SampleRow = Selectable<SampleTable>;
export type NewSampleRow = Insertable<SampleTable>;
export type FrozenWeekRow = Selectable<FrozenWeekTable>;
export type { Generated };
