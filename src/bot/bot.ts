// The echo bot: answers pings with echo-compatible pongs, reads every
// trusted bot's pongs, and hands each measurement to the sample writer.
import {
  ClientEvent,
  RoomEvent,
  RoomMemberEvent,
  SyncState,
  type MatrixClient,
  type MatrixEvent,
  type Room,
  type RoomMember,
} from 'matrix-js-sdk';
import type { BotConfig, PingConfig, RoomConfig } from '../config.ts';
import type { Db } from '../db/database.ts';
import type { Logger } from '../log.ts';
import { parseAdminCommand, type AdminCommand } from '../operator/commands.ts';
import type { OperatorControls } from '../operator/controls.ts';
import { runRoomCommand } from '../operator/room-commands.ts';
import type { SampleWriter } from '../samples/writer.ts';
import { storeKnownRoom, type RoomRegistry } from '../stats/rooms.ts';
import {
  endsWaitForNewLoop,
  filterOutdated,
  isLive,
  judgePing,
  needsStoring,
  syncedRooms,
  syncHealthAfter,
  SyncRestarts,
  WatchedRooms,
  type SyncHealth,
} from '../matrix/bot-rules.ts';
import { createAccountClient, type SyncArrival } from '../matrix/client.ts';
import { serverOfUserId } from '../matrix-ids.ts';
import {
  answerTransactionId,
  buildPong,
  commandBody,
  isEdit,
  isPongBody,
  parseCommand,
  pingsInSync,
  readPongEvent,
  threadAnswer,
  threadRootOf,
  type SyncedPing,
} from '../matrix/pong.ts';
import { stopSyncing } from '../matrix/sdk-internals.ts';
import { retryTransient } from '../matrix/retry.ts';
import { createMessageSender, requestsWritten } from '../matrix/send.ts';
import { SenderRateLimiter } from '../matrix/rate-limit.ts';
import { RoomFollower, type FollowedLineage, type NotFollowedRoom } from '../matrix/follow.ts';
import { startRoomSync, trimIfLong } from '../matrix/sync.ts';

export interface BotCounts extends SyncHealth {
  pingsAnswered: number;
  pingsSkippedBacklog: number;
  pingsRateLimited: number;
  pongsRead: number;
  pongsRejected: number;
  sendFailures: number;
}

export interface Bot {
  readonly client: MatrixClient;
  readonly counts: Readonly<BotCounts>;
  /** Room IDs the bot is watching (configured rooms and their replacements). */
  watchedRooms(): string[];
  /** Configured rooms, and upgrades of them, that the bot is not in: it keeps trying. */
  notFollowed(): NotFollowedRoom[];
  stop(): Promise<void>;
}

/** The bot's own time on an answered ping, in milliseconds from the arrival of the sync response that brought it. */
export interface PongTiming {
  /** Until the pong's send request was made (handed to node:http). */
  readonly requestedMs: number;
  /** Until node:http reported the request's last byte written to its connection. */
  readonly writtenMs: number;
}

/** Told of each answered ping and read pong (metrics). */
export interface BotObserver {
  pingAnswered(pingServer: string): void;
  pongRead(pingServer: string): void;
  /** A pong's first request was written (a retry's only when the first died before): the bot's overhead. */
  pongWritten(timing: PongTiming): void;
}

export interface BotOptions {
  readonly config: BotConfig;
  readonly pings: PingConfig;
  readonly rooms: readonly RoomConfig[];
  readonly registry: RoomRegistry;
  readonly db: Db;
  readonly writer: SampleWriter;
  readonly log: Logger;
  readonly observer?: BotObserver | undefined;
  /** `!pingboard …` from members with at least `adminPowerLevel`; absent: such messages are ignored. */
  readonly operator?: { readonly controls: OperatorControls; readonly adminPowerLevel: number } | undefined;
  /**
   * Taking over from another instance (which may have died between a ping's
   * arrival and its pong): the pings of the first catch-up are answered, up
   * to PINGBOARD_MAX_PING_AGE_SECONDS, not left as backlog. Those the other
   * instance did answer are answered with the same transaction IDs, which
   * the homeserver deduplicates.
   */
  readonly takeover?: boolean;
  /** This instance (leadership.ts), named in the User-Agent of the bot's sends. */
  readonly instanceId?: string;
}

const SEND_ATTEMPTS = 5;
const STOP_WAIT_MS = 10_000;

/** A member's power level from the room's m.room.power_levels (users, then users_default, then 0). */
function powerLevel(room: Room, userId: string): number {
  const content = room.currentState.getStateEvents('m.room.power_levels', '')?.getContent() as
    | { users?: Record<string, unknown>; users_default?: unknown }
    | undefined;
  const level = content?.users?.[userId] ?? content?.users_default ?? 0;
  return typeof level === 'number' && Number.isFinite(level) ? level : 0;
}

export async function startBot(options: BotOptions): Promise<Bot> {
  const { config, writer } = options;
  const log = options.log.child({ component: 'bot' });
  const { client, clock, syncPositionSaved } = await createAccountClient(config, options.db, log, () =>
    writer.flushed(),
  );
  const counts: BotCounts = {
    pingsAnswered: 0,
    pingsSkippedBacklog: 0,
    pingsRateLimited: 0,
    pongsRead: 0,
    pongsRejected: 0,
    sendFailures: 0,
    lastSyncAtMs: 0,
    consecutiveSyncFailures: 0,
  };
  const ownServer = serverOfUserId(config.userId)!;
  const limiter = new SenderRateLimiter(config.answersPerMinute);
  const trusted = new Set(options.pings.trustedResponders);
  const watched = new WatchedRooms<FollowedLineage>();
  /** Pongs being sent: a stop lets them finish, so no measured ping goes unanswered. */
  const answersInFlight = new Set<Promise<void>>();

  /** What the bot learns of its rooms, on its way to the database. */
  let roomsStored = Promise.resolve();

  /** Watches `lineage`: the newest value of it stands for each of its rooms. */
  const register = (lineage: FollowedLineage) => {
    const { room } = lineage;
    watched.watch(lineage, Date.now());
    const known = options.registry.find(room.id);
    options.registry.track({
      id: lineage.configuredId,
      reference: room.id,
      roomIds: [...lineage.roomIds],
      disclaimer: room.disclaimer,
    });
    // With what the registry knew merged in (a backfill may have learnt older rooms).
    const tracked = options.registry.find(room.id)!;
    log.info({ room: room.id, roomId: lineage.currentId, lineage: lineage.roomIds }, 'watching room');
    // What the registry already knew (from the database, at most starts) needs no write. Otherwise in
    // the background, in order (a later lineage must land last): watching does not wait for the
    // database; a service without a bot relearns it when it is stored.
    if (!needsStoring(known, tracked)) return;
    roomsStored = roomsStored
      .then(() => storeKnownRoom(options.db, tracked))
      .catch((err: unknown) => log.warn({ err, room: room.id }, "could not store the room's ID and lineage"));
  };

  let syncStarted = false;
  const follower = new RoomFollower({
    client,
    ownServer,
    log,
    joined: async (lineage) => {
      register(lineage);
      if (syncStarted) await restartSync();
    },
    awaitedChanged: async () => {
      if (syncStarted) await restartSync();
    },
  });
  // Join (and follow upgrades of) every configured room before syncing, so the filter names them all.
  await follower.start(options.rooms);

  const restarts = new SyncRestarts();
  /** Whether a message (a ping, a command) sent at `ts` in `roomId` and synced now is live (bot-rules.ts). */
  let takingOver = options.takeover === true;
  const isLiveMessage = (roomId: string, ts: number) =>
    (takingOver && client.getSyncState() === null) ||
    isLive(client.getSyncState(), restarts.catchUpLive, ts, watched.since(roomId));

  /**
   * Sends a message: not through the SDK's queue, which sends one event per
   * room at a time and keeps local echoes, both of which would delay pongs
   * behind each other. The transaction ID makes every retry idempotent.
   */
  let stopped = false;
  const messages = createMessageSender({
    homeserverUrl: config.homeserverUrl,
    accessToken: () => client.getAccessToken()!,
    onRateLimited: (waitMs) => log.info({ waitMs }, 'rate limited by the homeserver: waiting as advised'),
    ...(options.instanceId === undefined ? {} : { userAgent: `pingboard (instance ${options.instanceId})` }),
  });
  function send(
    roomId: string,
    content: object,
    txnId: string,
    onWritten?: (mono: number) => void,
  ): Promise<string | undefined> {
    return retryTransient(() => messages.send(roomId, content, txnId, onWritten), {
      attempts: SEND_ATTEMPTS,
      baseDelayMs: 250,
      stopped: () => stopped,
    });
  }

  async function answerPing(
    { roomId, eventId, sender, pingServer, ts, text, threadRoot, ageMs }: SyncedPing,
    arrival: SyncArrival,
  ): Promise<void> {
    const { ms: arrivedMs, mono: arrivedMono } = arrival;
    const { answer, delayMs } = judgePing(ts, arrivedMs, isLiveMessage(roomId, ts), config.maxPingAgeSeconds * 1000);
    if (!answer) {
      counts.pingsSkippedBacklog++;
      log.debug({ ping: eventId, sender, delayMs, syncState: client.getSyncState() }, 'backlog ping not answered');
      return;
    }
    if (!limiter.allow(sender, arrivedMs)) {
      counts.pingsRateLimited++;
      log.info({ ping: eventId, sender }, 'sender over the answer limit: ping ignored');
      return;
    }
    const pong = buildPong({ roomId, pingEventId: eventId, pinger: sender, text, delayMs, threadRoot });
    // The measurement stands whether or not the pong gets through: record it first. But only
    // what the aggregator counts: echo's pong to words with a newline in their first 20
    // characters is not one to its pattern, nor to ours (readPongEvent), so neither is this one.
    const counted = isPongBody(pong.body);
    if (counted) {
      writer.record({
        roomId,
        pingEventId: eventId,
        pingServer,
        pinger: sender,
        responder: config.userId,
        responderServer: ownServer,
        delayMs,
        pingTs: new Date(ts),
        measuredAt: new Date(arrivedMs),
        source: 'echo',
        rttMs: null,
        pingAgeMs: ageMs,
      });
    }
    // A request made again (after a 5xx, say) is the homeserver's doing, not
    // the bot's: only the first write counts (a retry's, with its backoff,
    // only when the first request died before it was written).
    let written = false;
    // Set before any write is reported: node:http writes a request on a later tick.
    let requestedMs = 0;
    const sending = send(roomId, pong, answerTransactionId('pong', eventId), (mono) => {
      if (written) return;
      written = true;
      options.observer?.pongWritten({ requestedMs, writtenMs: mono - arrivedMono });
    });
    requestedMs = performance.now() - arrivedMono;
    let pongId: string | undefined;
    try {
      pongId = await sending;
      counts.pingsAnswered++;
      options.observer?.pingAnswered(pingServer);
    } catch (err) {
      counts.sendFailures++;
      log.warn({ err, ping: eventId }, 'sending the pong failed');
    }
    if (counted && pongId) await learnPongTime(roomId, pongId);
  }

  /**
   * The aggregator keeps a pong's origin_server_ts, which the homeserver
   * stamps and the send's answer does not give. Read back, the pong is a
   * pong sample of the bot's, which lends that time to the bot's own sample
   * of the ping (recordSamples), as a backfill's reading of it would. Read
   * with a request rather than from sync: the bot's sync leaves its own
   * messages out, and taking them in would move its sync position on while
   * a restarted loop (a room upgrade) still has to catch up from it.
   */
  async function learnPongTime(roomId: string, pongId: string): Promise<void> {
    try {
      const event = await retryTransient(() => client.fetchRoomEvent(roomId, pongId), {
        attempts: SEND_ATTEMPTS,
        baseDelayMs: 250,
        stopped: () => stopped,
      });
      if (typeof event.origin_server_ts !== 'number' || typeof event.content !== 'object' || event.content === null)
        return;
      const reading = readPongEvent(
        { roomId, sender: config.userId, ts: event.origin_server_ts, content: event.content },
        new Set(),
      );
      if (reading.kind === 'sample') writer.record(reading.sample);
    } catch (err) {
      // Stopping aborts the SDK's requests: no news then.
      log[stopped ? 'debug' : 'warn'](
        { err, pong: pongId },
        'could not read the pong back: its sample keeps the time of its measurement',
      );
    }
  }

  function readPong(event: MatrixEvent, room: Room, content: Record<string, unknown>): void {
    const sender = event.getSender()!;
    const reading = readPongEvent({ roomId: room.roomId, sender, ts: event.getTs(), content }, trusted);
    if (reading.kind === 'untrusted') return;
    if (reading.kind === 'rejected') {
      // Only notices that claim to be pongs are worth a log line.
      if (reading.claimsPong) {
        counts.pongsRejected++;
        log.warn({ event: event.getId(), sender, reason: reading.reason }, 'malformed pong ignored');
      }
      return;
    }
    counts.pongsRead++;
    options.observer?.pongRead(reading.sample.pingServer);
    writer.record(reading.sample);
  }

  async function onMessage(event: MatrixEvent, room: Room): Promise<void> {
    const sender = event.getSender();
    if (!sender || sender === config.userId || !serverOfUserId(sender) || !event.getId()) return;
    const content = event.getContent() as Record<string, unknown>;
    if (typeof content !== 'object' || content === null) return;
    if (content['msgtype'] === 'm.notice') return readPong(event, room, content);
    const body = commandBody(content);
    if (content['msgtype'] !== 'm.text' || body === undefined || isEdit(content)) return;
    const adminCommand = options.operator ? parseAdminCommand(body) : undefined;
    if (adminCommand) return answerAdminCommand(event, room, sender, adminCommand, content);
    const command = parseCommand(body, options.pings.prefix);
    // Pings were answered from the sync response, before the SDK processed it (below).
    if (!command || command.kind === 'ping') return;
    if (isLiveMessage(room.roomId, event.getTs()) && limiter.allow(sender, Date.now())) {
      await send(room.roomId, notice(command.text, event, content), answerTransactionId('echo', event.getId()!));
    }
  }

  /** A plain notice answering `event`: in its thread when it was sent in one, as the echo bot answers. */
  function notice(body: string, event: MatrixEvent, content: Record<string, unknown>): Record<string, unknown> {
    const root = threadRootOf(content);
    return { msgtype: 'm.notice', body, ...(root ? { 'm.relates_to': threadAnswer(root, event.getId()!) } : {}) };
  }

  async function answerAdminCommand(
    event: MatrixEvent,
    room: Room,
    sender: string,
    command: AdminCommand,
    content: Record<string, unknown>,
  ): Promise<void> {
    const tracked = options.registry.find(room.roomId);
    // Commands in a backlog are old: running them after a restart would surprise whoever sent them.
    if (
      !tracked ||
      !options.operator ||
      !isLiveMessage(room.roomId, event.getTs()) ||
      !limiter.allow(sender, Date.now())
    )
      return;
    const reply = await runRoomCommand(command, {
      controls: options.operator.controls,
      room: tracked,
      sender,
      senderPowerLevel: powerLevel(room, sender),
      requiredPowerLevel: options.operator.adminPowerLevel,
    });
    log.info({ room: room.roomId, sender, command: command.kind }, 'room command');
    await send(room.roomId, notice(reply, event, content), answerTransactionId('admin', event.getId()!));
  }

  async function onTombstone(event: MatrixEvent, room: Room): Promise<void> {
    const lineage = watched.lineageOf(room.roomId);
    if (lineage) follower.tombstone(lineage, event);
  }

  // The SDK processes a whole sync response before its events reach the
  // handlers below, and the pong's send then waits behind the rest of that
  // processing: together more than the bot's own work on a ping. Pings are
  // answered from the response itself, as soon as it has arrived.
  clock.onSyncResponse = async (sync, arrival) => {
    const pings = pingsInSync(sync, (roomId) => watched.has(roomId), config.userId, options.pings.prefix);
    for (const ping of pings) {
      const answering = answerPing(ping, arrival).catch((err: unknown) =>
        log.warn({ err, ping: ping.eventId }, 'answering a ping failed'),
      );
      answersInFlight.add(answering);
      void answering.finally(() => answersInFlight.delete(answering));
    }
    if (pings.length > 0) await requestsWritten();
  };

  client.on(RoomEvent.Timeline, (event, room, toStartOfTimeline, removed) => {
    if (toStartOfTimeline || removed || !room || !watched.has(room.roomId)) return;
    const handler =
      event.getType() === 'm.room.tombstone' && event.getStateKey() === ''
        ? onTombstone
        : event.getType() === 'm.room.message'
          ? onMessage
          : undefined;
    handler?.(event, room).catch((err: unknown) => log.warn({ err, event: event.getId() }, 'event handling failed'));
    trimIfLong(room);
  });

  client.on(RoomMemberEvent.Membership, (_event: MatrixEvent, member: RoomMember) => {
    // Invites to rooms the bot waits for are accepted; any other invite is left alone.
    if (member.userId === config.userId && member.membership === 'invite') follower.invited(member.roomId);
  });

  client.on(ClientEvent.Sync, (state, previous) => {
    // The first loop has a state: from now on the usual rules decide.
    takingOver = false;
    Object.assign(counts, syncHealthAfter(counts, state, Date.now()));
    if (state !== previous && state !== SyncState.Syncing) log.info({ state, previous }, 'sync state');
  });

  const roomsToSync = () => syncedRooms(watched.roomIds(), follower.awaitedRoomIds());
  const startSync = () => startRoomSync(client, config.userId, roomsToSync());

  /**
   * A new room in the filter needs a new sync loop, which catches up from the
   * latest position received (SyncRestarts: one at a time, one more when
   * asked meanwhile). A room joined while the bot stops (a retry that was
   * under way) does not start the sync again.
   */
  let restarting: Promise<void> | undefined;
  function restartSync(): Promise<void> {
    const step = restarts.request(stopped);
    if (step === 'none') return Promise.resolve();
    if (step === 'queued') return restarting!;
    restarting = (async () => {
      do {
        restarts.restarting(client.getSyncState());
        const settled = loopSettled();
        stopSyncing(client);
        await startSync();
        await settled;
      } while (restarts.settled(stopped));
    })()
      .catch((err: unknown) => {
        // A stop aborts the SDK's requests, the new loop's filter among them: no news then. Callers
        // (a join, a retry's news, the first sync's check) do not wait on this, so it must not reject.
        log[stopped ? 'debug' : 'error']({ err }, 'restarting the sync failed');
      })
      .finally(() => {
        restarts.finished();
        restarting = undefined;
      });
    return restarting;
  }

  /** Resolves once the new loop reports a state, or the bot stops (endsWaitForNewLoop). */
  function loopSettled(): Promise<void> {
    return new Promise((resolve) => {
      const onSync = (state: SyncState) => {
        if (!endsWaitForNewLoop(state, stopped)) return;
        client.off(ClientEvent.Sync, onSync);
        resolve();
      };
      client.on(ClientEvent.Sync, onSync);
    });
  }

  const firstRooms = roomsToSync();
  await startSync();
  syncStarted = true;
  // A retry that joined a room while the first sync was being set up: its filter lacks the room.
  if (filterOutdated(firstRooms, roomsToSync())) void restartSync();

  return {
    client,
    counts,
    watchedRooms: () => watched.roomIds(),
    notFollowed: () => follower.notFollowed(),
    stop: async () => {
      stopped = true;
      const followingStopped = follower.stop();
      stopSyncing(client);
      // Bounded: a send stuck behind a long rate limit (or a join behind a dead connection) is not worth holding the shutdown for.
      await Promise.race([
        Promise.allSettled([...answersInFlight, followingStopped, roomsStored]),
        new Promise((resolve) => setTimeout(resolve, STOP_WAIT_MS).unref()),
      ]);
      messages.close();
      await syncPositionSaved();
    },
  };
}
