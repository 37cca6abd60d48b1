// One probe: an account on some homeserver, in the ping room, that sends a
// ping when asked and measures the round trip of every pong to it on its own
// monotonic clock, from the moment its send request had gone out to the
// pong's arrival in its sync, so the figure holds no clock difference between
// servers.
import {
  ClientEvent,
  Method,
  RoomEvent,
  SyncState,
  type MatrixClient,
  type MatrixEvent,
  type Room,
} from 'matrix-js-sdk';
import type { ProbeAccount } from '../config.ts';
import type { Db } from '../db/database.ts';
import type { ProbeOutcome } from '../db/schema.ts';
import type { Logger } from '../log.ts';
import { createAccountClient, type SyncClock } from '../matrix/client.ts';
import { serverOfUserId } from '../matrix-ids.ts';
import { readPongEvent } from '../matrix/pong.ts';
import { followRoom } from '../matrix/rooms.ts';
import { startRoomSync, trimIfLong } from '../matrix/sync.ts';
import { encodeUri, stopSyncing, watchSent } from '../matrix/sdk-internals.ts';
import type { Sample } from '../samples/sample.ts';
import type { SampleWriter } from '../samples/writer.ts';
import { nextSequence, recordProbePing, type ProbePing } from '../stats/probe-pings.ts';
import type { PingLedger, ProbeName } from './sightings.ts';

export interface ProbePong {
  /** The pong's event ID. */
  readonly eventId: string;
  readonly responder: string;
  readonly responderServer: string;
  /** The one-way delay the responder reported. */
  readonly delayMs: number;
  /** From the send request having gone out to the pong's arrival, on this process's monotonic clock. */
  readonly rttMs: number;
}

export interface ProbeResult {
  readonly probeId: string;
  readonly userId: string;
  readonly pingServer: string;
  readonly seq: number;
  readonly sentAt: Date;
  readonly roomId: string | null;
  readonly pingEventId: string | null;
  readonly outcome: ProbeOutcome;
  /** In arrival order. */
  readonly pongs: readonly ProbePong[];
  /** Why the send failed. */
  readonly error: string | null;
}

/** How a probe's pings have gone lately, for the health check. */
export interface ProbeState {
  readonly id: string;
  /** The latest finished ping's outcome; null before the first. */
  readonly lastOutcome: ProbeOutcome | null;
  /** Wall-clock ms when the latest answered ping was sent; undefined before the first. */
  readonly lastAnsweredAtMs: number | undefined;
  /** Pings since the latest answered one that got no pong (lost, or not sent). */
  readonly consecutiveLosses: number;
}

/** Told of every finished ping (metrics). */
export interface ProbeObserver {
  probeFinished(result: ProbeResult): void;
}

export interface ProbeOptions {
  readonly account: ProbeAccount;
  readonly pingPrefix: string;
  readonly timeoutMs: number;
  /** Responders expected to answer: once all have, the probe stops waiting. Empty: it waits for the timeout. */
  readonly responders: readonly string[];
  /** Pongs of other senders are ignored; empty: every well-formed pong counts. */
  readonly trustedResponders: readonly string[];
  readonly db: Db;
  readonly writer: SampleWriter;
  readonly log: Logger;
  readonly observer?: ProbeObserver | undefined;
  /** How long connecting (login, join, first sync) may take; default: the ping timeout, and at least 30 s. */
  readonly connectTimeoutMs?: number;
  /** Shared by the probes of the process, which measure delivery between their servers through it. */
  readonly ledger?: PingLedger | undefined;
}

interface Connection {
  readonly client: MatrixClient;
  readonly clock: SyncClock;
  readonly roomId: string;
  syncPositionSaved(): Promise<void>;
}

interface PendingPing {
  readonly eventId: string;
  readonly sendMono: number;
  readonly pongs: Map<string, ProbePong>;
  /** Resolves the wait once every expected responder has answered. */
  readonly answered: () => void;
}

/** A pong to one of this probe's pings, as it arrived. */
interface ArrivedPong {
  readonly eventId: string;
  readonly sample: Sample;
  readonly arrivedMono: number;
}

/** Outcomes that could not be stored are kept for the next ping, up to this many. */
const MAX_UNSAVED = 10_000;

export class Probe {
  readonly id: string;
  readonly userId: string;
  readonly pingServer: string;
  readonly #name: ProbeName;
  readonly #options: ProbeOptions;
  readonly #log: Logger;
  readonly #expected: ReadonlySet<string>;
  readonly #trusted: ReadonlySet<string>;
  #connection: Connection | undefined;
  #seq: number | undefined;
  #running: Promise<ProbeResult> | undefined;
  #stopped = false;
  #stopWaits = new Set<() => void>();
  readonly #pending = new Map<string, PendingPing>();
  /** Pongs that arrived while a send was in flight, before its event ID was known. */
  #early: ArrivedPong[] = [];
  #sending = false;
  #unsaved: ProbePing[] = [];
  #state: ProbeState;

  constructor(options: ProbeOptions) {
    this.#options = options;
    this.id = options.account.id;
    this.userId = options.account.userId;
    this.pingServer = serverOfUserId(options.account.userId)!;
    this.#name = { probeId: this.id, userId: this.userId, server: this.pingServer };
    this.#log = options.log.child({ component: 'probe', probe: this.id });
    this.#expected = new Set(options.responders);
    this.#trusted = new Set(options.trustedResponders);
    this.#state = { id: this.id, lastOutcome: null, lastAnsweredAtMs: undefined, consecutiveLosses: 0 };
  }

  get state(): ProbeState {
    return this.#state;
  }

  /**
   * Sends one ping and waits for its pongs; undefined when the previous ping
   * is still in flight (a tick never overlaps the one before).
   */
  run(): Promise<ProbeResult> | undefined {
    if (this.#running || this.#stopped) return undefined;
    this.#running = this.#ping().finally(() => {
      this.#running = undefined;
    });
    return this.#running;
  }

  /** Logs in, joins and syncs ahead of the first ping; failures are retried at the next ping. */
  async connect(): Promise<void> {
    await this.#connect();
  }

  async stop(): Promise<void> {
    this.#stopped = true;
    for (const stopWait of this.#stopWaits) stopWait();
    await this.#running?.catch(() => undefined);
    const connection = this.#connection;
    this.#connection = undefined;
    if (connection) stopSyncing(connection.client);
    await connection?.syncPositionSaved();
    await this.#options.ledger?.flush();
  }

  #connecting: Promise<Connection> | undefined;

  #connect(): Promise<Connection> {
    if (this.#connection) return Promise.resolve(this.#connection);
    this.#connecting ??= this.#openConnection().finally(() => {
      this.#connecting = undefined;
    });
    return this.#connecting;
  }

  async #openConnection(): Promise<Connection> {
    const { account, db } = this.#options;
    const { client, clock, syncPositionSaved } = await createAccountClient(account, db, this.#log);
    try {
      const { lineage, stranded } = await followRoom(client, account.room, serverOfUserId(account.userId)!, this.#log);
      // A probe pings the newest room or none: the next tick tries again.
      if (stranded) throw stranded.error;
      client.on(RoomEvent.Timeline, (event, room, toStartOfTimeline, removed) => {
        if (toStartOfTimeline || removed || !room || !lineage.roomIds.includes(room.roomId)) return;
        if (event.getType() === 'm.room.tombstone' && event.getStateKey() === '' && room.roomId === lineage.currentId) {
          this.#roomReplaced(client, room.roomId);
          return;
        }
        this.#onEvent(event, room, clock);
        trimIfLong(room);
      });
      await startRoomSync(client, account.userId, lineage.roomIds);
      await this.#waitForSync(client);
      if (this.#stopped) throw new Error('probe stopped');
      this.#connection = { client, clock, roomId: lineage.currentId, syncPositionSaved };
      this.#log.info({ userId: account.userId, roomId: lineage.currentId }, 'probe connected');
      return this.#connection;
    } catch (err) {
      stopSyncing(client);
      throw err;
    }
  }

  /**
   * The room was upgraded: the old one takes no more pings (Synapse raises
   * its send level), so the connection goes and the next ping connects
   * again, following the room to its replacement as at the start.
   */
  #roomReplaced(client: MatrixClient, roomId: string): void {
    const connection = this.#connection;
    if (connection?.client !== client) return;
    this.#connection = undefined;
    this.#log.info({ roomId }, 'room upgraded: the probe follows it at its next ping');
    stopSyncing(client);
    void connection.syncPositionSaved();
  }

  #waitForSync(client: MatrixClient): Promise<void> {
    const ready = () => [SyncState.Prepared, SyncState.Syncing].includes(client.getSyncState()!);
    if (ready()) return Promise.resolve();
    const timeoutMs = this.#options.connectTimeoutMs ?? Math.max(this.#options.timeoutMs, 30_000);
    return new Promise((resolve, reject) => {
      const done = (err?: Error) => {
        clearTimeout(timer);
        client.off(ClientEvent.Sync, onSync);
        this.#stopWaits.delete(onStop);
        if (err) reject(err);
        else resolve();
      };
      const onSync = () => {
        if (ready()) done();
      };
      const onStop = () => done(new Error('probe stopped'));
      const timer = setTimeout(() => done(new Error(`no sync with the homeserver within ${timeoutMs} ms`)), timeoutMs);
      client.on(ClientEvent.Sync, onSync);
      this.#stopWaits.add(onStop);
    });
  }

  #onEvent(event: MatrixEvent, room: Room, clock: SyncClock): void {
    const sender = event.getSender();
    if (event.getType() !== 'm.room.message' || !sender || sender === this.userId) return;
    const arrivedMono = clock.arrivedAtMono;
    this.#options.ledger?.seen(this.#name, {
      eventId: event.getId()!,
      sender,
      originTs: event.getTs(),
      arrivedMono,
      arrivedMs: clock.arrivedAtMs,
    });
    const content = event.getContent() as Record<string, unknown>;
    if (content['msgtype'] !== 'm.notice') return;
    const reading = readPongEvent({ roomId: room.roomId, sender, ts: event.getTs(), content }, this.#trusted);
    if (reading.kind !== 'sample') return;
    const pong = { eventId: event.getId()!, sample: reading.sample, arrivedMono };
    const pending = this.#pending.get(pong.sample.pingEventId);
    if (pending) this.#accept(pending, pong);
    // The pong may beat the answer to our send request.
    else if (this.#sending) this.#early.push(pong);
  }

  #accept(pending: PendingPing, { eventId, sample, arrivedMono }: ArrivedPong): void {
    const { responder, responderServer, delayMs } = sample;
    if (pending.pongs.has(responder)) return;
    const measured = { eventId, responder, responderServer, delayMs, rttMs: arrivedMono - pending.sendMono };
    pending.pongs.set(responder, measured);
    // The pong's sample, as the bot reads any pong; the probe knows who pinged.
    this.#options.writer.record({
      ...sample,
      pingServer: this.pingServer,
      pinger: this.userId,
      source: 'probe',
      rttMs: measured.rttMs,
    });
    if (this.#expected.size > 0 && [...this.#expected].every((r) => pending.pongs.has(r))) pending.answered();
  }

  async #ping(): Promise<ProbeResult> {
    const { db, timeoutMs } = this.#options;
    this.#seq ??= await nextSequence(db, this.id).catch(() => 1);
    const seq = this.#seq++;
    const sentAt = new Date();
    const base = { probeId: this.id, userId: this.userId, pingServer: this.pingServer, seq, sentAt };
    let connection: Connection;
    let eventId: string;
    let sendMono: number;
    let flight: ReturnType<PingLedger['sending']> | undefined;
    try {
      connection = await this.#connect();
      const state = connection.client.getSyncState();
      // After an outage the SDK waits seconds before it syncs again: a pong must not wait for that.
      if (state === SyncState.Error || state === SyncState.Reconnecting) connection.client.retryImmediately();
      const txnId = `pingboard-probe-${this.id}-${sentAt.getTime()}-${seq}`;
      const path = encodeUri('/rooms/$roomId/send/m.room.message/$txnId', {
        $roomId: connection.roomId,
        $txnId: txnId,
      });
      const body = `${this.#options.pingPrefix} ${this.id} #${seq}`;
      this.#sending = true;
      flight = this.#options.ledger?.sending(this.#name);
      const sent = watchSent(path);
      try {
        const requested = performance.now();
        const response = await connection.client.http.authedRequest<{ event_id: string }>(Method.Put, path, undefined, {
          msgtype: 'm.text',
          body,
        });
        const answered = performance.now();
        eventId = response.event_id;
        // Only a fetch other than Node's would leave these unstamped: then the round trips hold the request's making too.
        sendMono = sent.sentMono ?? requested;
        flight?.sent({
          roomId: connection.roomId,
          eventId,
          sendMono,
          sendRttMs: (sent.answeredMono ?? answered) - sendMono,
        });
      } finally {
        sent.close();
      }
    } catch (err) {
      flight?.failed();
      this.#sending = false;
      this.#early = [];
      const error = (err as Error).message || String(err);
      this.#log.warn({ err: error, seq }, 'probe could not send its ping; it tries again at the next tick');
      return this.#finish({
        ...base,
        roomId: this.#connection?.roomId ?? null,
        pingEventId: null,
        outcome: 'send_failed',
        pongs: [],
        error,
      });
    }

    let answered!: () => void;
    const allAnswered = new Promise<void>((resolve) => (answered = resolve));
    const pending: PendingPing = { eventId, sendMono, pongs: new Map(), answered };
    this.#pending.set(eventId, pending);
    this.#sending = false;
    for (const early of this.#early.splice(0)) {
      if (early.sample.pingEventId === eventId) this.#accept(pending, early);
    }
    await this.#wait(allAnswered, sendMono + timeoutMs - performance.now());
    this.#pending.delete(eventId);
    const pongs = [...pending.pongs.values()];
    return this.#finish({
      ...base,
      roomId: connection.roomId,
      pingEventId: eventId,
      outcome: pongs.length > 0 ? 'answered' : 'lost',
      pongs,
      error: null,
    });
  }

  /** Waits for `until` or `ms`, whichever is first; stop() ends it early. */
  async #wait(until: Promise<void>, ms: number): Promise<void> {
    let timer: NodeJS.Timeout | undefined;
    let onStop: (() => void) | undefined;
    await Promise.race([
      until,
      new Promise<void>((resolve) => {
        timer = setTimeout(resolve, Math.max(0, ms));
        onStop = resolve;
        this.#stopWaits.add(onStop);
      }),
    ]);
    clearTimeout(timer);
    this.#stopWaits.delete(onStop!);
  }

  async #finish(result: ProbeResult): Promise<ProbeResult> {
    const answered = result.outcome === 'answered';
    this.#state = {
      id: this.id,
      lastOutcome: result.outcome,
      lastAnsweredAtMs: answered ? result.sentAt.getTime() : this.#state.lastAnsweredAtMs,
      consecutiveLosses: answered ? 0 : this.#state.consecutiveLosses + 1,
    };
    if (result.outcome === 'lost')
      this.#log.info({ seq: result.seq, ping: result.pingEventId }, 'probe ping lost: no pong within the timeout');
    this.#unsaved.push({
      probeId: result.probeId,
      seq: result.seq,
      sentAt: result.sentAt,
      roomId: result.roomId ?? this.#options.account.room,
      pingServer: result.pingServer,
      pingEventId: result.pingEventId,
      outcome: result.outcome,
      pongs: result.pongs.length,
      error: result.error,
    });
    await this.#saveOutcomes();
    this.#options.observer?.probeFinished(result);
    return result;
  }

  /** Stores finished pings, oldest first; while the database is away they wait for the next ping. */
  async #saveOutcomes(): Promise<void> {
    while (this.#unsaved.length > 0) {
      try {
        await recordProbePing(this.#options.db, this.#unsaved[0]!);
        this.#unsaved.shift();
      } catch (err) {
        if (this.#unsaved.length > MAX_UNSAVED) this.#unsaved.splice(0, this.#unsaved.length - MAX_UNSAVED);
        this.#log.warn(
          { err, unsaved: this.#unsaved.length },
          'could not store probe pings; they are kept for the next try',
        );
        return;
      }
    }
  }
}
