// The command line's side of channel.ts: a command that needs the embedded
// database while `serve` holds it runs in that service, its lines printed
// here as they come and its exit code this process's.
import { existsSync } from 'node:fs';
import { connect, type Socket } from 'node:net';
import { dataDirHolder } from '../db/data-dir-lock.ts';
import type { Logger } from '../log.ts';
import { channelPath, type ChannelRequest, type Frame } from './channel-protocol.ts';
import type { Output } from './commands.ts';
import { FAILED } from './exit-codes.ts';

/**
 * Runs `argv` in the service holding `dataDir`: its exit code, or undefined
 * when no service takes it (none runs, or the holder is another command, or
 * a service still opening the database), for the caller to run it itself.
 */
export async function runThroughService(
  dataDir: string,
  argv: readonly string[],
  log: Logger,
  out: Output,
): Promise<number | undefined> {
  const holder = dataDirHolder(dataDir);
  const socketPath = channelPath(dataDir);
  if (holder === undefined || !existsSync(socketPath)) return undefined;
  const socket = await connected(socketPath);
  if (socket === undefined) return undefined;
  log.info({ pid: holder }, `the service (process ${holder}) holds ${dataDir}: running the command there`);
  const request: ChannelRequest = { argv, cwd: process.cwd(), stderrIsTTY: out.stderr.isTTY === true };
  socket.write(`${JSON.stringify(request)}\n`);
  // Ctrl-C asks the service to stop the command, then waits for what it says (where an import stopped).
  const interrupt = () => socket.end();
  process.on('SIGINT', interrupt);
  process.on('SIGTERM', interrupt);
  try {
    const code = await relay(socket, out);
    if (code !== undefined) return code;
    out.stderr.write(
      `pingboard: the service (process ${holder}) stopped before the command finished; ` +
        'what it stored is kept: run the same command again (what is stored counts as duplicate)\n',
    );
    return FAILED;
  } finally {
    process.off('SIGINT', interrupt);
    process.off('SIGTERM', interrupt);
    socket.destroy();
  }
}

/** The connection, or undefined when nobody listens (a service stopping, or killed and its socket left behind). */
function connected(socketPath: string): Promise<Socket | undefined> {
  return new Promise((resolve) => {
    const socket = connect({ path: socketPath, allowHalfOpen: true });
    socket.once('connect', () => {
      socket.off('error', refused);
      resolve(socket);
    });
    const refused = () => resolve(undefined);
    socket.once('error', refused);
  });
}

/** Writes the service's frames as they come; the exit code, or undefined when the connection ended without one. */
function relay(socket: Socket, out: Output): Promise<number | undefined> {
  return new Promise((resolve) => {
    let buffered = '';
    let code: number | undefined;
    socket.setEncoding('utf8');
    socket.on('data', (chunk: string) => {
      buffered += chunk;
      for (let newline = buffered.indexOf('\n'); newline >= 0; newline = buffered.indexOf('\n')) {
        const frame = JSON.parse(buffered.slice(0, newline)) as Frame;
        buffered = buffered.slice(newline + 1);
        if ('stdout' in frame) out.stdout.write(frame.stdout);
        else if ('stderr' in frame) out.stderr.write(frame.stderr);
        else code = frame.exit;
      }
    });
    // A reset connection (the service killed) ends it as well: what came before the exit frame is all there is.
    socket.on('error', () => {});
    // The service ends its side once it has sent the exit code; the caller's side stays open until then, for its Ctrl-C.
    socket.on('end', () => resolve(code));
    socket.on('close', () => resolve(code));
  });
}
