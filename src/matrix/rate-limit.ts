// At most `limit` answers per sender in any sixty seconds (a sliding window),
// so one flooding user cannot make the bot flood the room.
const WINDOW_MS = 60_000;

export class SenderRateLimiter {
  readonly #limit: number;
  readonly #answers = new Map<string, number[]>();

  constructor(limit: number) {
    this.#limit = limit;
  }

  /** Records an answer to `sender` at `now` if allowed; returns whether it was. */
  allow(sender: string, now: number): boolean {
    const recent = (this.#answers.get(sender) ?? []).filter((t) => now - t < WINDOW_MS);
    if (recent.length >= this.#limit) {
      this.#answers.set(sender, recent);
      return false;
    }
    recent.push(now);
    this.#answers.set(sender, recent);
    // Forget quiet senders so the map does not grow with everyone who ever pinged.
    if (this.#answers.size > 10_000) {
      for (const [key, times] of this.#answers) if (times.every((t) => now - t >= WINDOW_MS)) this.#answers.delete(key);
    }
    return true;
  }
}
