import { describe, expect, it } from 'vitest';
import { mkdtempSync, mkdirSync, readdirSync, utimesSync, writeFileSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { createHash } from 'node:crypto';
import { join } from 'node:path';
import {
  copyCurrentTo,
  copyVersion,
  CurrentMovedError,
  VERSION_INFO,
  installVersion,
  listVersions,
  newVersionId,
  pruneVersions,
  readCurrent,
  readCurrentText,
  switchCurrent,
  versionDir,
} from '../../../../core/snapshot/volume.js';
import { LeaseLostError } from '../../../../core/lease/lease.js';

function chromaDir(content: string): string {
  const d = mkdtempSync(join(tmpdir(), 'src-'));
  mkdirSync(join(d, 'seg'));
  writeFileSync(join(d, 'chroma.sqlite3'), content);
  writeFileSync(join(d, 'seg', 'data_level0.bin'), content.repeat(3));
  return d;
}

describe('snapshot volume layout', () => {
  it('installs immutable versions, switches CURRENT atomically, copies the live one', async () => {
    const root = mkdtempSync(join(tmpdir(), 'vol-'));
    expect(await readCurrent(root, 'lines')).toBeUndefined();
    expect(await copyCurrentTo(root, 'lines', join(root, 'scratch'))).toBeUndefined();

    const v1 = newVersionId(new Date('2026-01-01T00:00:00Z'));
    await installVersion(root, 'lines', v1, chromaDir('one'));
    await switchCurrent(root, 'lines', v1, { expected: undefined });
    const v2 = newVersionId(new Date('2026-01-01T00:00:01Z'));
    await installVersion(root, 'lines', v2, chromaDir('two'));
    // Installed but not switched: readers still see v1.
    expect(await readCurrent(root, 'lines')).toBe(v1);
    const copy = await copyCurrentTo(root, 'lines', join(root, 'scratch'));
    expect(copy?.version).toBe(v1);
    expect(readFileSync(join(copy!.dir, 'chroma.sqlite3'), 'utf8')).toBe('one');

    await switchCurrent(root, 'lines', v2, { expected: v1 });
    expect(await readCurrent(root, 'lines')).toBe(v2);
    expect(await listVersions(root, 'lines')).toEqual([v1, v2]);
    // No temp files or staging directories are left behind.
    expect(readdirSync(join(root, 'lines')).sort()).toEqual(['CURRENT', 'versions']);
    expect(readdirSync(join(root, 'lines', 'versions')).sort()).toEqual([v1, v2]);
  });

  it('a reader copy is checked against the digests recorded at publish: a changed byte is refused', async () => {
    const src = chromaDir('published bytes');
    const sha = (f: string) =>
      createHash('sha256')
        .update(readFileSync(join(src, f)))
        .digest('hex');
    const files = {
      'chroma.sqlite3': sha('chroma.sqlite3'),
      'seg/data_level0.bin': sha('seg/data_level0.bin'),
    };
    writeFileSync(join(src, VERSION_INFO), JSON.stringify({ version: 'v', files }));
    const dest = mkdtempSync(join(tmpdir(), 'copy-'));
    await copyVersion(src, join(dest, 'ok'));
    expect(readFileSync(join(dest, 'ok', 'seg', 'data_level0.bin'), 'utf8')).toBe(
      'published bytes'.repeat(3),
    );

    writeFileSync(join(src, 'seg', 'data_level0.bin'), 'Published bytes'.repeat(3)); // bit rot, torn write…
    await expect(copyVersion(src, join(dest, 'bad'))).rejects.toThrow(
      /does not match its recorded digests: seg\/data_level0\.bin differs/,
    );
    writeFileSync(join(src, 'seg', 'data_level0.bin'), 'published bytes'.repeat(3));
    writeFileSync(join(src, 'seg', 'extra.bin'), 'not published');
    await expect(copyVersion(src, join(dest, 'extra'))).rejects.toThrow(/seg\/extra\.bin unexpected/);
  });

  it('version ids sort by time', () => {
    const a = newVersionId(new Date('2026-01-01T00:00:00.001Z'));
    const b = newVersionId(new Date('2026-01-01T00:00:00.002Z'));
    expect([b, a].sort()).toEqual([a, b]);
  });

  it('prunes only versions beyond keep, older than the grace period, never CURRENT', async () => {
    const root = mkdtempSync(join(tmpdir(), 'vol-'));
    const versions = [1, 2, 3, 4].map((s) => newVersionId(new Date(`2026-01-01T00:00:0${s}Z`)));
    for (const v of versions) await installVersion(root, 'words', v, chromaDir(v));
    await switchCurrent(root, 'words', versions[0]!, { expected: undefined }); // an old version can still be CURRENT (e.g. after a restore)
    const now = Date.now();
    const old = new Date(now - 3_600_000);
    utimesSync(versionDir(root, 'words', versions[1]!), old, old);
    const removed = await pruneVersions(root, 'words', { keep: 2, graceMs: 600_000, now });
    // versions[0] is CURRENT, versions[1] is past grace, the newest two are kept.
    expect(removed).toEqual([versions[1]]);
    expect(await listVersions(root, 'words')).toEqual([versions[0], versions[2], versions[3]]);
  });

  it('switchCurrent is a compare-and-swap: CURRENT moved by another writer is not overwritten (CurrentMovedError)', async () => {
    const root = mkdtempSync(join(tmpdir(), 'vol-'));
    const [v1, v2, v3] = [1, 2, 3].map((s) => newVersionId(new Date(`2026-01-01T00:00:0${s}Z`)));
    for (const v of [v1!, v2!, v3!]) await installVersion(root, 'lines', v, chromaDir(v));
    await switchCurrent(root, 'lines', v1!, { expected: undefined });
    // This writer read v1 and prepared v2; meanwhile another writer (an unfenced restore) moved CURRENT to v3.
    const expected = await readCurrent(root, 'lines');
    await switchCurrent(root, 'lines', v3!, { expected: v1 });
    const err = await switchCurrent(root, 'lines', v2!, { expected }).then(
      () => undefined,
      (e: unknown) => e,
    );
    expect(err).toBeInstanceOf(CurrentMovedError);
    expect(err).toBeInstanceOf(LeaseLostError); // a compactor stops like on any lost fence
    expect(err).toMatchObject({
      collection: 'lines',
      expected: v1,
      actual: v3,
      version: v2,
      reason: 'LeaseLost',
    });
    expect((err as Error).message).toContain(`expected ${v1}, found ${v3}`);
    expect(await readCurrent(root, 'lines')).toBe(v3);
    // Expecting no CURRENT when there is one fails too, and neither attempt leaves a temporary file.
    await expect(switchCurrent(root, 'lines', v2!, { expected: undefined })).rejects.toThrow(
      CurrentMovedError,
    );
    expect(readdirSync(join(root, 'lines')).sort()).toEqual(['CURRENT', 'versions']);
    // With the right expectation it switches; a CURRENT naming no valid id is compared by its text.
    await switchCurrent(root, 'lines', v2!, { expected: v3 });
    expect(await readCurrent(root, 'lines')).toBe(v2);
    writeFileSync(join(root, 'lines', 'CURRENT'), 'x/../y\n');
    await expect(switchCurrent(root, 'lines', v1!, { expected: v2 })).rejects.toThrow(/found x\/\.\.\/y/);
    await switchCurrent(root, 'lines', v1!, { expected: await readCurrentText(root, 'lines') });
    expect(await readCurrent(root, 'lines')).toBe(v1);
  });
});
