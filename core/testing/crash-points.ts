import { ENV, type Env } from '../config/env.js';

/**
 * Fault injection for the crash-matrix tests, as hooks a program's edge passes to the stream processor and the
 * compactor (as controller/manager.ts takes `hooks.afterCreate`). With `EMBEDCTL_CRASH_AT=<step>` the process
 * SIGKILLs itself at that step (no cleanup, no flush, exactly like an OOM kill or a node loss);
 * `EMBEDCTL_CRASH_AFTER=n` skips the first n hits. `EMBEDCTL_CRASH_ON_RUN=<run id>` kills it every time that run is
 * loaded: a message that deterministically kills its consumer (a crash-looping message). No hooks when none is set.
 */
export interface CrashHooks {
  /** A named step was reached. */
  step?(name: string): void;
  /** A run's delta is about to be loaded. */
  runLoaded?(runId: string): void;
}

export function crashHooksFromEnv(env: Env): CrashHooks {
  const at = env[ENV.EMBEDCTL_CRASH_AT];
  const after = Number(env[ENV.EMBEDCTL_CRASH_AFTER] ?? 0);
  const onRun = env[ENV.EMBEDCTL_CRASH_ON_RUN];
  const hooks: CrashHooks = {};
  if (at) {
    let hits = 0;
    hooks.step = (name) => {
      if (name !== at || ++hits <= after) return;
      die(`${ENV.EMBEDCTL_CRASH_AT}=${name}`);
    };
  }
  if (onRun) {
    hooks.runLoaded = (runId) => {
      if (runId === onRun) die(`${ENV.EMBEDCTL_CRASH_ON_RUN}=${runId}`);
    };
  }
  return hooks;
}

function die(what: string): void {
  process.stderr.write(`${what}: killing pid ${process.pid}\n`);
  process.kill(process.pid, 'SIGKILL');
}
