import { link, mkdir, readFile, rename, rm, stat } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { startChromaServer } from '../core/chroma/server.js';
import { CHROMA_CHUNK, ChromaVectorStore } from '../core/chroma/store.js';
import type { Collection } from '../core/contracts/ids.js';
import { TransientError } from '../core/errors.js';
import type { Logger } from '../core/log.js';
import { linkSealed } from '../core/segments/link.js';
import {
  SEALED_DIR,
  segmentId,
  tombstoneSets,
  type Manifest,
  type SealedSegment,
} from '../core/segments/manifest.js';
import { copyFilesHashing, digestDiff, listFiles, sha256Files } from '../core/snapshot/file-digests.js';
import {
  newVersionId,
  VERSION_INFO,
  VersionDamagedError,
  versionDir,
  versionsDir,
} from '../core/snapshot/volume.js';
import type { MergePlan } from './merge-policy.js';
import { commitVersion, requireBase, type PublishContext } from './publish.js';
import type { ServerRegistry } from './server-registry.js';
import { WorkingCopy } from './working-copy.js';

/** What a merge build needs: the volume, a scratch directory of its own, and how to start a Chroma server. */
export interface MergeBuildContext {
  readonly c: Collection;
  readonly root: string;
  /** Scratch parent of the merge's directories (`{workRoot}/{collection}/merge`), emptied first. */
  readonly workDir: string;
  /** The compactor's server registry (every server it starts is reaped after a crash); unset: plain child servers. */
  readonly registry?: ServerRegistry | undefined;
  readonly timeoutMs: number;
  readonly log: Logger;
}

/** A merged segment built on scratch, stopped, not yet installed. */
export interface BuiltMerge {
  /** The version whose segments were read. */
  readonly from: string;
  readonly plan: MergePlan;
  /** Per input segment: the tombstones folded in (records left out of the merged segment). */
  readonly folded: Map<string, Set<string>>;
  readonly segment: SealedSegment;
  /** The merged Chroma directory on scratch. */
  readonly dir: string;
  readonly added: number;
  readonly deleted: number;
  readonly bytes: number;
  readonly seconds: number;
}

/**
 * Builds the merged segment of `plan` from version `from` (docs/adr/0012-immutable-segments.md, "Merge policy"), on
 * scratch and apart from the working copy, so the lane goes on merging runs meanwhile: a copy of the base (largest)
 * segment read from the volume (every file checked against the manifest), its tombstoned records deleted, and the
 * live records of every other input added (each input copied from the volume and served read-only). Chroma inserts
 * only the added records into the copied index: the cost follows the smaller segments, not the largest. Stopped
 * (flushed) and hashed: the segment's id is its files' digest.
 */
export async function buildMerge(
  ctx: MergeBuildContext,
  from: string,
  manifest: Manifest,
  plan: MergePlan,
  signal?: AbortSignal,
): Promise<BuiltMerge> {
  const t0 = performance.now();
  const { c, root, workDir } = ctx;
  const source = versionDir(root, c, from);
  const byId = new Map(manifest.segments.map((s) => [s.id, s]));
  const tombstones = tombstoneSets(manifest);
  const folded = new Map(plan.inputs.map((id) => [id, new Set(tombstones.get(id))]));
  await rm(workDir, { recursive: true, force: true });
  const dir = join(workDir, 'merged');
  const copyChecked = async (s: SealedSegment, to: string) => {
    const from = join(source, SEALED_DIR, s.id);
    const got = await copyFilesHashing(from, to, Object.keys(s.files), new Map(), { sparse: true });
    const diff = digestDiff(new Map(Object.entries(s.files)), got);
    if (diff) throw new VersionDamagedError(from, diff);
  };
  const base = byId.get(plan.base);
  if (!base) throw new TransientError(`merge of ${c}: segment ${plan.base} is not in version ${from}`);
  await copyChecked(base, dir);
  const start = (path: string) => (ctx.registry ? ctx.registry.start(path) : startChromaServer({ path }));
  const target = new WorkingCopy(c, dir, ctx.registry, ctx.timeoutMs); // for its fast add
  // Every other input is copied from the volume first: the version may be pruned while the merge goes on.
  const others: SealedSegment[] = [];
  for (const id of plan.inputs) {
    if (id === base.id) continue;
    const s = byId.get(id);
    if (!s) throw new TransientError(`merge of ${c}: segment ${id} is not in version ${from}`);
    await copyChecked(s, join(workDir, id));
    others.push(s);
  }
  let added = 0;
  let deleted = 0;
  let count = base.count;
  await target.start();
  try {
    const dead = [...folded.get(base.id)!];
    for (let i = 0; i < dead.length; i += CHROMA_CHUNK) {
      signal?.throwIfAborted();
      await target.store!.delete(c, dead.slice(i, i + CHROMA_CHUNK));
    }
    deleted += dead.length;
    count -= dead.length;
    for (const s of others) {
      const copy = join(workDir, s.id);
      const server = await start(copy);
      try {
        const store = new ChromaVectorStore(server.url, { timeoutMs: ctx.timeoutMs });
        const skip = folded.get(s.id)!;
        deleted += skip.size;
        for (let offset = 0; ; offset += CHROMA_CHUNK) {
          signal?.throwIfAborted();
          const page = await store.get(c, {
            include: ['embeddings', 'documents', 'metadatas'],
            limit: CHROMA_CHUNK,
            offset,
          });
          const records = page.ids.flatMap((rid, j) =>
            skip.has(rid)
              ? []
              : [
                  {
                    id: rid,
                    document: page.documents[j] ?? '',
                    metadata: page.metadatas[j] ?? {},
                    embedding: page.embeddings![j]!,
                  },
                ],
          );
          await target.add(records);
          added += records.length;
          count += records.length;
          if (page.ids.length < CHROMA_CHUNK) break;
        }
      } finally {
        await server.stop();
        await rm(copy, { recursive: true, force: true });
      }
    }
    const got = await target.hotCount();
    if (got !== count)
      throw new TransientError(`merge of ${c}: ${got} records in the merged segment, expected ${count}`);
  } finally {
    await target.stop();
  }
  const files = await listFiles(dir);
  const sums = await sha256Files(files.map((f) => join(dir, f)));
  const map = new Map(files.map((f, i) => [f, sums[i]!]));
  let bytes = 0; // allocated on scratch: what installing it writes to the volume (sparse copy)
  for (const f of files) bytes += (await stat(join(dir, f))).blocks * 512;
  const segment: SealedSegment = { id: segmentId(map), count, files: Object.fromEntries(map) };
  const seconds = (performance.now() - t0) / 1000;
  ctx.log.info(
    { from, inputs: plan.inputs, segment: segment.id, vectors: count, added, deleted, seconds },
    'merged segment built',
  );
  return { from, plan, folded, segment, dir, added, deleted, bytes, seconds };
}

/**
 * Installs a built merge as a new version through the same path as every publish (compactor/publish.ts
 * commitVersion: provenance, rename, fence, compare-and-swap of CURRENT from `base`). Called on the lane between
 * batches, when the working copy is exactly version `base`: the hot segment's files are hard-linked from `base` (no
 * bytes), the merged segment is copied from scratch into the staged version (each file's SHA-256 checked against the
 * build's), the segments not merged are linked, and tombstones that the lane added to an input while the merge was
 * built move to the merged segment (it holds those records). The working copy swaps the inputs' servers for one on
 * the merged segment, and its count must not change before CURRENT moves. Crash points `merge-after-copy`,
 * `merge-before-switch`, `merge-after-switch`. Returns the new version, or undefined when an input is no longer in
 * the working copy (the build is stale and dropped).
 */
export async function installMerge(
  ctx: PublishContext,
  base: string | undefined,
  built: BuiltMerge,
): Promise<string | undefined> {
  const t0 = performance.now();
  const { root, c, wc, lease } = ctx;
  const now = wc.manifest();
  const present = new Set(now.segments.map((s) => s.id));
  if (!built.plan.inputs.every((id) => present.has(id))) return undefined;
  const from = versionDir(root, c, requireBase(c, base));
  const info = JSON.parse(await readFile(join(from, VERSION_INFO), 'utf8')) as {
    files?: Record<string, string>;
  };
  if (!info.files) return undefined; // a version without digests (older than checksums): left to the next publish
  const hot = new Map(Object.entries(info.files));
  const inputs = new Set(built.plan.inputs);
  const carried: string[] = [];
  for (const id of built.plan.inputs)
    for (const t of now.tombstones[id] ?? []) if (!built.folded.get(id)?.has(t)) carried.push(t);

  await lease.assertHeld();
  const count = await wc.count();
  const version = newVersionId();
  const staging = join(versionsDir(root, c), `.staging-${version}`);
  for (const f of hot.keys()) {
    await mkdir(dirname(join(staging, f)), { recursive: true });
    await link(join(from, f), join(staging, f));
  }
  const incoming = join(staging, SEALED_DIR, '.incoming');
  const got = await copyFilesHashing(built.dir, incoming, Object.keys(built.segment.files), new Map(), {
    sparse: true,
  });
  const diff = digestDiff(new Map(Object.entries(built.segment.files)), got);
  if (diff) throw new TransientError(`merged segment ${built.segment.id} changed on scratch: ${diff}`);
  await rename(incoming, join(staging, SEALED_DIR, built.segment.id));
  ctx.progress.tick();
  await linkSealed(
    from,
    staging,
    now.segments.filter((s) => !inputs.has(s.id)),
  );

  // The working copy: the inputs' servers go, the merged segment's scratch copy is served in their place.
  await wc.sealed.replace(built.plan.inputs, built.segment, built.dir, carried);
  const after = await wc.count();
  if (after !== count)
    throw new TransientError(`merge of ${c}: ${after} records after the merge, expected ${count}`, {
      count,
      after,
    });
  const manifest = wc.manifest();
  await commitVersion(ctx, { staging, version, base, count, files: hot, manifest }, 'merge-');
  ctx.log.info(
    {
      version,
      segment: built.segment.id,
      merged: built.plan.inputs.length,
      segments: manifest.segments.length,
      seconds: (performance.now() - t0) / 1000,
    },
    'merged segment installed',
  );
  return version;
}
