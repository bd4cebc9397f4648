import { stat } from 'node:fs/promises';
import { join } from 'node:path';
import { TransientError } from '../core/errors.js';
import { copyFilesHashing, listFiles, type Digests } from '../core/snapshot/file-digests.js';

/**
 * Copies a stopped Chroma directory into `dest` (sparse: its preallocated zeros are not written), hashing every file
 * (SHA-256) in the same pass, and runs `restart`
 * (the working server on the source) during the copy instead of after it. The digests go into the version's
 * provenance file; readers check their copies against them (`copyVersion`), end to end.
 *
 * That is safe because of how Chroma writes: on start (even for reads) it writes `chroma.sqlite3` only, and its
 * segment (HNSW) files only when it persists after new records, which nobody sends during a publish. So the top-level
 * files are copied and hashed first, then `restart` begins while the segment files are copied; at the end every
 * segment file must still have the size, mtime, ctime and inode it had before the restart, or the copy is refused
 * (the caller retries the batch). The server therefore opens exactly the bytes that were copied.
 */
export async function copyWhileRestarting(
  source: string,
  dest: string,
  restart: () => Promise<void>,
  skip: string[] = [],
): Promise<Digests> {
  const files = await listFiles(source, skip);
  const topLevel = files.filter((f) => !f.includes('/'));
  const segments = files.filter((f) => f.includes('/'));
  const digests: Digests = new Map();

  await copyFilesHashing(source, dest, topLevel, digests, { sparse: true });
  const before = await identities(source, segments);
  const restarted = restart();
  restarted.catch(() => undefined); // awaited below; do not let an early rejection go unhandled meanwhile
  try {
    await copyFilesHashing(source, dest, segments, digests, { sparse: true });
    const after = await identities(source, segments);
    const nowListed = (await listFiles(source, skip)).filter((f) => f.includes('/'));
    for (const f of new Set([...segments, ...nowListed])) {
      if (before.get(f) !== after.get(f) || !segments.includes(f))
        throw new TransientError(`${join(source, f)} changed while it was copied; not publishing this copy`, {
          file: f,
        });
    }
  } finally {
    await restarted.catch(() => undefined);
  }
  await restarted;
  return digests;
}

async function identities(dir: string, files: string[]): Promise<Map<string, string>> {
  const out = new Map<string, string>();
  for (const f of files) {
    const s = await stat(join(dir, f), { bigint: true }).catch(() => undefined);
    out.set(f, s ? `${s.size}:${s.mtimeNs}:${s.ctimeNs}:${s.ino}` : 'missing');
  }
  return out;
}
