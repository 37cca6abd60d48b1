// Time windows (src/stats/windows.ts): pure, no database.
import t from 'tap';
import type { WeekConfig } from '../src/config.ts';
import {
  isWeekFreezable,
  lastFreezableWeek,
  parseWeekLabel,
  rollingWindow,
  shiftWeek,
  WEEK_MS,
  weekContaining,
  weekWindow,
  weeksInIsoYear,
  type WeekWindow,
} from '../src/stats/windows.ts';

const HOUR = 3_600_000;
const DAY = 24 * HOUR;
const MINUTE = 60_000;

const UTC: WeekConfig = { timeZone: 'UTC', closeWeekday: 1, closeHour: 0, graceMinutes: 60 };
const BERLIN_FRIDAY: WeekConfig = { timeZone: 'Europe/Berlin', closeWeekday: 5, closeHour: 10, graceMinutes: 60 };
const BERLIN_MONDAY: WeekConfig = { ...UTC, timeZone: 'Europe/Berlin' };
const NEW_YORK_SUNDAY: WeekConfig = { timeZone: 'America/New_York', closeWeekday: 7, closeHour: 23, graceMinutes: 30 };
const KOLKATA: WeekConfig = { ...UTC, timeZone: 'Asia/Kolkata' };

const at = (iso: string) => new Date(iso);
const iso = (d: Date) => d.toISOString();

/** weekWindow for a label that must be valid. */
function week(label: string, config: WeekConfig): WeekWindow {
  const window = weekWindow(label, config);
  if (!window) throw new Error(`no window for ${label}`);
  return window;
}

function hours(window: { start: Date; end: Date }): number {
  return (window.end.getTime() - window.start.getTime()) / HOUR;
}

/** The ISO week of a UTC date, by the textbook algorithm (the week's Thursday decides the year). */
function isoWeekOf(date: Date): string {
  const day = new Date(Date.UTC(date.getUTCFullYear(), date.getUTCMonth(), date.getUTCDate()));
  const weekday = (day.getUTCDay() + 6) % 7; // Monday 0 … Sunday 6
  const thursday = new Date(day.getTime() + (3 - weekday) * DAY);
  const year = thursday.getUTCFullYear();
  const number = 1 + Math.floor((thursday.getTime() - Date.UTC(year, 0, 1)) / WEEK_MS);
  return `${year}-W${String(number).padStart(2, '0')}`;
}

/** Local wall-clock weekday (1 = Monday), hour, minute and second of an instant, read with Intl. */
const clockFormats = new Map<string, Intl.DateTimeFormat>();
function localClock(
  instant: Date,
  timeZone: string,
): { weekday: number; hour: number; minute: number; second: number } {
  let format = clockFormats.get(timeZone);
  if (!format) {
    format = new Intl.DateTimeFormat('en-US', {
      timeZone,
      hourCycle: 'h23',
      weekday: 'short',
      hour: 'numeric',
      minute: 'numeric',
      second: 'numeric',
    });
    clockFormats.set(timeZone, format);
  }
  const parts = format.formatToParts(instant);
  const get = (type: string) => parts.find((p) => p.type === type)?.value ?? '';
  return {
    weekday: ['Mon', 'Tue', 'Wed', 'Thu', 'Fri', 'Sat', 'Sun'].indexOf(get('weekday')) + 1,
    hour: Number(get('hour')),
    minute: Number(get('minute')),
    second: Number(get('second')),
  };
}

t.test('the default close (Monday 00:00 UTC) gives exactly the ISO week', async (t) => {
  const w47 = week('2026-W47', UTC);
  t.same(w47, {
    week: '2026-W47',
    start: at('2026-11-16T00:00:00Z'),
    end: at('2026-11-23T00:00:00Z'),
    endInclusive: false,
  });
  t.equal(hours(w47), 168);
  t.same(
    week('2026-W01', UTC),
    { week: '2026-W01', start: at('2025-12-29T00:00:00Z'), end: at('2026-01-05T00:00:00Z'), endInclusive: false },
    'week 1 of 2026 starts in December 2025',
  );
  t.same(week('2026-W53', UTC), {
    week: '2026-W53',
    start: at('2026-12-28T00:00:00Z'),
    end: at('2027-01-04T00:00:00Z'),
    endInclusive: false,
  });
  t.same(
    week('2027-W01', UTC).start,
    week('2026-W53', UTC).end,
    'the last week of a year is followed by week 1 of the next',
  );
  t.same(week('2021-W01', UTC).start, at('2021-01-04T00:00:00Z'), '2021-W01 starts on January 4th (2020 had 53 weeks)');

  // Every day of 2020-2030, at several hours, lands in its ISO week.
  let mismatches = 0;
  let checked = 0;
  for (let day = Date.UTC(2020, 0, 1); day < Date.UTC(2031, 0, 1); day += DAY) {
    for (const offset of [0, 11 * HOUR + 17 * MINUTE, DAY - 1]) {
      const instant = new Date(day + offset);
      const window = weekContaining(instant, UTC);
      checked++;
      if (window.week !== isoWeekOf(instant) || window.start > instant || window.end <= instant) {
        if (mismatches++ < 5) t.fail(`${iso(instant)} is in ${window.week}, the ISO week is ${isoWeekOf(instant)}`);
      }
    }
  }
  t.equal(mismatches, 0, `${checked} instants of 2020-2030 fall in their ISO week`);
});

t.test('a Friday 10:00 Europe/Berlin close ends week 47 on its Friday', async (t) => {
  t.same(week('2026-W47', BERLIN_FRIDAY), {
    week: '2026-W47',
    start: at('2026-11-13T09:00:00Z'),
    end: at('2026-11-20T09:00:00Z'),
    endInclusive: false,
  });
  // In summer time the same local hour is 08:00 UTC.
  t.same(week('2026-W27', BERLIN_FRIDAY), {
    week: '2026-W27',
    start: at('2026-06-26T08:00:00Z'),
    end: at('2026-07-03T08:00:00Z'),
    endInclusive: false,
  });
  t.same(week('2026-W48', BERLIN_FRIDAY).start, week('2026-W47', BERLIN_FRIDAY).end, 'weeks are contiguous');
});

t.test('a week that spans a daylight-saving change lasts 169 or 167 hours', async (t) => {
  // 2026-10-25: clocks go back in Europe/Berlin (CEST → CET).
  const autumn = week('2026-W43', BERLIN_MONDAY);
  t.same([iso(autumn.start), iso(autumn.end)], ['2026-10-18T22:00:00.000Z', '2026-10-25T23:00:00.000Z']);
  t.equal(hours(autumn), 169);
  const autumnFriday = week('2026-W44', BERLIN_FRIDAY);
  t.same([iso(autumnFriday.start), iso(autumnFriday.end)], ['2026-10-23T08:00:00.000Z', '2026-10-30T09:00:00.000Z']);
  t.equal(hours(autumnFriday), 169);
  // 2026-03-29: clocks go forward (CET → CEST).
  const spring = week('2026-W13', BERLIN_MONDAY);
  t.same([iso(spring.start), iso(spring.end)], ['2026-03-22T23:00:00.000Z', '2026-03-29T22:00:00.000Z']);
  t.equal(hours(spring), 167);
  t.equal(hours(week('2026-W14', BERLIN_FRIDAY)), 167, 'Friday close: the week from Mar 27 to Apr 3 loses an hour');
  t.equal(hours(week('2026-W12', BERLIN_MONDAY)), 168, 'the week before the change is 168 hours');
  t.equal(hours(week('2026-W14', BERLIN_MONDAY)), 168, 'the week after the change is 168 hours');

  // A close at 02:00 on the night of spring-forward: 02:00 does not exist, the close moves to 03:00 CEST.
  const gap = week('2026-W13', { timeZone: 'Europe/Berlin', closeWeekday: 7, closeHour: 2, graceMinutes: 0 });
  t.equal(iso(gap.end), '2026-03-29T01:00:00.000Z', 'the nonexistent 02:00 resolves to 03:00 CEST');
  t.equal(hours(gap), 168, 'from 02:00 CET to 03:00 CEST');
  const afterGap = week('2026-W14', { timeZone: 'Europe/Berlin', closeWeekday: 7, closeHour: 2, graceMinutes: 0 });
  t.same([iso(afterGap.start), iso(afterGap.end)], ['2026-03-29T01:00:00.000Z', '2026-04-05T00:00:00.000Z']);
  t.equal(hours(afterGap), 167, 'from 03:00 CEST to 02:00 CEST');
  const nyGap = week('2026-W10', { timeZone: 'America/New_York', closeWeekday: 7, closeHour: 2, graceMinutes: 0 });
  t.equal(iso(nyGap.end), '2026-03-08T07:00:00.000Z', 'New York: the nonexistent 02:00 resolves to 03:00 EDT');
});

t.test('non-UTC zones', async (t) => {
  // Asia/Kolkata is UTC+05:30 all year: Monday 00:00 local is Sunday 18:30 UTC.
  const kolkata = week('2026-W47', KOLKATA);
  t.same([iso(kolkata.start), iso(kolkata.end)], ['2026-11-15T18:30:00.000Z', '2026-11-22T18:30:00.000Z']);
  t.equal(hours(kolkata), 168);
  t.equal(
    weekContaining(at('2026-11-15T18:29:59.999Z'), KOLKATA).week,
    '2026-W46',
    'Sunday 23:59:59.999 local is still week 46',
  );
  t.equal(
    weekContaining(at('2026-11-15T18:30:00.000Z'), KOLKATA).week,
    '2026-W47',
    'Monday 00:00 local starts week 47',
  );

  // America/New_York, EST (UTC-5) in November.
  const ny = week('2026-W47', { ...UTC, timeZone: 'America/New_York' });
  t.same([iso(ny.start), iso(ny.end)], ['2026-11-16T05:00:00.000Z', '2026-11-23T05:00:00.000Z']);
  // Sunday 23:00 close: week 47 ends on its own Sunday.
  const nySunday = week('2026-W47', NEW_YORK_SUNDAY);
  t.same([iso(nySunday.start), iso(nySunday.end)], ['2026-11-16T04:00:00.000Z', '2026-11-23T04:00:00.000Z']);
  // 2026-11-01: New York leaves summer time during week 44 (Sunday 02:00).
  t.equal(hours(week('2026-W44', NEW_YORK_SUNDAY)), 169);
  t.equal(hours(week('2026-W10', NEW_YORK_SUNDAY)), 167, 'spring-forward on 2026-03-08');
  t.equal(weekContaining(at('2026-11-23T03:59:59.999Z'), NEW_YORK_SUNDAY).week, '2026-W47');
  t.equal(weekContaining(at('2026-11-23T04:00:00.000Z'), NEW_YORK_SUNDAY).week, '2026-W48');

  // Both ends of the offset range.
  t.same(iso(week('2026-W01', { ...UTC, timeZone: 'Pacific/Kiritimati' }).start), '2025-12-28T10:00:00.000Z', 'UTC+14');
  t.same(iso(week('2026-W01', { ...UTC, timeZone: 'Pacific/Pago_Pago' }).start), '2025-12-29T11:00:00.000Z', 'UTC-11');
});

t.test('every week closes at the configured local weekday and hour, and weeks tile time', async (t) => {
  const configs: WeekConfig[] = [
    UTC,
    BERLIN_FRIDAY,
    BERLIN_MONDAY,
    NEW_YORK_SUNDAY,
    KOLKATA,
    { timeZone: 'Australia/Lord_Howe', closeWeekday: 3, closeHour: 7, graceMinutes: 0 }, // half-hour DST shifts
    { timeZone: 'Pacific/Kiritimati', closeWeekday: 1, closeHour: 23, graceMinutes: 0 },
    { timeZone: 'Pacific/Pago_Pago', closeWeekday: 6, closeHour: 0, graceMinutes: 0 },
    { timeZone: 'America/Sao_Paulo', closeWeekday: 2, closeHour: 12, graceMinutes: 0 },
  ];
  for (const config of configs) {
    const name = `${config.timeZone} day ${config.closeWeekday} ${config.closeHour}:00`;
    const problems: string[] = [];
    let label = '2025-W50';
    let previous: WeekWindow | undefined;
    while (label !== '2028-W03') {
      const window = week(label, config);
      if (window.week !== label) problems.push(`${label}: labelled ${window.week}`);
      if (previous && window.start.getTime() !== previous.end.getTime())
        problems.push(`${label} does not start where ${previous.week} ends`);
      const length = hours(window);
      if (Math.abs(length - 168) > 1) problems.push(`${label} lasts ${length} h`);
      // The close is at the configured local time (the zones above have no gap at these hours).
      const close = localClock(window.end, config.timeZone);
      if (
        close.weekday !== config.closeWeekday ||
        close.hour !== config.closeHour ||
        close.minute !== 0 ||
        close.second !== 0
      ) {
        problems.push(`${label} closes at ${JSON.stringify(close)}`);
      }
      // The closing moment is the first one at or after the Monday 00:00 that starts the ISO week (strictly after, for a Monday 00:00 close).
      const isoMonday = week(label, UTC).start.getTime();
      const localMondayStart = week(label, { ...UTC, timeZone: config.timeZone }).start.getTime();
      if (window.end.getTime() <= localMondayStart || window.end.getTime() > localMondayStart + WEEK_MS + HOUR) {
        problems.push(
          `${label} ends at ${iso(window.end)}, not in the ISO week starting ${new Date(isoMonday).toISOString()} (local)`,
        );
      }
      // Boundaries: start belongs to the week, the instant before to the previous one, end to the next.
      if (weekContaining(window.start, config).week !== label) problems.push(`${label}: its start is not in it`);
      if (weekContaining(new Date(window.end.getTime() - 1), config).week !== label)
        problems.push(`${label}: end - 1 ms is not in it`);
      if (weekContaining(window.end, config).week !== shiftWeek(label, 1))
        problems.push(`${label}: its end is not in the next week`);
      previous = window;
      label = shiftWeek(label, 1);
    }
    t.same(problems, [], name);

    // Arbitrary instants over two years fall inside the week said to contain them.
    let outside = 0;
    for (let ms = Date.UTC(2026, 0, 1); ms < Date.UTC(2028, 0, 1); ms += 233 * MINUTE + 13_001) {
      const instant = new Date(ms);
      const window = weekContaining(instant, config);
      if (window.start > instant || window.end <= instant) outside++;
    }
    t.equal(outside, 0, `${name}: weekContaining contains its instant`);
  }
});

t.test('weekContaining at and around boundaries', async (t) => {
  t.equal(
    weekContaining(at('2026-11-16T00:00:00.000Z'), UTC).week,
    '2026-W47',
    'the start instant belongs to the week',
  );
  t.equal(weekContaining(at('2026-11-15T23:59:59.999Z'), UTC).week, '2026-W46');
  t.equal(
    weekContaining(at('2026-11-23T00:00:00.000Z'), UTC).week,
    '2026-W48',
    'the boundary instant belongs to the next week',
  );
  t.equal(weekContaining(at('2026-11-22T23:59:59.999Z'), UTC).week, '2026-W47');
  t.same(weekContaining(at('2026-11-18T12:00:00Z'), UTC), week('2026-W47', UTC), 'returns the whole window');

  // Friday 10:00 Berlin: Saturday of ISO week 47 already belongs to week 48; Friday morning to week 47.
  t.equal(weekContaining(at('2026-11-20T08:59:59.999Z'), BERLIN_FRIDAY).week, '2026-W47');
  t.equal(weekContaining(at('2026-11-20T09:00:00.000Z'), BERLIN_FRIDAY).week, '2026-W48');
  t.equal(weekContaining(at('2026-11-21T12:00:00Z'), BERLIN_FRIDAY).week, '2026-W48', 'Saturday after the close');
  t.equal(weekContaining(at('2026-11-16T00:00:00Z'), BERLIN_FRIDAY).week, '2026-W47', 'Monday of ISO week 47');
  t.equal(
    weekContaining(at('2026-11-13T08:59:59.999Z'), BERLIN_FRIDAY).week,
    '2026-W46',
    'Friday of ISO week 46 before the close',
  );

  // Across the year end.
  t.equal(weekContaining(at('2027-01-01T12:00:00Z'), UTC).week, '2026-W53');
  t.equal(weekContaining(at('2027-01-04T00:00:00Z'), UTC).week, '2027-W01');
  t.equal(weekContaining(at('2025-12-31T12:00:00Z'), UTC).week, '2026-W01');
  // With a Friday close, the days after Christmas 2026 belong to W53, and Friday 2027-01-01 10:00 opens 2027-W01.
  t.equal(weekContaining(at('2027-01-01T08:59:59.999Z'), BERLIN_FRIDAY).week, '2026-W53');
  t.equal(weekContaining(at('2027-01-01T09:00:00.000Z'), BERLIN_FRIDAY).week, '2027-W01');

  // The hour that repeats when Berlin leaves summer time belongs to one week, not two.
  const repeated = [at('2026-10-25T00:30:00Z'), at('2026-10-25T01:30:00Z')]; // 02:30 CEST and 02:30 CET
  t.same(
    repeated.map((i) => weekContaining(i, BERLIN_MONDAY).week),
    ['2026-W43', '2026-W43'],
  );
});

t.test('parseWeekLabel', async (t) => {
  t.same(parseWeekLabel('2026-W47'), { year: 2026, week: 47 });
  t.same(parseWeekLabel('2026-W01'), { year: 2026, week: 1 });
  t.same(parseWeekLabel('2026-W53'), { year: 2026, week: 53 }, '2026 has 53 ISO weeks');
  t.same(parseWeekLabel('2020-W53'), { year: 2020, week: 53 }, '2020 has 53 ISO weeks');
  t.equal(parseWeekLabel('2026-W00'), undefined, 'week 0 does not exist');
  t.equal(parseWeekLabel('2025-W53'), undefined, '2025 has 52 ISO weeks');
  t.equal(parseWeekLabel('2027-W53'), undefined, '2027 has 52 ISO weeks');
  t.equal(parseWeekLabel('2026-W54'), undefined);
  t.equal(parseWeekLabel('2026-W99'), undefined);
  for (const junk of [
    '',
    '2026',
    '2026-47',
    '2026W47',
    '2026-w47',
    '2026-W7',
    '2026-W047',
    '26-W47',
    ' 2026-W47',
    '2026-W47 ',
    '2026-W47\n',
    '2026-W4a',
    '2026-W-1',
    '+2026-W47',
    '2026-11-16',
    'W47',
    '1969-W01',
    '0000-W01',
    '２０２６-W47',
  ]) {
    t.equal(parseWeekLabel(junk), undefined, `rejects ${JSON.stringify(junk)}`);
  }
  t.equal(weekWindow('2025-W53', UTC), undefined, 'weekWindow refuses an invalid label');
  t.equal(weekWindow('junk', UTC), undefined);
  t.same([2020, 2021, 2025, 2026, 2027, 2032, 2037, 2038].map(weeksInIsoYear), [53, 52, 52, 53, 52, 53, 53, 52]);
});

t.test('shiftWeek', async (t) => {
  t.equal(shiftWeek('2026-W47', 0), '2026-W47');
  t.equal(shiftWeek('2026-W47', 1), '2026-W48');
  t.equal(shiftWeek('2026-W47', -1), '2026-W46');
  t.equal(shiftWeek('2026-W53', 1), '2027-W01', 'after the 53rd week of 2026');
  t.equal(shiftWeek('2027-W01', -1), '2026-W53');
  t.equal(shiftWeek('2025-W52', 1), '2026-W01', '2025 has no week 53');
  t.equal(shiftWeek('2026-W01', -1), '2025-W52');
  t.equal(shiftWeek('2026-W01', -2), '2025-W51');
  t.equal(shiftWeek('2026-W52', 2), '2027-W01');
  t.equal(shiftWeek('2026-W47', 53), '2027-W47', '53 weeks ahead in a 53-week year');
  t.equal(shiftWeek('2027-W47', -53), '2026-W47');
  t.equal(shiftWeek('2026-W47', 52 * 10 + 2), '2036-W47', 'ten years ahead (2026 and 2032 have 53 weeks)');
  t.equal(shiftWeek('2036-W47', -(52 * 10 + 2)), '2026-W47');
  t.throws(() => shiftWeek('2025-W53', 1), RangeError);
  t.throws(() => shiftWeek('nonsense', 1), RangeError);
});

t.test('isWeekFreezable respects the grace period', async (t) => {
  const w47 = week('2026-W47', UTC);
  t.equal(isWeekFreezable(w47, at('2026-11-20T00:00:00Z'), UTC), false, 'not before the week ends');
  t.equal(isWeekFreezable(w47, at('2026-11-23T00:00:00Z'), UTC), false, 'not at the close');
  t.equal(isWeekFreezable(w47, at('2026-11-23T00:59:59.999Z'), UTC), false, 'not during the grace period');
  t.equal(isWeekFreezable(w47, at('2026-11-23T01:00:00Z'), UTC), true, 'once the grace period has passed');
  t.equal(isWeekFreezable(w47, at('2027-06-01T00:00:00Z'), UTC), true, 'long after');
  const noGrace = { ...UTC, graceMinutes: 0 };
  t.equal(isWeekFreezable(w47, at('2026-11-22T23:59:59.999Z'), noGrace), false);
  t.equal(isWeekFreezable(w47, at('2026-11-23T00:00:00Z'), noGrace), true, 'without grace, at the close');
  const longGrace = { ...UTC, graceMinutes: 10_080 };
  t.equal(isWeekFreezable(w47, at('2026-11-29T23:59:59.999Z'), longGrace), false);
  t.equal(isWeekFreezable(w47, at('2026-11-30T00:00:00Z'), longGrace), true, 'a week of grace');
});

t.test('lastFreezableWeek', async (t) => {
  t.equal(lastFreezableWeek(at('2026-11-23T00:30:00Z'), UTC).week, '2026-W46', 'W47 is still in its grace period');
  t.equal(lastFreezableWeek(at('2026-11-23T00:59:59.999Z'), UTC).week, '2026-W46');
  t.same(
    lastFreezableWeek(at('2026-11-23T01:00:00Z'), UTC),
    week('2026-W47', UTC),
    'W47 once the grace period has passed',
  );
  t.equal(lastFreezableWeek(at('2026-11-27T12:00:00Z'), UTC).week, '2026-W47', 'mid-week');
  t.equal(lastFreezableWeek(at('2026-11-29T23:59:59Z'), UTC).week, '2026-W47', 'end of the following week');
  t.equal(lastFreezableWeek(at('2027-01-04T00:30:00Z'), UTC).week, '2026-W52', 'across the year end, in grace');
  t.equal(lastFreezableWeek(at('2027-01-04T01:00:00Z'), UTC).week, '2026-W53', 'across the year end');
  t.equal(lastFreezableWeek(at('2027-01-11T02:00:00Z'), UTC).week, '2027-W01');
  t.equal(lastFreezableWeek(at('2026-11-20T09:30:00Z'), BERLIN_FRIDAY).week, '2026-W46', 'Friday close, in grace');
  t.equal(lastFreezableWeek(at('2026-11-20T10:00:00Z'), BERLIN_FRIDAY).week, '2026-W47', 'Friday close, an hour after');
  t.equal(lastFreezableWeek(at('2026-11-23T00:00:00Z'), { ...UTC, graceMinutes: 0 }).week, '2026-W47', 'no grace');
  // Whatever the moment, the answer is freezable and the week after it is not.
  let wrong = 0;
  for (let ms = Date.UTC(2026, 9, 1); ms < Date.UTC(2026, 11, 1); ms += 41 * MINUTE) {
    const now = new Date(ms);
    for (const config of [UTC, BERLIN_FRIDAY, NEW_YORK_SUNDAY]) {
      const last = lastFreezableWeek(now, config);
      if (!isWeekFreezable(last, now, config) || isWeekFreezable(week(shiftWeek(last.week, 1), config), now, config))
        wrong++;
    }
  }
  t.equal(wrong, 0, 'the last freezable week is freezable and its successor is not');
});

t.test('rollingWindow', async (t) => {
  const now = at('2026-11-21T12:00:00Z');
  t.same(
    rollingWindow(now, { maxAgeSeconds: 7 * 86_400, minAgeSeconds: 0, capSpanToWeek: true }),
    { start: at('2026-11-14T12:00:00Z'), end: now, endInclusive: true },
    'one week back, inclusive',
  );
  t.same(
    rollingWindow(now, { maxAgeSeconds: 86_400, minAgeSeconds: 3600, capSpanToWeek: true }),
    { start: at('2026-11-20T12:00:00Z'), end: at('2026-11-21T11:00:00Z'), endInclusive: true },
    'min_age moves the end back',
  );
  t.same(
    rollingWindow(now, { maxAgeSeconds: 30 * 86_400, minAgeSeconds: 0, capSpanToWeek: true }),
    { start: at('2026-11-14T12:00:00Z'), end: now, endInclusive: true },
    'the span is capped to one week, ending at now - min_age',
  );
  t.same(
    rollingWindow(now, { maxAgeSeconds: 30 * 86_400, minAgeSeconds: 86_400, capSpanToWeek: true }),
    { start: at('2026-11-13T12:00:00Z'), end: at('2026-11-20T12:00:00Z'), endInclusive: true },
    'capped: the week before now - min_age',
  );
  t.same(
    rollingWindow(now, { maxAgeSeconds: 30 * 86_400, minAgeSeconds: 0, capSpanToWeek: false }),
    { start: at('2026-10-22T12:00:00Z'), end: now, endInclusive: true },
    'uncapped: thirty days',
  );
  t.same(rollingWindow(now, { maxAgeSeconds: 90 * 86_400, minAgeSeconds: 86_400, capSpanToWeek: false }), {
    start: at('2026-08-23T12:00:00Z'),
    end: at('2026-11-20T12:00:00Z'),
    endInclusive: true,
  });
  const exact = rollingWindow(now, { maxAgeSeconds: 7 * 86_400 + 1, minAgeSeconds: 0, capSpanToWeek: true });
  t.equal(exact.end.getTime() - exact.start.getTime(), WEEK_MS, 'one second over a week is capped');
  const empty = rollingWindow(now, { maxAgeSeconds: 3600, minAgeSeconds: 7200, capSpanToWeek: true });
  t.ok(empty.end.getTime() >= empty.start.getTime(), 'min_age > max_age gives an empty window, never end before start');
  t.same(empty.start, at('2026-11-21T11:00:00Z'));
  t.same(empty.end, at('2026-11-21T11:00:00Z'));
  t.same(rollingWindow(now, { maxAgeSeconds: 0, minAgeSeconds: 0, capSpanToWeek: false }), {
    start: now,
    end: now,
    endInclusive: true,
  });
});
