// A --home another local user could reach (issue 18, item 5): the home is private (0700, files owner-only), a home
// that is not the user's own or that others may write is refused with exit 2, and the runner lock is the kernel's, so
// a stale lock never has to be broken and two runners never share a home. Real `embedctl` processes and real files.
import { spawn } from 'node:child_process';
import {
  chmodSync,
  chownSync,
  readFileSync,
  mkdirSync,
  readdirSync,
  rmSync,
  statSync,
  writeFileSync,
} from 'node:fs';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { generateReceipts } from '../../../core/sample/index.js';
import { waitFor } from '../../support/wait.js';
import { alive, cli, homeFactory, ROOT } from './cli.js';

const { tempHome, removeHomes } = homeFactory('local-shared-home-');
const started: number[] = [];
afterAll(() => {
  for (const pid of started) if (alive(pid)) process.kill(pid, 'SIGKILL');
  removeHomes();
});

function receiptFolder(): string {
  const input = join(tempHome(), 'input');
  const [r] = generateReceipts(1, 7);
  mkdirSync(join(input, 'one'), { recursive: true });
  writeFileSync(join(input, 'one', 'lines.ndjson'), r!.linesNdjson);
  writeFileSync(join(input, 'one', 'words.ndjson'), r!.wordsNdjson);
  return input;
}

/** Every path under `dir` (itself included). */
function walk(dir: string): string[] {
  return [
    dir,
    ...readdirSync(dir, { withFileTypes: true }).flatMap((e) =>
      e.isDirectory() ? walk(join(dir, e.name)) : [join(dir, e.name)],
    ),
  ];
}

/** A process holding the home's runner lock (fixtures/hold-home-lock.ts); resolves once it says locked or refused. */
function holder(
  home: string,
  holdMs = 60_000,
): Promise<{ pid: number; said: string; exited: Promise<void> }> {
  const child = spawn(
    process.execPath,
    ['--import', 'tsx', join(import.meta.dirname, 'fixtures', 'hold-home-lock.ts'), home, String(holdMs)],
    {
      cwd: ROOT,
      stdio: ['ignore', 'pipe', 'inherit'],
    },
  );
  started.push(child.pid!);
  const exited = new Promise<void>((r) => child.once('exit', () => r()));
  return new Promise((resolve) => {
    let out = '';
    child.stdout.on('data', (d: Buffer) => {
      out += d.toString();
      if (out.includes('\n')) resolve({ pid: child.pid!, said: out.trim(), exited });
    });
    child.once('exit', () => resolve({ pid: child.pid!, said: out.trim(), exited }));
  });
}

describe('a shared --home (issue 18, item 5)', () => {
  it('the home is created 0700 and everything in it is owner-only', async () => {
    const home = join(tempHome(), 'new', 'home');
    const r = await cli(['submit', receiptFolder(), '--home', home]).done;
    expect(r.code, r.stderr).toBe(0);
    expect(statSync(home).mode & 0o777).toBe(0o700);
    const paths = walk(home);
    expect(paths.some((p) => p.endsWith('queues.sqlite'))).toBe(true);
    for (const p of paths)
      expect({ p, mode: (statSync(p).mode & 0o077).toString(8) }).toEqual({ p, mode: '0' });
  });

  it('a home from before (0755) is made private on its next use', async () => {
    const home = tempHome();
    chmodSync(home, 0o755);
    const r = await cli(['submit', receiptFolder(), '--home', home]).done;
    expect(r.code, r.stderr).toBe(0);
    expect(statSync(home).mode & 0o777).toBe(0o700);
  });

  it('a group- or world-writable home, or one owned by another user, is refused with exit 2 and left as it was', async () => {
    const writable = tempHome();
    chmodSync(writable, 0o777);
    const group = tempHome();
    chmodSync(group, 0o770);
    const cases: [string, string[], RegExp][] = [
      [writable, ['submit', receiptFolder(), '--home', writable], /world-writable \(mode 777\)/],
      [writable, ['status', '--home', writable], /world-writable/],
      [group, ['local', 'run', '--home', group, '--receipts', '1'], /group-writable \(mode 770\)/],
    ];
    if (process.getuid?.() === 0) {
      const other = tempHome();
      chownSync(other, 65534, 65534);
      cases.push([other, ['status', '--home', other], /owned by uid 65534, not by you/]);
    }
    for (const [home, args, why] of cases) {
      const r = await cli(args).done;
      expect(r.code, r.stderr).toBe(2);
      expect(r.stderr.trim().split('\n')).toHaveLength(1);
      expect(r.stderr).toMatch(/is not safe to use/);
      expect(r.stderr).toMatch(why);
      expect(readdirSync(home)).toEqual([]);
    }
  });

  it('a second runner is refused while the first lives, even when runner.pid is deleted under it (a stale-lock breaker)', async () => {
    const home = tempHome();
    const first = await holder(home);
    expect(first.said).toBe('locked');
    // What a second runner breaking a "stale" lock did: it read a dead pid, then deleted the file the first one had
    // just written. The kernel's lock does not live in that file.
    rmSync(join(home, 'state', 'runner.pid'));
    const second = await holder(home, 10);
    expect(second.said).toMatch(/^refused: another local run (\(pid \d+\) )?is using/);
    const run = await cli(['local', 'run', '--home', home, '--receipts', '1']).done;
    expect(run.code, run.stderr).toBe(2);
    expect(run.stderr).toMatch(/another local run/);
    process.kill(first.pid, 'SIGKILL');
    await first.exited;
    // A runner killed with SIGKILL leaves its runner.pid behind, but not its lock: the next one takes the home.
    const other = tempHome();
    const killed = await holder(other);
    expect(killed.said).toBe('locked');
    process.kill(killed.pid, 'SIGKILL');
    await killed.exited;
    expect(readFileSync(join(other, 'state', 'runner.pid'), 'utf8')).toBe(`${killed.pid}\n`);
    const third = await holder(other, 10);
    expect(third.said).toBe('locked');
  });

  it('of many runners that find the same stale runner.pid at once, exactly one gets the home', async () => {
    const home = tempHome();
    const dead = spawn('true');
    await new Promise((r) => dead.once('exit', r));
    mkdirSync(join(home, 'state'), { recursive: true });
    writeFileSync(join(home, 'state', 'runner.pid'), `${dead.pid}\n`);
    const all = await Promise.all(Array.from({ length: 6 }, () => holder(home, 15_000)));
    expect(
      all.filter((h) => h.said === 'locked'),
      all.map((h) => h.said).join('\n'),
    ).toHaveLength(1);
    for (const h of all) if (alive(h.pid)) process.kill(h.pid, 'SIGKILL');
    await waitFor('the holders to exit', () => (all.every((h) => !alive(h.pid)) ? true : undefined), 10_000);
  });
});
