#!/usr/bin/env -S node --max-semi-space-size=8 --heap-growing-percent=30 --liftoff-only
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
// collections in the bot bench. --liftoff-only keeps the embedded database's
// WebAssembly on V8's baseline compiler: optimising its hot functions with
// TurboFan took 500 MB for a few seconds after every start (an empty room's
// command peaked at 680 MB, 145 MB without), for queries about 25 % faster.
// NODE_COMPILE_CACHE (package.json's scripts, the Dockerfile) keeps each
// file's code with its types stripped: Node then does not load its type
// stripper, a WebAssembly compiler whose memory stays taken (15–20 MB of a
// started service).
// GLIBC_TUNABLES (the same places) has glibc's allocator map every block of
// 256 kB or more on its own, given back when freed, and keep two arenas, not
// eight per core: the embedded database hands each stored hour of pongs over
// as a buffer of about 1 MB, and with glibc's moving threshold those landed
// in the heap, which kept them once freed (a service's peak at a million
// samples 356–371 MB, 340–344 MB with these).
// Only the argument parser and the stop signals' few lines are imported up
// front: `help`, `--version` and a refused argument answer in the time Node
// takes to start. Each command then loads what it needs, and only that.
import { readFileSync } from 'node:fs';
import { flushCompileCache } from 'node:module';
import { parseCommandLine, UsageError, usageErrorText, type Invocation } from './cli/args.ts';
import type { Output } from './cli/commands.ts';
import { BAD_USAGE } from './cli/exit-codes.ts';
import { onStopSignal } from './cli/stop-signals.ts';
import type { Config } from './config.ts';
import type { Logger } from './log.ts';

const out: Output = { stdout: process.stdout, stderr: process.stderr };

function version(): string {
  return (JSON.parse(readFileSync(new URL('../package.json', import.meta.url), 'utf8')) as { version: string }).version;
}

/** Stopped by Ctrl-C or SIGTERM: the command stops after the work in hand, once it is saved. */
function interruption(): AbortSignal {
  const interrupted = new AbortController();
  onStopSignal(() => interrupted.abort());
  return interrupted.signal;
}

async function run(invocation: Invocation): Promise<number> {
  if (invocation.command === 'help') {
    process.stdout.write(invocation.text);
    return 0;
  }
  if (invocation.command === 'version') {
    process.stdout.write(`pingboard ${version()}\n`);
    return 0;
  }
  const { loadConfig } = await import('./config.ts');
  const config = loadConfig(process.env, invocation.configFile);
  const { createStreamLogger } = await import('./log.ts');
  // One-shot commands log on stderr, so their stdout stays clean: on a terminal their progress too, otherwise warnings only.
  const log =
    invocation.command === 'serve'
      ? createStreamLogger(config.logLevel, process.stdout)
      : createStreamLogger(process.stderr.isTTY ? config.logLevel : 'warn', process.stderr);
  if (sharesDataDir(config) && (await import('./cli/channel-protocol.ts')).CHANNEL_COMMANDS.has(invocation.command)) {
    // PGlite is one process's: while `serve` holds the data directory, the command runs in it.
    const { runThroughService } = await import('./cli/remote.ts');
    const code = await runThroughService(config.database.dataDir, process.argv.slice(2), log, out);
    if (code !== undefined) return code;
  }
  switch (invocation.command) {
    case 'serve': {
      const withPort =
        invocation.port === undefined ? config : { ...config, http: { ...config.http, port: invocation.port } };
      return serve(withPort, log);
    }
    case 'migrate':
      return (await import('./cli/commands.ts')).migrateCommand(config, log);
    case 'import': {
      const { importCommand, withOwnData } = await import('./cli/commands.ts');
      const signal = interruption();
      return withOwnData(config, log, (data) => importCommand(config, data, { files: invocation.files, signal }, out));
    }
    case 'leaderboard': {
      const { leaderboardCommand, withOwnData } = await import('./cli/commands.ts');
      return withOwnData(config, log, (data) => leaderboardCommand(data, invocation, out));
    }
    case 'refreeze': {
      const { refreezeCommand, withOwnData } = await import('./cli/commands.ts');
      return withOwnData(config, log, (data) => refreezeCommand(data, invocation, out));
    }
    case 'backfill': {
      // The SDK's modules must find our log methods when they load (see sdk-logs.ts).
      await import('./matrix/sdk-logs.ts');
      const { backfillCommand } = await import('./cli/backfill.ts');
      return backfillCommand(
        config,
        log,
        { room: invocation.room, since: invocation.since, signal: interruption() },
        out,
      );
    }
    case 'probe':
      await import('./matrix/sdk-logs.ts');
      return (await import('./cli/probe.ts')).probeOnceCommand(config, log, out);
  }
}

/** The embedded database in a directory, which only one process can open (not PostgreSQL, not memory://). */
function sharesDataDir(config: Config): boolean {
  return config.database.url === undefined && !config.database.dataDir.startsWith('memory://');
}

async function serve(config: Config, log: Logger): Promise<number> {
  // start.ts loads matrix-js-sdk for a bot or probes only, after the SDK's log methods (sdk-logs.ts).
  const { start } = await import('./start.ts');
  const { openCommandChannel } = await import('./cli/channel.ts');
  const service = await start(config, log, {
    ...(sharesDataDir(config) ? { attach: (data) => openCommandChannel(config, log, data) } : {}),
  });
  // Written now, not when the service stops weeks later: the next start loads no type stripper (see above).
  flushCompileCache();
  await new Promise<void>((resolve) =>
    onStopSignal((signal) => {
      log.info({ signal }, 'shutting down');
      resolve();
    }),
  );
  await service.stop();
  log.info('stopped');
  return 0;
}

try {
  process.exitCode = await run(parseCommandLine(process.argv.slice(2)));
} catch (err) {
  if (err instanceof UsageError) {
    // Before the configuration has loaded: answered without loading it.
    process.stderr.write(usageErrorText(err));
    process.exitCode = BAD_USAGE;
  } else {
    const failure = (await import('./cli/failure.ts')).describeFailure(err);
    process.stderr.write(failure.text);
    process.exitCode = failure.code;
  }
}
