// Time windows: pure functions from configuration and "now" to instants.
//
// A calendar week is named after an ISO week. Week `2026-W47` is the seven
// days that end at the first closing moment (configured weekday and hour, in
// the configured time zone) after the start of ISO week 47, Monday 00:00
// local time. With the default close (Monday 00:00) that is exactly the ISO
// week; with a Friday 10:00 close it ends on the Friday of week 47. Lengths
// are seven local days, so a week that spans a daylight-saving change lasts
// 167 or 169 hours.
import type { WeekConfig } from '../config.ts';

export interface TimeWindow {
  readonly start: Date;
  readonly end: Date;
  /** Rolling windows include their end (as the existing aggregator does); weeks do not. */
  readonly endInclusive: boolean;
}

export interface WeekWindow extends TimeWindow {
  readonly week: string;
}

export const HOUR_MS = 3_600_000;
const DAY_MS = 24 * HOUR_MS;
export const WEEK_MS = 7 * DAY_MS;

export interface RollingOptions {
  readonly maxAgeSeconds: number;
  readonly minAgeSeconds: number;
  /** The existing aggregator caps the span at one week; its drop-in routes keep that. */
  readonly capSpanToWeek: boolean;
}

export function rollingWindow(now: Date, options: RollingOptions): TimeWindow {
  const end = now.getTime() - options.minAgeSeconds * 1000;
  let start = now.getTime() - options.maxAgeSeconds * 1000;
  if (options.capSpanToWeek && end - start > WEEK_MS) start = end - WEEK_MS;
  return { start: new Date(start), end: new Date(Math.max(start, end)), endInclusive: true };
}

// ---- ISO week labels ----------------------------------------------------
// Weeks are handled as the day number (days since 1970-01-01) of their
// Monday, on the calendar alone; time zones only enter when turning a local
// wall-clock time into an instant.

const WEEK_LABEL = /^(\d{4})-W(\d{2})$/;

function isoWeekdayOfDay(day: number): number {
  // 1970-01-01 was a Thursday (ISO weekday 4).
  return ((((day + 3) % 7) + 7) % 7) + 1;
}

function dayOfDate(year: number, month: number, date: number): number {
  return Math.floor(Date.UTC(year, month - 1, date) / DAY_MS);
}

function mondayOfIsoWeek(year: number, week: number): number {
  const jan4 = dayOfDate(year, 1, 4);
  return jan4 - (isoWeekdayOfDay(jan4) - 1) + (week - 1) * 7;
}

/** The ISO week label of the week whose Monday is `monday`. */
function labelOfMonday(monday: number): string {
  // The ISO year is the calendar year of the week's Thursday.
  const thursday = new Date((monday + 3) * DAY_MS);
  const year = thursday.getUTCFullYear();
  const week = Math.round((monday - mondayOfIsoWeek(year, 1)) / 7) + 1;
  return `${String(year).padStart(4, '0')}-W${String(week).padStart(2, '0')}`;
}

export function weeksInIsoYear(year: number): number {
  return labelOfMonday(mondayOfIsoWeek(year, 53)) === `${year}-W53` ? 53 : 52;
}

/** Parses `2026-W47`; returns undefined for anything else, including W53 in a 52-week year. */
export function parseWeekLabel(label: string): { year: number; week: number } | undefined {
  const match = WEEK_LABEL.exec(label);
  if (!match) return undefined;
  const year = Number(match[1]);
  const week = Number(match[2]);
  if (year < 1970 || week < 1 || week > weeksInIsoYear(year)) return undefined;
  return { year, week };
}

export function shiftWeek(label: string, weeks: number): string {
  const parsed = parseWeekLabel(label);
  if (!parsed) throw new RangeError(`not a week: ${label}`);
  return labelOfMonday(mondayOfIsoWeek(parsed.year, parsed.week) + 7 * weeks);
}

// ---- time zones -----------------------------------------------------------

const formatters = new Map<string, Intl.DateTimeFormat>();

function wallClockParts(instant: number, timeZone: string): number[] {
  let formatter = formatters.get(timeZone);
  if (!formatter) {
    formatter = new Intl.DateTimeFormat('en-US', {
      timeZone,
      hourCycle: 'h23',
      year: 'numeric',
      month: 'numeric',
      day: 'numeric',
      hour: 'numeric',
      minute: 'numeric',
      second: 'numeric',
    });
    formatters.set(timeZone, formatter);
  }
  const parts: Record<string, number> = {};
  for (const part of formatter.formatToParts(new Date(instant))) {
    if (part.type !== 'literal') parts[part.type] = Number(part.value);
  }
  return [parts['year']!, parts['month']!, parts['day']!, parts['hour']!, parts['minute']!, parts['second']!];
}

/** Offset of `timeZone` from UTC at `instant`, in ms (positive east of Greenwich). */
function zoneOffset(instant: number, timeZone: string): number {
  const [y, mo, d, h, mi, s] = wallClockParts(instant, timeZone) as [number, number, number, number, number, number];
  return Date.UTC(y, mo - 1, d, h, mi, s) - Math.floor(instant / 1000) * 1000;
}

/**
 * The instant at which local wall-clock time `day` + `hour`:00 occurs in
 * `timeZone`. In a spring-forward gap the hour that does not exist resolves
 * to the instant one hour later, as clocks do.
 */
function localTimeToInstant(day: number, hour: number, timeZone: string): number {
  const wall = day * DAY_MS + hour * HOUR_MS;
  const guess = wall - zoneOffset(wall, timeZone);
  const corrected = wall - zoneOffset(guess, timeZone);
  return zoneOffset(corrected, timeZone) === zoneOffset(guess, timeZone) ? corrected : Math.max(guess, corrected);
}

function localDayOf(instant: number, timeZone: string): number {
  const [y, mo, d] = wallClockParts(instant, timeZone) as [number, number, number];
  return dayOfDate(y, mo, d);
}

// ---- calendar weeks -------------------------------------------------------

/** The window of week `label`, or undefined when the label is not a valid week. */
export function weekWindow(label: string, config: WeekConfig): WeekWindow | undefined {
  const parsed = parseWeekLabel(label);
  if (!parsed) return undefined;
  const monday = mondayOfIsoWeek(parsed.year, parsed.week);
  let closeDay = monday + (config.closeWeekday - 1);
  // Only a Monday 00:00 close coincides with the week's start; it ends the week after.
  if (closeDay === monday && config.closeHour === 0) closeDay += 7;
  return {
    week: labelOfMonday(monday),
    start: new Date(localTimeToInstant(closeDay - 7, config.closeHour, config.timeZone)),
    end: new Date(localTimeToInstant(closeDay, config.closeHour, config.timeZone)),
    endInclusive: false,
  };
}

/** The week that contains `instant` (start <= instant < end). */
export function weekContaining(instant: Date, config: WeekConfig): WeekWindow {
  const day = localDayOf(instant.getTime(), config.timeZone);
  let label = labelOfMonday(day - (isoWeekdayOfDay(day) - 1));
  // The closing moment shifts weeks by less than seven days: one step at most each way.
  for (let step = 0; step < 3; step++) {
    const window = weekWindow(label, config)!;
    if (instant < window.start) label = shiftWeek(label, -1);
    else if (instant >= window.end) label = shiftWeek(label, 1);
    else return window;
  }
  throw new Error(`no week contains ${instant.toISOString()}`);
}

/** A week may be frozen once it has closed and the grace period for late pongs has passed. */
export function isWeekFreezable(window: WeekWindow, now: Date, config: WeekConfig): boolean {
  return now.getTime() >= window.end.getTime() + config.graceMinutes * 60_000;
}

/** The most recent week that can be frozen at `now`. */
export function lastFreezableWeek(now: Date, config: WeekConfig): WeekWindow {
  const current = weekContaining(now, config);
  const previous = weekWindow(shiftWeek(current.week, -1), config)!;
  return isWeekFreezable(previous, now, config) ? previous : weekWindow(shiftWeek(current.week, -2), config)!;
}
