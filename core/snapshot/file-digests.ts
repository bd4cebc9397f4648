import { createHash } from 'node:crypto';
import { createReadStream } from 'node:fs';
import { copyFile, mkdir, readdir } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { pipeline } from 'node:stream/promises';
import { mapLimit } from '../map-limit.js';

/** SHA-256 of every file, by path relative to its directory ('/'-separated). */
export type Digests = Map<string, string>;

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

/**
 * Copies one file with the kernel (copy_file_range: no trip through user space) while hashing the source alongside;
 * about as fast as the copy alone on two cores. The digest is of the bytes read; readers check their own copies
 * against it, which also covers what landed on the volume.
 */
export async function copyFileHashing(from: string, to: string): Promise<string> {
  await mkdir(dirname(to), { recursive: true });
  const [digest] = await Promise.all([fileSha256(from), copyFile(from, to)]);
  return digest;
}

/** SHA-256 (hex) of a file, streamed. */
export async function fileSha256(path: string): Promise<string> {
  const h = createHash('sha256');
  await pipeline(createReadStream(path, { highWaterMark: 1 << 20 }), h);
  return h.digest('hex');
}

/** Copies `files` (relative paths) from `source` to `dest`, two at a time, adding their digests to `into`. */
export async function copyFilesHashing(
  source: string,
  dest: string,
  files: string[],
  into: Digests = new Map(),
): Promise<Digests> {
  await mapLimit(
    files,
    2,
    async (f) => void into.set(f, await copyFileHashing(join(source, f), join(dest, f))),
  );
  return into;
}

/** The first difference between what was recorded and what was read, or undefined when they agree. */
export function digestDiff(recorded: Digests, got: Digests): string | undefined {
  for (const [f, h] of recorded) if (got.get(f) !== h) return got.has(f) ? `${f} differs` : `${f} missing`;
  for (const f of got.keys()) if (!recorded.has(f)) return `${f} unexpected`;
  return undefined;
}
