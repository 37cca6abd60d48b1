// A small time-bounded cache for computed tables. Bounded in entries because
// query parameters (rooms, ages) come from the internet.
export class TtlCache<V> {
  readonly #entries = new Map<string, { expires: number; value: V }>();
  readonly #computing = new Map<string, Promise<V>>();
  readonly #ttlMs: number;
  readonly #maxEntries: number;

  constructor(ttlMs: number, maxEntries: number) {
    this.#ttlMs = ttlMs;
    this.#maxEntries = maxEntries;
  }

  get(key: string, now: number): V | undefined {
    const entry = this.#entries.get(key);
    if (!entry) return undefined;
    if (entry.expires <= now) {
      this.#entries.delete(key);
      return undefined;
    }
    return entry.value;
  }

  set(key: string, value: V, now: number): void {
    if (this.#ttlMs <= 0) return;
    this.#entries.delete(key);
    if (this.#entries.size >= this.#maxEntries) {
      // Maps iterate in insertion order: the first key is the oldest.
      this.#entries.delete(this.#entries.keys().next().value!);
    }
    this.#entries.set(key, { expires: now + this.#ttlMs, value });
  }

  /**
   * The cached value, or else `compute()`, run once however many callers ask
   * while it runs: when a popular table expires under load, one request
   * computes it and the others wait for that, instead of all computing it.
   */
  getOrCompute(key: string, now: number, compute: () => Promise<V>): Promise<V> {
    const hit = this.get(key, now);
    if (hit !== undefined) return Promise.resolve(hit);
    let computing = this.#computing.get(key);
    if (!computing) {
      computing = compute()
        .then((value) => {
          this.set(key, value, now);
          return value;
        })
        .finally(() => this.#computing.delete(key));
      this.#computing.set(key, computing);
    }
    return computing;
  }

  /** Forgets every value (a computation under way still finishes, and is kept). */
  clear(): void {
    this.#entries.clear();
  }
}
