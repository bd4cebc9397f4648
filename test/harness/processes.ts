import { spawn } from 'node:child_process';
import {
  appendFileSync,
  closeSync,
  existsSync,
  mkdirSync,
  openSync,
  readFileSync,
  readdirSync,
  rmSync,
} from 'node:fs';
import { join } from 'node:path';
import { processAlive } from '../../core/local/process-alive.js';

/** One line of the run's pidfile (JSON lines). The first line records the owning Node process. */
type PidRecord = { owner: number } | { pid: number; name: string; command: string };

export interface ChildSpec {
  name: string;
  command: string;
  args: string[];
  env?: NodeJS.ProcessEnv;
  cwd?: string;
}

export interface ExitInfo {
  code: number | null;
  signal: NodeJS.Signals | null;
}

const PIDFILE = 'pids.jsonl';

function signalGroup(pid: number, signal: NodeJS.Signals): void {
  try {
    process.kill(-pid, signal);
  } catch {
    // group already gone
  }
}

function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

/** The last `lines` lines of a child's log file. */
export function logTail(path: string, lines = 40): string {
  if (!existsSync(path)) return '(no log)';
  return readFileSync(path, 'utf8').trimEnd().split('\n').slice(-lines).join('\n');
}

/** A child started in its own process group, with stdout and stderr going to `<runDir>/logs/<name>.log`. */
export class ManagedProcess {
  exitInfo: ExitInfo | undefined;
  readonly exited: Promise<ExitInfo>;

  constructor(
    readonly name: string,
    readonly pid: number,
    readonly logPath: string,
    exited: Promise<ExitInfo>,
  ) {
    this.exited = exited.then((info) => (this.exitInfo = info));
  }

  get running(): boolean {
    return this.exitInfo === undefined;
  }

  tail(lines = 40): string {
    return logTail(this.logPath, lines);
  }

  /** SIGTERM to the whole process group, SIGKILL after `graceMs`; resolves once the leader has exited. */
  async stop(graceMs = 5_000): Promise<void> {
    if (this.running) {
      signalGroup(this.pid, 'SIGTERM');
      const timer = setTimeout(() => signalGroup(this.pid, 'SIGKILL'), graceMs);
      await this.exited;
      clearTimeout(timer);
    }
    // Anything the leader left behind in its group goes too.
    signalGroup(this.pid, 'SIGKILL');
  }
}

/**
 * Starts children and remembers every PID in `<runDir>/pids.jsonl`. All children are killed (process group) on
 * `stopAll()`, and synchronously on SIGINT/SIGTERM/SIGHUP or process exit. A later run reaps the children of a run
 * whose owner died without cleaning up (see `reapStaleRuns`).
 */
export class ProcessRegistry {
  private readonly children: ManagedProcess[] = [];
  private readonly pidfile: string;
  private readonly onSignal = (signal: NodeJS.Signals): void => {
    this.emergencyCleanup();
    this.uninstall();
    // Re-raise so the default behaviour (or the next handler) still happens.
    if (process.listenerCount(signal) === 0) process.kill(process.pid, signal);
  };
  private readonly onExit = (): void => this.emergencyCleanup();
  private installed = false;

  /**
   * `handleSignals: false` leaves SIGINT/SIGTERM/SIGHUP to the caller (the real node tears down gracefully: its
   * containers live in shims outside these process groups); children are still killed on process exit.
   */
  constructor(
    readonly runDir: string,
    private readonly removeOnEmergency = true,
    private readonly handleSignals = true,
  ) {
    this.pidfile = join(runDir, PIDFILE);
    mkdirSync(join(runDir, 'logs'), { recursive: true });
    appendFileSync(this.pidfile, JSON.stringify({ owner: process.pid } satisfies PidRecord) + '\n');
    this.install();
  }

  spawn(spec: ChildSpec): ManagedProcess {
    const logPath = join(this.runDir, 'logs', `${spec.name}.log`);
    const fd = openSync(logPath, 'a');
    let child;
    try {
      child = spawn(spec.command, spec.args, {
        cwd: spec.cwd ?? this.runDir,
        env: spec.env ?? process.env,
        stdio: ['ignore', fd, fd],
        detached: true, // own process group: teardown kills the group, not just the leader
      });
    } finally {
      closeSync(fd);
    }
    const exited = new Promise<ExitInfo>((resolve) => {
      child.once('exit', (code, signal) => resolve({ code, signal }));
      child.once('error', (err) => {
        appendFileSync(logPath, `spawn error: ${err.message}\n`);
        resolve({ code: -1, signal: null });
      });
    });
    if (child.pid === undefined) {
      throw new Error(`${spec.name}: could not spawn ${spec.command}: see ${logPath}`);
    }
    const record: PidRecord = { pid: child.pid, name: spec.name, command: spec.command };
    appendFileSync(this.pidfile, JSON.stringify(record) + '\n');
    const proc = new ManagedProcess(spec.name, child.pid, logPath, exited);
    this.children.push(proc);
    return proc;
  }

  get processes(): readonly ManagedProcess[] {
    return this.children;
  }

  /** Stops every child, newest first, then asserts that none of their process groups is left. */
  async stopAll(): Promise<void> {
    for (const proc of [...this.children].reverse()) await proc.stop();
    await this.assertAllGone();
    this.uninstall();
  }

  /** Throws if any recorded PID or its process group still exists (waits briefly for the kernel to reap). */
  async assertAllGone(timeoutMs = 3_000): Promise<void> {
    const deadline = Date.now() + timeoutMs;
    let left: string[] = [];
    do {
      left = this.children
        .filter((p) => processAlive(p.pid) || processAlive(-p.pid))
        .map((p) => `${p.name} (pid ${p.pid})`);
      if (left.length === 0) return;
      await sleep(50);
    } while (Date.now() < deadline);
    throw new Error(`test environment teardown left processes running: ${left.join(', ')}`);
  }

  private emergencyCleanup(): void {
    for (const proc of this.children) signalGroup(proc.pid, 'SIGKILL');
    if (this.removeOnEmergency) rmSync(this.runDir, { recursive: true, force: true });
  }

  private install(): void {
    if (this.installed) return;
    this.installed = true;
    if (this.handleSignals) {
      for (const sig of ['SIGINT', 'SIGTERM', 'SIGHUP'] as const) process.once(sig, this.onSignal);
    }
    process.once('exit', this.onExit);
  }

  private uninstall(): void {
    if (!this.installed) return;
    this.installed = false;
    for (const sig of ['SIGINT', 'SIGTERM', 'SIGHUP'] as const) process.off(sig, this.onSignal);
    process.off('exit', this.onExit);
  }
}

/** Whether `pid` runs; a zombie (exited, not yet reaped by its new parent) counts as gone. */
function running(pid: number): boolean {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    return stat.slice(stat.lastIndexOf(')') + 2)[0] !== 'Z';
  } catch {
    return false;
  }
}

function cmdlineOf(pid: number): string[] {
  try {
    return readFileSync(`/proc/${pid}/cmdline`, 'utf8').split('\0');
  } catch {
    return [];
  }
}

/**
 * Kills children recorded by earlier runs under `parent/<prefix>*` whose owning process is gone (for example a
 * test runner killed with SIGKILL), and removes those run directories. A PID is only killed while its command line
 * still names the recorded executable (as argv[0], or argv[1] under an interpreter), so a recycled PID is left
 * alone.
 */
export function reapStaleRuns(parent: string, prefix: string): string[] {
  const reaped: string[] = [];
  let entries: string[];
  try {
    entries = readdirSync(parent).filter((e) => e.startsWith(prefix));
  } catch {
    return reaped;
  }
  for (const entry of entries) {
    const dir = join(parent, entry);
    const pidfile = join(dir, PIDFILE);
    if (!existsSync(pidfile)) continue;
    const records = readFileSync(pidfile, 'utf8')
      .split('\n')
      .filter(Boolean)
      .map((line) => JSON.parse(line) as PidRecord);
    const owner = records.find((r): r is { owner: number } => 'owner' in r);
    if (owner && running(owner.owner)) continue;
    for (const r of records) {
      if ('pid' in r && cmdlineOf(r.pid).includes(r.command)) {
        signalGroup(r.pid, 'SIGKILL');
        reaped.push(`${r.name} (pid ${r.pid})`);
      }
    }
    rmSync(dir, { recursive: true, force: true });
  }
  return reaped;
}

/**
 * Polls `probe` until it returns true. Fails early, with the tail of the child's log, when the child exits; and
 * with the last probe error when `timeoutMs` passes.
 */
export async function waitUntilReady(
  proc: ManagedProcess,
  probe: () => Promise<boolean>,
  timeoutMs: number,
  intervalMs = 100,
): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  let lastError = '';
  while (Date.now() < deadline) {
    if (!proc.running) {
      const info = proc.exitInfo;
      throw new Error(
        `${proc.name} exited during start-up (code ${info?.code}, signal ${info?.signal}); log ${proc.logPath}:\n${proc.tail()}`,
      );
    }
    try {
      if (await probe()) return;
    } catch (err) {
      lastError = (err as Error).message;
    }
    await sleep(intervalMs);
  }
  throw new Error(
    `${proc.name} not ready after ${timeoutMs} ms (last probe error: ${lastError || 'none'}); log ${proc.logPath}:\n${proc.tail()}`,
  );
}
