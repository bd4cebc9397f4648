/**
 * Exit codes of every `embedctl` program, one meaning each across binaries (the controller's, the compactor's, the
 * worker's, the user commands'). The controller's worker Job podFailurePolicy (controller/worker-job.ts) turns the
 * worker's `usage` and `sourceMissing` into FailJob: those must not be retried.
 */
export const EXIT = {
  ok: 0,
  /** Failed in a way a retry or restart may fix (a worker's items are retried; a user command found a problem). */
  failed: 1,
  /** Bad usage, configuration or input: running it again the same way fails again (a worker's BadInput). */
  usage: 2,
  /** A worker's source artifacts are missing (SourceMissing): not retried. */
  sourceMissing: 3,
  /** The Lease this process needs was lost (controller leadership, compactor fence): restart and wait for it. */
  leaseLost: 4,
} as const;

export type ExitCode = (typeof EXIT)[keyof typeof EXIT];
