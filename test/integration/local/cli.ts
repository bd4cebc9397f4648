// The CLI as a user runs it (`tsx cli/main.ts …`, what `npm run demo` runs), as a child process with a deadline: the
// helpers of the local-mode integration tests.
import { spawn } from 'node:child_process';
import { mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { reapLocalChildren } from '../../../local/child-argv.js';
import { homePaths } from '../../../local/home.js';

export const ROOT = join(import.meta.dirname, '..', '..', '..');

export interface CliResult {
  code: number | null;
  signal: NodeJS.Signals | null;
  stdout: string;
  stderr: string;
}

export interface Cli {
  pid: number;
  done: Promise<CliResult>;
}

/**
 * Starts `embedctl …` in its own process; killed by PID (SIGKILL) if it is still running after `timeoutMs`, and the
 * result then says so in `stderr`.
 */
export function cli(args: string[], o: { timeoutMs?: number; env?: NodeJS.ProcessEnv } = {}): Cli {
  const child = spawn(process.execPath, ['--import', 'tsx', join(ROOT, 'cli', 'main.ts'), ...args], {
    cwd: ROOT,
    env: { ...process.env, LOG_LEVEL: 'warn', OPENAI_API_KEY: '', ...o.env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let stdout = '';
  let stderr = '';
  child.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
  child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
  const timeoutMs = o.timeoutMs ?? 60_000;
  let timedOut = false;
  const timer = setTimeout(() => {
    timedOut = true;
    child.kill('SIGKILL');
  }, timeoutMs);
  return {
    pid: child.pid!,
    done: new Promise((resolve) =>
      child.once('close', (code, signal) => {
        clearTimeout(timer);
        resolve({
          code,
          signal,
          stdout,
          stderr: timedOut ? `${stderr}\n[test: killed after ${timeoutMs} ms]` : stderr,
        });
      }),
    ),
  };
}

/** Temp homes of a test file, removed (their children reaped, if a test failed midway) by `removeHomes`. */
export function homeFactory(prefix: string): { tempHome(): string; removeHomes(): void } {
  const homes: string[] = [];
  return {
    tempHome() {
      const h = mkdtempSync(join(tmpdir(), prefix));
      homes.push(h);
      return h;
    },
    removeHomes() {
      for (const h of homes) {
        reapLocalChildren(homePaths(h));
        rmSync(h, { recursive: true, force: true });
      }
    },
  };
}

/** Every live process whose process group is `pgid` (a launcher child leads its own group; its Chroma servers join it). */
export function groupMembers(pgid: number): number[] {
  const out: number[] = [];
  for (const e of readdirSync('/proc')) {
    if (!/^\d+$/.test(e)) continue;
    try {
      const stat = readFileSync(`/proc/${e}/stat`, 'utf8');
      // pid (comm) state ppid pgrp …: comm may hold spaces and parentheses, so split after the last ')'.
      const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
      if (fields[0] !== 'Z' && Number(fields[2]) === pgid) out.push(Number(e));
    } catch {
      // exited meanwhile
    }
  }
  return out;
}

export function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
  } catch {
    return false;
  }
  // A zombie (exited, not yet reaped by its parent) is not alive.
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    return stat.slice(stat.lastIndexOf(')') + 2)[0] !== 'Z';
  } catch {
    return false;
  }
}
