// start(config) builds the running service from its parts and returns the
// handles, so tests start exactly what `pingboard serve` starts.
import type { BackgroundBackfill } from './backfill/backfill.ts';
import type { Config } from './config.ts';
import { openDatabase, type Database } from './db/database.ts';
import { StartupError } from './errors.ts';
import { buildApp, type App } from './http/app.ts';
import type { Logger } from './log.ts';
import { defaultInstanceId, startLeadership, type Leadership } from './leadership.ts';
import type { Bot } from './bot/bot.ts';
import { PingboardMetrics } from './metrics/pingboard.ts';
import { OperatorControls } from './operator/controls.ts';
import { startProbeSchedule, type ProbeSchedule } from './schedule/probes.ts';
import { startRetention, type Retention } from './schedule/retention.ts';
import { SampleWriter } from './samples/writer.ts';
import { startJobs, startRoomLearning, type Jobs, type RoomLearning } from './schedule/jobs.ts';
import type { Statistics } from './stats/leaderboard.ts';
import { loadKnownRooms, RoomRegistry } from './stats/rooms.ts';
import { createStatistics, openMigratedDatabaseWhenUp } from './open.ts';
import { SpillDirectory } from './spill.ts';

export interface Service {
  readonly database: Database;
  readonly statistics: Statistics;
  readonly rooms: RoomRegistry;
  readonly app: App;
  /**
   * Whether this instance leads. Only the leader runs the parts below
   * (undefined on a follower): on PostgreSQL, one `serve` at a time.
   */
  readonly leadership: Leadership;
  /** Learns what the leader's bot stored of the rooms (run on the jobs' schedule while following). */
  learnRooms(): Promise<void>;
  readonly jobs: Jobs | undefined;
  /** The echo bot, when a homeserver is configured. */
  readonly bot: Bot | undefined;
  /** The sample queue, when a bot or probes are configured (on every instance: it is flushed on stepping down). */
  readonly writer: SampleWriter | undefined;
  /** The backfill of the last PINGBOARD_BACKFILL_DAYS days, running in the background, when configured. */
  readonly backfill: BackgroundBackfill | undefined;
  /** The probes' schedule (empty when no probe is configured). */
  readonly probes: ProbeSchedule | undefined;
  readonly retention: Retention | undefined;
  readonly metrics: PingboardMetrics;
  /** Where the HTTP server listens, e.g. http://127.0.0.1:8080. */
  readonly url: string;
  stop(): Promise<void>;
}

export interface StartOptions {
  readonly now?: () => Date;
  /** An open, migrated database to use instead of opening one from the config; the caller closes it. */
  readonly database?: Database;
  /**
   * Opens what else serves the service's data, before it says it started, and
   * is closed first when it stops: `serve` passes the command line's channel
   * (cli/channel.ts), which this module may not import.
   */
  readonly attach?: (parts: {
    readonly database: Database;
    readonly statistics: Statistics;
    readonly rooms: RoomRegistry;
    readonly clockOffsetThresholdMs: number;
  }) => Promise<{ close(): Promise<void> }>;
}

/** Listens where configured; a port taken, or a host that is not this machine's, is a setting to fix. */
async function listen(app: App, { host, port }: Config['http']): Promise<string> {
  try {
    return await app.listen({ host, port });
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    if (code === 'EADDRINUSE')
      throw new StartupError('PINGBOARD_PORT', `${host}:${port} is already in use by another process`, { cause: err });
    if (code === 'EACCES')
      throw new StartupError(
        'PINGBOARD_PORT',
        `not allowed to listen on port ${port} (ports below 1024 need privileges)`,
        { cause: err },
      );
    if (code === 'EADDRNOTAVAIL' || code === 'ENOTFOUND' || code === 'EAI_AGAIN') {
      throw new StartupError('PINGBOARD_HOST', `cannot listen on ${host}: not an address of this machine (${code})`, {
        cause: err,
      });
    }
    throw err;
  }
}

/** The process's spill directory, unless turned off (PINGBOARD_SPILL_MAX_MB=0); one that cannot be made is a setting to fix. */
function openSpill({ dir, maxBytes }: Config['spill'], log: Logger): SpillDirectory | undefined {
  if (maxBytes === 0) return undefined;
  try {
    return new SpillDirectory(dir, maxBytes, (err) =>
      log.warn({ err }, 'a text could not be written to the spill directory: kept in memory'),
    );
  } catch (err) {
    throw new StartupError(
      'PINGBOARD_SPILL_DIR',
      `cannot make a directory in ${dir} (${(err as NodeJS.ErrnoException).code ?? String(err)})`,
      { cause: err },
    );
  }
}

/** Whether the service runs Matrix accounts (a bot, probes): only then does it load matrix-js-sdk (20 MB). */
function runsMatrixAccounts(config: Config): boolean {
  return config.bot !== undefined || config.probes.accounts.length > 0;
}

export async function start(config: Config, log: Logger, options: StartOptions = {}): Promise<Service> {
  // Before any client: the SDK's own lines carry the service's context, not one client's.
  if (runsMatrixAccounts(config)) (await import('./matrix/sdk-logs.ts')).routeSdkLogs(log);
  const database = options.database ?? (await openMigratedDatabaseWhenUp(config, log));
  const ownsDatabase = options.database === undefined;
  let readDatabase: Database | undefined;
  let spill: SpillDirectory | undefined;
  // What the start opened, closed last by stop(), or at once when the start fails before the
  // service exists: a pool's connections (kept while idle) would keep the failed process alive.
  const release = async () => {
    spill?.close();
    await readDatabase?.destroy();
    if (ownsDatabase) await database.destroy();
  };
  let rooms: RoomRegistry;
  try {
    // Opening a pool connects to nothing: a replica that is down makes the reads 503, not the start fail.
    readDatabase =
      config.database.readUrl === undefined
        ? undefined
        : await openDatabase({ ...config.database, url: config.database.readUrl, readOnly: true });
    rooms = new RoomRegistry(config.rooms, await loadKnownRooms(database.db));
    spill = openSpill(config.spill, log);
  } catch (err) {
    await release();
    throw err;
  }
  const statistics = createStatistics(config, database, options);
  const reads = readDatabase && { database: readDatabase, statistics: createStatistics(config, readDatabase, options) };
  const metrics = new PingboardMetrics(config.metricsServerLabels);
  const controls = new OperatorControls(database.db, statistics);
  let probes: ProbeSchedule | undefined;
  let retention: Retention | undefined;
  let jobs: Jobs | undefined;
  const writer = runsMatrixAccounts(config)
    ? new SampleWriter({
        db: database.db,
        log,
        capacity: config.queueCapacity,
        retentionDays: config.retentionDays,
        onWritten: () => void jobs?.buildDigestsSoon(),
      })
    : undefined;
  let app: App | undefined;
  let bot: Bot | undefined;
  let backfill: BackgroundBackfill | undefined;
  let leadership: Leadership | undefined;
  const instanceId = defaultInstanceId();
  // Until this instance leads (the jobs learn them then).
  let roomLearning: RoomLearning | undefined = startRoomLearning(rooms, () => loadKnownRooms(database.db), log);
  // The leader's work. Stopping it: no new work (jobs, sync), then write what is queued.
  const lead = async (takeover: boolean) => {
    await roomLearning?.stop();
    roomLearning = undefined;
    if (config.bot && writer) {
      const { startBot } = await import('./bot/bot.ts');
      bot = await startBot({
        config: config.bot,
        pings: config.pings,
        rooms: config.rooms,
        registry: rooms,
        db: database.db,
        writer,
        log,
        observer: metrics,
        operator: { controls, adminPowerLevel: config.operator.adminPowerLevel },
        takeover,
        instanceId,
      });
    }
    if (config.bot && bot && config.bot.backfillDays > 0) {
      const now = options.now?.() ?? new Date();
      const { startBackgroundBackfill } = await import('./backfill/backfill.ts');
      backfill = startBackgroundBackfill(config.rooms, {
        client: bot.client,
        db: database.db,
        log,
        now,
        since: new Date(now.getTime() - config.bot.backfillDays * 86_400_000),
        trustedResponders: config.pings.trustedResponders,
        retentionDays: config.retentionDays,
      });
    }
    jobs = startJobs(statistics, rooms, () => loadKnownRooms(database.db), log);
    retention = startRetention(database.db, config.retentionDays, log, options.now);
    const probeList = writer
      ? (await import('./probes/probes.ts')).createProbes(config, { db: database.db, writer, log, observer: metrics })
      : [];
    probes = startProbeSchedule({
      probes: probeList,
      schedule: config.probes.schedule,
      jitterMs: config.probes.jitterSeconds * 1000,
      log,
    });
  };
  const follow = async () => {
    await jobs?.stop();
    await retention?.stop();
    await probes?.stop();
    await backfill?.stop();
    await bot?.stop();
    jobs = retention = probes = backfill = bot = undefined;
    await writer?.flushNow();
    roomLearning ??= startRoomLearning(rooms, () => loadKnownRooms(database.db), log);
  };
  // Order matters: no leader's work, then drain HTTP, close the database.
  let stopping: Promise<void> | undefined;
  let attached: { close(): Promise<void> } | undefined;
  const stop = () =>
    (stopping ??= (async () => {
      await attached?.close();
      await (leadership ? leadership.stop() : follow());
      await roomLearning?.stop();
      await app?.close();
      await release();
    })());
  try {
    app = await buildApp(
      {
        database,
        statistics,
        rooms,
        spill,
        cacheSeconds: config.cacheSeconds,
        clockOffsetThresholdMs: config.probes.clockOffsetThresholdMs,
        metrics: () =>
          metrics.render({
            bot,
            writer,
            probeTicksSkipped: probes && (() => probes!.skipped),
            leader: leadership && leadership.role === 'leader',
          }),
        operator: config.operator.token === undefined ? undefined : { controls, token: config.operator.token },
        reads,
        health: {
          bot: config.bot ? () => bot : undefined,
          probes: () => probes?.states() ?? [],
          newestSampleMs: () => writer?.newestWrittenMs,
          instance: () => leadership && { id: leadership.instanceId, role: leadership.role, single: leadership.single },
        },
      },
      log,
    );
    const url = await listen(app, config.http);
    attached = await options.attach?.({
      database,
      statistics,
      rooms,
      clockOffsetThresholdMs: config.probes.clockOffsetThresholdMs,
    });
    leadership = await startLeadership({
      url: database.engine === 'postgres' && config.leaderLock ? config.database.url : undefined,
      connectTimeoutMs: config.database.connectTimeoutMs,
      log,
      lead,
      follow,
      instanceId,
    });
    log.info(
      {
        url,
        engine: database.engine,
        location: database.location,
        readLocation: readDatabase?.location,
        rooms: rooms.list().map((r) => r.id),
        bot: config.bot?.userId,
        instance: leadership.instanceId,
        role: leadership.role,
      },
      'pingboard started',
    );
    const leading = leadership;
    return {
      database,
      statistics,
      rooms,
      app,
      writer,
      metrics,
      url,
      stop,
      leadership: leading,
      learnRooms: async () => rooms.learn(await loadKnownRooms(database.db)),
      get jobs() {
        return jobs;
      },
      get bot() {
        return bot;
      },
      get backfill() {
        return backfill;
      },
      get probes() {
        return probes;
      },
      get retention() {
        return retention;
      },
    };
  } catch (err) {
    await stop();
    throw err;
  }
}
