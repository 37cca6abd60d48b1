// Rooms and their lineages: the servers to join a room through, lineages
// learnt by the bot and by backfill merged without losing a room, and rooms
// found by any of their names whether configured or not.
import t from 'tap';
import { failureCode } from '../src/matrix/follow.ts';
import { serverOfRoomId, serversByMembers, viaServers } from '../src/matrix/rooms.ts';
import { loadKnownRooms, mergeLineages, RoomRegistry, storeKnownRoom } from '../src/stats/rooms.ts';
import { DEFAULT_DISCLAIMER } from '../src/config.ts';
import { forEachEngine } from './helpers/database.ts';

t.test('the server in a room ID, where room versions have one', async (t) => {
  t.equal(serverOfRoomId('!abc:example.org'), 'example.org');
  t.equal(serverOfRoomId('!abc:example.org:8448'), 'example.org:8448', 'a port stays');
  t.equal(serverOfRoomId('!Q3xe5uUdZbKfSLr4aOUbUPMVWXcZSzBbwd4c4aEbV6w'), undefined, 'room version 12: none');
  t.equal(serverOfRoomId('!abc:bad|server'), undefined);
});

t.test("servers to join through: best first, each once, never the bot's own", async (t) => {
  t.same(
    serversByMembers([
      '@a:one.org',
      '@b:two.org',
      '@c:two.org',
      '@d:three.org',
      '@e:two.org',
      '@f:three.org',
      'nonsense',
    ]),
    ['two.org', 'three.org', 'one.org'],
  );
  t.same(viaServers(['slow.example', undefined, 'slow.example', 'bot.example', 'fast.example', ''], 'bot.example'), [
    'slow.example',
    'fast.example',
  ]);
});

t.test('a failure as the health check shows it: a code, never the text', async (t) => {
  t.equal(
    failureCode({ errcode: 'M_NOT_FOUND', httpStatus: 404, message: 'Not an active room on this server' }),
    'M_NOT_FOUND',
  );
  t.equal(failureCode({ httpStatus: 502, message: 'Bad gateway' }), 'http_502');
  t.equal(failureCode(new TypeError('fetch failed')), 'no_response');
  t.equal(failureCode({ errcode: 'not a code: <script>', httpStatus: 500 }), 'http_500');
});

t.test('two copies of a lineage merge without losing a room', async (t) => {
  t.same(mergeLineages(['!a', '!b'], ['!b', '!c']), ['!a', '!b', '!c'], 'older rooms from one, newer from the other');
  t.same(
    mergeLineages(['!a', '!b', '!c'], ['!c']),
    ['!a', '!b', '!c'],
    'a bot that could not read old rooms keeps what a backfill learnt',
  );
  t.same(mergeLineages(['!b'], ['!a', '!b', '!c']), ['!a', '!b', '!c']);
  t.same(mergeLineages(['!a', '!b', '!c', '!d'], ['!b', '!c']), ['!a', '!b', '!c', '!d']);
  t.same(mergeLineages(['!x'], ['!a']), ['!a'], 'no room in common: another lineage, which replaces it');
});

t.test(
  'the registry: a configured ID takes a lineage stored under any name; other stored rooms are found too',
  async (t) => {
    const lineage = ['!first:slow.example', '!second:slow.example', '!third:slow.example'];
    const stored = [{ reference: '#ping:slow.example', id: '!third:slow.example', roomIds: lineage }];
    const configured = new RoomRegistry([{ id: '!third:slow.example', disclaimer: 'd' }], stored);
    t.same(configured.list(), [
      { id: '!third:slow.example', reference: '!third:slow.example', roomIds: lineage, disclaimer: 'd' },
    ]);

    const none = new RoomRegistry([], stored);
    t.same(none.list(), [], 'nothing configured is listed');
    for (const name of ['#ping:slow.example', '!first:slow.example', '!third:slow.example']) {
      t.same(
        none.find(name),
        {
          id: '!third:slow.example',
          reference: '#ping:slow.example',
          roomIds: lineage,
          disclaimer: DEFAULT_DISCLAIMER,
        },
        `found by ${name}`,
      );
    }
    t.equal(none.find('!elsewhere:slow.example'), undefined);

    configured.track({
      id: '!third:slow.example',
      reference: '!third:slow.example',
      roomIds: ['!third:slow.example', '!fourth:slow.example'],
      disclaimer: 'd',
    });
    t.same(
      configured.find('!fourth:slow.example')?.roomIds,
      [...lineage, '!fourth:slow.example'],
      'what the bot follows adds to what it knew',
    );
  },
);

forEachEngine(t, (t, database) => {
  t.test('a stored lineage is merged with the one stored before', async (t) => {
    await storeKnownRoom(database.db, { reference: '#ping:slow.example', id: '!b', roomIds: ['!a', '!b'] });
    await storeKnownRoom(database.db, { reference: '#ping:slow.example', id: '!b', roomIds: ['!b', '!c'] });
    t.same(await loadKnownRooms(database.db), [
      { reference: '#ping:slow.example', id: '!b', roomIds: ['!a', '!b', '!c'] },
    ]);
  });
});
