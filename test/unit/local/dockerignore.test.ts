// The image's build context leaves out local mode's state (issue 18, item 12): `COPY . .` must not carry the default
// home (receipts, queues, the ledger, snapshots) into a build stage.
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { DEFAULT_HOME } from '../../../local/home.js';

const ROOT = join(import.meta.dirname, '..', '..', '..');
const patterns = readFileSync(join(ROOT, '.dockerignore'), 'utf8')
  .split('\n')
  .map((l) => l.trim())
  .filter((l) => l && !l.startsWith('#'))
  .map((l) => l.replace(/^\/+|\/+$/g, ''));

describe('.dockerignore', () => {
  it('excludes the default local home at the root and at any depth, and re-includes nothing of it', () => {
    expect(DEFAULT_HOME).toBe('.local');
    expect(patterns).toContain(DEFAULT_HOME);
    expect(patterns).toContain(`**/${DEFAULT_HOME}`);
    expect(patterns.filter((p) => p.startsWith('!') && p.includes(DEFAULT_HOME))).toEqual([]);
  });
});
