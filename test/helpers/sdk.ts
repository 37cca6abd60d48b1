// matrix-js-sdk arms a timer for every request with a local timeout (110 s
// for /sync) and never clears it, which would keep a test process alive long
// after its clients stopped (the service itself exits explicitly). Importing
// this module unrefs those timers in the test process.
const realSetTimeout = globalThis.setTimeout;
globalThis.setTimeout = ((fn: (...args: unknown[]) => void, ms?: number, ...args: unknown[]) => {
  const timer = realSetTimeout(fn, ms, ...args);
  if ((ms ?? 0) >= 10_000 && new Error().stack?.includes('timeoutSignal')) timer.unref();
  return timer;
}) as typeof setTimeout;
