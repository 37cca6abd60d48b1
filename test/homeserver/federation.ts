/**
 * Simulated federation: delayed delivery of events from one server name to
 * another. Every (origin → destination) pair is a FIFO queue with one timer
 * armed for its head, and events between two servers never overtake each
 * other even when a test changes the delays in between. Due times are
 * fractional milliseconds: a Node timer fires up to a millisecond or more late
 * and counts whole milliseconds, which would show in the delivery times that
 * the one-clock matrix is held to (issue 18). So the timer is set to wake
 * shortly before the due time and the last stretch is waited out with
 * setImmediate, which still lets I/O run in between.
 */

/** Wall-clock time in fractional milliseconds (Date.now() counts whole ones). */
export const preciseNow = (): number => performance.timeOrigin + performance.now();

/** How long before its due time a timer wakes: above Node's usual timer lateness on an idle machine. */
const APPROACH_MS = 2;

interface Pending {
  due: number;
  deliver: () => void;
}

interface Link {
  queue: Pending[];
  head: number;
  timer: NodeJS.Timeout | undefined;
  immediate: NodeJS.Immediate | undefined;
}

export class Federation {
  private readonly links = new Map<string, Link>();

  /** Runs `deliver` at real time `due` (or at once if due and nothing is queued ahead). */
  schedule(origin: string, destination: string, due: number, deliver: () => void): void {
    const key = `${origin}\u0000${destination}`;
    let link = this.links.get(key);
    if (!link) {
      link = { queue: [], head: 0, timer: undefined, immediate: undefined };
      this.links.set(key, link);
    }
    const last = link.queue[link.queue.length - 1];
    const entry = { due: Math.max(due, last ? last.due : 0), deliver };
    if (link.head === link.queue.length && entry.due <= preciseNow()) {
      deliver();
      return;
    }
    link.queue.push(entry);
    if (!link.timer && !link.immediate) this.arm(link);
  }

  private arm(link: Link): void {
    const next = link.queue[link.head];
    if (!next) return;
    const wait = next.due - preciseNow();
    if (wait > APPROACH_MS) {
      link.timer = setTimeout(() => {
        link.timer = undefined;
        this.arm(link);
      }, wait - APPROACH_MS);
    } else {
      link.immediate = setImmediate(() => this.fire(link));
    }
  }

  private fire(link: Link): void {
    link.immediate = undefined;
    const now = preciseNow();
    for (let next = link.queue[link.head]; next && next.due <= now; next = link.queue[link.head]) {
      link.head++;
      next.deliver();
    }
    if (link.head === link.queue.length) {
      link.queue.length = 0;
      link.head = 0;
    } else {
      this.arm(link);
    }
  }

  /** Number of events still in flight (for tests that want to wait for quiescence). */
  get pending(): number {
    let n = 0;
    for (const link of this.links.values()) n += link.queue.length - link.head;
    return n;
  }

  /** Drops everything in flight and cancels the timers (server shutdown). */
  clear(): void {
    for (const link of this.links.values()) {
      clearTimeout(link.timer);
      clearImmediate(link.immediate);
    }
    this.links.clear();
  }
}
