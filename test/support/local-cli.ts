// `embedctl …` from source as a child process (what `npm run demo` runs), with a deadline, and the processes that
// still use a directory: for the local-mode tests.
import { spawn } from 'node:child_process';
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';

export const ROOT = join(import.meta.dirname, '..', '..');

export interface CliResult {
  code: number | null;
  signal: NodeJS.Signals | null;
  stdout: string;
  stderr: string;
  /** Wall time from spawn to exit. */
  ms: number;
  /** The deadline passed and the process was killed (SIGKILL, by its pid). */
  timedOut: boolean;
}

/**
 * Runs `tsx cli/main.ts …`. After `deadlineMs` the child is killed by its pid and the result says `timedOut`, so a
 * command that hangs fails its test instead of holding it up (what it started may stay: see `processesUsing`).
 */
export function cli(
  args: string[],
  opts: { env?: NodeJS.ProcessEnv; deadlineMs?: number } = {},
): { pid: number; done: Promise<CliResult> } {
  const t0 = Date.now();
  const child = spawn(process.execPath, ['--import', 'tsx', join(ROOT, 'cli', 'main.ts'), ...args], {
    cwd: ROOT,
    env: { ...process.env, LOG_LEVEL: 'warn', OPENAI_API_KEY: '', ...opts.env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let stdout = '';
  let stderr = '';
  let timedOut = false;
  child.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
  child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
  const timer = setTimeout(() => {
    timedOut = true;
    child.kill('SIGKILL');
  }, opts.deadlineMs ?? 300_000);
  return {
    pid: child.pid!,
    done: new Promise((resolve) =>
      child.once('close', (code, signal) => {
        clearTimeout(timer);
        resolve({ code, signal, stdout, stderr, ms: Date.now() - t0, timedOut });
      }),
    ),
  };
}

/** Pids of live processes (not zombies) whose command line names a path under `dir` (e.g. Chroma's `--path`). */
export function processesUsing(dir: string): number[] {
  const out: number[] = [];
  for (const name of readdirSync('/proc')) {
    if (!/^\d+$/.test(name) || Number(name) === process.pid) continue;
    try {
      if (/\) Z /.test(readFileSync(`/proc/${name}/stat`, 'utf8'))) continue;
      const cmd = readFileSync(`/proc/${name}/cmdline`, 'utf8').split('\0');
      if (cmd.some((a) => a.startsWith(dir))) out.push(Number(name));
    } catch {
      // gone meanwhile
    }
  }
  return out;
}
