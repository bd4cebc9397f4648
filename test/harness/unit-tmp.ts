import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

/**
 * Global setup of the unit project: every temporary file the tests make goes under one directory of this run
 * (TMPDIR, which os.tmpdir() reads and the test workers inherit), removed at the end, so unit tests leave nothing in
 * the machine's /tmp even when a test forgets its own clean-up or fails midway.
 */
export default function setup(): () => void {
  const dir = mkdtempSync(join(tmpdir(), 'embedctl-unit-'));
  const before = process.env.TMPDIR;
  process.env.TMPDIR = dir;
  return () => {
    if (before === undefined) delete process.env.TMPDIR;
    else process.env.TMPDIR = before;
    rmSync(dir, { recursive: true, force: true });
  };
}
