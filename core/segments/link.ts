import { link, mkdir } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { TransientError } from '../errors.js';
import { SEALED_DIR, type SealedSegment } from './manifest.js';

/**
 * Hard-links each sealed segment's files from version directory `from` into `to` (`sealed/{id}/…`): the new version
 * shares the bytes, which are written once and never changed (docs/adr/0012-immutable-segments.md). Their digests
 * were checked when the segment was sealed and are carried in the manifest, not computed again. A segment's bytes
 * go when the last version linking them is removed: no kept version can lose a segment it lists.
 */
export async function linkSealed(
  from: string,
  to: string,
  segments: readonly SealedSegment[],
): Promise<number> {
  let linked = 0;
  for (const s of segments) {
    for (const f of Object.keys(s.files)) {
      const src = join(from, SEALED_DIR, s.id, f);
      const dst = join(to, SEALED_DIR, s.id, f);
      await mkdir(dirname(dst), { recursive: true });
      await link(src, dst).catch((err: NodeJS.ErrnoException) => {
        throw new TransientError(`cannot link sealed segment file ${src}: ${err.code ?? err.message}`, {
          src,
          dst,
        });
      });
      linked++;
    }
  }
  return linked;
}
