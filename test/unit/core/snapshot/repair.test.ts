// Repair of a damaged or missing live version (core/snapshot/repair.ts) on real directories and a directory object
// store: which copy is chosen, what is refused and why, and what is left on the volume.
import { createHash } from 'node:crypto';
import {
  mkdirSync,
  mkdtempSync,
  readdirSync,
  readFileSync,
  rmSync,
  utimesSync,
  writeFileSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { DirectoryObjectStore } from '../../../../core/local/dir-store.js';
import {
  describeLiveState,
  ensureLiveIntact,
  intactVersion,
  SnapshotUnrecoverableError,
} from '../../../../core/snapshot/repair.js';
import { archiveKey, uploadSnapshot } from '../../../../core/snapshot/s3-snapshot.js';
import {
  checkVersion,
  copyCurrentTo,
  installVersion,
  listVersions,
  readCurrent,
  removeLeftovers,
  switchCurrent,
  VERSION_INFO,
  VersionDamagedError,
  versionDir,
  versionsDir,
} from '../../../../core/snapshot/volume.js';

const BUCKET = 'vectors';

function world() {
  const base = mkdtempSync(join(tmpdir(), 'repair-'));
  const root = join(base, 'volume');
  const store = new DirectoryObjectStore(join(base, 'objects'));
  return { base, root, store, mirror: { store, bucket: BUCKET }, work: join(base, 'work') };
}

/** A published version as the compactor writes it: Chroma-like files plus the provenance file with their digests. */
async function publish(root: string, version: string, content: string): Promise<void> {
  const src = mkdtempSync(join(tmpdir(), 'src-'));
  mkdirSync(join(src, 'seg'));
  writeFileSync(join(src, 'chroma.sqlite3'), `sqlite ${content}`);
  writeFileSync(join(src, 'seg', 'data_level0.bin'), `hnsw ${content}`);
  const sha = (f: string) =>
    createHash('sha256')
      .update(readFileSync(join(src, f)))
      .digest('hex');
  const files = {
    'chroma.sqlite3': sha('chroma.sqlite3'),
    'seg/data_level0.bin': sha('seg/data_level0.bin'),
  };
  writeFileSync(join(src, VERSION_INFO), JSON.stringify({ version, files }));
  await installVersion(root, 'words', version, src);
  rmSync(src, { recursive: true, force: true });
}

const flip = (root: string, version: string) =>
  writeFileSync(join(versionDir(root, 'words', version), 'seg', 'data_level0.bin'), 'bit rot');
const hnsw = (root: string, version: string) =>
  readFileSync(join(versionDir(root, 'words', version), 'seg', 'data_level0.bin'), 'utf8');

describe('snapshot repair', () => {
  it('an intact CURRENT is left alone; checkVersion names a changed, a missing and an unexpected file', async () => {
    const w = world();
    await publish(w.root, 'v1', 'one');
    await switchCurrent(w.root, 'words', 'v1', { expected: undefined });
    const state = await ensureLiveIntact({
      root: w.root,
      collection: 'words',
      mirror: w.mirror,
      workDir: w.work,
    });
    expect(state).toEqual({ kind: 'intact', version: 'v1' });
    expect(describeLiveState('words', state)).toMatch(/CURRENT v1 is intact.*nothing to repair/);

    const dir = versionDir(w.root, 'words', 'v1');
    expect(await checkVersion(dir)).toBeUndefined();
    flip(w.root, 'v1');
    expect(await checkVersion(dir)).toBe('seg/data_level0.bin differs');
    rmSync(join(dir, 'seg', 'data_level0.bin'));
    expect(await checkVersion(dir)).toBe('seg/data_level0.bin missing');
    expect(await checkVersion(join(w.root, 'nope'))).toBe('the version directory is missing');
    await expect(copyCurrentTo(w.root, 'words', w.work)).rejects.toBeInstanceOf(VersionDamagedError);
  });

  it('a damaged CURRENT is re-installed from the mirror archive of the same version: nothing lost', async () => {
    const w = world();
    await publish(w.root, 'v1', 'one');
    await publish(w.root, 'v2', 'two');
    await switchCurrent(w.root, 'words', 'v2', { expected: undefined });
    await uploadSnapshot(w.store, BUCKET, 'words', 'v2', versionDir(w.root, 'words', 'v2'));
    flip(w.root, 'v2');
    const fenced: string[] = [];
    const state = await ensureLiveIntact({
      root: w.root,
      collection: 'words',
      mirror: w.mirror,
      workDir: w.work,
      beforeSwitch: async () => fenced.push('fence'),
    });
    expect(state).toMatchObject({
      kind: 'repaired',
      version: 'v2',
      from: 'mirror',
      was: { version: 'v2', problem: 'seg/data_level0.bin differs' },
      behind: false,
    });
    expect(fenced).toEqual(['fence']);
    expect(hnsw(w.root, 'v2')).toBe('hnsw two');
    expect(await readCurrent(w.root, 'words')).toBe('v2');
    // The damaged copy was replaced, and nothing hidden or temporary stays behind.
    expect(readdirSync(versionsDir(w.root, 'words')).sort()).toEqual(['v1', 'v2']);
    expect(describeLiveState('words', state)).toMatch(
      /CURRENT v2 was damaged \(seg\/data_level0\.bin differs\); installed v2 from the object-store mirror.*CURRENT is now v2$/,
    );
  });

  it('newest intact copy wins across volume and mirror; refused copies are named; damaged ones are moved aside', async () => {
    const w = world();
    for (const [v, c] of [
      ['v1', 'one'],
      ['v2', 'two'],
      ['v3', 'three'],
      ['v4', 'four'],
    ] as const)
      await publish(w.root, v, c);
    await switchCurrent(w.root, 'words', 'v4', { expected: undefined });
    for (const v of ['v3', 'v4'])
      await uploadSnapshot(w.store, BUCKET, 'words', v, versionDir(w.root, 'words', v));
    // v4 damaged on the volume and its archive corrupted; v3 damaged on the volume but intact in the mirror.
    flip(w.root, 'v4');
    flip(w.root, 'v3');
    await w.store.put(BUCKET, archiveKey('words', 'v4'), 'not a tarball');
    const state = await ensureLiveIntact({
      root: w.root,
      collection: 'words',
      mirror: w.mirror,
      workDir: w.work,
    });
    expect(state).toMatchObject({ kind: 'repaired', version: 'v3', from: 'mirror', behind: true });
    if (state.kind !== 'repaired') throw new Error('not repaired');
    expect(state.rejected.map((r) => `${r.version}/${r.from}`)).toEqual(['v4/mirror', 'v3/volume']);
    expect(state.rejected[0]!.problem).toMatch(/sha256 mismatch/);
    expect(hnsw(w.root, 'v3')).toBe('hnsw three');
    // v4 is no version any more (hidden, removed with the leftovers); v1, v2 untouched.
    expect(await listVersions(w.root, 'words')).toEqual(['v1', 'v2', 'v3']);
    expect(describeLiveState('words', state)).toMatch(/older than v4: what was merged after it is missing/);

    // Same again without a mirror: the newest intact older version on the volume.
    flip(w.root, 'v3');
    const again = await ensureLiveIntact({ root: w.root, collection: 'words', workDir: w.work });
    expect(again).toMatchObject({ kind: 'repaired', version: 'v2', from: 'volume', behind: true });
    expect(await readCurrent(w.root, 'words')).toBe('v2');

    const leftovers = readdirSync(versionsDir(w.root, 'words')).filter((n) => n.startsWith('.'));
    expect(leftovers).toHaveLength(2);
    expect(leftovers.every((n) => n.startsWith('.damaged-'))).toBe(true);
    expect(await removeLeftovers(w.root, 'words')).toHaveLength(2);
    expect(readdirSync(versionsDir(w.root, 'words')).sort()).toEqual(['v1', 'v2']);
  });

  it('with nothing intact anywhere it refuses, naming every copy and why; the volume is unchanged', async () => {
    const w = world();
    await publish(w.root, 'v1', 'one');
    await publish(w.root, 'v2', 'two');
    await switchCurrent(w.root, 'words', 'v2', { expected: undefined });
    flip(w.root, 'v1');
    flip(w.root, 'v2');
    const err = await ensureLiveIntact({
      root: w.root,
      collection: 'words',
      mirror: w.mirror,
      workDir: w.work,
    }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(SnapshotUnrecoverableError);
    expect((err as Error).message).toBe(
      'words: CURRENT v2 is damaged (seg/data_level0.bin differs) and no intact copy was found: v1 on the volume: seg/data_level0.bin differs',
    );
    expect(await readCurrent(w.root, 'words')).toBe('v2');

    const lone = world();
    await publish(lone.root, 'v1', 'one');
    await switchCurrent(lone.root, 'words', 'v1', { expected: undefined });
    flip(lone.root, 'v1');
    await expect(
      ensureLiveIntact({ root: lone.root, collection: 'words', mirror: lone.mirror, workDir: lone.work }),
    ).rejects.toThrow(/no other version on the volume and no archive in the object-store mirror/);
  });

  it('a missing CURRENT is recovered from the newest intact version; nothing at all means empty', async () => {
    const w = world();
    await publish(w.root, 'v1', 'one');
    await publish(w.root, 'v2', 'two');
    await switchCurrent(w.root, 'words', 'v2', { expected: undefined });
    rmSync(join(w.root, 'words', 'CURRENT'));
    const state = await ensureLiveIntact({
      root: w.root,
      collection: 'words',
      mirror: w.mirror,
      workDir: w.work,
    });
    expect(state).toMatchObject({
      kind: 'repaired',
      version: 'v2',
      from: 'volume',
      was: { problem: 'CURRENT is missing' },
    });
    expect(await readCurrent(w.root, 'words')).toBe('v2');

    // CURRENT names a version that is gone from the volume: its archive is installed under its own id.
    await uploadSnapshot(w.store, BUCKET, 'words', 'v2', versionDir(w.root, 'words', 'v2'));
    rmSync(versionDir(w.root, 'words', 'v2'), { recursive: true });
    const gone = await ensureLiveIntact({
      root: w.root,
      collection: 'words',
      mirror: w.mirror,
      workDir: w.work,
    });
    expect(gone).toMatchObject({
      kind: 'repaired',
      version: 'v2',
      from: 'mirror',
      was: { version: 'v2', problem: 'the version directory is missing' },
    });

    const empty = world();
    expect(
      await ensureLiveIntact({
        root: empty.root,
        collection: 'words',
        mirror: empty.mirror,
        workDir: empty.work,
      }),
    ).toEqual({ kind: 'empty' });
  });

  it('a named version is taken from the volume when intact, else from the mirror, else refused with both reasons', async () => {
    const w = world();
    await publish(w.root, 'v1', 'one');
    expect(
      await intactVersion({ root: w.root, collection: 'words', mirror: w.mirror, workDir: w.work }, 'v1'),
    ).toEqual({ from: 'volume', rejected: [] });
    await uploadSnapshot(w.store, BUCKET, 'words', 'v1', versionDir(w.root, 'words', 'v1'));
    flip(w.root, 'v1');
    const got = await intactVersion(
      { root: w.root, collection: 'words', mirror: w.mirror, workDir: w.work },
      'v1',
    );
    expect(got.from).toBe('mirror');
    expect(hnsw(w.root, 'v1')).toBe('hnsw one');
    flip(w.root, 'v1');
    await expect(intactVersion({ root: w.root, collection: 'words', workDir: w.work }, 'v1')).rejects.toThrow(
      /version v1 is not intact.*v1 on the volume: seg\/data_level0\.bin differs; v1 on the mirror: no object-store mirror configured/,
    );
  });

  it('leftovers younger than the grace period stay', async () => {
    const w = world();
    mkdirSync(join(versionsDir(w.root, 'words'), '.staging-new'), { recursive: true });
    mkdirSync(join(versionsDir(w.root, 'words'), '.staging-old'), { recursive: true });
    const old = new Date(Date.now() - 3_600_000);
    utimesSync(join(versionsDir(w.root, 'words'), '.staging-old'), old, old);
    expect(await removeLeftovers(w.root, 'words', { graceMs: 60_000 })).toEqual(['.staging-old']);
    expect(await removeLeftovers(w.root, 'words')).toEqual(['.staging-new']);
  });
});
