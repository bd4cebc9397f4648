import { Semaphore } from 'async-mutex';
import type { Collection } from '../core/contracts/ids.js';
import { fenceVolume } from '../core/snapshot/fence.js';
import { DEFAULT_CONFIG, type CompactorConfig, type CompactorDeps } from './config.js';
import { Lane } from './lane.js';
import { CompactorMetrics } from './metrics.js';
import { RemoteStore } from './remote.js';
import { ServerRegistry } from './server-registry.js';

export { DEFAULT_CONFIG, type CompactorConfig, type CompactorDeps } from './config.js';
export type { BatchResult } from './batch-result.js';

/**
 * The singleton compactor (docs/adr/0004-single-compactor-fencing-token.md): LINES/WORDS messages → merged working copy
 * → immutable version on the shared volume (fenced) → runs COMPLETED → messages deleted. One lane per collection
 * (compactor/lane.ts), running concurrently so the two queues never starve each other (failure 6). All outside systems
 * are ports; local mode passes its own.
 */
export class Compactor {
  readonly config: CompactorConfig;
  readonly lanes: Record<Collection, Lane>;
  readonly servers: ServerRegistry;
  readonly permits = new Semaphore(2);
  readonly metrics: CompactorMetrics;
  /** Remote mode (deps.remote): the collections of a Chroma server, fenced in their metadata. */
  readonly remote: RemoteStore | undefined;
  private ready = false;

  constructor(readonly deps: CompactorDeps) {
    this.config = { ...DEFAULT_CONFIG, ...(deps.config ?? {}) };
    this.metrics = deps.metrics ?? new CompactorMetrics();
    this.servers = new ServerRegistry(deps.workRoot, deps.log);
    this.remote =
      deps.remote && new RemoteStore(deps.remote, deps.lease, deps.log, this.config.chromaTimeoutMs);
    this.lanes = { lines: new Lane(this, 'lines'), words: new Lane(this, 'words') };
  }

  isReady(): boolean {
    return this.ready && this.deps.lease.token !== undefined;
  }

  /** Alive: the lease is not lost and no lane's batch has stalled (compactor/progress.ts). */
  isHealthy(): boolean {
    return !this.deps.lease.lostSignal.aborted && !Object.values(this.lanes).some((l) => l.stalled());
  }

  /**
   * Acquires the lease, opens the working copies and processes batches until `signal` aborts (or idle exit).
   * Throws LeaseLostError when the lease is lost: the caller must exit non-zero without writing anything more.
   */
  async run(signal: AbortSignal): Promise<void> {
    const { lease, log } = this.deps;
    log.info({ identity: lease.identity }, 'waiting for the compactor lease');
    const token = await lease.acquire(signal);
    log.info({ token }, 'compactor lease held');
    // A lane that fails stops the other one too (after its current batch), before anything is closed.
    const laneFailed = new AbortController();
    const stop = AbortSignal.any([signal, lease.lostSignal, laneFailed.signal]);
    try {
      await this.servers.reap(); // servers orphaned by a killed predecessor must not share our directories
      await this.fence(undefined); // claim the volume for this token before anything else
      // Lanes share nothing but the lease: their working copies and Chroma servers come up side by side.
      const inits = await Promise.allSettled(Object.values(this.lanes).map((l) => l.init()));
      for (const r of inits) if (r.status === 'rejected') throw r.reason;
      this.ready = true;
      const results = await Promise.allSettled(
        Object.values(this.lanes).map((l) =>
          l.loop(stop).catch((err: unknown) => {
            laneFailed.abort(err);
            throw err;
          }),
        ),
      );
      const failure = results.find((r): r is PromiseRejectedResult => r.status === 'rejected');
      if (failure) throw failure.reason;
      if (lease.lostSignal.aborted) throw lease.lostSignal.reason as Error;
      // Clean shutdown: mirror what is unmirrored, prune (shutdownGraceMs), then give the lease up.
      for (const lane of Object.values(this.lanes)) await lane.flushS3(true);
      const grace = this.config.shutdownGraceMs;
      if (grace !== undefined) for (const lane of Object.values(this.lanes)) await lane.prune(grace);
    } finally {
      this.ready = false;
      for (const lane of Object.values(this.lanes)) await lane.close();
      if (!lease.lostSignal.aborted) await lease.release();
    }
  }

  /**
   * The volume fence (core/snapshot/fence.ts) with this compactor's lease, before every switch of CURRENT; in remote
   * mode the claim of the server's collections (core/chroma/remote-fence.ts).
   */
  fence(collection: Collection | undefined): Promise<number> {
    if (this.remote) return this.remote.claim(collection);
    return fenceVolume(this.deps.root, this.deps.lease, collection ? { collection } : {});
  }
}
