import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox';
import { Type, type Static } from '@fastify/type-provider-typebox';
import type { FastifyBaseLogger } from 'fastify';
import { databaseFailure, HEALTH_TIMEOUT_MS, pingDatabase, type Database } from '../../db/database.ts';
import { TtlCache } from '../../stats/cache.ts';
import type { HealthSources, HttpDeps } from '../deps.ts';

/**
 * A bot syncs at least every 30 s (the long poll's timeout) while its
 * homeserver answers: a success older than this is a sync that hangs.
 */
export const STALE_SYNC_SECONDS = 120;
/** A probe whose last pings all went unanswered: one lost ping is a measurement, this many in a row is a probe not measuring. */
export const PROBE_FAILING_AFTER = 3;
/**
 * A database check this recent answers for a new one: however many clients
 * ask /healthz, the database is asked at most once in this time, and a
 * request does not wait for a round trip that a flood's other requests
 * delay. A monitor that asks every few seconds gets a new check each time.
 */
export const HEALTH_CHECK_FRESH_MS = 1000;

const checkAge = Type.Integer({
  minimum: 0,
  description: `How long before this answer the check began: one check answers every request while it runs and for ${HEALTH_CHECK_FRESH_MS} ms after it began`,
});

const age = (description: string) => Type.Union([Type.Integer({ minimum: 0 }), Type.Null()], { description });

const NotFollowed = Type.Object({
  room: Type.String({ description: 'The configured room (ID or alias)' }),
  room_id: Type.Union([Type.String(), Type.Null()], {
    description:
      'The room the bot cannot join: the configured one, or its replacement after an upgrade; null while an alias does not resolve',
  }),
  reason: Type.Union([Type.Literal('join'), Type.Literal('upgrade')]),
  since: Type.String({ format: 'date-time' }),
  attempts: Type.Integer(),
  last_failure: Type.String({ description: 'A Matrix error code, http_<status> or no_response' }),
});

const Bot = Type.Object({
  status: Type.Union(
    [Type.Literal('ok'), Type.Literal('starting'), Type.Literal('failing'), Type.Literal('disabled')],
    {
      description: `failing: its latest syncs failed, or none succeeded for ${STALE_SYNC_SECONDS} s; disabled: no bot configured`,
    },
  ),
  consecutive_sync_failures: Type.Optional(
    Type.Integer({ minimum: 0, description: 'Failed syncs since the latest successful one' }),
  ),
  last_sync_age_seconds: Type.Optional(age('Since the latest successful sync; null before the first')),
});

const ProbeHealth = Type.Object({
  id: Type.String(),
  status: Type.Union([Type.Literal('ok'), Type.Literal('starting'), Type.Literal('failing')], {
    description: `failing: its latest ${PROBE_FAILING_AFTER} pings or more got no pong; starting: no ping finished yet`,
  }),
  last_outcome: Type.Union([Type.Literal('answered'), Type.Literal('lost'), Type.Literal('send_failed'), Type.Null()]),
  consecutive_losses: Type.Integer({
    minimum: 0,
    description: 'Pings since the latest answered one that got no pong (lost or not sent)',
  }),
  last_success_age_seconds: age('Since the latest answered ping was sent; null before the first'),
});

const DatabaseFailureCode = Type.Union(
  [
    Type.Literal('timeout'),
    Type.Literal('unreachable'),
    Type.Literal('disconnected'),
    Type.Literal('refused'),
    Type.Literal('closed'),
    Type.Literal('error'),
  ],
  {
    description: 'Why it is unavailable, as a stable word (the log has the error itself)',
  },
);

const HealthBody = Type.Object({
  status: Type.Union([Type.Literal('ok'), Type.Literal('degraded'), Type.Literal('unavailable')], {
    description:
      'unavailable (503): the database does not answer. degraded (200): the service answers but something is wrong: the bot or a probe fails, the bot is not in a room it should watch, or the read replica does not answer',
  }),
  database: Type.Object({
    engine: Type.String(),
    ok: Type.Boolean(),
    status: Type.Union([Type.Literal('ok'), Type.Literal('unavailable')]),
    code: Type.Optional(DatabaseFailureCode),
    latency_ms: Type.Number(),
    check_age_ms: checkAge,
  }),
  read_database: Type.Optional(
    Type.Object(
      {
        ok: Type.Boolean(),
        status: Type.Union([Type.Literal('ok'), Type.Literal('unavailable')]),
        code: Type.Optional(DatabaseFailureCode),
        latency_ms: Type.Number(),
        check_age_ms: checkAge,
        standby: Type.Union([Type.Boolean(), Type.Null()], {
          description: 'Whether it is a hot standby (in recovery); null while it does not answer',
        }),
        replay_lag_seconds: Type.Union([Type.Number({ minimum: 0 }), Type.Null()], {
          description:
            'How far the standby is behind: since the newest transaction it replayed was committed, 0 once it has replayed all it received; null for a primary, or while it does not answer',
        }),
      },
      {
        description:
          'The read replica the public routes read (DATABASE_READ_URL); absent without one. Unavailable makes the status degraded, not unavailable: the instance still writes and leads',
      },
    ),
  ),
  bot: Bot,
  rooms: Type.Object({ not_followed: Type.Array(NotFollowed) }),
  probes: Type.Object({
    status: Type.Union([Type.Literal('ok'), Type.Literal('failing'), Type.Literal('disabled')], {
      description: 'failing: one of the probes is; disabled: no probe configured',
    }),
    accounts: Type.Array(ProbeHealth),
  }),
  last_sample_age_seconds: age(
    'Since the newest sample this process wrote (bot and probes) was measured; null before the first, or without bot and probes',
  ),
  instance: Type.Optional(
    Type.Object(
      {
        id: Type.String({ description: 'This process: host name and PID' }),
        role: Type.Union([Type.Literal('leader'), Type.Literal('follower')], {
          description:
            'leader: runs the bot, the probes and the scheduled jobs; follower: serves HTTP only, ready to take over (PostgreSQL)',
        }),
        single: Type.Boolean({
          description:
            'true on the embedded database (PGlite) or with PINGBOARD_LEADER_LOCK=off: the only process, always the leader',
        }),
      },
      { description: 'Absent while the instance is starting' },
    ),
  ),
});

type Body = Static<typeof HealthBody>;

/** Whole seconds from `ms` to `nowMs`; a time ahead of ours (another server's clock) counts as now. */
const ageSeconds = (ms: number | undefined, nowMs: number) =>
  ms === undefined ? null : Math.max(0, Math.floor((nowMs - ms) / 1000));

function botHealth(source: HealthSources['bot'], nowMs: number): Body['bot'] {
  if (!source) return { status: 'disabled' };
  const bot = source();
  if (!bot) return { status: 'starting', consecutive_sync_failures: 0, last_sync_age_seconds: null };
  const { lastSyncAtMs, consecutiveSyncFailures } = bot.counts;
  const age = ageSeconds(lastSyncAtMs > 0 ? lastSyncAtMs : undefined, nowMs);
  const status =
    consecutiveSyncFailures > 0 || (age !== null && age > STALE_SYNC_SECONDS)
      ? 'failing'
      : age === null
        ? 'starting'
        : 'ok';
  return { status, consecutive_sync_failures: consecutiveSyncFailures, last_sync_age_seconds: age };
}

function probesHealth(source: HealthSources['probes'], nowMs: number): Body['probes'] {
  const states = source?.() ?? [];
  if (states.length === 0) return { status: 'disabled', accounts: [] };
  const accounts = states.map((p) => ({
    id: p.id,
    status:
      p.consecutiveLosses >= PROBE_FAILING_AFTER
        ? ('failing' as const)
        : p.lastOutcome === null
          ? ('starting' as const)
          : ('ok' as const),
    last_outcome: p.lastOutcome,
    consecutive_losses: p.consecutiveLosses,
    last_success_age_seconds: ageSeconds(p.lastAnsweredAtMs, nowMs),
  }));
  return { status: accounts.some((a) => a.status === 'failing') ? 'failing' : 'ok', accounts };
}

/**
 * A check shared by requests, with its age: a request joins the check under
 * way (however long it runs: a second check would only queue behind it on
 * the health check's one connection), or takes one begun less than
 * `freshMs` ago. A check that throws is not kept.
 */
export function sharedCheck<T extends object>(
  run: () => Promise<T>,
  freshMs = HEALTH_CHECK_FRESH_MS,
  now = () => performance.now(),
): () => Promise<T & { check_age_ms: number }> {
  const checks = new TtlCache<{ readonly result: T; readonly startedMs: number }>(freshMs, 1);
  return async () => {
    const askedMs = now();
    const { result, startedMs } = await checks.getOrCompute('check', askedMs, async () => ({
      result: await run(),
      startedMs: askedMs,
    }));
    return { ...result, check_age_ms: Math.max(0, Math.round(now() - startedMs)) };
  };
}

type Checked<T> = Omit<T, 'check_age_ms'>;

async function primaryHealth(database: Database, log: FastifyBaseLogger): Promise<Checked<Body['database']>> {
  const started = performance.now();
  try {
    await pingDatabase(database);
    return { engine: database.engine, ok: true, status: 'ok', latency_ms: performance.now() - started };
  } catch (err) {
    const code = databaseFailure(err);
    log.warn({ err, code }, 'health check: database unavailable');
    return { engine: database.engine, ok: false, status: 'unavailable', code, latency_ms: performance.now() - started };
  }
}

type ReadDatabaseHealth = Checked<NonNullable<Body['read_database']>>;

async function replicaHealth(database: Database, log: FastifyBaseLogger): Promise<ReadDatabaseHealth> {
  const started = performance.now();
  try {
    const { standby, replayLagSeconds } = await database.replication(HEALTH_TIMEOUT_MS);
    return {
      ok: true,
      status: 'ok',
      latency_ms: performance.now() - started,
      standby,
      replay_lag_seconds: replayLagSeconds,
    };
  } catch (err) {
    const code = databaseFailure(err);
    log.warn({ err, code }, 'health check: read replica unavailable');
    return {
      ok: false,
      status: 'unavailable',
      code,
      latency_ms: performance.now() - started,
      standby: null,
      replay_lag_seconds: null,
    };
  }
}

export const healthRoutes: FastifyPluginAsyncTypebox<HttpDeps> = async (app, deps) => {
  const sources = deps.health ?? {};
  // The checks' warnings go to the service's log: a check answers requests other than the one that began it.
  const primary = sharedCheck(() => primaryHealth(deps.database, app.log));
  const reads = deps.reads;
  const replica = reads && sharedCheck(() => replicaHealth(reads.database, app.log));
  app.get(
    '/healthz',
    {
      schema: {
        summary:
          "Liveness, and what is wrong: the database, the bot's sync, rooms it is not in, the probes, the newest sample",
        response: { 200: HealthBody, 503: HealthBody },
      },
    },
    async (_request, reply) => {
      // Both at once: a hung replica must not add its timeout to the primary's.
      const [database, readDatabase] = await Promise.all([primary(), replica?.()]);
      const failure = database.code;
      const nowMs = Date.now();
      const bot = botHealth(sources.bot, nowMs);
      const notFollowed = (sources.bot?.()?.notFollowed() ?? []).map((r) => ({
        room: r.room,
        room_id: r.roomId ?? null,
        reason: r.reason,
        since: r.since.toISOString(),
        attempts: r.attempts,
        last_failure: r.lastFailure,
      }));
      const probes = probesHealth(sources.probes, nowMs);
      const status =
        failure !== undefined
          ? ('unavailable' as const)
          : bot.status === 'failing' ||
              probes.status === 'failing' ||
              notFollowed.length > 0 ||
              readDatabase?.ok === false
            ? ('degraded' as const)
            : ('ok' as const);
      const body: Body = {
        status,
        database,
        ...(readDatabase ? { read_database: readDatabase } : {}),
        bot,
        rooms: { not_followed: notFollowed },
        probes,
        last_sample_age_seconds: ageSeconds(sources.newestSampleMs?.(), nowMs),
      };
      const instance = sources.instance?.();
      if (instance) body.instance = { id: instance.id, role: instance.role, single: instance.single };
      return reply.code(status === 'unavailable' ? 503 : 200).send(body);
    },
  );
};
