// SIGINT and SIGTERM as npm passes them on: a terminal's Ctrl-C reaches the
// process twice, from the terminal and again from npm. The first stops it in
// order; the second must not kill it in the middle of that.
import { spawn } from 'node:child_process';
import path from 'node:path';
import { pathToFileURL } from 'node:url';
import t from 'tap';
import { cleanEnv, NODE, PROCESS_TIMEOUT_MS, ROOT, waitForExit } from './helpers/process.ts';
import { until } from './helpers/until.ts';

/** A process that lives, and whose stop lasts, until its standard input says so, printing what happens. */
const STOPPING = `
import { onStopSignal } from ${JSON.stringify(pathToFileURL(path.join(ROOT, 'src', 'cli', 'stop-signals.ts')).href)};
let stops = 0;
onStopSignal((signal) => {
  stops++;
  console.log('stopping on ' + signal);
  process.stdin.once('data', () => {
    console.log('stopped after ' + stops + ' stop');
    process.exit(0);
  });
});
process.stdin.resume();
console.log('ready');
`;

for (const [first, second] of [
  ['SIGINT', 'SIGINT'],
  ['SIGTERM', 'SIGINT'],
] as const) {
  t.test(`${first}, then ${second} while it stops: one stop, finished in order`, async (t) => {
    // Without tap's NODE_OPTIONS: the hooks it loads into child processes listen for SIGINT themselves, and with a
    // listener left a second signal is harmless, whatever the code under test does.
    const { NODE_OPTIONS: _, ...env } = cleanEnv({});
    const child = spawn(NODE, ['--input-type=module', '-e', STOPPING], {
      env,
      stdio: ['pipe', 'pipe', 'pipe'],
    });
    const exited = waitForExit(child, PROCESS_TIMEOUT_MS);
    t.teardown(() => {
      if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
    });
    let stdout = '';
    child.stdout.on('data', (chunk: Buffer) => {
      stdout += chunk.toString();
    });
    await until('the process to be ready', () => stdout.includes('ready'), PROCESS_TIMEOUT_MS);
    child.kill(first);
    await until('the stop to begin', () => stdout.includes(`stopping on ${first}`), PROCESS_TIMEOUT_MS);
    // Sent before the stop may end: a signal with no listener left would end the process at once.
    child.kill(second);
    child.stdin.end('stop is done\n');
    const result = await exited;
    t.same([result.code, result.signal], [0, null], `exited by itself, not by ${second}`);
    t.equal(stdout, `ready\nstopping on ${first}\nstopped after 1 stop\n`);
  });
}
