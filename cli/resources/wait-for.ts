import type { EmbeddingJob } from '../../core/contracts/embedding-job.js';
import { InvalidArgumentError } from 'commander';

/**
 * What `embedctl wait --for=condition=<C>` waits for, decided per job: `met`, `failed` (the job can no longer meet
 * it: it Failed, or a collection's compaction failed) or `waiting`. Succeeded is the job's phase; Compacted also
 * needs every collection of the job merged into a published snapshot.
 */
export const WAIT_CONDITIONS = ['Succeeded', 'Compacted'] as const;
export type WaitCondition = (typeof WAIT_CONDITIONS)[number];
export type WaitVerdict = 'met' | 'failed' | 'waiting';

/** Parses kubectl's `--for=condition=<C>` value. */
export function waitConditionArg(value: string): WaitCondition {
  const c = /^condition=(.+)$/i.exec(value)?.[1];
  const found = WAIT_CONDITIONS.find((w) => w.toLowerCase() === c?.toLowerCase());
  if (!found)
    throw new InvalidArgumentError(`Expected ${WAIT_CONDITIONS.map((w) => `condition=${w}`).join(' or ')}.`);
  return found;
}

export function waitVerdict(ej: EmbeddingJob, condition: WaitCondition): WaitVerdict {
  const s = ej.status ?? {};
  if (s.phase === 'Failed') return 'failed';
  if (s.phase !== 'Succeeded') return 'waiting';
  if (condition === 'Succeeded') return 'met';
  const states = ej.spec.collections.map((c) => s.compaction?.[c]);
  if (states.some((x) => x === 'Failed')) return 'failed';
  return states.every((x) => x === 'Completed') ? 'met' : 'waiting';
}
