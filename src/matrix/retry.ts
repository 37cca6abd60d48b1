// Retrying a Client-Server request that failed for a reason that passes:
// a server error (5xx) or a broken connection. 429s never get here: the
// client's fetch waits them out as the server advises (see client.ts).

export interface RetryOptions {
  readonly attempts: number;
  /** The first wait; each next one doubles, up to `maxDelayMs`. */
  readonly baseDelayMs: number;
  readonly maxDelayMs?: number;
  /** Stops retrying (the last error is thrown) once this returns true. */
  readonly stopped?: () => boolean;
  /** Aborting ends a wait early; the last error is thrown. */
  readonly signal?: AbortSignal | undefined;
  /** Told about each failure that will be retried. */
  readonly onRetry?: (err: unknown, attempt: number, waitMs: number) => void;
}

/** A failure worth retrying: no HTTP answer at all, or a 5xx. */
export function isTransientError(err: unknown): boolean {
  const status = (err as { httpStatus?: number }).httpStatus;
  return status === undefined || status >= 500;
}

export async function retryTransient<T>(operation: () => Promise<T>, options: RetryOptions): Promise<T> {
  for (let attempt = 0; ; attempt++) {
    try {
      return await operation();
    } catch (err) {
      if (!isTransientError(err) || attempt >= options.attempts - 1 || options.stopped?.() || options.signal?.aborted) throw err;
      const waitMs = Math.min(options.maxDelayMs ?? Infinity, options.baseDelayMs * 2 ** attempt);
      options.onRetry?.(err, attempt + 1, waitMs);
      await wait(waitMs, options.signal);
      if (options.signal?.aborted) throw err;
    }
  }
}

function wait(ms: number, signal: AbortSignal | undefined): Promise<void> {
  return new Promise((resolve) => {
    const done = () => {
      clearTimeout(timer);
      signal?.removeEventListener('abort', done);
      resolve();
    };
    const timer = setTimeout(done, ms);
    signal?.addEventListener('abort', done, { once: true });
  });
}
