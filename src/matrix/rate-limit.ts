// Answers per sender, as a token bucket: a sender may have up to `perMinute`
// answers at once, and earns them back at `perMinute` a minute. A ping session
// (ten pings a second and a half apart, say) is answered in full, as the echo
// bot answers it; one flooding user gets a burst and then one answer every
// 60/perMinute seconds, however fast it sends.
const MINUTE_MS = 60_000;
/** Senders remembered before the full buckets (those that are as good as new) are forgotten. */
const REMEMBERED_SENDERS = 10_000;

interface Bucket {
  tokens: number;
  at: number;
}

export class SenderRateLimiter {
  readonly #perMinute: number;
  readonly #buckets = new Map<string, Bucket>();

  constructor(perMinute: number) {
    this.#perMinute = perMinute;
  }

  #tokens(bucket: Bucket | undefined, now: number): number {
    if (!bucket) return this.#perMinute;
    // A clock that went back earns nothing, and takes nothing away.
    return Math.min(this.#perMinute, bucket.tokens + (Math.max(0, now - bucket.at) * this.#perMinute) / MINUTE_MS);
  }

  /** Takes an answer for `sender` at `now` (ms) if one is left; returns whether it was. */
  allow(sender: string, now: number): boolean {
    const tokens = this.#tokens(this.#buckets.get(sender), now);
    if (tokens < 1) return false;
    this.#buckets.set(sender, { tokens: tokens - 1, at: now });
    if (this.#buckets.size > REMEMBERED_SENDERS) {
      for (const [key, bucket] of this.#buckets)
        if (this.#tokens(bucket, now) >= this.#perMinute) this.#buckets.delete(key);
    }
    return true;
  }
}
