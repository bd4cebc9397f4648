import {
  existsSync,
  mkdirSync,
  mkdtempSync,
  readFileSync,
  readdirSync,
  rmSync,
  writeFileSync,
} from 'node:fs';
import { spawn } from 'node:child_process';
import { tmpdir } from 'node:os';
import { setTimeout as sleep } from 'node:timers/promises';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { ProcessLauncher, reapOrphans } from '../../../core/local/launcher.js';

let dir: string;
beforeEach(() => (dir = mkdtempSync(join(tmpdir(), 'launcher-'))));
afterEach(() => rmSync(dir, { recursive: true, force: true }));

const node = (name: string, code: string, deadlineMs?: number) => ({
  name,
  command: process.execPath,
  args: ['-e', code, name],
  ...(deadlineMs ? { deadlineMs } : {}),
});

describe('ProcessLauncher', () => {
  it('reports exit reasons and output tails', async () => {
    const l = new ProcessLauncher({ concurrency: 3 });
    const [ok, failed, deadline] = await Promise.all([
      l.launch(node('ok', 'console.log("hello")')),
      l.launch(node('bad', 'console.error("boom"); process.exit(3)')),
      l.launch(node('slow', 'setTimeout(() => {}, 60000)', 200)),
    ]);
    expect(ok).toMatchObject({ reason: 'Completed', exitCode: 0, stdout: 'hello\n' });
    expect(failed).toMatchObject({ reason: 'Failed', exitCode: 3, stderr: 'boom\n' });
    expect(deadline).toMatchObject({ reason: 'DeadlineExceeded', signal: 'SIGKILL' });
    await l.stop();
  });

  it('runs at most `concurrency` children at once, and really in parallel', async () => {
    const l = new ProcessLauncher({ concurrency: 2 });
    let peak = 0;
    const timer = setInterval(() => (peak = Math.max(peak, l.running)), 5);
    const t0 = Date.now();
    const results = await Promise.all(
      Array.from({ length: 4 }, (_, i) => l.launch(node(`j${i}`, 'setTimeout(() => {}, 400)'))),
    );
    clearInterval(timer);
    expect(results.every((r) => r.reason === 'Completed')).toBe(true);
    expect(peak).toBe(2);
    // 4 jobs of 400 ms, 2 at a time: about 2 rounds, far less than 4 in series.
    expect(Date.now() - t0).toBeLessThan(1600 + 1500);
    await l.stop();
  });

  it('keeps a pid file per running child and removes it at exit; stop() kills running children', async () => {
    const pidDir = join(dir, 'pids');
    const l = new ProcessLauncher({ concurrency: 1, pidDir });
    const running = l.launch(node('sleeper', 'setTimeout(() => {}, 60000)'));
    while (!existsSync(join(pidDir, 'sleeper.pid'))) await new Promise((r) => setTimeout(r, 10));
    await l.stop(1000);
    expect((await running).reason).toBe('Signaled');
    expect(readdirSync(pidDir)).toEqual([]);
  });

  it('reapOrphans kills a child whose pid file and command line still match, and ignores reused pids', async () => {
    const pidDir = join(dir, 'pids');
    const orphan = spawn(process.execPath, ['-e', 'setTimeout(() => {}, 60000)', 'orphan-job-1'], {
      stdio: 'ignore',
    });
    const exited = new Promise((r) => orphan.once('exit', (_c, s) => r(s)));
    // Wait until the child has exec'd node with its own command line.
    while (!readFileSync(`/proc/${orphan.pid}/cmdline`, 'utf8').includes('orphan-job-1')) await sleep(10);
    mkdirSync(pidDir);
    writeFileSync(join(pidDir, 'orphan-job-1.pid'), `${orphan.pid}\norphan-job-1\n`);
    writeFileSync(join(pidDir, 'other.pid'), `${process.pid}\nnot-this-process-name\n`);
    expect(reapOrphans(pidDir)).toEqual(['orphan-job-1']);
    expect(await exited).toBe('SIGKILL');
    expect(readdirSync(pidDir)).toEqual([]);
  });
});
