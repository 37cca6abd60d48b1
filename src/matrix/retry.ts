// Retrying Client-Server requests: a failure that passes (a server error or
// a broken connection) is retried with backoff; a 429 is waited out as long
// as the homeserver advises, so a rate-limited request is a slow request and
// not a failure.

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
      if (!isTransientError(err) || attempt >= options.attempts - 1 || options.stopped?.() || options.signal?.aborted)
        throw err;
      const waitMs = Math.min(options.maxDelayMs ?? Infinity, options.baseDelayMs * 2 ** attempt);
      options.onRetry?.(err, attempt + 1, waitMs);
      try {
        await sleep(waitMs, options.signal);
      } catch {
        throw err;
      }
    }
  }
}

/** Resolves after `ms`; rejects with the signal's reason as soon as it aborts. */
function sleep(ms: number, signal: AbortSignal | null | undefined): Promise<void> {
  return new Promise((resolve, reject) => {
    if (signal?.aborted) return reject(signal.reason);
    const timer = setTimeout(() => {
      signal?.removeEventListener('abort', onAbort);
      resolve();
    }, ms);
    const onAbort = () => {
      clearTimeout(timer);
      reject(signal!.reason);
    };
    signal?.addEventListener('abort', onAbort, { once: true });
  });
}

/** Rate-limited requests are made again this many times before the caller sees the 429. */
const RATE_LIMIT_RETRIES = 8;
const MAX_RETRY_AFTER_MS = 60_000;

/** How long a 429 asks us to wait: `retry_after_ms` in its body, else its Retry-After header (seconds), else a second. */
export function advisedWaitMs(body: string, retryAfterHeader: string | null | undefined): number {
  try {
    const advice = (JSON.parse(body) as { retry_after_ms?: unknown }).retry_after_ms;
    if (typeof advice === 'number' && advice >= 0) return Math.min(advice, MAX_RETRY_AFTER_MS);
  } catch {
    // Not JSON: the header decides.
  }
  const header = Number(retryAfterHeader ?? NaN);
  return Number.isFinite(header) && header >= 0 ? Math.min(header * 1000, MAX_RETRY_AFTER_MS) : 1000;
}

/**
 * Makes `request` again while the homeserver answers 429, each time after
 * the wait it advises (`advisedWait` reads it from the answer); the last
 * answer is returned, a 429 too once the retries are spent.
 */
export async function waitingOutRateLimits<A extends { readonly status: number }>(
  request: () => Promise<A>,
  advisedWait: (answer: A) => Promise<number> | number,
  onWait: (waitMs: number) => void,
  signal?: AbortSignal | null,
): Promise<A> {
  let answer = await request();
  for (let attempt = 0; answer.status === 429 && attempt < RATE_LIMIT_RETRIES; attempt++) {
    const waitMs = await advisedWait(answer);
    onWait(waitMs);
    await sleep(waitMs, signal);
    answer = await request();
  }
  return answer;
}
