import type { Informer } from '../core/kube/informer.js';
import type { Job } from '../core/kube/types.js';
import { jobFinished, parseMembers, type Member } from './worker-job.js';

/**
 * Which worker Jobs claim which EmbeddingJobs (from the members annotation), kept current from the Job informer, plus
 * the dispatcher's expectations: Jobs it created that the cache has not shown yet (controller-runtime's
 * "expectations"), so a slow watch never makes it dispatch the same item twice.
 */
export class JobIndex {
  private readonly byEj = new Map<string, Set<string>>();
  private readonly expected = new Map<string, { members: Member[]; until: number }>();

  constructor(
    private readonly jobs: Informer<Job>,
    private readonly expectationTtlMs = 60_000,
  ) {
    jobs.on('add', (j) => this.index(j));
    jobs.on('update', (j, old) => {
      if (old) this.unindex(old);
      this.index(j);
    });
    jobs.on('delete', (j) => this.unindex(j));
  }

  private index(job: Job): void {
    this.expected.delete(job.metadata.name);
    for (const m of parseMembers(job)) {
      let set = this.byEj.get(m.name);
      if (!set) this.byEj.set(m.name, (set = new Set()));
      set.add(job.metadata.name);
    }
  }

  private unindex(job: Job): void {
    for (const m of parseMembers(job)) {
      const set = this.byEj.get(m.name);
      set?.delete(job.metadata.name);
      if (set?.size === 0) this.byEj.delete(m.name);
    }
  }

  expect(jobName: string, members: Member[], now = Date.now()): void {
    if (!this.jobs.get(jobName)) this.expected.set(jobName, { members, until: now + this.expectationTtlMs });
  }

  unexpect(jobName: string): void {
    this.expected.delete(jobName);
  }

  /** Jobs (cached) that list `ej`, with the attempt each is for. */
  claims(ej: string): { job: Job; attempt: number }[] {
    const out: { job: Job; attempt: number }[] = [];
    for (const name of this.byEj.get(ej) ?? []) {
      const job = this.jobs.get(name);
      const m = job && parseMembers(job).find((x) => x.name === ej);
      if (job && m) out.push({ job, attempt: m.attempt });
    }
    return out;
  }

  /** Highest attempt any Job (cached or expected) claims for `ej`; 0 if none. */
  highestClaim(ej: string, now = Date.now()): number {
    let max = 0;
    for (const c of this.claims(ej)) max = Math.max(max, c.attempt);
    for (const [name, e] of this.expected) {
      if (e.until < now) {
        this.expected.delete(name);
        continue;
      }
      for (const m of e.members) if (m.name === ej) max = Math.max(max, m.attempt);
    }
    return max;
  }

  /**
   * Unfinished worker Jobs, cached or expected: each is one pod, Pending or not. A Job whose every member is
   * `reported` no longer counts: its worker has nothing left to do but exit, and the Job's Complete condition
   * trails the exit by the kubelet's and the Job controller's sync (≈ 3 s a batch on the test node).
   */
  activeJobs(now = Date.now(), reported: (ej: string, job: string) => boolean = () => false): number {
    let n = 0;
    for (const j of this.jobs.list()) {
      if (jobFinished(j)) continue;
      const members = parseMembers(j);
      if (members.length === 0 || !members.every((m) => reported(m.name, j.metadata.name))) n++;
    }
    for (const [name, e] of this.expected) {
      if (e.until < now) this.expected.delete(name);
      else n++;
    }
    return n;
  }
}
