/**
 * Where a run's CPU went, for the "what bounds this figure" lines: CPU seconds per class of process between two
 * snapshots, and how busy the machine was. Linux /proc only; a process that exits between the snapshots counts
 * only through a cgroup (the node's pods: cgroup v1 `cpuacct` of `kubepods`), so classify long-lived servers.
 */
import { readdirSync, readFileSync } from 'node:fs';

const TICKS_PER_S = 100; // USER_HZ: 100 on every Linux architecture Node supports

export interface CpuSnapshot {
  /** utime+stime per class, seconds. */
  byClass: Map<string, number>;
  /** Machine totals from /proc/stat, seconds summed over CPUs. */
  busyS: number;
  totalS: number;
  /** CPU seconds of every pod of the node (cumulative, survives pod exits). */
  podsS: number;
}

/** Returns a class name for a process (by its command line), or undefined to leave it out. */
export type Classify = (cmdline: string, pid: number) => string | undefined;

export function cpuSnapshot(classify: Classify): CpuSnapshot {
  const byClass = new Map<string, number>();
  for (const pid of readdirSync('/proc').filter((d) => /^\d+$/.test(d))) {
    try {
      const cls = classify(readFileSync(`/proc/${pid}/cmdline`, 'utf8').replaceAll('\0', ' '), Number(pid));
      if (!cls) continue;
      // Own time only: reaped children are counted where they ran instead.
      byClass.set(cls, (byClass.get(cls) ?? 0) + processCpuS(pid, false));
    } catch {
      // exited while we looked
    }
  }
  const cpu = readFileSync('/proc/stat', 'utf8').split('\n')[0]!.split(/\s+/).slice(1).map(Number);
  const idle = cpu[3]! + cpu[4]!; // idle + iowait
  const total = cpu.slice(0, 8).reduce((a, b) => a + b, 0);
  let podsS = 0;
  try {
    podsS = Number(readFileSync('/sys/fs/cgroup/cpuacct/kubepods/cpuacct.usage', 'utf8')) / 1e9;
  } catch {
    // no node, or not cgroup v1
  }
  return { byClass, busyS: (total - idle) / TICKS_PER_S, totalS: total / TICKS_PER_S, podsS };
}

/** CPU seconds per class (and `pods`) spent between two snapshots, plus the machine's busy share. */
export function cpuSpent(
  a: CpuSnapshot,
  b: CpuSnapshot,
): { seconds: Map<string, number>; busyShare: number } {
  const seconds = new Map<string, number>();
  for (const [cls, s] of b.byClass) seconds.set(cls, s - (a.byClass.get(cls) ?? 0));
  seconds.set('pods', b.podsS - a.podsS);
  return { seconds, busyShare: (b.busyS - a.busyS) / (b.totalS - a.totalS) };
}

/** This process's CPU seconds including its reaped children (and theirs): local mode's whole cost. */
export function ownCpuS(): number {
  return processCpuS('self', true);
}

/** utime + stime (fields 14–15 of /proc/<pid>/stat), plus cutime + cstime (16–17) of reaped children if asked. */
function processCpuS(pid: string, withChildren: boolean): number {
  const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
  const f = stat
    .slice(stat.lastIndexOf(')') + 2)
    .split(' ')
    .map(Number);
  return (f[11]! + f[12]! + (withChildren ? f[13]! + f[14]! : 0)) / TICKS_PER_S;
}
