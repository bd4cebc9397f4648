/**
 * Crash points for the crash-matrix tests: when `EMBEDCTL_CRASH_AT` names this step, the process SIGKILLs itself
 * right here (no cleanup, no flush, exactly like an OOM kill or a node loss). `EMBEDCTL_CRASH_AFTER=n` skips the
 * first n hits. `EMBEDCTL_CRASH_ON_RUN=<run id>` kills the process every time that run is loaded: a message that
 * deterministically kills its consumer (a crash-looping message). Does nothing unless a variable is set.
 */
const hits = new Map<string, number>();

export function crashPoint(step: string): void {
  const at = process.env.EMBEDCTL_CRASH_AT;
  if (!at || at !== step) return;
  const n = (hits.get(step) ?? 0) + 1;
  hits.set(step, n);
  if (n <= Number(process.env.EMBEDCTL_CRASH_AFTER ?? 0)) return;
  die(`EMBEDCTL_CRASH_AT=${step}`);
}

export function crashOnRun(runId: string): void {
  if (process.env.EMBEDCTL_CRASH_ON_RUN === runId) die(`EMBEDCTL_CRASH_ON_RUN=${runId}`);
}

function die(what: string): void {
  process.stderr.write(`${what}: killing pid ${process.pid}\n`);
  process.kill(process.pid, 'SIGKILL');
}
