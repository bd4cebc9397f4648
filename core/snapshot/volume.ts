import { randomBytes } from 'node:crypto';
import { mkdir, open, readdir, readFile, rename, rm, stat } from 'node:fs/promises';
import { join } from 'node:path';
import type { Collection } from '../contracts/ids.js';
import { fsyncDir, writeDurably } from '../durable-fs.js';
import { TransientError } from '../errors.js';
import { LeaseLostError } from '../lease/lease.js';
import { copyFilesHashing, digestDiff, listFiles, NotAFileError, sha256Files } from './file-digests.js';
import { checkVersionId, isVersionId } from './version-id.js';
import {
  emptyManifest,
  ManifestInvalidError,
  parseManifest,
  sealedDigests,
  type Manifest,
} from '../segments/manifest.js';

/**
 * Snapshot layout on the shared volume (docs/adr/0009-wire-contracts.md):
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

/** Throws InvalidVersionIdError for an id that is not a plain name (it would leave `versions/`). */
export function versionDir(root: string, collection: Collection, version: string): string {
  return join(versionsDir(root, collection), checkVersionId(version, `version of ${collection}`));
}

/** Sortable, unique version ids: UTC time to the millisecond plus a random suffix. */
export function newVersionId(now = new Date()): string {
  const t = now.toISOString().replace(/[-:]/g, '').replace('.', '');
  return `${t}-${randomBytes(3).toString('hex')}`;
}

/** The live version id, undefined when there is none; InvalidVersionIdError when CURRENT names no plain id. */
export async function readCurrent(root: string, collection: Collection): Promise<string | undefined> {
  const v = await readCurrentText(root, collection);
  return v ? checkVersionId(v, join(collectionDir(root, collection), 'CURRENT')) : undefined;
}

/**
 * What CURRENT holds, trimmed and not checked as a version id (its first bytes only: a valid id is ≤ 128 bytes, and
 * an arbitrarily large file planted as CURRENT is never read whole); undefined when there is no CURRENT or it is
 * empty. The compare-and-swap of switchCurrent compares against this.
 */
export async function readCurrentText(root: string, collection: Collection): Promise<string | undefined> {
  const path = join(collectionDir(root, collection), 'CURRENT');
  try {
    const fh = await open(path, 'r');
    try {
      const buf = Buffer.alloc(CURRENT_MAX_BYTES + 1);
      const { bytesRead } = await fh.read(buf, 0, buf.length, 0);
      return buf.subarray(0, bytesRead).toString('utf8').trim() || undefined;
    } finally {
      await fh.close();
    }
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw err;
  }
}

const CURRENT_MAX_BYTES = 256;

/**
 * CURRENT was not what its writer expected when it came to switch it: another writer moved it meanwhile (an unfenced
 * `snapshot restore`, a deposed compactor), or the writer's idea of the live version is stale. Nothing was switched.
 * A LeaseLostError: a compactor stops without writing anything more, like any lost fence, and starts again from the
 * CURRENT that is there.
 */
export class CurrentMovedError extends LeaseLostError {
  constructor(
    readonly collection: Collection,
    readonly expected: string | undefined,
    readonly actual: string | undefined,
    readonly version: string,
  ) {
    super(
      `${collection}: CURRENT moved under us: expected ${expected ?? '(none)'}, found ${actual ?? '(none)'}; not switching it to ${version}`,
      { collection, expected: expected ?? null, actual: actual ?? null, version },
    );
  }
}

export interface SwitchOptions {
  /**
   * The CURRENT this writer based its switch on (what readCurrent, or readCurrentText for one naming no valid id,
   * gave it): undefined means "there is no CURRENT". Compared right before the rename: CurrentMovedError when it
   * differs.
   */
  expected: string | undefined;
}

/**
 * Atomically points CURRENT at `version` (which must already be complete on the volume): written to a temporary file,
 * fsynced, renamed over CURRENT, directory fsynced. A compare-and-swap on `expected`: CURRENT is re-read right before
 * the rename, and CurrentMovedError (nothing switched) when it is not what the writer expected. The re-read and the
 * rename are two steps, so two writers racing within that window are not told apart: writers are kept apart by the
 * compactor's lease and the volume's FENCE (fence.ts); this check catches a writer that did not hold them, or one
 * whose idea of CURRENT is stale.
 */
export async function switchCurrent(
  root: string,
  collection: Collection,
  version: string,
  opts: SwitchOptions,
): Promise<void> {
  checkVersionId(version, `new CURRENT of ${collection}`);
  const dir = collectionDir(root, collection);
  await mkdir(dir, { recursive: true });
  const tmp = join(dir, `.CURRENT.${process.pid}.${randomBytes(4).toString('hex')}`);
  try {
    await writeDurably(tmp, `${version}\n`);
    const actual = await readCurrentText(root, collection);
    if (actual !== opts.expected) throw new CurrentMovedError(collection, opts.expected, actual, version);
    await rename(tmp, join(dir, 'CURRENT'));
  } catch (err) {
    await rm(tmp, { force: true });
    throw err;
  }
  await fsyncDir(dir);
}

/**
 * A version on the volume is not what its publisher recorded: a file differs, is missing or was added, or the
 * version directory itself is gone. Retryable for a reader (a repair may install an intact copy meanwhile); the
 * compactor and `snapshot restore` repair it (core/snapshot/repair.ts).
 */
export class VersionDamagedError extends TransientError {
  constructor(
    readonly path: string,
    readonly problem: string,
  ) {
    super(`version ${path} does not match its recorded digests: ${problem}`, { path, problem });
  }
}

/** Published versions, oldest first (ids sort by time). Hidden staging directories are not versions. */
export async function listVersions(root: string, collection: Collection): Promise<string[]> {
  try {
    // A directory whose name is no version id is not a version (and is never turned into a path).
    return (await readdir(versionsDir(root, collection))).filter(isVersionId).sort();
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return [];
    throw err;
  }
}

/**
 * Copies a finished Chroma directory into a new immutable version: first into a hidden staging directory, then one
 * rename, so a half-copied version is never visible under its final name. The copy is checked against the digests
 * the source records (VersionDamagedError). A directory already under that name (a damaged copy of the same version,
 * being repaired from the mirror) is moved aside to a hidden `.damaged-…` name first and then removed.
 */
export async function installVersion(
  root: string,
  collection: Collection,
  version: string,
  source: string,
): Promise<string> {
  const dest = versionDir(root, collection, version); // checks the id before anything is removed
  const staging = join(versionsDir(root, collection), `.staging-${version}`);
  await rm(staging, { recursive: true, force: true });
  await mkdir(versionsDir(root, collection), { recursive: true });
  try {
    await copyVersion(source, staging);
  } catch (err) {
    await rm(staging, { recursive: true, force: true });
    throw err;
  }
  const aside = await moveAside(root, collection, version);
  await rename(staging, dest);
  await fsyncDir(versionsDir(root, collection));
  if (aside) await rm(aside, { recursive: true, force: true });
  return dest;
}

/**
 * Renames a version directory to a hidden `.damaged-<version>-<random>` (no longer a version: not listed, never
 * copied) and returns the new path; undefined when there is no such version.
 */
export async function moveAside(
  root: string,
  collection: Collection,
  version: string,
): Promise<string | undefined> {
  const dir = versionDir(root, collection, version);
  const aside = join(versionsDir(root, collection), `.damaged-${version}-${randomBytes(3).toString('hex')}`); // id checked by versionDir
  try {
    await rename(dir, aside);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw err;
  }
  await fsyncDir(versionsDir(root, collection));
  return aside;
}

/**
 * Removes what an interrupted publish, install or repair left in `versions/`: hidden `.staging-*` and `.damaged-*`
 * directories older than `graceMs` (0: all; only a writer holding the compactor's lease may pass 0, since a live
 * writer's staging directory would be pulled from under it). Returns the names removed.
 */
export async function removeLeftovers(
  root: string,
  collection: Collection,
  opts: { graceMs: number; now?: number } = { graceMs: 0 },
): Promise<string[]> {
  let names: string[];
  try {
    names = await readdir(versionsDir(root, collection));
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return [];
    throw err;
  }
  const now = opts.now ?? Date.now();
  const removed: string[] = [];
  for (const name of names) {
    if (!name.startsWith('.staging-') && !name.startsWith('.damaged-')) continue;
    const dir = join(versionsDir(root, collection), name);
    const s = await stat(dir).catch(() => undefined);
    if (!s || (opts.graceMs > 0 && now - s.mtimeMs < opts.graceMs)) continue;
    await rm(dir, { recursive: true, force: true });
    removed.push(name);
  }
  return removed;
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
 * volume is not what was published: nothing may use the copy (VersionDamagedError).
 */
export async function copyVersion(source: string, dest: string): Promise<void> {
  let files: string[];
  try {
    files = await listFiles(source);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT')
      throw new VersionDamagedError(source, 'the version directory is missing');
    if (err instanceof NotAFileError) throw new VersionDamagedError(source, err.message);
    throw err;
  }
  const got = await copyFilesHashing(source, dest, files);
  const recorded = await recordedDigests(source).catch((err: unknown) => {
    throw new VersionDamagedError(source, `its ${VERSION_INFO} is unreadable: ${(err as Error).message}`);
  });
  if (!recorded) return;
  got.delete(VERSION_INFO);
  const diff = digestDiff(recorded, got);
  if (diff) throw new VersionDamagedError(source, diff);
}

/**
 * Checks a version in place (every file hashed, nothing copied): undefined when it matches the digests its
 * publisher recorded (or records none), else what is wrong.
 */
export async function checkVersion(path: string): Promise<string | undefined> {
  let files: string[];
  try {
    files = (await listFiles(path)).filter((f) => f !== VERSION_INFO);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return 'the version directory is missing';
    if (err instanceof NotAFileError) return err.message;
    throw err;
  }
  let recorded: Map<string, string> | undefined;
  try {
    recorded = await recordedDigests(path);
  } catch (err) {
    return `its ${VERSION_INFO} is unreadable: ${(err as Error).message}`;
  }
  if (!recorded) return undefined;
  const digests = await sha256Files(files.map((f) => join(path, f)));
  return digestDiff(recorded, new Map(files.map((f, i) => [f, digests[i]!])));
}

/**
 * Every file's recorded digest: the hot segment's files and, from the segment manifest, each sealed segment's
 * (`sealed/{id}/…`). Undefined for a version that records none.
 */
async function recordedDigests(versionPath: string): Promise<Map<string, string> | undefined> {
  try {
    const info = JSON.parse(await readFile(join(versionPath, VERSION_INFO), 'utf8')) as {
      files?: Record<string, string>;
    };
    if (!info.files) return undefined;
    const manifest = parseManifest(info, join(versionPath, VERSION_INFO));
    return new Map([...Object.entries(info.files), ...sealedDigests(manifest)]);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw err;
  }
}

/**
 * The segment manifest of a version (core/segments/manifest.ts): empty for a version without sealed segments or
 * without a provenance file; ManifestInvalidError when it does not parse.
 */
export async function readManifest(versionPath: string): Promise<Manifest> {
  let text: string;
  try {
    text = await readFile(join(versionPath, VERSION_INFO), 'utf8');
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return emptyManifest();
    throw err;
  }
  let info: unknown;
  try {
    info = JSON.parse(text);
  } catch (err) {
    throw new ManifestInvalidError(join(versionPath, VERSION_INFO), (err as Error).message);
  }
  return parseManifest(info, join(versionPath, VERSION_INFO));
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
