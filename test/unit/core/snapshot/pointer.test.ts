import { mkdirSync, mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { DirectoryObjectStore } from '../../../../core/local/dir-store.js';
import { readPointer, uploadSnapshot } from '../../../../core/snapshot/s3-snapshot.js';

// The directory store (local mode) has no conditional write: the pointer is read, compared and written (the S3
// compare-and-swap is tested against moto in test/integration/core/snapshot-pointer.test.ts).
describe('uploadSnapshot on the directory store', () => {
  it('never moves the pointer to an older version', async () => {
    const root = mkdtempSync(join(tmpdir(), 'store-'));
    mkdirSync(join(root, 'vectors'));
    const store = new DirectoryObjectStore(root);
    const dir = mkdtempSync(join(tmpdir(), 'src-'));
    writeFileSync(join(dir, 'chroma.sqlite3'), 'db');
    const [a, b] = ['20260101T000000000Z-aaaaaa', '20260101T000005000Z-bbbbbb'];
    expect(await uploadSnapshot(store, 'vectors', 'lines', b, dir)).toMatchObject({
      pointer: b,
      moved: true,
    });
    expect(await uploadSnapshot(store, 'vectors', 'lines', a, dir)).toMatchObject({
      pointer: b,
      moved: false,
    });
    expect(await readPointer(store, 'vectors', 'lines')).toBe(b);
    let asserted = 0;
    const c = '20260101T000009000Z-cccccc';
    const moved = await uploadSnapshot(store, 'vectors', 'lines', c, dir, {
      assertHeld: async () => void asserted++,
    });
    expect(moved).toMatchObject({ pointer: c, moved: true });
    expect(asserted).toBe(1);
  });
});
