/**
 * Crash points for the crash-matrix tests: when `EMBEDCTL_CRASH_AT` names this step, the process SIGKILLs itself
 * right here (no cleanup, no flush, exactly like an OOM kill or a node loss). `EMBEDCTL_CRASH_AFTER=n` skips the
 * first n hits. Does nothing unless the variable is set.
 */
const hits = new Map<string, number>();

export function crashPoint(step: string): void {
  const at = process.env.EMBEDCTL_CRASH_AT;
  if (!at || at !== step) return;
  const n = (hits.get(step) ?? 0) + 1;
  hits.set(step, n);
  if (n <= Number(process.env.EMBEDCTL_CRASH_AFTER ?? 0)) return;
  process.stderr.write(`EMBEDCTL_CRASH_AT=${step}: killing pid ${process.pid}\n`);
  process.kill(process.pid, 'SIGKILL');
}
