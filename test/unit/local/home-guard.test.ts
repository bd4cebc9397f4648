// Which homes are safe (issue 18, item 5): the pure decision, and ensureHome on real directories.
import { chmodSync, lstatSync, mkdirSync, mkdtempSync, rmSync, symlinkSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { ConfigError } from '../../../core/errors.js';
import { ensureHome, homeProblem } from '../../../local/home-guard.js';

let dir: string;
beforeEach(() => (dir = mkdtempSync(join(tmpdir(), 'home-guard-'))));
afterEach(() => rmSync(dir, { recursive: true, force: true }));

const facts = (over: Partial<Parameters<typeof homeProblem>[0]> = {}) => ({
  isDirectory: true,
  isSymbolicLink: false,
  uid: 1000,
  mode: 0o40700,
  ...over,
});

describe('homeProblem', () => {
  it('accepts a directory of ours that only we may write, whatever others may read', () => {
    expect(homeProblem(facts(), 1000)).toBeUndefined();
    expect(homeProblem(facts({ mode: 0o40755 }), 1000)).toBeUndefined();
  });
  it('refuses a symlink, a file, another owner, group- or world-writable', () => {
    expect(homeProblem(facts({ isSymbolicLink: true, isDirectory: false }), 1000)).toMatch(/symbolic link/);
    expect(homeProblem(facts({ isDirectory: false }), 1000)).toMatch(/not a directory/);
    expect(homeProblem(facts({ uid: 0 }), 1000)).toBe('it is owned by uid 0, not by you (uid 1000)');
    expect(homeProblem(facts({ mode: 0o40770 }), 1000)).toBe('it is group-writable (mode 770)');
    expect(homeProblem(facts({ mode: 0o41777 }), 1000)).toBe('it is world-writable (mode 777)');
  });
});

describe('ensureHome', () => {
  it('creates a missing home 0700 and makes an existing 0755 one private', () => {
    const fresh = join(dir, 'a', 'home');
    ensureHome(fresh);
    expect(lstatSync(fresh).mode & 0o777).toBe(0o700);
    const old = join(dir, 'old');
    mkdirSync(old);
    chmodSync(old, 0o755);
    ensureHome(old);
    expect(lstatSync(old).mode & 0o777).toBe(0o700);
  });
  it('refuses a symlinked or world-writable home with a ConfigError (exit 2) and changes nothing', () => {
    const target = join(dir, 'target');
    mkdirSync(target, { mode: 0o700 });
    symlinkSync(target, join(dir, 'link'));
    expect(() => ensureHome(join(dir, 'link'))).toThrow(ConfigError);
    const open = join(dir, 'open');
    mkdirSync(open);
    chmodSync(open, 0o777);
    expect(() => ensureHome(open)).toThrow(/is not safe to use: it is world-writable/);
    expect(lstatSync(open).mode & 0o777).toBe(0o777);
  });
});
