// Retention: raw samples and probe pings past the configured age are deleted,
// with the hourly digests that held them; frozen weeks stay forever. And the
// probe round trip enrichment of stored samples.
import t from 'tap';
import { loadConfig } from '../src/config.ts';
import { offsetEstimate } from '../src/stats/one-way.ts';
import { recordOneWaySamples, recordProbePing } from '../src/stats/probe-pings.ts';
import { recordSamples } from '../src/samples/repository.ts';
import { retentionCutoff } from '../src/samples/retention.ts';
import { applyRetention, startRetention } from '../src/schedule/retention.ts';
import { createLogger } from '../src/log.ts';
import { storeFrozenWeek } from '../src/stats/frozen-weeks.ts';
import { forEachEngine } from './helpers/database.ts';
import { ROOM, sample } from './helpers/samples.ts';

const DAY = 86_400_000;
const NOW = new Date(Date.UTC(2026, 10, 22, 12, 0, 0));

t.test('the cutoff is the configured number of days before now', async (t) => {
  t.same(retentionCutoff(NOW, 400), new Date(NOW.getTime() - 400 * DAY));
  t.equal(loadConfig({}).retentionDays, 400, 'the default is 400 days');
});

forEachEngine(t, (t, database) => {
  const { db } = database;

  t.test(
    'deletes only samples, probe pings and one-way samples older than the retention age, and the digests of their hours',
    async (t) => {
      const ages = [500, 400.5, 399.5, 1];
      await recordSamples(
        db,
        ages.map((age, i) =>
          sample({ pingServer: `age${i}.example`, delayMs: 100, measuredAt: new Date(NOW.getTime() - age * DAY) }),
        ),
      );
      await recordSamples(db, [
        sample({
          roomId: '!other:maunium.net',
          pingServer: 'old.example',
          delayMs: 50,
          measuredAt: new Date(NOW.getTime() - 450 * DAY),
        }),
      ]);
      for (const [i, age] of ages.entries()) {
        await recordProbePing(db, {
          probeId: 'p',
          seq: i + 1,
          sentAt: new Date(NOW.getTime() - age * DAY),
          roomId: ROOM,
          pingServer: 'p.example',
          pingEventId: null,
          outcome: 'lost',
          pongs: 0,
          error: null,
        });
      }
      await recordOneWaySamples(
        db,
        ages.map((age, i) => {
          const measurement = { oneWayMs: 50, twoClockMs: 50, sendRttMs: 4 };
          const measuredAt = new Date(NOW.getTime() - age * DAY);
          return {
            roomId: ROOM,
            pingEventId: `$ping${i}`,
            senderProbe: 'a',
            senderServer: 'a.example',
            receiverProbe: 'b',
            receiverServer: 'b.example',
            originTs: measuredAt,
            measuredAt,
            ...measurement,
            ...offsetEstimate(measurement),
          };
        }),
      );
      const hour = (age: number) => new Date(Math.floor((NOW.getTime() - age * DAY) / 3_600_000) * 3_600_000);
      for (const age of [500, 1]) {
        await db
          .insertInto('hourly_digests')
          .values({ room_id: ROOM, hour: hour(age), samples: 0, columns: '' })
          .execute();
      }
      await storeFrozenWeek(db, {
        roomId: ROOM,
        week: '2025-W20',
        start: new Date(Date.UTC(2025, 4, 12)),
        end: new Date(Date.UTC(2025, 4, 19)),
        filters: { minDelayMs: 10, maxDelayMs: 600_000, minPings: 1 },
        servers: [],
        exclusions: [],
      });

      const result = await applyRetention(db, NOW, 400);
      t.same(result, { cutoff: retentionCutoff(NOW, 400), samples: 3, probePings: 2, oneWaySamples: 2 });
      const left = await db.selectFrom('samples').select('ping_server').orderBy('ping_server').execute();
      t.same(
        left.map((r) => r.ping_server),
        ['age2.example', 'age3.example'],
        'samples younger than 400 days stay, in every room',
      );
      t.same(
        (await db.selectFrom('probe_pings').select('seq').orderBy('seq').execute()).map((r) => r.seq),
        [3, 4],
      );
      t.same(
        (await db.selectFrom('one_way_samples').select('ping_event_id').orderBy('ping_event_id').execute()).map(
          (r) => r.ping_event_id,
        ),
        ['$ping2', '$ping3'],
      );
      t.same(
        (await db.selectFrom('hourly_digests').select('hour').execute()).map((r) => r.hour.getTime()),
        [hour(1).getTime()],
        'old hours lose their digests',
      );
      t.equal((await db.selectFrom('frozen_weeks').selectAll().execute()).length, 1, 'frozen weeks are kept forever');
      t.same(
        await applyRetention(db, NOW, 400),
        { cutoff: retentionCutoff(NOW, 400), samples: 0, probePings: 0, oneWaySamples: 0 },
        'a second run finds nothing',
      );
    },
  );

  t.test('the scheduled job runs the same deletion and logs instead of throwing', async (t) => {
    await recordSamples(db, [
      sample({ pingServer: 'old.example', delayMs: 100, measuredAt: new Date(NOW.getTime() - 30 * DAY) }),
    ]);
    const retention = startRetention(db, 7, createLogger('silent'), () => NOW);
    t.teardown(() => retention.stop());
    t.match(await retention.runNow(), { samples: 1 });
    const broken = startRetention(
      {
        selectFrom: () => {
          throw new Error('database gone');
        },
      } as never,
      7,
      createLogger('silent'),
      () => NOW,
    );
    t.equal(await broken.runNow(), undefined, 'a failure is logged; the next run tries again');
    await broken.stop();
  });

  t.test(
    'a probe sample adds its round trip to the sample the bot stored for the same pong, and only once',
    async (t) => {
      const bot = sample({ pingServer: 'a.example', delayMs: 40, source: 'echo' });
      t.same(await recordSamples(db, [bot]), { stored: 1, duplicate: 0 });
      t.same(
        await recordSamples(db, [{ ...bot, source: 'probe', rttMs: 81.5 }]),
        { stored: 1, duplicate: 0 },
        'the round trip is stored',
      );
      t.same(
        await recordSamples(db, [{ ...bot, source: 'probe', rttMs: 99 }]),
        { stored: 0, duplicate: 1 },
        'a second probe write changes nothing',
      );
      t.same(await recordSamples(db, [bot]), { stored: 0, duplicate: 1 }, 'nor does the bot writing its sample again');
      const rows = await db.selectFrom('samples').select(['source', 'rtt_ms', 'delay_ms']).execute();
      t.same(rows, [{ source: 'probe', rtt_ms: 81.5, delay_ms: 40 }]);
    },
  );
});
