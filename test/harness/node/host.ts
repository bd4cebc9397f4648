import { execFile, execFileSync } from 'node:child_process';
import { existsSync, readFileSync, readdirSync, rmSync, rmdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { promisify } from 'node:util';

const execFileAsync = promisify(execFile);

/** Runs a host command and returns its stdout; throws with its stderr. */
export function sh(
  command: string,
  args: string[],
  opts: { input?: string; timeoutMs?: number } = {},
): string {
  return execFileSync(command, args, {
    encoding: 'utf8',
    input: opts.input,
    timeout: opts.timeoutMs ?? 60_000,
    stdio: ['pipe', 'pipe', 'pipe'],
  });
}

/** `sh` without blocking the event loop (long commands, e.g. an image import, while other components start). */
export async function shAsync(
  command: string,
  args: string[],
  opts: { timeoutMs?: number } = {},
): Promise<string> {
  const { stdout } = await execFileAsync(command, args, {
    encoding: 'utf8',
    timeout: opts.timeoutMs ?? 60_000,
    maxBuffer: 16 * 1024 * 1024,
  });
  return stdout;
}

/** The sysctls the kubelet (setupKernelTunables) and the CNI bridge (isGateway) change. */
export const TOUCHED_SYSCTLS = [
  'vm/overcommit_memory',
  'kernel/panic',
  'kernel/panic_on_oops',
  'net/ipv4/ip_forward',
] as const;

export function readSysctls(): Record<string, string> {
  return Object.fromEntries(TOUCHED_SYSCTLS.map((k) => [k, readFileSync(`/proc/sys/${k}`, 'utf8').trim()]));
}

export function writeSysctls(values: Record<string, string>): void {
  for (const [k, v] of Object.entries(values)) writeFileSync(`/proc/sys/${k}`, v);
}

/**
 * Host paths the kubelet, containerd and the CNI plugins use whatever their configured roots are
 * (../shared knowledge: the kubelet's device-plugin socket and container log links, containerd 1.6's shim
 * sockets and runc state, CNI netns mounts and IPAM state).
 */
export const FIXED_HOST_DIRS = [
  '/var/lib/kubelet',
  '/var/log/containers',
  '/var/log/pods',
  '/run/containerd',
  '/run/netns',
  '/var/lib/cni',
] as const;

export interface HostState {
  sysctls: Record<string, string>;
  mounts: string[];
  links: string[];
  /** Entries of FIXED_HOST_DIRS (recursively, two levels), and whether each dir exists. */
  paths: string[];
  /** `kubepods*` cgroups in every v1 hierarchy. */
  cgroups: string[];
}

function listTree(dir: string, depth: number): string[] {
  if (!existsSync(dir)) return [];
  const out = [dir];
  if (depth === 0) return out;
  let entries: string[] = [];
  try {
    entries = readdirSync(dir);
  } catch {
    return out;
  }
  for (const e of entries) out.push(...listTree(join(dir, e), depth - 1));
  return out;
}

export function captureHostState(): HostState {
  const mounts = readFileSync('/proc/self/mountinfo', 'utf8')
    .split('\n')
    .filter(Boolean)
    .map((l) => l.split(' ')[4] ?? '')
    .sort();
  const links = sh('ip', ['-o', 'link', 'show'])
    .split('\n')
    .filter(Boolean)
    .map((l) => (l.split(':')[1] ?? '').trim().split('@')[0] ?? '')
    .sort();
  const cgroups = readdirSync('/sys/fs/cgroup')
    .flatMap((h) => {
      try {
        return readdirSync(join('/sys/fs/cgroup', h))
          .filter((e) => e.startsWith('kubepods') || e === 'libpod_parent')
          .map((e) => `${h}/${e}`);
      } catch {
        return [];
      }
    })
    .sort();
  return {
    sysctls: readSysctls(),
    mounts,
    links,
    paths: FIXED_HOST_DIRS.flatMap((d) => listTree(d, 2)).sort(),
    cgroups,
  };
}

/** Human-readable differences between two host states (empty when equal). */
export function diffHostState(before: HostState, after: HostState): string[] {
  const out: string[] = [];
  for (const k of Object.keys(before.sysctls)) {
    if (before.sysctls[k] !== after.sysctls[k])
      out.push(`sysctl ${k}: ${before.sysctls[k]} -> ${after.sysctls[k]}`);
  }
  const list = (name: string, a: string[], b: string[]): void => {
    const sa = new Set(a);
    const sb = new Set(b);
    for (const x of b) if (!sa.has(x)) out.push(`${name} added: ${x}`);
    for (const x of a) if (!sb.has(x)) out.push(`${name} removed: ${x}`);
  };
  list('mount', before.mounts, after.mounts);
  list('link', before.links, after.links);
  list('path', before.paths, after.paths);
  list('cgroup', before.cgroups, after.cgroups);
  return out;
}

/** Mount points at or below any of `prefixes`, deepest first. */
export function mountsUnder(prefixes: string[]): string[] {
  return readFileSync('/proc/self/mountinfo', 'utf8')
    .split('\n')
    .map((l) => l.split(' ')[4] ?? '')
    .filter((m) => m && prefixes.some((p) => m === p || m.startsWith(p.endsWith('/') ? p : `${p}/`)))
    .sort((a, b) => b.length - a.length);
}

/** Unmounts everything at or below `prefixes` (lazily when busy); returns what it unmounted. */
export function unmountUnder(prefixes: string[]): string[] {
  const done: string[] = [];
  for (let round = 0; round < 3; round++) {
    const left = mountsUnder(prefixes);
    if (left.length === 0) break;
    for (const m of left) {
      try {
        sh('umount', [m]);
        done.push(m);
      } catch {
        try {
          sh('umount', ['-l', m]);
          done.push(m);
        } catch {
          // stacked mount; the next round takes it
        }
      }
    }
  }
  return done;
}

/**
 * Puts the host back as `before` found it: removes the cgroups, paths and links that appeared since (cgroups
 * deepest first; a cgroup dir is removed with rmdir, which the kernel refuses while a task is in it), and writes
 * back the sysctls. Mounts must already be gone (`unmountUnder`).
 */
export function restoreHostState(before: HostState, bridgeName: string): void {
  const after = captureHostState();
  for (const c of after.cgroups.filter((c) => !before.cgroups.includes(c))) {
    const root = join('/sys/fs/cgroup', c);
    const dirs = listTree(root, 8).filter((p) => {
      try {
        return readdirSync(p).includes('cgroup.procs');
      } catch {
        return false;
      }
    });
    for (const d of dirs.sort((a, b) => b.length - a.length)) {
      try {
        rmdirSync(d);
      } catch {
        // reported by diffHostState
      }
    }
  }
  const added = after.paths.filter((p) => !before.paths.includes(p)).sort((a, b) => a.length - b.length);
  const removed: string[] = [];
  for (const p of added) {
    if (removed.some((r) => p.startsWith(`${r}/`))) continue;
    rmSync(p, { recursive: true, force: true });
    removed.push(p);
  }
  if (after.links.includes(bridgeName) && !before.links.includes(bridgeName)) {
    try {
      sh('ip', ['link', 'del', bridgeName]);
    } catch {
      // reported by diffHostState
    }
  }
  writeSysctls(before.sysctls);
}
