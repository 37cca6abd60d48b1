// `unsigned.age` (issue 18): recorded where a ping carries it, never relied
// on. The test homeserver serves it as Synapse 1.67 does: for events created
// on the reader's server, and never for federated ones. The bot answers a
// ping of each kind; the sample of each keeps what its ping carried, and the
// raw JSON of the server's samples shows it. On both database engines (the
// column comes with a migration).
import t from 'tap';
import { startTestHomeserver } from './homeserver/index.ts';
import { forEachEngine } from './helpers/database.ts';
import { startBotService, TEST_BOT, TEST_BOT_PASSWORD } from './helpers/service.ts';
import { until } from './helpers/until.ts';

t.setTimeout(180_000);

forEachEngine(t, (t, database) => {
  t.test(
    "a ping's unsigned.age is kept with the bot's sample where its sync carried one, and null where not",
    async (t) => {
      const hs = await startTestHomeserver({
        servers: { 'bot.example': { delayMs: 0 }, 'far.example': { delayMs: 40, clockOffsetMs: 3000 } },
      });
      t.teardown(() => hs.stop());
      hs.registerUser(TEST_BOT, { password: TEST_BOT_PASSWORD });
      hs.registerUser('@alice:bot.example');
      hs.registerUser('@bob:far.example');
      const watcher = hs.registerUser('@watcher:bot.example');
      const roomId = hs.createRoom('@alice:bot.example', { room_alias_name: 'ping', preset: 'public_chat' });
      hs.join('@bob:far.example', roomId, ['bot.example']);
      hs.join(watcher.userId, roomId);
      const service = await startBotService(t, hs, database, '#ping:bot.example');

      const local = hs.sendMessage('@alice:bot.example', roomId, '!ping');
      const federated = hs.sendMessage('@bob:far.example', roomId, '!ping');
      const stored = () =>
        database.db
          .selectFrom('samples')
          .select(['ping_event_id', 'ping_age_ms', 'source'])
          .where('ping_event_id', 'in', [local, federated])
          .execute();
      const rows = await until(
        'both pings answered and stored',
        async () => {
          const found = await stored();
          return found.length === 2 ? found : undefined;
        },
        60_000,
      );

      // What the homeserver served, as a client of the bot's server reads the room.
      const sync = (await (
        await fetch(`${hs.url}/_matrix/client/v3/sync`, { headers: { authorization: `Bearer ${watcher.accessToken}` } })
      ).json()) as {
        rooms: { join: Record<string, { timeline: { events: { event_id: string; unsigned?: { age?: unknown } }[] } }> };
      };
      const served = new Map(sync.rooms.join[roomId]!.timeline.events.map((e) => [e.event_id, e.unsigned ?? {}]));
      t.equal(typeof served.get(local)?.age, 'number', 'an event created on the reader’s server carries its age');
      t.notOk('age' in served.get(federated)!, 'a federated one carries none (Synapse 1.67)');

      const byPing = new Map(rows.map((r) => [r.ping_event_id, r]));
      const localAge = byPing.get(local)!.ping_age_ms;
      t.equal(byPing.get(local)!.source, 'echo');
      t.ok(
        localAge !== null && localAge >= 0 && localAge < 60_000,
        `the local ping's sample keeps its age (${localAge} ms)`,
      );
      t.equal(byPing.get(federated)!.ping_age_ms, null, "the federated ping's sample has none");

      const latest = async (server: string) => {
        const response = await service.app.inject(`/api/v1/servers/${server}?samples=5`);
        t.equal(response.statusCode, 200);
        return response.json().latest_samples as { ping_event_id: string; ping_age_ms: number | null }[];
      };
      t.match(await latest('bot.example'), [{ ping_event_id: local, ping_age_ms: localAge }], 'the raw JSON shows it');
      t.match(await latest('far.example'), [{ ping_event_id: federated, ping_age_ms: null }], 'and shows null');
    },
  );
});
