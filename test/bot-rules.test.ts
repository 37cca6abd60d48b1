// The bot's live/backlog/restart rules, case by case: each restart or
// backlog case the bot has got wrong before (named by its commit) has one.
// test/bot.test.ts runs the same cases end to end against the test homeserver.
import t from 'tap';
import { SyncState } from 'matrix-js-sdk';
import {
  endsWaitForNewLoop,
  filterOutdated,
  inStep,
  isLive,
  judgePing,
  needsStoring,
  resumeToken,
  syncedRooms,
  syncHealthAfter,
  SyncRestarts,
  WatchedRooms,
  type SyncStateName,
} from '../src/matrix/bot-rules.ts';

const ALL_STATES: readonly SyncStateName[] = ['ERROR', 'PREPARED', 'STOPPED', 'SYNCING', 'CATCHUP', 'RECONNECTING'];

t.test('the rules name every sync state of the pinned SDK by its value', async (t) => {
  t.same([...Object.values(SyncState)].sort(), [...ALL_STATES].sort());
});

t.test(
  'a message is live only in a sync made in step with the server (a95d01d: backlog after a start is not answered)',
  async (t) => {
    for (const state of ALL_STATES)
      t.equal(isLive(state, false, 2000, 1000), state === 'PREPARED' || state === 'SYNCING', state);
    t.notOk(isLive(null, false, 2000, 1000), 'the first sync after a start (no state yet) is backlog');
    t.ok(inStep('SYNCING') && inStep('PREPARED') && !inStep('CATCHUP') && !inStep(null));
  },
);

t.test(
  "the catch-up after the bot's own restart made in step is live, for messages sent once their room was watched (6d6ebb1)",
  async (t) => {
    const restarts = new SyncRestarts();
    t.equal(restarts.request(false), 'start');
    restarts.restarting('SYNCING');
    t.ok(restarts.catchUpLive);
    t.ok(isLive(null, restarts.catchUpLive, 5000, 5000), 'sent the moment the bot began watching the room');
    t.ok(isLive(null, restarts.catchUpLive, 9000, 5000), 'sent later');
    t.notOk(
      isLive(null, restarts.catchUpLive, 4999, 5000),
      'sent in the new room before the bot joined it: it would measure the join',
    );
    t.notOk(isLive(null, restarts.catchUpLive, 9000, undefined), 'a room not watched');
  },
);

t.test('a restart made out of step hands over no live catch-up (6d6ebb1)', async (t) => {
  for (const state of [null, 'ERROR', 'RECONNECTING', 'CATCHUP', 'STOPPED'] as const) {
    const restarts = new SyncRestarts();
    restarts.request(false);
    restarts.restarting(state);
    t.notOk(restarts.catchUpLive, String(state));
    t.notOk(isLive(null, restarts.catchUpLive, 9000, 5000));
  }
});

t.test('the catch-up mark lasts while the new loop has no state; then its state decides (1075b14)', async (t) => {
  t.ok(isLive(null, true, 9000, 5000));
  t.ok(isLive('PREPARED', true, 1, 5000), "in step: the room's watch time no longer matters");
  t.notOk(isLive('ERROR', true, 9000, 5000), 'the new loop failed: backlog again');
  t.notOk(isLive('RECONNECTING', true, 9000, 5000));
});

t.test(
  "the stopped loop's late STOPPED does not end the wait for the new loop; the bot's own stop does (6d6ebb1, 1075b14)",
  async (t) => {
    t.notOk(endsWaitForNewLoop('STOPPED', false));
    t.ok(endsWaitForNewLoop('STOPPED', true));
    for (const state of ALL_STATES.filter((s) => s !== 'STOPPED')) t.ok(endsWaitForNewLoop(state, false), state);
  },
);

t.test(
  'restarts run one at a time; any number asked meanwhile come to one more (1075b14: two invites in one sync)',
  async (t) => {
    const restarts = new SyncRestarts();
    t.equal(restarts.request(false), 'start');
    restarts.restarting('SYNCING');
    t.equal(restarts.request(false), 'queued');
    t.equal(restarts.request(false), 'queued');
    t.ok(restarts.settled(false), 'one more restart');
    restarts.restarting('PREPARED');
    t.notOk(restarts.settled(false), 'and no third');
    restarts.finished();
    t.equal(restarts.request(false), 'start', 'a later request starts a new run');
  },
);

t.test(
  'each restart of a run takes its own mark: one made while the previous new loop failed is not live (1075b14)',
  async (t) => {
    const restarts = new SyncRestarts();
    restarts.request(false);
    restarts.restarting('SYNCING');
    restarts.request(false);
    t.ok(restarts.settled(false));
    restarts.restarting('ERROR');
    t.notOk(restarts.catchUpLive);
  },
);

t.test(
  'no restart once the bot stops, and none queued runs after it (a retry that joins a room while the bot stops)',
  async (t) => {
    t.equal(new SyncRestarts().request(true), 'none');
    const restarts = new SyncRestarts();
    restarts.request(false);
    restarts.restarting('SYNCING');
    restarts.request(false);
    t.notOk(restarts.settled(true));
    t.equal(restarts.request(true), 'none');
  },
);

t.test('a run of restarts that failed lets the next request start one', async (t) => {
  const restarts = new SyncRestarts();
  restarts.request(false);
  restarts.restarting('SYNCING');
  restarts.finished();
  t.equal(restarts.request(false), 'start');
});

t.test(
  "a restarted loop resumes after the latest response received, never from the start's position (1075b14, cf79582)",
  async (t) => {
    t.equal(resumeToken(null, 's_saved'), 's_saved', 'the first loop: the position saved in the database');
    t.equal(
      resumeToken('s_latest', 's_saved'),
      's_latest',
      'a restart: the latest received, even before it is saved or processed',
    );
    t.equal(resumeToken(null, null), null, 'a new account: an initial sync');
  },
);

t.test("commands follow the pings' liveness rule; only pings have an age limit (7789244)", async (t) => {
  const liveInCatchUp = isLive(null, true, 9000, 5000);
  t.ok(liveInCatchUp, 'an !echo in the catch-up is answered as a ping in it is');
  t.same(judgePing(9000, 9120, liveInCatchUp, 60_000), { answer: true, delayMs: 120 });
});

t.test(
  'a ping is answered when live and no older than the maximum age on arrival (a homeserver outage: pings held back are backlog)',
  async (t) => {
    t.same(
      judgePing(1000, 1250.4, true, 60_000),
      { answer: true, delayMs: 250 },
      'the delay is rounded to the millisecond',
    );
    t.same(judgePing(1000, 61_000, true, 60_000), { answer: true, delayMs: 60_000 }, 'exactly the maximum age');
    t.same(judgePing(1000, 61_001, true, 60_000), { answer: false, delayMs: 60_001 }, 'older');
    t.same(judgePing(1000, 1250, false, 60_000), { answer: false, delayMs: 250 }, 'backlog, however fresh');
    t.same(
      judgePing(1000, 900, true, 60_000),
      { answer: true, delayMs: -100 },
      "a sender's clock ahead: still measured",
    );
  },
);

t.test(
  "a lineage is watched as one; an upgrade adds its replacement from then on and keeps the older rooms' times",
  async (t) => {
    const watched = new WatchedRooms<{ roomIds: string[] }>();
    const lineage = { roomIds: ['!old:hs', '!room:hs'] };
    watched.watch(lineage, 1000);
    t.same(watched.roomIds(), ['!old:hs', '!room:hs']);
    t.equal(watched.since('!room:hs'), 1000);
    lineage.roomIds.push('!new:hs');
    watched.watch(lineage, 5000);
    t.equal(watched.since('!room:hs'), 1000, 'the room the bot was in keeps its time');
    t.equal(watched.since('!new:hs'), 5000, 'its replacement: from the upgrade on');
    t.equal(watched.lineageOf('!new:hs'), lineage);
    t.equal(watched.lineageOf('!old:hs'), lineage, 'a tombstone in any room of the lineage reaches it');
    t.ok(watched.has('!new:hs'));
    t.notOk(watched.has('!other:hs'));
    t.equal(watched.since('!other:hs'), undefined);
  },
);

t.test(
  'the sync names the watched rooms and those awaited by ID, each once (2fafd76: an invite to a room the bot could not join)',
  async (t) => {
    t.same(syncedRooms(['!a:hs', '!b:hs'], ['!c:hs', '!a:hs']), ['!a:hs', '!b:hs', '!c:hs']);
    t.same(syncedRooms([], ['!c:hs']), ['!c:hs']);
  },
);

t.test('a room joined while the first sync was set up restarts it (2b66251)', async (t) => {
  t.ok(filterOutdated(['!a:hs'], ['!a:hs', '!b:hs']));
  t.ok(filterOutdated(['!a:hs', '!c:hs'], ['!a:hs']), 'an awaited room joined under another ID');
  t.notOk(filterOutdated(['!a:hs', '!b:hs'], ['!a:hs', '!b:hs']));
});

t.test("a room's ID and lineage are stored only when they are news (fa66fb1)", async (t) => {
  const now = { id: '!room:hs', roomIds: ['!old:hs', '!room:hs'] };
  t.ok(needsStoring(undefined, now), 'unknown');
  t.notOk(needsStoring({ id: '!room:hs', roomIds: ['!old:hs', '!room:hs'] }, now), 'read from the database at start');
  t.ok(needsStoring({ id: '!room:hs', roomIds: ['!room:hs'] }, now), 'a predecessor learnt');
  t.ok(needsStoring({ id: '!other:hs', roomIds: ['!old:hs', '!room:hs'] }, now), 'an alias now names another room');
});

t.test('sync health: a sync in step resets the failures, a failed one counts, others leave it', async (t) => {
  const failing = { lastSyncAtMs: 1000, consecutiveSyncFailures: 2 };
  t.same(syncHealthAfter(failing, 'SYNCING', 7000), { lastSyncAtMs: 7000, consecutiveSyncFailures: 0 });
  t.same(syncHealthAfter(failing, 'PREPARED', 7000), { lastSyncAtMs: 7000, consecutiveSyncFailures: 0 });
  t.same(syncHealthAfter(failing, 'ERROR', 7000), { lastSyncAtMs: 1000, consecutiveSyncFailures: 3 });
  t.same(syncHealthAfter(failing, 'RECONNECTING', 7000), { lastSyncAtMs: 1000, consecutiveSyncFailures: 3 });
  for (const state of ['STOPPED', 'CATCHUP'] as const) t.same(syncHealthAfter(failing, state, 7000), failing, state);
});
