import { copyFile, mkdir, open, readdir } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { Worker } from 'node:worker_threads';
import { PipelineError } from '../errors.js';
import { mapLimit } from '../concurrency.js';

/** SHA-256 of every file, by path relative to its directory ('/'-separated). */
export type Digests = Map<string, string>;

/** An entry of a snapshot directory that is neither a regular file nor a directory (a symlink, a device...). */
export class NotAFileError extends PipelineError {
  constructor(readonly path: string) {
    super('SnapshotDamaged', `${path} is not a regular file or directory`, { path });
  }
}

/**
 * Relative paths of the files under `dir` (`skip`: top-level names to leave out). A symlink or other special entry
 * is refused (NotAFileError): copies follow symlinks, so one would pull a file from outside into the copy.
 */
export async function listFiles(dir: string, skip: string[] = []): Promise<string[]> {
  const out: string[] = [];
  const walk = async (rel: string) => {
    for (const e of await readdir(join(dir, rel), { withFileTypes: true })) {
      if (!rel && skip.includes(e.name)) continue;
      const r = rel ? `${rel}/${e.name}` : e.name;
      if (e.isDirectory()) await walk(r);
      else if (e.isFile()) out.push(r);
      else throw new NotAFileError(join(dir, r));
    }
  };
  await walk('');
  return out.sort();
}

/**
 * SHA-256 (hex) of each file, streamed, computed on a worker thread: a snapshot is tens to hundreds of MB, and its
 * hashing on the event loop held up every request of the process meanwhile (a worker batch was 0.1-0.15 s longer
 * with the lines snapshot's 64 MB hashed on the main thread).
 */
export function sha256Files(paths: string[]): Promise<string[]> {
  return new Promise((resolve, reject) => {
    const worker = new Worker(HASH_FILES, { eval: true, workerData: paths });
    worker.once('message', (m: { digests?: string[]; error?: string }) =>
      m.digests ? resolve(m.digests) : reject(new Error(m.error)),
    );
    worker.once('error', reject);
    worker.once('exit', (code) => reject(new Error(`hashing thread exited with ${code}`)));
  });
}

const HASH_FILES = `
const { parentPort, workerData } = require('node:worker_threads');
const { createHash } = require('node:crypto');
const { createReadStream } = require('node:fs');
(async () => {
  const digests = [];
  for (const path of workerData) {
    const h = createHash('sha256');
    for await (const chunk of createReadStream(path, { highWaterMark: 1 << 20 })) h.update(chunk);
    digests.push(h.digest('hex'));
  }
  return digests;
})().then(
  (digests) => parentPort.postMessage({ digests }),
  (err) => parentPort.postMessage({ error: String(err && err.message || err) }),
);
`;

/** SHA-256 (hex) of a file (on a worker thread). */
export async function fileSha256(path: string): Promise<string> {
  return (await sha256Files([path]))[0]!;
}

/**
 * Copies `files` (relative paths) from `source` to `dest` with the kernel (copy_file_range: no trip through user
 * space), two at a time, while a worker thread hashes the sources; adds their digests to `into`. The digest is of the
 * bytes read; readers check their own copies against it, which also covers what landed on the volume.
 */
export async function copyFilesHashing(
  source: string,
  dest: string,
  files: string[],
  into: Digests = new Map(),
  opts: { sparse?: boolean } = {},
): Promise<Digests> {
  const [, digests] = await Promise.all([
    mapLimit(files, 2, async (f) => {
      await mkdir(dirname(join(dest, f)), { recursive: true });
      if (opts.sparse) await copySparse(join(source, f), join(dest, f));
      else await copyFile(join(source, f), join(dest, f));
    }),
    sha256Files(files.map((f) => join(source, f))),
  ]);
  files.forEach((f, i) => into.set(f, digests[i]!));
  return into;
}

const BLOCK = 64 * 1024;
const ZEROS = Buffer.alloc(BLOCK);

/**
 * Copies a file leaving its all-zero 64 KiB blocks out (holes, read back as zeros): Chroma preallocates a new HNSW
 * index for 10,000 vectors (62.8 MB at 1536 dims), so a small hot segment is mostly zeros, which a publish need not
 * write to the volume. The kernel copy (copyFile) has no such option; this one reads through user space.
 */
export async function copySparse(src: string, dst: string): Promise<void> {
  const from = await open(src, 'r');
  const to = await open(dst, 'w');
  try {
    const buf = Buffer.alloc(16 * BLOCK);
    let pos = 0;
    for (;;) {
      const { bytesRead } = await from.read(buf, 0, buf.length, pos);
      if (bytesRead === 0) break;
      for (let o = 0; o < bytesRead; o += BLOCK) {
        const n = Math.min(BLOCK, bytesRead - o);
        const block = buf.subarray(o, o + n);
        if (n === BLOCK && block.equals(ZEROS)) continue;
        await to.write(block, 0, n, pos + o);
      }
      pos += bytesRead;
    }
    await to.truncate(pos);
  } finally {
    await from.close();
    await to.close();
  }
}

/** The first difference between what was recorded and what was read, or undefined when they agree. */
export function digestDiff(recorded: Digests, got: Digests): string | undefined {
  for (const [f, h] of recorded) if (got.get(f) !== h) return got.has(f) ? `${f} differs` : `${f} missing`;
  for (const f of got.keys()) if (!recorded.has(f)) return `${f} unexpected`;
  return undefined;
}
