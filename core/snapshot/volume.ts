import { randomBytes } from 'node:crypto';
import { mkdir, open, readdir, readFile, rename, rm, stat, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import type { Collection } from '../contracts/ids.js';
import { TransientError } from '../errors.js';
import { copyFilesHashing, digestDiff, listFiles } from './file-digests.js';

/**
 * Snapshot layout on the shared volume (DESIGN §4.7):
 *   {root}/{collection}/versions/{version}/   immutable once published
 *   {root}/{collection}/CURRENT               names the live version, replaced atomically (write + fsync + rename)
 */
/** Provenance file inside every published version: who published it, from which base, and every file's SHA-256. */
export const VERSION_INFO = 'embedctl-version.json';

export function collectionDir(root: string, collection: Collection): string {
  return join(root, collection);
}

export function versionsDir(root: string, collection: Collection): string {
  return join(root, collection, 'versions');
}

export function versionDir(root: string, collection: Collection, version: string): string {
  return join(versionsDir(root, collection), version);
}

/** Sortable, unique version ids: UTC time to the millisecond plus a random suffix. */
export function newVersionId(now = new Date()): string {
  const t = now.toISOString().replace(/[-:]/g, '').replace('.', '');
  return `${t}-${randomBytes(3).toString('hex')}`;
}

export async function readCurrent(root: string, collection: Collection): Promise<string | undefined> {
  try {
    const v = (await readFile(join(collectionDir(root, collection), 'CURRENT'), 'utf8')).trim();
    return v || undefined;
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw err;
  }
}

/** Atomically points CURRENT at `version` (which must already be complete on the volume). */
export async function switchCurrent(root: string, collection: Collection, version: string): Promise<void> {
  const dir = collectionDir(root, collection);
  await mkdir(dir, { recursive: true });
  const tmp = join(dir, `.CURRENT.${process.pid}.${randomBytes(4).toString('hex')}`);
  await writeDurably(tmp, `${version}\n`);
  await rename(tmp, join(dir, 'CURRENT'));
  await fsyncDir(dir);
}

export async function writeDurably(path: string, content: string): Promise<void> {
  await writeFile(path, content);
  const fh = await open(path, 'r');
  try {
    await fh.sync();
  } finally {
    await fh.close();
  }
}

export async function fsyncDir(dir: string): Promise<void> {
  const fh = await open(dir, 'r');
  try {
    await fh.sync();
  } finally {
    await fh.close();
  }
}

/** Published versions, oldest first (ids sort by time). Hidden staging directories are not versions. */
export async function listVersions(root: string, collection: Collection): Promise<string[]> {
  try {
    return (await readdir(versionsDir(root, collection))).filter((v) => !v.startsWith('.')).sort();
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return [];
    throw err;
  }
}

/**
 * Copies a finished Chroma directory into a new immutable version: first into a hidden staging directory, then one
 * rename, so a half-copied version is never visible under its final name.
 */
export async function installVersion(
  root: string,
  collection: Collection,
  version: string,
  source: string,
): Promise<string> {
  const dest = versionDir(root, collection, version);
  const staging = join(versionsDir(root, collection), `.staging-${version}`);
  await rm(staging, { recursive: true, force: true });
  await mkdir(versionsDir(root, collection), { recursive: true });
  await copyVersion(source, staging);
  await rename(staging, dest);
  await fsyncDir(versionsDir(root, collection));
  return dest;
}

/**
 * Copies the live version to local scratch (Chroma is slow and unsafe on NFS). Returns undefined on an empty volume.
 * Versions are immutable and removed only after a grace period, so the copy cannot be torn by a publish.
 */
export async function copyCurrentTo(
  root: string,
  collection: Collection,
  scratch: string,
): Promise<{ version: string; dir: string } | undefined> {
  const version = await readCurrent(root, collection);
  if (!version) return undefined;
  const dir = join(scratch, `${collection}-${version}`);
  await rm(dir, { recursive: true, force: true });
  await copyVersion(versionDir(root, collection, version), dir);
  return { version, dir };
}

/**
 * Copies a version directory, hashing every file on the way, and checks the copy against the SHA-256 digests its
 * publisher recorded (versions without recorded digests are copied as they are). A mismatch means the version on the
 * volume is not what was published: nothing may use the copy.
 */
export async function copyVersion(source: string, dest: string): Promise<void> {
  const got = await copyFilesHashing(source, dest, await listFiles(source));
  const recorded = await recordedDigests(source);
  if (!recorded) return;
  got.delete(VERSION_INFO);
  const diff = digestDiff(recorded, got);
  if (diff)
    throw new TransientError(`version ${source} does not match its recorded digests: ${diff}`, { source });
}

async function recordedDigests(versionPath: string): Promise<Map<string, string> | undefined> {
  try {
    const info = JSON.parse(await readFile(join(versionPath, VERSION_INFO), 'utf8')) as {
      files?: Record<string, string>;
    };
    return info.files ? new Map(Object.entries(info.files)) : undefined;
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw err;
  }
}

/**
 * Removes old versions, keeping the newest `keep` and CURRENT, and only those older than the grace period so that a
 * reader still copying one is never pulled from under.
 */
export async function pruneVersions(
  root: string,
  collection: Collection,
  opts: { keep: number; graceMs: number; now?: number },
): Promise<string[]> {
  const current = await readCurrent(root, collection);
  const versions = await listVersions(root, collection);
  const candidates = versions.slice(0, Math.max(0, versions.length - opts.keep)).filter((v) => v !== current);
  const now = opts.now ?? Date.now();
  const removed: string[] = [];
  for (const v of candidates) {
    const dir = versionDir(root, collection, v);
    const { mtimeMs } = await stat(dir);
    if (now - mtimeMs < opts.graceMs) continue;
    await rm(dir, { recursive: true, force: true });
    removed.push(v);
  }
  return removed;
}
