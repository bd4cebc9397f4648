// Process lifetime in local mode (issue 12, items 4 and 5): the runner's children (workers, the compactor and the
// Chroma servers they start) die with the runner, `status` says when the runner is gone, and a killed compactor child
// is restarted like a Deployment restarts its pod.
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { COLLECTIONS } from '../../../core/contracts/ids.js';
import { LocalJobTable } from '../../../core/local/job-table.js';
import { generateReceipts } from '../../../core/sample/index.js';
import type { RunSummary } from '../../../local/run.js';
import { expectedIds, liveIds } from '../../support/snapshot.js';
import { waitFor } from '../../support/wait.js';
import { alive, cli, groupMembers, homeFactory } from './cli.js';

const { tempHome, removeHomes } = homeFactory('local-lifetime-');
afterAll(removeHomes);

const TIMEOUT = 600_000;

function counts(home: string): Record<string, number> | undefined {
  const db = join(home, 'state', 'jobs.sqlite');
  if (!existsSync(db)) return undefined;
  const jobs = LocalJobTable.open(db);
  try {
    return jobs.counts();
  } finally {
    jobs.db.close();
  }
}

/** Pids of the runner's children now: name → pid, from their pid files. */
function children(home: string): Record<string, number> {
  const dir = join(home, 'pids');
  if (!existsSync(dir)) return {};
  const out: Record<string, number> = {};
  for (const f of readdirSync(dir)) {
    try {
      const [pid, name] = readFileSync(join(dir, f), 'utf8').split('\n');
      if (name) out[name] = Number(pid);
    } catch {
      // removed meanwhile
    }
  }
  return out;
}

const runArgs = (home: string, n: number) => [
  'local',
  'run',
  '--home',
  home,
  '--receipts',
  String(n),
  '--batch-size',
  '2',
  '--concurrency',
  '2',
  '--no-queries',
  '--timeout',
  '240',
];

describe('local run: process lifetime', () => {
  it(
    'a SIGKILLed runner takes its workers, compactor and Chroma servers with it; status says the runner is not alive',
    async () => {
      const home = tempHome();
      const run = cli(runArgs(home, 16), { timeoutMs: 300_000 });
      // Mid-way: some jobs done, a worker and the compactor (with its two Chroma servers) running.
      const procs = await waitFor(
        'the run to be mid-way with a worker and the compactor running',
        () => {
          const c = counts(home);
          const kids = children(home);
          if (!c || c.Succeeded! < 2 || !kids.compactor) return undefined;
          if (!Object.keys(kids).some((k) => k.startsWith('ejw-'))) return undefined;
          const members = Object.values(kids).flatMap((pid) => groupMembers(pid));
          // The compactor's group holds it and its Chroma servers.
          return groupMembers(kids.compactor).length >= 3 ? members : undefined;
        },
        240_000,
        50,
      );
      process.kill(run.pid, 'SIGKILL');
      expect((await run.done).signal).toBe('SIGKILL');
      await waitFor(
        'every child of the killed runner to exit',
        () => (procs.every((p) => !alive(p)) ? true : undefined),
        10_000,
      );

      const status = await cli(['status', '--home', home]).done;
      expect(status.stdout).toMatch(/runner \(pid \d+\) is not alive/);
      const json = JSON.parse((await cli(['status', '--home', home, '--json']).done).stdout) as {
        runner: { pid?: number; alive: boolean };
        jobs: { phase: string }[];
      };
      expect(json.runner).toEqual({ pid: run.pid, alive: false });
    },
    TIMEOUT,
  );

  it(
    'a killed compactor child is restarted with backoff and the run completes with exact counts',
    async () => {
      const home = tempHome();
      const n = 12;
      const run = cli([...runArgs(home, n), '--json'], { timeoutMs: 300_000 });
      const first = await waitFor(
        'the compactor to have compacted something',
        () => {
          const pid = children(home).compactor;
          const c = counts(home);
          return pid && c && c.Succeeded! >= 2 ? pid : undefined;
        },
        240_000,
        50,
      );
      process.kill(first, 'SIGKILL');
      const second = await waitFor(
        'a new compactor child',
        () => {
          const pid = children(home).compactor;
          return pid && pid !== first ? pid : undefined;
        },
        30_000,
        50,
      );
      expect(second).not.toBe(first);
      const res = await run.done;
      expect(res.code, res.stderr.slice(-3000)).toBe(0);
      const summary = JSON.parse(res.stdout) as RunSummary;
      expect(summary.complete).toBe(true);
      expect(summary.compactor.restarts).toBe(1);
      expect(summary.compactor.lastExit).toMatch(/SIGKILL/);
      const want = expectedIds(generateReceipts(n, 1));
      const live = await liveIds(join(home, 'volume'));
      for (const c of COLLECTIONS) {
        expect(summary.vectors[c]).toEqual({ snapshot: want[c].size, expected: want[c].size });
        expect(live[c].ids).toEqual(want[c]);
      }
    },
    TIMEOUT,
  );
});
