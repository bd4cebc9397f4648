import { rm } from 'node:fs/promises';
import type { Manifest } from '../core/segments/manifest.js';
import { pickMerge, type MergePolicy } from './merge-policy.js';
import { buildMerge, type BuiltMerge, type MergeBuildContext } from './segment-merge.js';

/**
 * The segment merge a lane runs in the background (docs/adr/0012-immutable-segments.md), at most one at a time: built
 * on scratch from one version (compactor/segment-merge.ts) while the lane goes on merging runs, handed back to the
 * lane, which installs it between batches. A failed build is logged and left for the lane to start again later.
 */
export class BackgroundMerge {
  private job:
    { promise: Promise<void>; built?: BuiltMerge; settled: boolean; abort: AbortController } | undefined;

  constructor(private readonly ctx: MergeBuildContext) {}

  /** A merge is building, or built and not taken yet. */
  get pending(): boolean {
    return this.job !== undefined;
  }

  /** The pending merge has finished building (or failed). */
  get settled(): boolean {
    return this.job?.settled ?? false;
  }

  /** Starts the merge the policy asks for on version `base` of `manifest`, unless one is pending. */
  startIfDue(policy: MergePolicy, base: string, manifest: Manifest): void {
    if (this.job) return;
    const plan = pickMerge(policy, manifest);
    if (!plan) return;
    const abort = new AbortController();
    const job: NonNullable<BackgroundMerge['job']> = { promise: Promise.resolve(), settled: false, abort };
    job.promise = buildMerge(this.ctx, base, manifest, plan, abort.signal)
      .then(
        (built) => {
          job.built = built;
        },
        (err: unknown) => {
          if (!abort.signal.aborted) this.ctx.log.error({ err }, 'segment merge failed; tried again later');
        },
      )
      .finally(() => {
        job.settled = true;
      });
    this.job = job;
  }

  /**
   * The pending merge once it has finished building (with `wait`, once it does), which ends it: the built merge, or
   * undefined when it failed. Undefined, and still pending, while it builds.
   */
  async take(wait = false): Promise<{ built: BuiltMerge | undefined } | undefined> {
    const job = this.job;
    if (!job) return undefined;
    if (wait) await job.promise;
    if (!job.settled) return undefined;
    this.job = undefined;
    return { built: job.built };
  }

  /** Removes the merge's scratch (after its install, or when it is dropped). */
  clearScratch(): Promise<void> {
    return rm(this.ctx.workDir, { recursive: true, force: true });
  }

  /** Stops a pending merge (shutdown): its servers stop, its scratch goes; the next start builds it again. */
  async drop(): Promise<void> {
    const job = this.job;
    if (!job) return;
    this.job = undefined;
    job.abort.abort();
    await job.promise;
    await this.clearScratch();
  }
}
