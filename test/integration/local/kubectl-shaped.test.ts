// `embedctl get|describe|wait` on a real home (issue 16 part 3): get exits 0 whatever the jobs say, wait is the verb
// that fails, --watch prints a job again when it changes. Each command is a real `embedctl` process.
import { afterAll, describe, expect, it } from 'vitest';
import { openLocal } from '../../../local/home.js';
import { spawn } from 'node:child_process';
import { join } from 'node:path';
import { cli, homeFactory, ROOT } from './cli.js';

const { tempHome, removeHomes } = homeFactory('local-kubectl-');
afterAll(removeHomes);

const IMAGE = '3f2a9c1e-8b7d-4e6f-9a0b-1c2d3e4f5a6b';
const message = (n: number) => ({
  image_id: IMAGE,
  receipt_id: n,
  artifacts_bucket: 'receipts',
  lines_key: `receipts/${n}/lines.ndjson`,
  words_key: `receipts/${n}/words.ndjson`,
});

/** A home with one Pending and one Failed job; returns their names. */
function homeWithJobs(): { home: string; pending: string; failed: string } {
  const home = tempHome();
  const ports = openLocal(home);
  try {
    const pending = ports.jobs.createFromMessage(message(1), 'manual').name;
    const failed = ports.jobs.createFromMessage(message(2), 'manual').name;
    ports.jobs.fail(failed, 'BadInput', 'lines.ndjson row 3: text is missing');
    return { home, pending, failed };
  } finally {
    ports.close();
  }
}

describe('kubectl-shaped commands on a local home', () => {
  it('get exits 0 with a failed job, -o wide adds its reason; status and wait exit 1', async () => {
    const { home, pending, failed } = homeWithJobs();
    const run = (...args: string[]) => cli([...args, '--home', home]).done;
    const [table, wide, json, status, wait, describeJob] = await Promise.all([
      run('get', 'jobs'),
      run('get', 'jobs', '-o', 'wide'),
      run('get', 'ej', '-o', 'json'),
      run('status'),
      run('wait', '--for=condition=Compacted', '--timeout=5s'),
      run('describe', 'job', failed),
    ]);
    expect(table.code, table.stderr).toBe(0);
    expect(table.stdout).toMatch(new RegExp(`^${failed}\\s+Failed\\s+0\\s+\\S+$`, 'm'));
    expect(wide.code).toBe(0);
    expect(wide.stdout).toMatch(new RegExp(`^${failed}\\s+Failed.*BadInput\\s+lines\\.ndjson row 3`, 'm'));
    const list = JSON.parse(json.stdout) as { kind: string; items: { metadata: { name: string } }[] };
    expect(list.kind).toBe('List');
    expect(list.items.map((i) => i.metadata.name).sort()).toEqual([pending, failed].sort());
    expect(status.code).toBe(1);
    expect(wait.code).toBe(1);
    expect(wait.stdout).toContain(`embeddingjob/${failed} failed`);
    expect(describeJob.code).toBe(0);
    expect(describeJob.stdout).toMatch(/^Phase:\s+Failed$/m);
  });

  it('wait on a named job that does not get there exits 1 on timeout, naming it', async () => {
    const { home, pending } = homeWithJobs();
    const timeout = await cli(['wait', pending, '--for=condition=Succeeded', '--timeout=1s', '--home', home])
      .done;
    expect(timeout.code).toBe(1);
    expect(timeout.stdout).toContain(`timed out waiting for condition Succeeded on embeddingjob/${pending}`);
  });

  it('get jobs --watch prints a job again when it changes, under the first header', async () => {
    const { home, pending } = homeWithJobs();
    const child = spawn(
      process.execPath,
      [
        '--import',
        'tsx',
        join(ROOT, 'cli', 'main.ts'),
        'get',
        'jobs',
        '--watch',
        '--interval',
        '1',
        '--home',
        home,
      ],
      { cwd: ROOT, env: { ...process.env, LOG_LEVEL: 'warn' }, stdio: ['ignore', 'pipe', 'inherit'] },
    );
    let stdout = '';
    const waiters: (() => void)[] = [];
    child.stdout.on('data', (d: Buffer) => {
      stdout += d.toString();
      for (const w of waiters.splice(0)) w();
    });
    /** Resolves once stdout matches `re` (the test's timeout ends a wait that never does). */
    const printed = async (re: RegExp) => {
      while (!re.test(stdout)) await new Promise<void>((r) => waiters.push(r));
    };
    try {
      await printed(new RegExp(`^${pending}\\s+Pending`, 'm'));
      const ports = openLocal(home);
      try {
        ports.jobs.fail(pending, 'SourceMissing', 'gone');
      } finally {
        ports.close();
      }
      await printed(new RegExp(`^${pending}\\s+Failed`, 'm'));
    } finally {
      child.kill('SIGKILL');
    }
    const lines = stdout.trim().split('\n');
    expect(lines.filter((l) => l.startsWith('NAME'))).toHaveLength(1);
    expect(lines.at(-1)).toMatch(new RegExp(`^${pending}\\s+Failed`));
    expect(lines.at(-1)!.indexOf('Failed')).toBe(lines[0]!.indexOf('PHASE'));
  }, 30_000);
});
