import { randomBytes } from 'node:crypto';
import { createWriteStream } from 'node:fs';
import { mkdir, open, readdir, readFile, rename, rm, stat, writeFile } from 'node:fs/promises';
import { dirname, join, relative, sep } from 'node:path';
import { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import {
  assertKeyInBucket,
  assertObjectMetadata,
  ConfigError,
  ObjectTooLargeError,
  SourceMissingError,
} from '../errors.js';
import type { GetOptions, ObjectInfo, ObjectStore, PutBody, PutOptions } from '../ports/object-store.js';

const META_DIR = '.meta';
const TMP_DIR = '.tmp';

interface Sidecar {
  contentType?: string;
  metadata: Record<string, string>;
}

/**
 * The ObjectStore port on a directory, standing in for S3 in local mode: `{root}/{bucket}/{key}` holds the bytes,
 * `{root}/.meta/{bucket}/{key}.json` the content type and string metadata. A put writes a temporary file, fsyncs it
 * and renames it over the key, so a reader sees the old object or the new one, never a torn one; the sidecar is
 * renamed into place just before the object, and `head` reports metadata only for an object that exists.
 *
 * Not S3: a key cannot also be a "directory" of other keys (`a/b` and `a/b/c`), and keys may not contain `..`
 * segments or start with `/`.
 */
export class DirectoryObjectStore implements ObjectStore {
  constructor(
    readonly root: string,
    private readonly options: { fsync?: boolean } = {},
  ) {}

  objectPath(bucket: string, key: string): string {
    checkBucket(bucket);
    assertKeyInBucket(bucket, key);
    return join(this.root, bucket, ...key.split('/'));
  }

  private sidecarPath(bucket: string, key: string): string {
    return join(this.root, META_DIR, bucket, ...key.split('/')) + '.json';
  }

  async getStream(bucket: string, key: string, options: GetOptions = {}): Promise<Readable> {
    const path = this.objectPath(bucket, key);
    // Open first, so a missing object fails here with SourceMissingError rather than later on the stream.
    const fh = await open(path, 'r').catch((err: NodeJS.ErrnoException) => {
      throw missing(err, bucket, key);
    });
    if (options.maxBytes !== undefined) {
      const { size } = await fh.stat();
      if (size > options.maxBytes) {
        await fh.close();
        throw new ObjectTooLargeError(bucket, key, size, options.maxBytes);
      }
    }
    return fh.createReadStream();
  }

  async getBuffer(bucket: string, key: string, options: GetOptions = {}): Promise<Buffer> {
    if (options.maxBytes !== undefined) {
      const stream = await this.getStream(bucket, key, options);
      const chunks: Buffer[] = [];
      for await (const c of stream) chunks.push(c as Buffer);
      return Buffer.concat(chunks);
    }
    try {
      return await readFile(this.objectPath(bucket, key));
    } catch (err) {
      throw missing(err as NodeJS.ErrnoException, bucket, key);
    }
  }

  async head(bucket: string, key: string): Promise<ObjectInfo | undefined> {
    let size: number;
    try {
      const s = await stat(this.objectPath(bucket, key));
      if (!s.isFile()) return undefined;
      size = s.size;
    } catch (err) {
      if (isNotFound(err)) return undefined;
      throw err;
    }
    const sidecar = await this.readSidecar(bucket, key);
    return {
      key,
      size,
      ...(sidecar && Object.keys(sidecar.metadata).length > 0 ? { metadata: sidecar.metadata } : {}),
    };
  }

  async put(bucket: string, key: string, body: PutBody, options: PutOptions = {}): Promise<void> {
    const path = this.objectPath(bucket, key);
    // S3's rules, so local mode refuses what the cloud would: before anything is written.
    assertObjectMetadata(bucket, key, options.metadata);
    const tmpDir = join(this.root, TMP_DIR);
    await mkdir(tmpDir, { recursive: true });
    const tmp = join(tmpDir, `${process.pid}-${randomBytes(8).toString('hex')}`);
    try {
      if (body instanceof Readable) await pipeline(body, createWriteStream(tmp));
      else await writeFile(tmp, body);
      if (this.options.fsync !== false) await fsyncFile(tmp);
      const sidecarPath = this.sidecarPath(bucket, key);
      const sidecar: Sidecar = {
        metadata: stringMetadata(options.metadata ?? {}),
        ...(options.contentType ? { contentType: options.contentType } : {}),
      };
      const sidecarTmp = `${tmp}.meta`;
      await writeFile(sidecarTmp, JSON.stringify(sidecar));
      await mkdir(dirname(sidecarPath), { recursive: true });
      await rename(sidecarTmp, sidecarPath);
      await mkdir(dirname(path), { recursive: true });
      await rename(tmp, path);
    } catch (err) {
      await rm(tmp, { force: true });
      await rm(`${tmp}.meta`, { force: true });
      if (
        (err as NodeJS.ErrnoException).code === 'EISDIR' ||
        (err as NodeJS.ErrnoException).code === 'ENOTDIR'
      ) {
        throw new ConfigError(
          `cannot store ${bucket}/${key}: a key and a key prefix collide in the directory store`,
          {
            bucket,
            key,
          },
        );
      }
      throw err;
    }
  }

  /** Keys under the prefix in lexicographic order, like ListObjectsV2. */
  async list(bucket: string, prefix: string): Promise<ObjectInfo[]> {
    checkBucket(bucket);
    const bucketDir = join(this.root, bucket);
    // Walk only the deepest directory the prefix names.
    const slash = prefix.lastIndexOf('/');
    const start = slash >= 0 ? join(bucketDir, ...prefix.slice(0, slash).split('/')) : bucketDir;
    const out: ObjectInfo[] = [];
    for await (const file of walk(start)) {
      const key = relative(bucketDir, file).split(sep).join('/');
      if (!key.startsWith(prefix)) continue;
      const s = await stat(file).catch(() => undefined);
      if (s?.isFile()) out.push({ key, size: s.size });
    }
    return out.sort((a, b) => (a.key < b.key ? -1 : a.key > b.key ? 1 : 0));
  }

  /** Deleting an absent key succeeds, as in S3. */
  async delete(bucket: string, key: string): Promise<void> {
    await rm(this.objectPath(bucket, key), { force: true });
    await rm(this.sidecarPath(bucket, key), { force: true });
  }

  private async readSidecar(bucket: string, key: string): Promise<Sidecar | undefined> {
    try {
      return JSON.parse(await readFile(this.sidecarPath(bucket, key), 'utf8')) as Sidecar;
    } catch (err) {
      if (isNotFound(err)) return undefined;
      throw err;
    }
  }
}

async function* walk(dir: string): AsyncGenerator<string> {
  let entries;
  try {
    entries = await readdir(dir, { withFileTypes: true });
  } catch (err) {
    if (isNotFound(err) || (err as NodeJS.ErrnoException).code === 'ENOTDIR') return;
    throw err;
  }
  for (const e of entries) {
    const path = join(dir, e.name);
    if (e.isDirectory()) yield* walk(path);
    else if (e.isFile()) yield path;
  }
}

async function fsyncFile(path: string): Promise<void> {
  const fh = await open(path, 'r');
  try {
    await fh.sync();
  } finally {
    await fh.close();
  }
}

/** Keys lower-cased as S3 stores them; the values were checked to be strings (assertObjectMetadata). */
function stringMetadata(m: Record<string, string>): Record<string, string> {
  return Object.fromEntries(Object.entries(m).map(([k, v]) => [k.toLowerCase(), v]));
}

function checkBucket(bucket: string): void {
  if (!/^[a-z0-9][a-z0-9.-]{0,62}$/.test(bucket)) {
    throw new ConfigError(`invalid bucket name "${bucket}": lowercase letters, digits, dots and hyphens`, {
      bucket,
    });
  }
}

function isNotFound(err: unknown): boolean {
  const code = (err as NodeJS.ErrnoException).code;
  return code === 'ENOENT' || code === 'ENOTDIR';
}

function missing(err: NodeJS.ErrnoException, bucket: string, key: string): Error {
  return isNotFound(err) || err.code === 'EISDIR' ? new SourceMissingError(bucket, key) : err;
}
