import { mkdir, rename, rm } from 'node:fs/promises';
import { join } from 'node:path';
import { TransientError } from '../core/errors.js';
import { copyFilesHashing, listFiles } from '../core/snapshot/file-digests.js';
import { linkSealed } from '../core/segments/link.js';
import { SEALED_DIR, segmentId, type SealedSegment } from '../core/segments/manifest.js';
import { newVersionId, VERSION_INFO, versionDir, versionsDir } from '../core/snapshot/volume.js';
import { commitVersion, requireBase, type PublishContext } from './publish.js';

/**
 * Seals the hot segment (docs/adr/0012-immutable-segments.md): its stopped directory is copied, hashed, into the new
 * version as `sealed/{id}` (id = the digest of its files), the older sealed segments are linked from `base`, and the
 * new version's hot segment is empty. The working copy follows: its hot directory becomes the new segment's scratch
 * copy (served read-only from now on) and a fresh hot segment starts; the collection's records are unchanged, which
 * the count checks before CURRENT moves. Crash points `seal-after-copy`, `seal-before-switch`, `seal-after-switch`:
 * a crash before the switch leaves CURRENT on `base` (the staging directory is removed at the next start), after it
 * on the sealed version; either is the same records. Returns the new version, live.
 */
export async function sealHot(
  ctx: PublishContext,
  base: string | undefined,
): Promise<{ version: string; sealed: SealedSegment }> {
  const t0 = performance.now();
  const { root, c, wc, lease } = ctx;
  const version = newVersionId();
  const from = versionDir(root, c, requireBase(c, base));
  await lease.assertHeld();
  const hotCount = await wc.hotCount();
  const count = await wc.count();
  const older = wc.manifest();
  await wc.stop();
  const staging = join(versionsDir(root, c), `.staging-${version}`);
  const incoming = join(staging, SEALED_DIR, '.incoming');
  await mkdir(incoming, { recursive: true });
  const digests = await copyFilesHashing(
    wc.dir,
    incoming,
    await listFiles(wc.dir, [VERSION_INFO]),
    new Map(),
    {
      sparse: true,
    },
  );
  const sealed: SealedSegment = {
    id: segmentId(digests),
    count: hotCount,
    files: Object.fromEntries(digests),
  };
  await rename(incoming, join(staging, SEALED_DIR, sealed.id));
  ctx.progress.tick();
  await linkSealed(from, staging, older.segments);

  // The working copy: hot → a sealed segment's scratch copy; an empty hot segment (Chroma creates the collection).
  await mkdir(wc.sealed.dir, { recursive: true });
  const scratch = join(wc.sealed.dir, sealed.id);
  await rm(scratch, { recursive: true, force: true });
  await rename(wc.dir, scratch);
  await rm(join(scratch, VERSION_INFO), { force: true });
  await mkdir(wc.dir, { recursive: true });
  await wc.sealed.add(sealed);
  await wc.start();
  const after = await wc.count();
  if (after !== count || (await wc.hotCount()) !== 0)
    throw new TransientError(`seal of ${c}: ${after} records after sealing, expected ${count}`, {
      count,
      after,
    });

  const manifest = { segments: [...older.segments, sealed], tombstones: older.tombstones };
  await commitVersion(ctx, { staging, version, base, count, files: new Map(), manifest }, 'seal-');
  ctx.log.info(
    {
      version,
      segment: sealed.id,
      vectors: hotCount,
      segments: manifest.segments.length,
      seconds: (performance.now() - t0) / 1000,
    },
    'hot segment sealed',
  );
  return { version, sealed };
}
