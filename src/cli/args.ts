// The command line, parsed and checked in full before anything heavy loads:
// a mistyped option is refused in the time Node takes to start, not after
// the configuration, the database and the Matrix SDK have loaded. So this
// module imports only small, dependency-free checks.
import { accessSync, constants, existsSync, statSync } from 'node:fs';
import path from 'node:path';
import { parseArgs } from 'node:util';
import { parseSince } from '../backfill/since.ts';
import { parseDecimalInteger } from '../decimal.ts';
import { InputError, quoteValue as quote } from '../errors.ts';
import { isValidRoomAlias, isValidRoomId } from '../matrix-ids.ts';
import { checkReason } from '../operator/reason.ts';
import { BAD_USAGE, EMPTY_TABLE, FAILED, INTERRUPTED } from './exit-codes.ts';
import { parseWeekLabel } from '../stats/windows.ts';

/** A wrong command line: the message, then the usage of the command (or of all). */
export class UsageError extends Error {
  override name = 'UsageError';
  readonly command: CommandName | undefined;
  constructor(message: string, command?: CommandName) {
    super(message);
    this.command = command;
  }
}

/** What `pingboard` prints for a wrong command line: the message, then the usage. */
export function usageErrorText(err: UsageError): string {
  return `pingboard: ${err.message}\n\n${err.command ? commandUsage(err.command) : usage()}`;
}

/** Longer than any path, room or reason: a value this long is a mistake, and is not echoed whole. */
const MAX_OPTION_LENGTH = 4096;

const OPTIONS = {
  config: { type: 'string' },
  help: { type: 'boolean', short: 'h' },
  version: { type: 'boolean' },
  port: { type: 'string' },
  week: { type: 'string' },
  days: { type: 'string' },
  room: { type: 'string' },
  format: { type: 'string' },
  limit: { type: 'string' },
  since: { type: 'string' },
  all: { type: 'boolean' },
  reason: { type: 'string' },
  once: { type: 'boolean' },
} as const;

type OptionName = keyof typeof OPTIONS;

interface CommandSpec {
  readonly synopsis: string;
  readonly summary: string;
  /** Options besides --config and --help, each with its help line. */
  readonly options: Partial<Record<OptionName, string>>;
}

const ROOM_HELP = '--room R       a room ID (!id:server) or alias (#alias:server); default: the first configured room';

export const COMMANDS = {
  serve: {
    synopsis: 'serve [--port N]',
    summary: 'run the HTTP API and the scheduled jobs (default)',
    options: { port: '--port N       listen on port N (0 to 65535) instead of PINGBOARD_PORT' },
  },
  migrate: { synopsis: 'migrate', summary: 'apply database migrations and exit', options: {} },
  import: {
    synopsis: 'import FILE...',
    summary: 'load samples from NDJSON files or pingstat stats.raw.json dumps',
    options: {},
  },
  leaderboard: {
    synopsis: 'leaderboard [--week W | --days N] [--room R] [--format md|json] [--limit N]',
    summary: 'print the leaderboard, as /leaderboard.md or /leaderboard.json',
    options: {
      week: '--week W       a calendar week, such as 2026-W47 (frozen once closed)',
      days: '--days N       the last N days, 1 to 90 (default: the last 7 days)',
      room: ROOM_HELP,
      format: '--format F     md (the newsletter table, the default) or json',
      limit: '--limit N      at most N rows, 1 to 1000 (default 10)',
    },
  },
  refreeze: {
    synopsis: 'refreeze (--week W | --all) --reason TEXT [--room R]',
    summary: "freeze closed weeks again with this version's rules (the replaced tables stay in each week's history)",
    options: {
      week: '--week W       the closed week to freeze again, such as 2026-W47',
      all: '--all          every frozen week of the room',
      reason: "--reason TEXT  why, kept in the week's history (one line, at most 500 characters)",
      room: ROOM_HELP,
    },
  },
  backfill: {
    synopsis: 'backfill [--room R] [--since 30d | --since 2026-10-01]',
    summary: "record the pongs in the rooms' history (default: the last 7 days)",
    options: {
      room: '--room R       a room ID or alias; default: every configured room',
      since: '--since S      how far back: a span (12h, 30d, 2w) or a date or ISO 8601 time',
    },
  },
  probe: {
    synopsis: 'probe --once',
    summary: 'every configured probe pings once; prints round trips and one-way delays',
    options: { once: '--once         required: ping once and exit' },
  },
  help: { synopsis: 'help [COMMAND]', summary: "show this text, or a command's", options: {} },
} as const satisfies Record<string, CommandSpec>;

export type CommandName = keyof typeof COMMANDS;

const EXIT_CODES_HELP = `Exit codes:
  0    done
  ${FAILED}    failed (a rejected record, an unknown room, a homeserver that refused)
  ${BAD_USAGE}    bad arguments or settings (nothing was done)
  ${EMPTY_TABLE}    leaderboard: the table is empty (no data for that room and window)
  ${INTERRUPTED}  interrupted (SIGINT or SIGTERM): what was done is kept; run again to continue
`;

export function usage(): string {
  const lines = Object.values(COMMANDS).map((c) =>
    c.synopsis.length <= 28
      ? `  ${c.synopsis.padEnd(28)}${c.summary}`
      : `  ${c.synopsis}\n  ${''.padEnd(28)}${c.summary}`,
  );
  return `Usage: pingboard [--config FILE] COMMAND [OPTIONS]

Commands:
${lines.join('\n')}

Options for every command:
  --config FILE  a JSON configuration file (or PINGBOARD_CONFIG)
  --help, -h     this text, or with a command its own
  --version      print the version

Configuration comes from environment variables and the JSON file given by
--config or PINGBOARD_CONFIG; see docs/configuration.md. \`pingboard COMMAND --help\` describes a command.

${EXIT_CODES_HELP}`;
}

export function commandUsage(name: CommandName): string {
  const spec: CommandSpec = COMMANDS[name];
  const options = Object.values(spec.options)
    .map((line) => `  ${line}\n`)
    .join('');
  return `Usage: pingboard [--config FILE] ${spec.synopsis}

${spec.summary[0]!.toUpperCase()}${spec.summary.slice(1)}.
${options ? `\nOptions:\n${options}` : ''}
${EXIT_CODES_HELP}`;
}

export type Invocation =
  | { readonly command: 'help'; readonly text: string }
  | { readonly command: 'version' }
  | { readonly command: 'serve'; readonly configFile: string | undefined; readonly port: number | undefined }
  | { readonly command: 'migrate'; readonly configFile: string | undefined }
  | { readonly command: 'import'; readonly configFile: string | undefined; readonly files: readonly string[] }
  | {
      readonly command: 'leaderboard';
      readonly configFile: string | undefined;
      readonly format: 'md' | 'json';
      readonly limit: number;
      readonly room: string | undefined;
      readonly week: string | undefined;
      readonly days: number | undefined;
    }
  | {
      readonly command: 'refreeze';
      readonly configFile: string | undefined;
      readonly room: string | undefined;
      readonly week: string | undefined;
      readonly reason: string;
    }
  | {
      readonly command: 'backfill';
      readonly configFile: string | undefined;
      readonly room: string | undefined;
      readonly since: Date;
    }
  | { readonly command: 'probe'; readonly configFile: string | undefined };

function isCommand(name: string): name is CommandName {
  return Object.hasOwn(COMMANDS, name);
}

/** Refuses what no option value may be: a NUL byte (which no path or name holds) or a runaway length. */
function checkText(option: string, value: string): string {
  if (value.length > MAX_OPTION_LENGTH)
    throw new InputError(option, `at most ${MAX_OPTION_LENGTH} characters, got ${value.length}`);
  if (value.includes('\0')) throw new InputError(option, `contains a NUL byte: ${quote(value)}`);
  return value;
}

function checkRoom(value: string | undefined): string | undefined {
  if (value === undefined) return undefined;
  if (!isValidRoomId(value) && !isValidRoomAlias(value)) {
    throw new InputError('--room', `expected a room ID (!id:server) or alias (#alias:server), got ${quote(value)}`);
  }
  return value;
}

function checkWeek(value: string | undefined): string | undefined {
  if (value !== undefined && !parseWeekLabel(value))
    throw new InputError('--week', `expected an ISO week such as 2026-W47, got ${quote(value)}`);
  return value;
}

/**
 * A file to import: it must exist and be a file, so a typo is refused before
 * anything is imported. A named pipe is one too (`<(zcat dump.json.gz)`).
 */
function checkFile(file: string, cwd: string): string {
  checkText('FILE', file);
  const resolved = path.resolve(cwd, file);
  if (!existsSync(resolved)) throw new InputError('FILE', `${quote(file)} does not exist`);
  const stat = statSync(resolved);
  if (!stat.isFile() && !stat.isFIFO()) throw new InputError('FILE', `${quote(file)} is not a file`);
  try {
    accessSync(resolved, constants.R_OK);
  } catch (err) {
    throw new InputError('FILE', `${quote(file)} cannot be read: ${(err as NodeJS.ErrnoException).code}`);
  }
  return file;
}

/**
 * `--limit -1` as `--limit=-1`: node:util refuses a value that starts with a
 * dash as ambiguous, which says nothing of what the option expects; the
 * option's own check then names it and the values it takes.
 */
function joinDashValues(argv: readonly string[]): string[] {
  const joined: string[] = [];
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i]!;
    const next = argv[i + 1];
    const name = arg.startsWith('--') ? arg.slice(2) : undefined;
    if (
      name !== undefined &&
      Object.hasOwn(OPTIONS, name) &&
      OPTIONS[name as OptionName].type === 'string' &&
      next?.startsWith('-') &&
      !next.startsWith('--') &&
      next !== '-h'
    ) {
      joined.push(`${arg}=${next}`);
      i++;
    } else {
      joined.push(arg);
    }
  }
  return joined;
}

function parseOptions(argv: readonly string[]) {
  return parseArgs({
    args: joinDashValues(argv),
    allowPositionals: true,
    strict: true,
    tokens: true,
    options: OPTIONS,
  });
}

/** Parses and checks `argv` (without node and the script); throws UsageError or InputError. */
/** `cwd`: where relative file names are, when not this process's directory (a command run through the service). */
export function parseCommandLine(argv: readonly string[], now = new Date(), cwd = ''): Invocation {
  let parsed: ReturnType<typeof parseOptions>;
  try {
    parsed = parseOptions(argv);
  } catch (err) {
    // node:util says "Unknown option '--x'. To specify a positional argument starting with a '-', …": the first sentence is the point.
    const message = (err as Error).message.split(/\.\s/)[0]!.replace(/\.$/, '');
    const command = argv.find(isCommand);
    throw new UsageError(message, command);
  }
  const { values, positionals, tokens } = parsed;
  const [name = 'serve', ...args] = positionals;
  if (values.version) return { command: 'version' };
  if (!isCommand(name)) throw new UsageError(`unknown command ${quote(name)}`);
  if (name === 'help') {
    const topic = args[0];
    if (topic === undefined) return { command: 'help', text: usage() };
    if (!isCommand(topic) || args.length > 1) throw new UsageError(`help: unknown command ${quote(args.join(' '))}`);
    return { command: 'help', text: topic === 'help' ? usage() : commandUsage(topic) };
  }
  if (values.help) return { command: 'help', text: commandUsage(name) };

  const allowed: Partial<Record<OptionName, string>> = COMMANDS[name].options;
  for (const token of tokens) {
    if (token.kind !== 'option' || token.name === 'config') continue;
    if (!Object.hasOwn(allowed, token.name)) throw new UsageError(`${name} does not take --${token.name}`, name);
  }
  for (const [option, value] of Object.entries(values)) {
    if (typeof value === 'string') checkText(option === 'config' ? '--config' : `--${option}`, value);
  }
  const configFile = values.config;
  if (name !== 'import' && args.length > 0)
    throw new UsageError(`${name} takes no argument, got ${quote(args[0]!)}`, name);

  switch (name) {
    case 'serve':
      return {
        command: name,
        configFile,
        port: values.port === undefined ? undefined : parseDecimalInteger('--port', values.port, 0, 65_535),
      };
    case 'migrate':
      return { command: name, configFile };
    case 'import':
      if (args.length === 0) throw new UsageError('import needs at least one FILE', name);
      return { command: name, configFile, files: args.map((file) => checkFile(file, cwd)) };
    case 'leaderboard': {
      const format = values.format ?? 'md';
      if (format !== 'md' && format !== 'json')
        throw new InputError('--format', `expected md or json, got ${quote(format)}`);
      if (values.week !== undefined && values.days !== undefined)
        throw new InputError('--week', 'give either --week or --days, not both');
      return {
        command: name,
        configFile,
        format,
        limit: parseDecimalInteger('--limit', values.limit ?? '10', 1, 1000),
        room: checkRoom(values.room),
        week: checkWeek(values.week),
        days: values.days === undefined ? undefined : parseDecimalInteger('--days', values.days, 1, 90),
      };
    }
    case 'refreeze': {
      if ((values.week === undefined) === !values.all)
        throw new InputError('--week', 'give either --week W (e.g. 2026-W47) or --all');
      if (values.reason === undefined)
        throw new InputError('--reason', "a reason is required (it is kept in the week's history)");
      let reason: string;
      try {
        reason = checkReason(values.reason);
      } catch (err) {
        // The check names the field as the HTTP API calls it; here it is the option.
        throw err instanceof InputError ? new InputError('--reason', err.message.replace(/^reason: /, '')) : err;
      }
      return { command: name, configFile, room: checkRoom(values.room), week: checkWeek(values.week), reason };
    }
    case 'backfill':
      return { command: name, configFile, room: checkRoom(values.room), since: parseSince(values.since ?? '7d', now) };
    case 'probe':
      // Scheduled probing runs inside `serve`; this command is the one-time check.
      if (!values.once) throw new UsageError('probe needs --once', name);
      return { command: name, configFile };
  }
}
