import type { Logger } from '../log.js';
import type { LeaderElector } from './leader-election.js';
import type { KubeMetrics } from './metrics.js';

/**
 * Starts long-running loops in order (controller-runtime's manager):
 * 1. `add`ed runnables start at once on every replica (informers, HTTP server);
 * 2. leader runnables start when the Lease is won (or at once without an elector);
 * 3. on stop, leader runnables are stopped and awaited first, then the Lease is released, then the rest stop.
 * If the Lease is lost, leader runnables are stopped and `run` rejects with `LeadershipLostError` (exit and restart).
 */
export interface Runnable {
  name: string;
  /** Runs until `signal` aborts; must resolve soon after (finishing in-flight work, starting none). */
  start(signal: AbortSignal): Promise<void>;
}

export class LeadershipLostError extends Error {
  constructor() {
    super('leader election lost');
    this.name = 'LeadershipLostError';
  }
}

export class Manager {
  private readonly always: Runnable[] = [];
  private readonly leaderOnly: Runnable[] = [];
  private started = false;

  constructor(
    private readonly opts: {
      log: Logger;
      elector?: LeaderElector;
      metrics?: KubeMetrics;
      leaseName?: string;
    },
  ) {}

  add(r: Runnable): this {
    this.assertNotStarted(r.name);
    this.always.push(r);
    return this;
  }

  /** Registers a loop that runs only while this replica leads (ingest, dispatch, status, stream processor). */
  addLeaderRunnable(name: string, start: (signal: AbortSignal) => Promise<void>): this {
    this.assertNotStarted(name);
    this.leaderOnly.push({ name, start });
    return this;
  }

  isLeader(): boolean {
    return this.opts.elector ? this.opts.elector.isLeader() : this.started;
  }

  /** Runs until `signal` aborts (resolves) or leadership is lost (rejects). */
  async run(signal: AbortSignal): Promise<void> {
    this.started = true;
    const log = this.opts.log;
    const base = new AbortController();
    const always = this.always.map((r) => this.guard(r, base.signal));
    const leaderStop = new AbortController();
    let lost = false;
    const elector = this.opts.elector;
    let leaders: Promise<void>[] = [];
    try {
      const won = elector ? await elector.acquire(signal) : !signal.aborted;
      if (won) {
        this.opts.metrics?.leaderStatus.set({ name: this.opts.leaseName ?? 'embedctl' }, 1);
        leaders = this.leaderOnly.map((r) => this.guard(r, leaderStop.signal));
        if (elector) {
          lost = (await elector.hold(signal)) === 'lost';
        } else {
          await new Promise<void>((resolve) => {
            if (signal.aborted) resolve();
            signal.addEventListener('abort', () => resolve(), { once: true });
          });
        }
      }
    } finally {
      leaderStop.abort();
      await Promise.all(leaders);
      this.opts.metrics?.leaderStatus.set({ name: this.opts.leaseName ?? 'embedctl' }, 0);
      if (elector && !lost) await elector.release();
      base.abort();
      await Promise.all(always);
      log.info('manager stopped');
    }
    if (lost) throw new LeadershipLostError();
  }

  private async guard(r: Runnable, signal: AbortSignal): Promise<void> {
    try {
      await r.start(signal);
    } catch (err) {
      this.opts.log.error({ runnable: r.name, err }, 'runnable failed');
    }
  }

  private assertNotStarted(name: string): void {
    if (this.started) throw new Error(`cannot add runnable ${name}: the manager is already running`);
  }
}
