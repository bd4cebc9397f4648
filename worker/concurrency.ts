/** At most `n` holders at once. */
export class Semaphore {
  private active = 0;
  private readonly waiting: (() => void)[] = [];
  constructor(private readonly n: number) {}

  async run<T>(fn: () => Promise<T>): Promise<T> {
    if (this.active >= this.n) await new Promise<void>((r) => this.waiting.push(r));
    else this.active++;
    try {
      return await fn();
    } finally {
      const next = this.waiting.shift();
      if (next) next();
      else this.active--;
    }
  }
}

/**
 * Releases everyone once each of `size` parties has arrived or left. The worker uses it so that all receipts of a
 * wave enqueue their embedding inputs together, and the embedder can pack them into few, full requests.
 */
export class Barrier {
  private count = 0;
  private release!: () => void;
  private readonly opened = new Promise<void>((r) => (this.release = r));
  constructor(private readonly size: number) {
    if (size <= 0) this.release();
  }

  arrive(): Promise<void> {
    this.tick();
    return this.opened;
  }

  leave(): void {
    this.tick();
  }

  private tick(): void {
    if (++this.count >= this.size) this.release();
  }
}
