import {
  existsSync,
  lstatSync,
  mkdirSync,
  mkdtempSync,
  readFileSync,
  readdirSync,
  rmSync,
  symlinkSync,
  writeFileSync,
} from 'node:fs';
import { spawn } from 'node:child_process';
import { tmpdir } from 'node:os';
import { setTimeout as sleep } from 'node:timers/promises';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { ProcessLauncher, reapOrphans } from '../../../core/local/launcher.js';
import { CACHE } from '../../../local/child-bundle.js';
import { isLocalChild, reapLocalChildren } from '../../../local/child-argv.js';
import { homePaths } from '../../../local/home.js';
import { childCommand, childEntry } from '../../../local/run.js';

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

  it('reapOrphans kills a child whose command line is exactly the expected one, and ignores reused pids', async () => {
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
    const expected = (name: string) => [process.execPath, '-e', 'setTimeout(() => {}, 60000)', name];
    const isOurs = (argv: string[], name: string) => JSON.stringify(argv) === JSON.stringify(expected(name));
    expect(reapOrphans(pidDir, isOurs)).toEqual(['orphan-job-1']);
    expect(await exited).toBe('SIGKILL');
    expect(readdirSync(pidDir)).toEqual([]);
  });
});

// A home another local user could write (issue 18, item 5): planted pid files and symlinks.
describe('pid files in a directory someone else could write', () => {
  it('a pid file is never written through a symlink planted at its name', async () => {
    const pidDir = join(dir, 'pids');
    mkdirSync(pidDir);
    const victim = join(dir, 'victim.txt');
    writeFileSync(victim, 'precious\n');
    symlinkSync(victim, join(pidDir, 'compactor.pid'));
    const l = new ProcessLauncher({ concurrency: 1, pidDir });
    const running = l.launch(node('compactor', 'setTimeout(() => {}, 60000)'));
    const pidFile = join(pidDir, 'compactor.pid');
    while (!existsSync(pidFile) || lstatSync(pidFile).isSymbolicLink()) await sleep(10);
    expect(readFileSync(victim, 'utf8')).toBe('precious\n');
    expect(lstatSync(pidFile).isFile()).toBe(true);
    expect(readFileSync(pidFile, 'utf8')).toMatch(/^\d+\ncompactor\n$/);
    expect(lstatSync(pidFile).mode & 0o077).toBe(0);
    await l.stop(1000);
    await running;
    expect(readFileSync(victim, 'utf8')).toBe('precious\n');
  });

  it('a planted pid file naming an unrelated process does not get it killed (local run reaping)', async () => {
    const home = join(dir, 'home');
    const pidDir = join(home, 'pids');
    mkdirSync(pidDir, { recursive: true });
    const victim = spawn('sleep', ['30'], { stdio: 'ignore', detached: true });
    const pid = victim.pid!;
    try {
      while (!readFileSync(`/proc/${pid}/cmdline`, 'utf8').startsWith('sleep')) await sleep(10);
      // The audit's plant: a name contained in any command line, and the victim's own words.
      writeFileSync(join(pidDir, 'x.pid'), `${pid}\n/\n`);
      writeFileSync(join(pidDir, 'sleep.pid'), `${pid}\nsleep\n`);
      writeFileSync(join(pidDir, 'compactor.pid'), `${pid}\ncompactor\n`);
      symlinkSync(join(dir, 'nowhere'), join(pidDir, 'link.pid'));
      expect(reapLocalChildren(homePaths(home))).toEqual([]);
      await sleep(100);
      expect(alive(pid)).toBe(true);
      expect(readdirSync(pidDir)).toEqual([]);
    } finally {
      process.kill(pid, 'SIGKILL');
    }
  });

  it('isLocalChild accepts what local run really starts (childEntry + childCommand), from source and from the bundle', () => {
    const home = '/home/u/.local';
    for (const self of [
      childEntry(),
      { command: process.execPath, args: [join(CACHE, 'child-0123456789abcdef', 'child-main.mjs')] },
    ]) {
      const c = childCommand(self, ['compactor', '--home', home]);
      const w = childCommand(self, [
        'worker',
        '--home',
        home,
        '--worker-job',
        'ejw-1',
        '--jobs',
        'a,b',
        '--no-places',
      ]);
      expect(isLocalChild([c.command, ...c.args], 'compactor', home)).toBe(true);
      expect(isLocalChild([w.command, ...w.args], 'ejw-1', home)).toBe(true);
    }
  });

  it('isLocalChild accepts exactly the command lines local run starts its children with', () => {
    const home = '/home/u/.local';
    const entry = fileURLToPath(new URL('../../../local/child-main.ts', import.meta.url));
    const bundle = join(CACHE, 'child-0123456789abcdef', 'child-main.mjs');
    const node = process.execPath;
    const worker = ['worker', '--home', home, '--worker-job', 'ejw-1', '--jobs', 'ej-a,ej-b'];
    expect(isLocalChild([node, bundle, 'compactor', '--home', home], 'compactor', home)).toBe(true);
    expect(
      isLocalChild([node, '--import', 'tsx', entry, 'compactor', '--home', home], 'compactor', home),
    ).toBe(true);
    expect(isLocalChild([node, bundle, ...worker], 'ejw-1', home)).toBe(true);
    expect(isLocalChild([node, bundle, ...worker, '--no-places'], 'ejw-1', home)).toBe(true);
    for (const argv of [
      ['sleep', '30'],
      [node, '-e', 'compactor', '--home', home],
      [node, '/tmp/child-main.mjs', 'compactor', '--home', home],
      ['/usr/bin/python3', bundle, 'compactor', '--home', home],
      [node, bundle, 'compactor', '--home', '/other/home'],
      [node, bundle, 'compactor', '--home', home, '--extra'],
      [node, bundle, ...worker, '--evil'],
    ])
      expect({
        argv,
        ok: isLocalChild(argv, 'compactor', home) || isLocalChild(argv, 'ejw-1', home),
      }).toEqual({
        argv,
        ok: false,
      });
    // Right command line, wrong name in the pid file.
    expect(isLocalChild([node, bundle, ...worker], 'ejw-2', home)).toBe(false);
    expect(isLocalChild([node, bundle, 'compactor', '--home', home], 'ejw-1', home)).toBe(false);
  });
});

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    return stat.slice(stat.lastIndexOf(')') + 2)[0] !== 'Z';
  } catch {
    return false;
  }
}
