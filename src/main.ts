#!/usr/bin/env -S node --max-semi-space-size=8 --heap-growing-percent=30
// The `pingboard` command: parses argv, loads the configuration, runs one
// command. Logic lives in the modules it calls.
//
// The V8 flags above (also in package.json's scripts and the Dockerfile) keep
// the resident size near the live heap. By default V8 lets the old generation
// fill with garbage up to several times the live heap before collecting (a
// burst of syncs took it from 50 to 160 MB), and keeps freed pages resident
// afterwards; growing it 30 % at a time bounds that, for a few more concurrent
// collections. The young generation holds short-lived sync and request data:
// 8 MB semi-spaces take 16 MB less than 16 MB ones, for as many major
// collections in the bot bench.
// First: the SDK's modules must find our log methods when they load (see sdk-logs.ts).
import './matrix/sdk-logs.ts';
import { parseArgs } from 'node:util';
import { ConfigError, loadConfig, type Config } from './config.ts';
import { DataDirLockedError } from './db/database.ts';
import { parseDecimalInteger } from './decimal.ts';
import { InputError, NotFoundError, StartupError } from './errors.ts';
import { createLogger } from './log.ts';
import { start } from './start.ts';
import { probeOnceCommand } from './cli/probe.ts';
import { backfillCommand, importCommand, leaderboardCommand, migrateCommand, refreezeCommand, type Output } from './cli/commands.ts';

const USAGE = `Usage: pingboard [--config FILE] COMMAND [OPTIONS]

Commands:
  serve                       run the HTTP API and the scheduled jobs (default)
  migrate                     apply database migrations and exit
  import FILE...              load samples from NDJSON files or pingstat stats.raw.json dumps
  leaderboard [--week W | --days N] [--room R] [--format md|json] [--limit N]
                              print the leaderboard, as /leaderboard.md or /leaderboard.json
  refreeze (--week W | --all) --reason TEXT [--room R]
                              freeze closed weeks again with this version's rules (the replaced
                              tables stay in each week's history)
  backfill [--room R] [--since 30d | --since 2026-10-01]
                              record the pongs in the rooms' history (default: the last 7 days)
  probe --once                every configured probe pings once; prints round trips and one-way delays
  help                        show this text

Configuration comes from environment variables and the JSON file given by
--config or PINGBOARD_CONFIG; see README.md.
`;

const out: Output = { stdout: process.stdout, stderr: process.stderr };

async function main(argv: string[]): Promise<number> {
  const { values, positionals } = parseArgs({
    args: argv,
    allowPositionals: true,
    options: {
      config: { type: 'string' },
      week: { type: 'string' },
      days: { type: 'string' },
      room: { type: 'string' },
      format: { type: 'string', default: 'md' },
      limit: { type: 'string', default: '10' },
      since: { type: 'string' },
      all: { type: 'boolean' },
      reason: { type: 'string' },
      once: { type: 'boolean' },
      help: { type: 'boolean', short: 'h' },
    },
  });
  const [command = 'serve', ...args] = positionals;
  if (values.help || command === 'help') {
    process.stdout.write(USAGE);
    return 0;
  }
  const config = loadConfig(process.env, values.config);
  // One-shot commands log warnings only, so their stdout stays clean.
  const log = createLogger(command === 'serve' ? config.logLevel : 'warn', command === 'serve' ? undefined : process.stderr as never);

  switch (command) {
    case 'serve':
      return serve(config, log);
    case 'migrate':
      return migrateCommand(config, log);
    case 'import':
      if (args.length === 0) throw new UsageError('import needs at least one FILE');
      return importCommand(config, log, args, out);
    case 'leaderboard': {
      if (values.format !== 'md' && values.format !== 'json') throw new InputError('--format', `expected md or json, got ${values.format}`);
      return leaderboardCommand(config, log, {
        format: values.format,
        limit: parseDecimalInteger('--limit', values.limit, 1, 1000),
        room: values.room,
        week: values.week,
        days: values.days === undefined ? undefined : parseDecimalInteger('--days', values.days, 1, 90),
      }, out);
    }
    case 'refreeze':
      return refreezeCommand(config, log, { room: values.room, week: values.week, all: values.all ?? false, reason: values.reason }, out);
    case 'backfill': {
      // Ctrl-C stops after the page in hand, once its samples and position are saved.
      const interrupted = new AbortController();
      process.once('SIGINT', () => interrupted.abort());
      process.once('SIGTERM', () => interrupted.abort());
      return backfillCommand(config, log, { room: values.room, since: values.since, signal: interrupted.signal }, out);
    }
    case 'probe':
      // Scheduled probing runs inside `serve`; this command is the one-time check.
      if (!values.once) throw new UsageError('probe needs --once');
      return probeOnceCommand(config, log, out);
    default:
      throw new UsageError(`unknown command ${command}`);
  }
}

class UsageError extends Error {}

async function serve(config: Config, log: ReturnType<typeof createLogger>): Promise<number> {
  const service = await start(config, log);
  await new Promise<void>((resolve) => {
    const shutdown = (signal: string) => {
      log.info({ signal }, 'shutting down');
      resolve();
    };
    process.once('SIGTERM', shutdown);
    process.once('SIGINT', shutdown);
  });
  await service.stop();
  log.info('stopped');
  return 0;
}

try {
  process.exitCode = await main(process.argv.slice(2));
} catch (err) {
  if (err instanceof UsageError || (err as { code?: string }).code === 'ERR_PARSE_ARGS_UNKNOWN_OPTION' || (err as { code?: string }).code === 'ERR_PARSE_ARGS_INVALID_OPTION_VALUE') {
    process.stderr.write(`pingboard: ${(err as Error).message}\n\n${USAGE}`);
    process.exitCode = 2;
  } else if (err instanceof ConfigError || err instanceof InputError || err instanceof DataDirLockedError || err instanceof StartupError) {
    process.stderr.write(`pingboard: ${(err as Error).message}\n`);
    process.exitCode = 2;
  } else if (err instanceof NotFoundError) {
    process.stderr.write(`pingboard: ${err.message}\n`);
    process.exitCode = 1;
  } else {
    process.stderr.write(`pingboard: ${(err as Error).stack ?? err}\n`);
    process.exitCode = 1;
  }
}
// Open handles (database pools, timers of libraries) must not keep a finished command alive.
process.exit();
