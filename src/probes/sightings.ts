// What lets probes of one process measure delivery between their servers:
// every probe tells this ledger when its ping went out, and every probe
// reports the other probes' pings it meets in its sync. Both instants come
// from the process's one monotonic clock, so their difference is the one-way
// delivery time with no clock difference in it.
import type { Db } from '../db/database.ts';
import type { Logger } from '../log.ts';
import { offsetEstimate } from '../stats/one-way.ts';
import { recordOneWaySamples, type OneWaySample } from '../stats/probe-pings.ts';

/** A probe, as the ledger names it. */
export interface ProbeName {
  readonly probeId: string;
  readonly userId: string;
  readonly server: string;
}

/** A ping as its sender's send request saw it. */
export interface SentPing {
  readonly roomId: string;
  readonly eventId: string;
  readonly sendMono: number;
  readonly sendRttMs: number;
}

/** A message of another probe, as a receiving probe's sync brought it. */
export interface Sighting {
  readonly eventId: string;
  readonly sender: string;
  /** origin_server_ts, on the sender server's clock. */
  readonly originTs: number;
  /** When the sync response's last byte was read, on the monotonic and the wall clock. */
  readonly arrivedMono: number;
  readonly arrivedMs: number;
}

interface Sent extends SentPing {
  readonly sender: ProbeName;
  readonly receivers: Set<string>;
}

interface InFlight {
  readonly sender: ProbeName;
  /** Seen before the send's answer told its event ID. */
  readonly early: { receiver: ProbeName; sighting: Sighting }[];
}

/** Samples that could not be stored are kept for the next try, up to this many. */
const MAX_UNSAVED = 10_000;
/**
 * Samples are stored this long after the first of a batch: a ping's sightings
 * arrive within moments of each other, and a write per sighting would take
 * the event loop (all of it, with PGlite) while the next sightings' syncs are
 * due, lengthening the very delays being measured.
 */
const FLUSH_DELAY_MS = 2000;

export class PingLedger {
  readonly #db: Db;
  readonly #log: Logger;
  readonly #keepMs: number;
  /** By event ID, oldest first. */
  readonly #sent = new Map<string, Sent>();
  /** By the sender's user ID. */
  readonly #inFlight = new Map<string, InFlight>();
  #unsaved: OneWaySample[] = [];
  #saving: Promise<void> = Promise.resolve();
  #flushTimer: NodeJS.Timeout | undefined;

  /** Pings are matched for `keepMs` after they went out (the probes' ping timeout). */
  constructor(db: Db, log: Logger, keepMs: number) {
    this.#db = db;
    this.#log = log.child({ component: 'one-way' });
    this.#keepMs = keepMs;
  }

  /** The sender's send request is about to go out; the answer: `sent` with what it told, or `failed`. */
  sending(sender: ProbeName): { sent(ping: SentPing): void; failed(): void } {
    const flight: InFlight = { sender, early: [] };
    this.#inFlight.set(sender.userId, flight);
    const end = () => {
      if (this.#inFlight.get(sender.userId) === flight) this.#inFlight.delete(sender.userId);
    };
    return {
      sent: (ping) => {
        end();
        this.#forget(ping.sendMono - this.#keepMs);
        this.#sent.set(ping.eventId, { ...ping, sender, receivers: new Set() });
        for (const { receiver, sighting } of flight.early) {
          if (sighting.eventId === ping.eventId) this.seen(receiver, sighting);
        }
      },
      failed: end,
    };
  }

  /** A receiving probe met a message in its sync; only other probes' pings of this process count. */
  seen(receiver: ProbeName, sighting: Sighting): void {
    if (sighting.sender === receiver.userId) return;
    const sent = this.#sent.get(sighting.eventId);
    if (!sent) {
      // The ping may arrive before its sender has the answer to its send request.
      this.#inFlight.get(sighting.sender)?.early.push({ receiver, sighting });
      return;
    }
    // A sync may list an event twice; a reconnecting probe meets it again.
    if (sent.receivers.has(receiver.probeId)) return;
    sent.receivers.add(receiver.probeId);
    const measurement = {
      oneWayMs: sighting.arrivedMono - sent.sendMono,
      twoClockMs: sighting.arrivedMs - sighting.originTs,
      sendRttMs: sent.sendRttMs,
    };
    this.#unsaved.push({
      roomId: sent.roomId,
      pingEventId: sent.eventId,
      senderProbe: sent.sender.probeId,
      senderServer: sent.sender.server,
      receiverProbe: receiver.probeId,
      receiverServer: receiver.server,
      originTs: new Date(sighting.originTs),
      measuredAt: new Date(sighting.arrivedMs),
      ...measurement,
      ...offsetEstimate(measurement),
    });
    this.#flushTimer ??= setTimeout(() => void this.flush(), FLUSH_DELAY_MS).unref();
  }

  /** Stores what was measured; while the database is away the samples wait for the next batch. Never rejects. */
  flush(): Promise<void> {
    clearTimeout(this.#flushTimer);
    this.#flushTimer = undefined;
    this.#saving = this.#saving.then(() => this.#save());
    return this.#saving;
  }

  async #save(): Promise<void> {
    if (this.#unsaved.length === 0) return;
    const batch = this.#unsaved;
    this.#unsaved = [];
    try {
      await recordOneWaySamples(this.#db, batch);
    } catch (err) {
      this.#unsaved = [...batch, ...this.#unsaved].slice(-MAX_UNSAVED);
      this.#log.warn(
        { err, unsaved: this.#unsaved.length },
        'could not store one-way samples; they are kept for the next try',
      );
    }
  }

  /** Drops pings sent before `mono`: a sighting after the ping timeout is not a delivery time anyone waits for. */
  #forget(mono: number): void {
    for (const [eventId, sent] of this.#sent) {
      if (sent.sendMono >= mono) return;
      this.#sent.delete(eventId);
    }
  }
}
