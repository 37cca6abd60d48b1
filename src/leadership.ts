// Which of the `serve` processes on one PostgreSQL runs the bot, the probes
// and the scheduled jobs: the one holding a session advisory lock, on a
// connection of its own (a pooled connection would hand the session, and the
// lock with it, to whatever query came next). Every process serves HTTP.
//
// Ordering, so that a leader stops before another can start (docs/instances.md):
// - PostgreSQL releases the lock only when the session ends: the process died
//   (its socket closed), the connection was cut or terminated, the server
//   restarted, or the session sat idle for IDLE_SESSION_TIMEOUT_MS (a frozen
//   or partitioned leader, whose socket PostgreSQL may not see close for hours).
// - The leader runs a cheap query every CHECK_EVERY_MS. It steps down when its
//   connection fails or ends, and when its last successful check was *sent*
//   more than LEASE_MS ago: the server's idle clock for that session started
//   after it received that query, so it cannot end the session (and free the
//   lock) before LEASE_MS + the margin to IDLE_SESSION_TIMEOUT_MS have passed.
//   A slow or failed check alone is no reason: on a busy machine a check can
//   take seconds, and stepping down at the first one handed the bot from
//   process to process for nothing (each hand-over restarts its sync).
// - What this cannot order: a session killed at once (pg_terminate_backend,
//   a server restart) is noticed at the next check, up to CHECK_EVERY_MS +
//   CHECK_TIMEOUT_MS later, and a follower may take the lock meanwhile. Both
//   then answer with the same device and the same transaction IDs, which the
//   homeserver deduplicates, and write samples the primary key deduplicates.
import { hostname } from 'node:os';
import pg from 'pg';
import type { Logger } from './log.ts';

/** The leader lock's key (the room locks of src/db/locks.ts use two keys, the first 7291). */
export const LEADER_LOCK = 7290;

export const TRY_EVERY_MS = 1500;
export const CHECK_EVERY_MS = 1000;
/** A check may take up to the lease: only the lease decides. */
export const LEASE_MS = 5000;
/** 2.5 s past the lease, for stopping the leader's work; a frozen leader's lock is free by then, so failover stays under 10 s. */
export const IDLE_SESSION_TIMEOUT_MS = 7500;

export type Role = 'leader' | 'follower';

export interface LeadershipState {
  readonly instanceId: string;
  readonly role: Role;
  /** No lock: the only process on its database (PGlite, or PINGBOARD_LEADER_LOCK=off), always the leader. */
  readonly single: boolean;
}

export interface Leadership extends LeadershipState {
  /** Gives the lock up (closing its connection) after stopping the leader's work. */
  stop(): Promise<void>;
}

export interface LeadershipOptions {
  /** The PostgreSQL URL to take the lock on; undefined when this process is the only one (PGlite, or the lock turned off). */
  readonly url: string | undefined;
  readonly connectTimeoutMs: number;
  readonly log: Logger;
  /**
   * Starts the leader's work; resolves once it runs. `takeover`: another
   * instance held the lock since this one started (it may have died halfway
   * through answering a ping), or this one lost it.
   */
  readonly lead: (takeover: boolean) => Promise<void>;
  /** Stops the leader's work; resolves once it has stopped. */
  readonly follow: () => Promise<void>;
  readonly instanceId?: string;
}

export function defaultInstanceId(): string {
  return `${hostname()}:${process.pid}`;
}

/**
 * Starts leading or following; resolves once the first try is settled (a
 * lone instance is the leader, with its work started, when this resolves).
 */
export async function startLeadership(options: LeadershipOptions): Promise<Leadership> {
  const instanceId = options.instanceId ?? defaultInstanceId();
  const log = options.log.child({ component: 'leadership', instance: instanceId });
  if (options.url === undefined) {
    log.info('single instance (PGlite, or PINGBOARD_LEADER_LOCK=off): always the leader, no lock taken');
    await options.lead(false);
    return { instanceId, role: 'leader', single: true, stop: options.follow };
  }
  const url = options.url;
  let role: Role = 'follower';
  let client: pg.Client | undefined;
  let stopped = false;
  let timer: NodeJS.Timeout | undefined;
  let lastCheckSentMs = 0;
  // Whether the bot ran elsewhere, or not at all, for a while since this instance started: another
  // instance led, or this one lost the lock. Its next lead is then a takeover.
  let gap = false;
  // Starting and stopping the work run one after another, never side by side.
  let transitions = Promise.resolve();
  const transition = (work: () => Promise<void>): Promise<void> => {
    const next = transitions.then(work);
    transitions = next.catch(() => {});
    return next;
  };
  /** The start of the leader's work begun by the first try: a lone instance's start fails with it, as without the lock. */
  let firstLead: Promise<void> | undefined;
  let firstTry = true;

  const dropClient = () => {
    const old = client;
    client = undefined;
    // end() waits for the server's goodbye, which a hung server never sends.
    old?.end().catch(() => {});
    (old as unknown as { connection?: { stream?: { destroy(): void } } } | undefined)?.connection?.stream?.destroy();
  };

  const stepDown = (reason: string, err?: unknown) => {
    if (role !== 'leader') return;
    // Synchronously: from here on nothing new is started as the leader.
    role = 'follower';
    gap = true;
    dropClient();
    log.warn({ reason, err }, 'lost the leader lock: stopping the bot, probes and jobs; following');
    transition(options.follow).catch((err: unknown) => log.error({ err }, "stopping the leader's work failed"));
  };

  const connect = async (): Promise<pg.Client> => {
    const fresh = new pg.Client({
      connectionString: url,
      connectionTimeoutMillis: options.connectTimeoutMs,
      statement_timeout: LEASE_MS,
      query_timeout: LEASE_MS,
      keepAlive: true,
      options: `-c idle_session_timeout=${IDLE_SESSION_TIMEOUT_MS}`,
    });
    fresh.on('error', (err) => {
      if (client !== fresh) return;
      stepDown("the lock's connection failed", err);
      dropClient();
    });
    fresh.on('end', () => {
      if (client !== fresh) return;
      stepDown("the lock's connection ended");
      dropClient();
    });
    try {
      await fresh.connect();
    } catch (err) {
      fresh.end().catch(() => {});
      throw err;
    }
    return fresh;
  };

  const tryLock = async () => {
    try {
      client ??= await connect();
      const sentMs = performance.now();
      const { rows } = await client.query<{ locked: boolean }>('select pg_try_advisory_lock($1) as locked', [
        LEADER_LOCK,
      ]);
      lastCheckSentMs = sentMs;
      if (!rows[0]?.locked) gap = true;
      if (!rows[0]?.locked || stopped) return;
      role = 'leader';
      log.info({ takeover: gap }, 'took the leader lock: starting the bot, probes and jobs');
      const takeover = gap;
      // Not awaited: the checks go on while the bot starts (a first sync can take a while).
      const leading = transition(() => options.lead(takeover));
      if (firstTry) firstLead = leading;
      leading.catch((err: unknown) => {
        // Holding the lock without doing the work would keep every other instance from doing it.
        if (leading !== firstLead) log.error({ err }, "starting the leader's work failed: giving the lock up");
        stepDown("the leader's work failed to start", err);
      });
    } catch (err) {
      log.debug({ err }, 'could not try the leader lock; trying again');
      dropClient();
    }
  };

  const check = async () => {
    const held = client;
    const sentMs = performance.now();
    if (sentMs - lastCheckSentMs > LEASE_MS)
      return stepDown(`no successful check for ${Math.round(sentMs - lastCheckSentMs)} ms`);
    try {
      await held!.query('select 1');
      if (role === 'leader' && client === held) lastCheckSentMs = sentMs;
    } catch (err) {
      // A lost connection steps down through its 'error' or 'end' event; anything else waits for the lease.
      log.debug({ err }, 'a leader check failed');
    }
  };

  const tick = async () => {
    if (stopped) return;
    await (role === 'leader' ? check() : tryLock());
    if (!stopped) timer = setTimeout(() => void tick(), role === 'leader' ? CHECK_EVERY_MS : TRY_EVERY_MS);
  };

  // The lease also runs on a clock of its own: a check stuck on a connection that neither answers
  // nor fails (a partition) would otherwise keep the leader leading past it.
  const lease = setInterval(() => {
    const sinceMs = performance.now() - lastCheckSentMs;
    if (role === 'leader' && sinceMs > LEASE_MS) stepDown(`no successful check for ${Math.round(sinceMs)} ms`);
  }, CHECK_EVERY_MS / 4);
  lease.unref();

  const stop = async () => {
    stopped = true;
    clearTimeout(timer);
    clearInterval(lease);
    await transitions;
    if (role === 'leader') await options.follow();
    role = 'follower';
    const held = client;
    client = undefined;
    await held?.end().catch(() => {});
  };
  await tick();
  firstTry = false;
  try {
    // A lone instance has its work running when the service's start resolves.
    await firstLead;
  } catch (err) {
    await stop();
    throw err;
  }
  if (role === 'follower') log.info('another instance leads: following (serving HTTP only)');
  return {
    instanceId,
    get role() {
      return role;
    },
    single: false,
    stop,
  };
}
