/**
 * Error injection. A test arms a fault for the next N matching requests
 * (by path, method and/or authenticated user); the HTTP layer asks
 * {@link Faults.take} before routing each request.
 */

/** What happens to a request hit by a fault. */
export type Fault =
  /** 429 M_LIMIT_EXCEEDED with `retry_after_ms` (and a Retry-After header when asked). */
  | { kind: 'rateLimit'; retryAfterMs: number; retryAfterHeader?: boolean }
  /** Any error status (5xx by default M_UNKNOWN) with an optional errcode/message. */
  | { kind: 'error'; status: number; errcode?: string; error?: string }
  /** The TCP connection is destroyed without an answer. */
  | { kind: 'disconnect' }
  /** No answer at all until the client gives up (or the server stops). */
  | { kind: 'stall' }
  /** The request is answered normally after `ms` milliseconds. */
  | { kind: 'delay'; ms: number }
  /** A /sync is answered with every event of each joined room's timeline listed twice, as Synapse has been seen to send one. */
  | { kind: 'repeatTimeline' };

/** Which requests a fault applies to. All given conditions must hold. */
export interface FaultMatch {
  /** Substring of, or RegExp tested against, the URL path (without query string). */
  path?: string | RegExp;
  method?: string;
  /** Only requests authenticated as this user. */
  userId?: string;
  /** How many matching requests to hit (default 1; Infinity until cleared). */
  times?: number;
}

/** Handle of an armed fault. */
export interface Injection {
  readonly fault: Fault;
  /** Requests hit so far. */
  readonly hits: number;
  /** Requests still to hit. */
  readonly remaining: number;
  /** Resolves when the fault has hit `times` requests. */
  readonly done: Promise<void>;
  /** Disarms the fault. */
  cancel(): void;
}

interface Armed {
  fault: Fault;
  match: FaultMatch;
  hits: number;
  remaining: number;
  resolve: () => void;
}

export class Faults {
  private armed: Armed[] = [];

  inject(fault: Fault, match: FaultMatch = {}): Injection {
    const { promise, resolve } = Promise.withResolvers<void>();
    const entry: Armed = { fault, match, hits: 0, remaining: match.times ?? 1, resolve };
    if (entry.remaining > 0) this.armed.push(entry);
    else resolve();
    return {
      fault,
      get hits() {
        return entry.hits;
      },
      get remaining() {
        return entry.remaining;
      },
      done: promise,
      cancel: () => {
        this.armed = this.armed.filter((a) => a !== entry);
        entry.remaining = 0;
        resolve();
      },
    };
  }

  /** Consumes and returns the first armed fault matching the request, if any. */
  take(method: string, path: string, userId: string | undefined): Fault | undefined {
    const entry = this.armed.find((a) => matchesRequest(a.match, method, path, userId));
    if (!entry) return undefined;
    entry.hits++;
    entry.remaining--;
    if (entry.remaining <= 0) {
      this.armed = this.armed.filter((a) => a !== entry);
      entry.resolve();
    }
    return entry.fault;
  }

  clear(): void {
    for (const a of this.armed) a.resolve();
    this.armed = [];
  }
}

function matchesRequest(m: FaultMatch, method: string, path: string, userId: string | undefined): boolean {
  if (m.method !== undefined && m.method.toUpperCase() !== method) return false;
  if (m.userId !== undefined && m.userId !== userId) return false;
  if (m.path === undefined) return true;
  return typeof m.path === 'string' ? path.includes(m.path) : m.path.test(path);
}
