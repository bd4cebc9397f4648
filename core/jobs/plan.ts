/**
 * Pure dispatch decision: which eligible EmbeddingJobs go into which worker Jobs now, and when to look again.
 * Highest priority first, then oldest; full batches go at once; a partial batch waits until its oldest member has
 * waited the batching window; retried items may go alone; never more unfinished Jobs than `maxActivePods`.
 */
export interface Candidate {
  name: string;
  priority: number;
  /** creationTimestamp, ms since epoch */
  createdAt: number;
  /** Earliest dispatch time (creation, or nextAttemptTime after a failure), ms since epoch */
  readyAt: number;
  /** Attempt number this dispatch will be (1 for the first). */
  attempt: number;
  /** Dispatch in a batch of its own. */
  isolate: boolean;
}

export interface PlanInput {
  candidates: readonly Candidate[];
  /** Unfinished worker Jobs, Pending pods included (and Jobs created but not yet seen). */
  activeJobs: number;
  now: number;
  batchSize: number;
  batchWindowMs: number;
  maxActivePods: number;
}

export interface Plan {
  batches: Candidate[][];
  /** Look again after this long (a batching window or a backoff ends); undefined: wait for events. */
  wakeAfterMs?: number;
  /** Ready items left waiting because the cap is reached. */
  waitingForCapacity: number;
}

export function compareCandidates(a: Candidate, b: Candidate): number {
  return (
    b.priority - a.priority || a.createdAt - b.createdAt || (a.name < b.name ? -1 : a.name > b.name ? 1 : 0)
  );
}

export function planDispatch(input: PlanInput): Plan {
  const { now, batchSize, batchWindowMs } = input;
  let wake: number | undefined;
  const later = (ms: number) => (wake = wake === undefined ? ms : Math.min(wake, ms));

  const ready: Candidate[] = [];
  for (const c of input.candidates) {
    if (c.readyAt <= now) ready.push(c);
    else later(c.readyAt - now);
  }
  ready.sort(compareCandidates);

  const batches: Candidate[][] = [];
  let open: Candidate[] = [];
  for (const c of ready) {
    if (c.isolate) {
      batches.push([c]);
      continue;
    }
    open.push(c);
    if (open.length === batchSize) {
      batches.push(open);
      open = [];
    }
  }
  if (open.length > 0) {
    const waited = now - Math.min(...open.map((c) => c.readyAt));
    if (waited >= batchWindowMs) batches.push(open);
    else later(batchWindowMs - waited);
  }

  const free = Math.max(0, input.maxActivePods - input.activeJobs);
  const chosen = batches.slice(0, free);
  const waitingForCapacity = batches.slice(free).reduce((n, b) => n + b.length, 0);
  return { batches: chosen, waitingForCapacity, ...(wake === undefined ? {} : { wakeAfterMs: wake }) };
}
