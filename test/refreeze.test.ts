// `pingboard refreeze` as an operator runs it after upgrading: a real
// process against a throwaway PostgreSQL database.
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import t from 'tap';
import { recordSamples } from '../src/samples/repository.ts';
import { findFrozenWeek, frozenWeekHistory, listFrozenWeeks, storeFrozenWeek } from '../src/stats/frozen-weeks.ts';
import type { RankedServer } from '../src/stats/ranking.ts';
import { weekContaining } from '../src/stats/windows.ts';
import { openTestDatabase, testEngines } from './helpers/database.ts';
import { runPingboard, type Result } from './helpers/process.ts';
import { ROOM, sample } from './helpers/samples.ts';

const dir = mkdtempSync(path.join(tmpdir(), 'pingboard-refreeze-'));
t.teardown(() => rmSync(dir, { recursive: true, force: true }));

function pingboard(args: string[], env: Record<string, string>): Promise<Result> {
  return runPingboard(dir, args, env, 120_000);
}

t.test(
  "refreeze: an operator freezes published weeks again with this version's rules, and the history keeps what was published",
  { skip: !testEngines().includes('postgres') && 'PINGBOARD_TEST_ENGINES excludes postgres' },
  async (t) => {
    const database = await openTestDatabase('postgres');
    t.teardown(() => database.destroy());
    const env = { DATABASE_URL: database.url!, PINGBOARD_DATA_DIR: path.join(dir, 'must-not-be-used') };
    // Two closed weeks, as the default configuration (UTC, Monday 00:00) names them.
    const weeks = { timeZone: 'UTC', closeWeekday: 1, closeHour: 0, graceMinutes: 60 };
    const older = weekContaining(new Date(Date.now() - 21 * 86_400_000), weeks);
    const newer = weekContaining(new Date(Date.now() - 14 * 86_400_000), weeks);
    const pongs = (week: typeof older, ping: string, delays: readonly [number, number, number]) => {
      const measuredAt = (offsetMs: number) => new Date(week.start.getTime() + 86_400_000 + offsetMs);
      // b.example's first pong comes from @echo2; @echo's later one is the faster.
      return [
        sample({
          pingServer: 'b.example',
          pingEventId: ping,
          delayMs: delays[0],
          responder: '@echo2:b.example',
          responderServer: 'b.example',
          measuredAt: measuredAt(0),
        }),
        sample({
          pingServer: 'b.example',
          pingEventId: ping,
          delayMs: delays[1],
          responder: '@echo:b.example',
          responderServer: 'b.example',
          measuredAt: measuredAt(5),
        }),
        sample({
          pingServer: 'b.example',
          pingEventId: ping,
          delayMs: delays[2],
          responder: '@echo:a.example',
          responderServer: 'a.example',
          measuredAt: measuredAt(300),
        }),
      ];
    };
    await recordSamples(database.db, [...pongs(older, '$old', [90, 10, 300]), ...pongs(newer, '$new', [80, 12, 200])]);
    // What an earlier version published: every account pooled.
    const published = (median: number): RankedServer => ({
      server: 'b.example',
      rank: 1,
      medianMs: median,
      meanMs: median,
      gmeanMs: median,
      p90Ms: median,
      minMs: median,
      maxMs: median,
      pings: 1,
      samples: 3,
      responders: [],
    });
    const filters = { minDelayMs: 10, maxDelayMs: 600_000, minPings: 1 };
    for (const [week, median] of [
      [older, 90],
      [newer, 80],
    ] as const) {
      await storeFrozenWeek(database.db, {
        roomId: ROOM,
        week: week.week,
        start: week.start,
        end: week.end,
        filters,
        servers: [published(median)],
        exclusions: [],
      });
    }

    const [noReason, neither, both, badWeek, openWeek] = await Promise.all([
      pingboard(['refreeze', '--room', ROOM, '--week', older.week], env),
      pingboard(['refreeze', '--room', ROOM, '--reason', 'x'], env),
      pingboard(['refreeze', '--room', ROOM, '--week', older.week, '--all', '--reason', 'x'], env),
      pingboard(['refreeze', '--room', ROOM, '--week', '2026-W99', '--reason', 'x'], env),
      pingboard(['refreeze', '--room', ROOM, '--week', weekContaining(new Date(), weeks).week, '--reason', 'x'], env),
    ]);
    t.same(
      [noReason.code, noReason.stderr],
      [2, "pingboard: --reason: a reason is required (it is kept in the week's history)\n"],
    );
    t.same([neither.code, neither.stderr], [2, 'pingboard: --week: give either --week W (e.g. 2026-W47) or --all\n']);
    t.equal(both.code, 2);
    t.same(
      [badWeek.code, badWeek.stderr],
      [2, 'pingboard: --week: expected an ISO week such as 2026-W47, got "2026-W99"\n'],
    );
    t.equal(openWeek.code, 2, 'a week that has not closed');
    t.match(openWeek.stderr, /has not closed yet/);
    t.same(
      (await listFrozenWeeks(database.db, ROOM)).map((w) => w.version),
      [1, 1],
      'a refused command changes nothing',
    );

    const one = await pingboard(
      ['refreeze', '--room', ROOM, '--week', older.week, '--reason', 'issue 13: one figure per ping and pong server'],
      env,
    );
    t.equal(one.code, 0, one.stderr);
    t.equal(one.stdout, `${ROOM} ${older.week}: version 2, 1 ranked\n`);
    const medianOf = async (week: string) =>
      (await findFrozenWeek(database.db, ROOM, week))?.servers.map((s) => [s.server, s.medianMs]);
    t.same(
      await medianOf(older.week),
      [['b.example', 195]],
      "b.example's first pongs, 90 (@echo2) and 300 (a.example)",
    );
    t.same(await medianOf(newer.week), [['b.example', 80]], 'the other week keeps what was published');
    const [history] = await frozenWeekHistory(database.db, ROOM, older.week);
    t.hasStrict(history, {
      version: 1,
      supersededBy: 'operator (cli)',
      reason: 'issue 13: one figure per ping and pong server',
    });
    t.equal(history?.servers[0]?.medianMs, 90, 'the published table stays readable');

    const all = await pingboard(['refreeze', '--room', ROOM, '--all', '--reason', 'again'], env);
    t.equal(all.code, 0, all.stderr);
    t.equal(
      all.stdout,
      `${ROOM} ${older.week}: version 3, 1 ranked\n${ROOM} ${newer.week}: version 2, 1 ranked\n`,
      'every frozen week, oldest first',
    );
    t.same(await medianOf(newer.week), [['b.example', 140]]);
    t.equal(
      (await pingboard(['leaderboard', '--room', ROOM, '--week', newer.week], env)).stdout,
      '|Rank|Hostname|Median MS|\n|:---:|:---:|:---:|\n|1|b.example|140|\n',
      'the table served is the new version',
    );
  },
);
