// The command line's way into a running `serve` on the embedded database.
// PGlite belongs to one process, so while `serve` holds the data directory,
// `import`, `leaderboard`, `refreeze`, `migrate` and `backfill` run inside
// it: through a Unix socket in the data directory, which only the
// directory's user can open (mode 0600). The commands are the same functions
// as in their own process, on the service's database, statistics and rooms
// (a backfill with an account client of its own, from the service's bot
// settings), so they print the same lines and exit with the same codes.
//
// One connection runs one command. The client sends one line of JSON (a
// ChannelRequest); the service answers with lines of JSON (Frames): what the
// command writes to stdout and stderr, in order, then its exit code. The
// client half-closing the connection (its Ctrl-C) stops the command as Ctrl-C
// stops it in its own process; so does the service stopping.
import { chmodSync, rmSync } from 'node:fs';
import { once } from 'node:events';
import { createServer, type Socket } from 'node:net';
import path from 'node:path';
import { Writable } from 'node:stream';
import type { Config } from '../config.ts';
import type { Logger } from '../log.ts';
import { parseCommandLine } from './args.ts';
import { backfillRoomsOf } from './backfill-rooms.ts';
import { importCommand, leaderboardCommand, refreezeCommand, type CommandData, type Output } from './commands.ts';
import { channelPath, type ChannelRequest, type Frame } from './channel-protocol.ts';
import { BAD_USAGE } from './exit-codes.ts';
import { describeFailure } from './failure.ts';
import { loadKnownRooms } from '../stats/rooms.ts';

/** A request is a command line: a long list of files fits, a runaway stream does not. */
const MAX_REQUEST_BYTES = 1 << 20;

export interface CommandChannel {
  /** Stops taking commands, stops those running (what they stored is kept) and waits for their last lines. */
  close(): Promise<void>;
}

/**
 * Listens for commands on the data directory's socket. A socket path too
 * long for the system (about 100 bytes) is logged and leaves the command
 * line refused, as it was before the channel existed.
 */
export async function openCommandChannel(config: Config, log: Logger, data: CommandData): Promise<CommandChannel> {
  const socketPath = channelPath(config.database.dataDir);
  const running = new Set<{ readonly stop: AbortController; readonly done: Promise<void> }>();
  const server = createServer({ allowHalfOpen: true }, (socket) => {
    const stop = new AbortController();
    const entry = { stop, done: serveConnection(socket, stop, config, log, data) };
    running.add(entry);
    void entry.done.finally(() => running.delete(entry));
  });
  // The lock is this process's: a socket left here by a service that was killed is nobody's.
  rmSync(socketPath, { force: true });
  try {
    server.listen(socketPath);
    await once(server, 'listening');
    chmodSync(socketPath, 0o600);
  } catch (err) {
    server.close();
    log.warn(
      { err, socket: socketPath },
      'cannot listen for commands: while this service runs, the command line cannot use its embedded database',
    );
    return { close: async () => {} };
  }
  log.info({ socket: socketPath }, `listening for commands on ${socketPath}`);
  return {
    close: async () => {
      const closed = new Promise((resolve) => server.close(resolve));
      for (const { stop } of running) stop.abort();
      await Promise.all([...running].map((r) => r.done));
      await closed;
      rmSync(socketPath, { force: true });
    },
  };
}

async function serveConnection(
  socket: Socket,
  stop: AbortController,
  config: Config,
  log: Logger,
  data: CommandData,
): Promise<void> {
  // The caller gone or interrupted: the command stops after the work in hand, as on its own Ctrl-C.
  socket.on('end', () => stop.abort());
  socket.on('close', () => stop.abort());
  socket.on('error', () => stop.abort());
  const send = (frame: Frame) => {
    if (socket.writable) socket.write(`${JSON.stringify(frame)}\n`);
  };
  let code: number;
  try {
    const request = await readRequest(socket);
    if (request === undefined) return;
    const out: Output = {
      stdout: framedStream('stdout', false, send),
      stderr: framedStream('stderr', request.stderrIsTTY, send),
    };
    code = await runCommand(request, stop.signal, config, log, data, out);
    out.stdout.end();
    out.stderr.end();
    await Promise.all([once(out.stdout, 'finish'), once(out.stderr, 'finish')]);
  } catch (err) {
    const failure = describeFailure(err);
    send({ stderr: failure.text });
    code = failure.code;
  }
  send({ exit: code });
  socket.end();
}

/**
 * The request line; undefined (and the connection closed) for one that is not
 * a request. The socket keeps flowing after it, so the caller's half-close
 * (its Ctrl-C) is seen while the command runs.
 */
function readRequest(socket: Socket): Promise<ChannelRequest | undefined> {
  return new Promise((resolve) => {
    let text = '';
    let read = false;
    const settle = (line: string | undefined) => {
      if (read) return;
      read = true;
      const request = line === undefined ? undefined : parseRequest(line);
      if (request === undefined) {
        socket.end(
          `${JSON.stringify({ stderr: 'pingboard: not a command request\n' })}\n${JSON.stringify({ exit: BAD_USAGE })}\n`,
        );
      }
      resolve(request);
    };
    socket.on('data', (chunk: Buffer) => {
      if (read) return;
      text += chunk.toString('utf8');
      const newline = text.indexOf('\n');
      if (newline >= 0) settle(text.slice(0, newline));
      else if (text.length > MAX_REQUEST_BYTES) settle(undefined);
    });
    socket.on('end', () => settle(undefined));
    socket.on('close', () => settle(undefined));
  });
}

function parseRequest(text: string): ChannelRequest | undefined {
  try {
    const value = JSON.parse(text) as Partial<ChannelRequest>;
    if (
      Array.isArray(value.argv) &&
      value.argv.every((a) => typeof a === 'string') &&
      typeof value.cwd === 'string' &&
      path.isAbsolute(value.cwd) &&
      typeof value.stderrIsTTY === 'boolean'
    )
      return value as ChannelRequest;
  } catch {
    // Not JSON: not a request either.
  }
  return undefined;
}

async function runCommand(
  request: ChannelRequest,
  signal: AbortSignal,
  config: Config,
  log: Logger,
  data: CommandData,
  out: Output,
): Promise<number> {
  const invocation = parseCommandLine(request.argv, new Date(), request.cwd);
  log.info({ command: invocation.command }, `running ${invocation.command} for the command line`);
  switch (invocation.command) {
    case 'migrate':
      // Applied when the service started: nothing is left to do.
      return 0;
    case 'import':
      return importCommand(config, data, { files: invocation.files, cwd: request.cwd, signal }, out);
    case 'leaderboard':
      return leaderboardCommand(data, invocation, out);
    case 'refreeze':
      return refreezeCommand(data, invocation, out);
    case 'backfill': {
      const options = { room: invocation.room, since: invocation.since, signal };
      // Refused (no bot, no room) before the SDK is loaded: a service with no Matrix account never loads it.
      backfillRoomsOf(config, options);
      try {
        // The SDK's log methods first.
        await import('../matrix/sdk-logs.ts');
        const { backfillOn } = await import('./backfill.ts');
        return await backfillOn(data.database, config, log, options, out);
      } finally {
        // The service shows what was stored at once, not when its cached tables expire, and knows
        // the rooms it read (an alias, a lineage) now, not at its next five-minute look.
        data.rooms.learn(await loadKnownRooms(data.database.db));
        data.statistics.forgetLiveTables();
      }
    }
    default:
      out.stderr.write(`pingboard: ${invocation.command} does not run through the service\n`);
      return BAD_USAGE;
  }
}

function framedStream(
  name: 'stdout' | 'stderr',
  isTTY: boolean,
  send: (frame: Frame) => void,
): Writable & { isTTY: boolean } {
  const stream = new Writable({
    write(chunk: Buffer | string, _encoding, done) {
      send(name === 'stdout' ? { stdout: String(chunk) } : { stderr: String(chunk) });
      done();
    },
  });
  return Object.assign(stream, { isTTY });
}
