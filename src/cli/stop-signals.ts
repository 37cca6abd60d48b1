// What SIGINT and SIGTERM do to a command or the service: the first one
// stops it in order; the ones after it change nothing.
//
// The listeners stay for the life of the process. `npm start` and `npm run`
// pass a terminal's Ctrl-C on to a process that already got it from the
// terminal (both are in its process group), a few milliseconds later: with
// the listener gone after the first signal, Node gives the second one its
// default action, and the process died in the middle of its stop, the
// samples it was writing unwritten and its data directory still locked.
// A stop that hangs is ended with SIGKILL.

export type StopSignal = 'SIGINT' | 'SIGTERM';

/** Calls `stop` once, on the first SIGINT or SIGTERM; returns what removes the listeners. */
export function onStopSignal(stop: (signal: StopSignal) => void): () => void {
  let stopping = false;
  const listener = (signal: StopSignal) => {
    if (stopping) return;
    stopping = true;
    stop(signal);
  };
  process.on('SIGINT', listener);
  process.on('SIGTERM', listener);
  return () => {
    process.off('SIGINT', listener);
    process.off('SIGTERM', listener);
  };
}
