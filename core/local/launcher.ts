import { spawn } from 'node:child_process';
import {
  closeSync,
  constants,
  mkdirSync,
  openSync,
  readdirSync,
  readFileSync,
  readSync,
  rmSync,
  unlinkSync,
  writeSync,
} from 'node:fs';
import { join } from 'node:path';
import { childEnv } from '../child-env.js';
import { ENV } from '../config/env.js';

/** What to run: the local stand-in for a worker Job's pod template. */
export interface LaunchSpec {
  /** Unique name (the Job name); also names the pid file. */
  name: string;
  command: string;
  args: string[];
  /** Added to the minimal environment every child gets (core/child-env.ts); the launcher's own is not inherited. */
  env?: Record<string, string | undefined>;
  cwd?: string;
  /** Like activeDeadlineSeconds: SIGKILL after this long. */
  deadlineMs?: number;
}

export type LaunchReason = 'Completed' | 'Failed' | 'DeadlineExceeded' | 'Signaled';

/**
 * Set in every child's environment: its stdin is a pipe from the launcher that is never written to and closes only
 * when the launcher's process ends, however it ends (SIGKILL included). A child that sees it end has lost its parent
 * and should stop at once (local/parent-pipe.ts), as a pod's containers stop with the pod.
 */
export const PARENT_PIPE_ENV = ENV.EMBEDCTL_PARENT_PIPE;

export interface LaunchResult {
  name: string;
  pid: number;
  exitCode: number | null;
  signal: NodeJS.Signals | null;
  reason: LaunchReason;
  durationMs: number;
  /** The last few KiB of stdout / stderr, for status messages. */
  stdout: string;
  stderr: string;
}

export interface ProcessLauncherOptions {
  /** At most this many children run at once; further launches wait for a slot (the dispatch concurrency cap). */
  concurrency?: number;
  /**
   * Directory of pid files, one per running child, so a runner killed with SIGKILL can find and stop its orphans
   * on the next start (`reapOrphans`).
   */
  pidDir?: string;
  /** Bytes of stdout/stderr kept per child. */
  tailBytes?: number;
  /** Called with each chunk of a child's stderr (e.g. to forward its logs). */
  onStderr?: (name: string, chunk: string) => void;
}

/**
 * Launches child processes, standing in for Kubernetes Jobs in local mode: a concurrency cap that counts children
 * not yet running (queued launches hold no slot until they start), deadlines, exit reasons and output tails for
 * status, pid files for orphan cleanup, and every child killed when the launcher is stopped or the parent exits.
 * Each child leads its own process group, so stopping it also stops what it started; since a terminal's Ctrl-C then
 * reaches only the parent, the parent must call `stop()` on SIGINT/SIGTERM.
 */
export class ProcessLauncher {
  private readonly concurrency: number;
  private readonly waiting: (() => void)[] = [];
  private readonly children = new Map<string, ReturnType<typeof spawn>>();
  private active = 0;
  private stopped = false;
  private readonly onExit = () => this.killAllSync();

  constructor(private readonly options: ProcessLauncherOptions = {}) {
    this.concurrency = Math.max(1, options.concurrency ?? 2);
    if (options.pidDir) mkdirSync(options.pidDir, { recursive: true, mode: 0o700 });
    process.on('exit', this.onExit);
  }

  /** Children running now. */
  get running(): number {
    return this.children.size;
  }

  /** Waits for a slot, runs the child to its end, and resolves with how it ended (never rejects on a failing child). */
  async launch(spec: LaunchSpec): Promise<LaunchResult> {
    await this.acquire();
    try {
      return await this.run(spec);
    } finally {
      this.release();
    }
  }

  private async acquire(): Promise<void> {
    if (this.stopped) throw new Error('launcher is stopped');
    if (this.active < this.concurrency) {
      this.active++;
      return;
    }
    await new Promise<void>((resolve) => this.waiting.push(resolve));
    if (this.stopped) {
      this.release();
      throw new Error('launcher is stopped');
    }
  }

  private release(): void {
    const next = this.waiting.shift();
    if (next) next();
    else this.active--;
  }

  private run(spec: LaunchSpec): Promise<LaunchResult> {
    const started = Date.now();
    const tail = this.options.tailBytes ?? 8192;
    return new Promise<LaunchResult>((resolve) => {
      const child = spawn(spec.command, spec.args, {
        cwd: spec.cwd,
        env: { ...childEnv(), ...spec.env, [PARENT_PIPE_ENV]: 'stdin' },
        stdio: ['pipe', 'pipe', 'pipe'],
        // Its own process group, so the child and whatever it starts (a Chroma server) are stopped together.
        detached: true,
      });
      let stdout = '';
      let stderr = '';
      let deadlineHit = false;
      let spawnError: Error | undefined;
      // Never written and never closed by us: the kernel closes it when this process ends (PARENT_PIPE_ENV).
      child.stdin?.on('error', () => undefined);
      child.stdout?.on('data', (d: Buffer) => (stdout = (stdout + d.toString()).slice(-tail)));
      child.stderr?.on('data', (d: Buffer) => {
        const s = d.toString();
        stderr = (stderr + s).slice(-tail);
        this.options.onStderr?.(spec.name, s);
      });
      this.children.set(spec.name, child);
      const pidFile =
        this.options.pidDir && child.pid ? join(this.options.pidDir, `${spec.name}.pid`) : undefined;
      if (pidFile) writePidFile(pidFile, `${child.pid}\n${spec.name}\n`);
      const timer =
        spec.deadlineMs === undefined
          ? undefined
          : setTimeout(() => {
              deadlineHit = true;
              killGroup(child, 'SIGKILL');
            }, spec.deadlineMs);
      child.once('error', (err) => (spawnError = err));
      child.once('close', (code, signal) => {
        if (timer) clearTimeout(timer);
        this.children.delete(spec.name);
        // Whatever the child left running in its group (it died before stopping its own children) goes too. The
        // group id cannot be reused while any member lives, so this reaches only the child's own processes.
        if (child.pid !== undefined) {
          try {
            process.kill(-child.pid, 'SIGKILL');
          } catch {
            // the group is empty: nothing left behind
          }
        }
        if (pidFile) rmSync(pidFile, { force: true });
        const reason: LaunchReason = deadlineHit
          ? 'DeadlineExceeded'
          : code === 0
            ? 'Completed'
            : signal
              ? 'Signaled'
              : 'Failed';
        resolve({
          name: spec.name,
          pid: child.pid ?? -1,
          exitCode: code,
          signal,
          reason,
          durationMs: Date.now() - started,
          stdout,
          stderr: spawnError ? `${stderr}${spawnError.message}` : stderr,
        });
      });
    });
  }

  /**
   * Stops every child and refuses new launches: SIGTERM to the child alone, so it can stop what it started in order
   * (the compactor stops its Chroma servers itself); SIGKILL to its whole group after the grace period.
   */
  async stop(graceMs = 5000): Promise<void> {
    this.stopped = true;
    for (const resolve of this.waiting.splice(0)) resolve();
    const exits = [...this.children.values()].map(
      (c) =>
        new Promise<void>((resolve) => {
          if (c.exitCode !== null || c.signalCode !== null) return resolve();
          c.once('close', () => resolve());
          c.kill('SIGTERM');
          setTimeout(() => killGroup(c, 'SIGKILL'), graceMs).unref();
        }),
    );
    await Promise.all(exits);
    process.off('exit', this.onExit);
  }

  private killAllSync(): void {
    for (const c of this.children.values()) killGroup(c, 'SIGKILL');
  }
}

/** Signals the child's whole process group (it is a group leader: `detached`). */
function killGroup(child: ReturnType<typeof spawn>, signal: NodeJS.Signals): void {
  if (child.pid === undefined || child.exitCode !== null || child.signalCode !== null) return;
  signalGroupOrPid(child.pid, signal);
}

/** The group when the pid leads one, else the pid alone (a child caught before its setsid). False if gone. */
function signalGroupOrPid(pid: number, signal: NodeJS.Signals): boolean {
  for (const target of [-pid, pid]) {
    try {
      process.kill(target, signal);
      return true;
    } catch {
      // no such group / process
    }
  }
  return false;
}

/** Flags of every pid-file open: a symlink planted at the name fails the open (ELOOP) instead of being followed. */
const NOFOLLOW = constants.O_NOFOLLOW;

/**
 * Creates a pid file exclusively, never through a symlink. A leftover entry at the name (a stale file, or a link
 * someone planted) is unlinked, which removes the entry itself and never what a link points to, and the exclusive
 * create is tried once more.
 */
export function writePidFile(path: string, text: string): void {
  const flags = constants.O_WRONLY | constants.O_CREAT | constants.O_EXCL | NOFOLLOW;
  let fd: number;
  try {
    fd = openSync(path, flags, 0o600);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err;
    unlinkSync(path);
    fd = openSync(path, flags, 0o600);
  }
  try {
    writeSync(fd, text);
  } finally {
    closeSync(fd);
  }
}

/** A pid file's text, read without following a symlink and at most 4 KiB of it; undefined when it cannot be. */
function readPidFile(path: string): string | undefined {
  let fd: number;
  try {
    fd = openSync(path, constants.O_RDONLY | NOFOLLOW);
  } catch {
    return undefined;
  }
  try {
    const buf = Buffer.alloc(4096);
    return buf.subarray(0, readSync(fd, buf, 0, buf.length, 0)).toString('utf8');
  } catch {
    return undefined;
  } finally {
    closeSync(fd);
  }
}

/**
 * Whether a live process is the child a pid file names: `argv` is its real command line (/proc/<pid>/cmdline),
 * `name` the name in the file. The file is not trusted (anyone who could write the directory could have planted it),
 * so the decision is the caller's, from the command line it starts that child with.
 */
export type OrphanMatcher = (argv: string[], name: string) => boolean;

/**
 * Kills children left behind by a launcher whose process died without cleaning up (SIGKILL), using its pid files.
 * A pid is killed only while its command line is exactly what `isOurs` expects for the name (pids are reused, and a
 * planted file may name any process). Returns the names reaped.
 */
export function reapOrphans(pidDir: string, isOurs: OrphanMatcher): string[] {
  let files: string[];
  try {
    files = readdirSync(pidDir).filter((f) => f.endsWith('.pid'));
  } catch {
    return [];
  }
  const reaped: string[] = [];
  for (const f of files) {
    const path = join(pidDir, f);
    const [pidText, name] = (readPidFile(path) ?? '').split('\n');
    const pid = Number(pidText);
    const argv = Number.isInteger(pid) && pid > 0 && name ? commandLine(pid) : undefined;
    if (argv && name && isOurs(argv, name)) {
      // The launcher made it a process-group leader: its own children (a Chroma server) go with it.
      if (signalGroupOrPid(pid, 'SIGKILL')) reaped.push(name);
    }
    rmSync(path, { force: true });
  }
  return reaped;
}

/** A process's argv, from /proc (NUL-separated); undefined when it is gone. */
function commandLine(pid: number): string[] | undefined {
  try {
    const text = readFileSync(`/proc/${pid}/cmdline`, 'utf8');
    return text.endsWith('\0') ? text.slice(0, -1).split('\0') : text.split('\0');
  } catch {
    return undefined;
  }
}
