import { createHash } from 'node:crypto';
import { createReadStream } from 'node:fs';
import { copyFile, mkdir, readdir, stat } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { pipeline } from 'node:stream/promises';
import { TransientError } from '../core/errors.js';
import { mapLimit } from '../core/map-limit.js';

/** SHA-256 of every file, by path relative to the copied directory. */
export type Digests = Map<string, string>;

/**
 * Copies a stopped Chroma directory into `dest`, verified byte for byte (SHA-256 of the source and of the copy), and
 * runs `restart` (the working server on the source) during the copy instead of after it.
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

  await mapLimit(topLevel, 2, (f) => copyVerified(source, dest, f, digests));
  const before = await identities(source, segments);
  const restarted = restart();
  restarted.catch(() => undefined); // awaited below; do not let an early rejection go unhandled meanwhile
  try {
    await mapLimit(segments, 2, (f) => copyVerified(source, dest, f, digests));
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

/** Relative paths of the files under `dir` (`skip`: top-level names to leave out). */
export async function listFiles(dir: string, skip: string[] = []): Promise<string[]> {
  const out: string[] = [];
  const walk = async (rel: string) => {
    for (const e of await readdir(join(dir, rel), { withFileTypes: true })) {
      if (!rel && skip.includes(e.name)) continue;
      const r = rel ? `${rel}/${e.name}` : e.name;
      if (e.isDirectory()) await walk(r);
      else out.push(r);
    }
  };
  await walk('');
  return out.sort();
}

/** SHA-256 of every file under `dir`, by relative path. */
export async function treeDigest(dir: string, skip: string[] = []): Promise<Digests> {
  const out: Digests = new Map();
  await mapLimit(await listFiles(dir, skip), 4, async (f) => void out.set(f, await sha256File(join(dir, f))));
  return out;
}

export function digestDiff(a: Digests, b: Digests): string | undefined {
  for (const [f, h] of a) if (b.get(f) !== h) return b.has(f) ? `${f} differs` : `${f} missing`;
  for (const f of b.keys()) if (!a.has(f)) return `${f} unexpected`;
  return undefined;
}

/** Kernel copy (copy_file_range) while the source is hashed, then the copy is hashed and compared. */
async function copyVerified(source: string, dest: string, rel: string, digests: Digests): Promise<void> {
  const from = join(source, rel);
  const to = join(dest, rel);
  await mkdir(dirname(to), { recursive: true });
  const [want] = await Promise.all([sha256File(from), copyFile(from, to)]);
  const got = await sha256File(to);
  if (got !== want)
    throw new TransientError(`copy of ${from} to ${to} differs from its source`, { file: rel });
  digests.set(rel, want);
}

async function sha256File(path: string): Promise<string> {
  const h = createHash('sha256');
  await pipeline(createReadStream(path, { highWaterMark: 1 << 20 }), h);
  return h.digest('hex');
}

async function identities(dir: string, files: string[]): Promise<Map<string, string>> {
  const out = new Map<string, string>();
  for (const f of files) {
    const s = await stat(join(dir, f), { bigint: true }).catch(() => undefined);
    out.set(f, s ? `${s.size}:${s.mtimeNs}:${s.ctimeNs}:${s.ino}` : 'missing');
  }
  return out;
}
