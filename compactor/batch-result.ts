/** What one batch (or several merged and committed together) did, as counted for logs, metrics and tests. */
export interface BatchResult {
  messages: number;
  published?: string;
  completed: number;
  failed: number;
  deadLettered: number;
  added: number;
  replaced: number;
  updated: number;
  unchanged: number;
  deleted: number;
  /** Groups the batch's runs were loaded in (each below `maxGroupBytes`). */
  groups: number;
}

/** The counts that add up over held batches. */
const COUNTS = [
  'messages',
  'completed',
  'failed',
  'deadLettered',
  'added',
  'replaced',
  'updated',
  'unchanged',
  'deleted',
  'groups',
] as const;

export const emptyResult = (messages: number): BatchResult => ({
  ...(Object.fromEntries(COUNTS.map((k) => [k, 0])) as Omit<BatchResult, 'published'>),
  messages,
});

/** Counts added up; the version published is the last one any of them published. */
export function sumResults(results: BatchResult[]): BatchResult {
  const out = emptyResult(0);
  for (const r of results) for (const k of COUNTS) out[k] += r[k];
  const published = results.flatMap((r) => (r.published ? [r.published] : [])).at(-1);
  return published ? { ...out, published } : out;
}

/** Whether the working copy differs from the live version: otherwise that already holds every merged id. */
export function changedAnything(r: BatchResult): boolean {
  return r.deleted + r.added + r.replaced + r.updated > 0;
}
