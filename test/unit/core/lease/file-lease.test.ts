import { mkdtempSync, readdirSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { FileLeaseBackend } from '../../../../core/lease/file-lease.js';
import type { LeaseRecord } from '../../../../core/lease/lock.js';

const record = (holder: string, token: number): LeaseRecord => ({
  holder,
  token,
  durationMs: 1000,
  acquireTime: 1,
  renewTime: 1,
});

describe('FileLeaseBackend (generations published with link(2))', () => {
  it('compare-and-swap: a write at a stale version conflicts, also when its generation was superseded and removed', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'file-lease-'));
    const backend = new FileLeaseBackend(join(dir, 'lease.json'));
    expect(await backend.read()).toBeUndefined();
    expect(await backend.write(record('a', 1), undefined)).toBe(true);
    expect(await backend.write(record('b', 1), undefined)).toBe(false); // created already
    const v1 = (await backend.read())!.version;
    expect(await backend.write(record('a', 1), v1)).toBe(true);
    expect(await backend.write(record('b', 2), v1)).toBe(false); // generation 2 exists
    const v2 = (await backend.read())!.version;
    expect(await backend.write(record('a', 1), v2)).toBe(true);
    // Only the newest generation is kept; generation 2 is gone, so a writer still at v1 could create it again:
    // it must see generation 3 beside it and report the conflict.
    expect(readdirSync(dir)).toEqual(['lease.json.3']);
    expect(await backend.write(record('b', 2), v1)).toBe(false);
    expect((await backend.read())?.record.holder).toBe('a');
  });
});
