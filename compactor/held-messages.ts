import type { QueueMessage, Queue } from '../core/ports/queue.js';

/**
 * Messages received and not yet settled, kept invisible by one heartbeat (every half visibility timeout). A stalled
 * lane stops extending them, so they return to the queue (compactor/progress.ts).
 */
export class HeldMessages {
  private readonly held = new Map<string, QueueMessage>();
  private heartbeat: NodeJS.Timeout | undefined;

  constructor(
    private readonly queue: () => Queue,
    private readonly visibilitySeconds: number,
    private readonly stalled: () => boolean,
  ) {}

  hold(msgs: QueueMessage[]): void {
    for (const m of msgs) this.held.set(m.handle, m);
    if (this.heartbeat) return;
    const every = Math.max(1000, (this.visibilitySeconds * 1000) / 2);
    this.heartbeat = setInterval(() => {
      if (this.stalled()) return;
      for (const m of this.held.values())
        void this.queue()
          .changeVisibility(m.handle, this.visibilitySeconds)
          .catch(() => undefined);
    }, every);
    this.heartbeat.unref();
  }

  has(m: QueueMessage): boolean {
    return this.held.has(m.handle);
  }

  release(msgs: QueueMessage[]): void {
    for (const m of msgs) this.held.delete(m.handle);
  }

  stop(): void {
    if (this.heartbeat) clearInterval(this.heartbeat);
    this.heartbeat = undefined;
  }
}
