/**
 * Simulated federation: delayed delivery of events from one server name to
 * another. Every (origin → destination) pair is a FIFO queue with one timer
 * armed for its head, so delivery happens within a millisecond of its due
 * time (no polling) and events between two servers never overtake each other
 * even when a test changes the delays in between.
 */

interface Pending {
  due: number;
  deliver: () => void;
}

interface Link {
  queue: Pending[];
  head: number;
  timer: NodeJS.Timeout | undefined;
}

export class Federation {
  private readonly links = new Map<string, Link>();

  /** Runs `deliver` at real time `due` (or at once if due and nothing is queued ahead). */
  schedule(origin: string, destination: string, due: number, deliver: () => void): void {
    const key = `${origin}\u0000${destination}`;
    let link = this.links.get(key);
    if (!link) {
      link = { queue: [], head: 0, timer: undefined };
      this.links.set(key, link);
    }
    const last = link.queue[link.queue.length - 1];
    const entry = { due: Math.max(due, last ? last.due : 0), deliver };
    if (link.head === link.queue.length && entry.due <= Date.now()) {
      deliver();
      return;
    }
    link.queue.push(entry);
    if (!link.timer) this.arm(link);
  }

  private arm(link: Link): void {
    const next = link.queue[link.head];
    if (!next) return;
    link.timer = setTimeout(() => this.fire(link), Math.max(0, next.due - Date.now()));
  }

  private fire(link: Link): void {
    link.timer = undefined;
    const now = Date.now();
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
    for (const link of this.links.values()) clearTimeout(link.timer);
    this.links.clear();
  }
}
