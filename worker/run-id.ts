import { createHash } from 'node:crypto';

/** Namespace UUID of run ids (random, fixed forever). */
const RUN_NAMESPACE = '6f1c2a8e-3b7d-4c59-9e2f-0a4d8b1c7e35';

/**
 * Deterministic run id for one attempt of one EmbeddingJob: a UUID v5 (SHA-1, RFC 9562) of the job identity (uid,
 * else name) and the attempt key (the worker Job name, which the controller derives from members + attempt numbers).
 * A retried pod of the same attempt writes the same delta keys and the same CompactionRun key, so its conditional
 * write is a no-op instead of a duplicate.
 */
export function runIdFor(job: { name: string; uid?: string }, attemptKey: string | number): string {
  const ns = Buffer.from(RUN_NAMESPACE.replace(/-/g, ''), 'hex');
  const h = createHash('sha1')
    .update(ns)
    .update(`${job.uid ?? job.name}\n${attemptKey}`)
    .digest();
  h[6] = (h[6]! & 0x0f) | 0x50;
  h[8] = (h[8]! & 0x3f) | 0x80;
  const hex = h.subarray(0, 16).toString('hex');
  return `${hex.slice(0, 8)}-${hex.slice(8, 12)}-${hex.slice(12, 16)}-${hex.slice(16, 20)}-${hex.slice(20)}`;
}
