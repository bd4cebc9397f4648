import { readFileSync } from 'node:fs';
import { PARENT_PIPE_ENV } from '../core/local/launcher.js';
import { processEnv } from '../core/config/env.js';

/**
 * A child of `local run` (a worker or the compactor) dies with the runner. The launcher gives each child a stdin pipe
 * it never writes to (core/local/launcher.ts, PARENT_PIPE_ENV); when the runner's process ends, however it ends, the
 * kernel closes the pipe and the child sees end-of-file. The child then kills its own process group at once: itself
 * and the Chroma servers it started (it leads the group: the launcher starts it detached). Nothing is lost by not
 * shutting down in order: every step of the pipeline survives a SIGKILL (the crash matrix), and the next run reaps
 * and resumes. The pipe holds no event-loop reference, so it never keeps a finished child alive.
 */
export function exitWithParent(): void {
  if (processEnv()[PARENT_PIPE_ENV] !== 'stdin') return; // started by hand: nothing to watch
  const stdin = process.stdin;
  const gone = () => {
    // No logging: stderr is a pipe to the dead runner too.
    try {
      process.kill(leadsGroup() ? -process.pid : process.pid, 'SIGKILL');
    } catch {
      process.exit(1);
    }
  };
  stdin.once('end', gone);
  stdin.once('error', gone);
  stdin.on('data', () => undefined); // never written; reading is what notices the end
  stdin.unref?.();
}

function leadsGroup(): boolean {
  try {
    const stat = readFileSync('/proc/self/stat', 'utf8');
    const [, , pgrp] = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    return Number(pgrp) === process.pid;
  } catch {
    return false;
  }
}
