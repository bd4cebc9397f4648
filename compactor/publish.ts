import { mkdir, rename } from 'node:fs/promises';
import { join } from 'node:path';
import type { Collection } from '../core/contracts/ids.js';
import { fsyncDir, writeDurably } from '../core/durable-fs.js';
import { TransientError } from '../core/errors.js';
import type { FencedLease } from '../core/lease/lease.js';
import type { Logger } from '../core/log.js';
import {
  listVersions,
  newVersionId,
  pruneVersions,
  removeLeftovers,
  switchCurrent,
  VERSION_INFO,
  versionDir,
  versionsDir,
} from '../core/snapshot/volume.js';
import { linkSealed } from '../core/segments/link.js';
import { manifestJson, type Manifest } from '../core/segments/manifest.js';
import type { CrashHooks } from '../core/testing/crash-points.js';
import type { CompactorMetrics } from './metrics.js';
import type { Progress } from './progress.js';
import { copyWhileRestarting } from './stage-copy.js';
import type { WorkingCopy } from './working-copy.js';

/** What a publish works with: one lane's working copy, the shared volume, the lease and its fence. */
export interface PublishContext {
  readonly c: Collection;
  readonly wc: WorkingCopy;
  readonly root: string;
  readonly lease: FencedLease;
  readonly progress: Progress;
  readonly log: Logger;
  /** The compactor's metrics (compactor/metrics.ts) and fault-injection hooks (core/testing/crash-points.ts). */
  readonly metrics: CompactorMetrics;
  readonly hooks?: CrashHooks | undefined;
  fence(c: Collection): Promise<number>;
}

/**
 * Stop (Chroma flushes; its HNSW files are persisted after every merge, see WorkingCopy) → copy into a hidden
 * staging dir on the volume, verified byte-identical by SHA-256 of every file, while the working server restarts
 * on the very bytes being copied and validates them with real Chroma reads (count, a query, every merged id) →
 * rename → fence → compare-and-swap CURRENT from `base`, the version the working copy came from. Chroma never runs
 * on the shared volume (slow and unsafe on NFS), and each publish loads the index once (the working server needs it
 * anyway). Returns the version now live.
 */
export async function publishVersion(
  ctx: PublishContext,
  base: string | undefined,
  mergedIds: string[],
): Promise<string> {
  const t0 = performance.now();
  const { root, c, wc, lease } = ctx;
  const version = newVersionId();
  await lease.assertHeld(); // no staging writes on the volume after the lease is gone
  const count = await wc.count();
  await wc.stop();
  const stopMs = performance.now() - t0;
  const staging = join(versionsDir(root, c), `.staging-${version}`);
  await mkdir(staging, { recursive: true });
  let restartMs = 0;
  const files = await copyWhileRestarting(
    wc.dir,
    staging,
    async () => {
      const tr = performance.now();
      await wc.start();
      await validateWorkingCopy(wc, count, mergedIds);
      restartMs = performance.now() - tr;
    },
    [VERSION_INFO], // the working copy holds its base's provenance file; the new one is written below
  );
  ctx.progress.tick();
  // The sealed segments are shared with the base version: hard links, no bytes copied, digests carried over.
  const manifest = wc.manifest();
  if (manifest.segments.length)
    await linkSealed(versionDir(root, c, requireBase(c, base)), staging, manifest.segments);
  const copyMs = performance.now() - t0 - stopMs;
  await commitVersion(ctx, { staging, version, base, count, files, manifest }, '');
  const seconds = (performance.now() - t0) / 1000;
  ctx.metrics.publishSeconds.observe({ collection: c }, seconds);
  ctx.metrics.publishes.inc({ collection: c });
  const ms = (x: number) => Math.round(x);
  ctx.log.info(
    { version, count, seconds, stopMs: ms(stopMs), copyMs: ms(copyMs), restartMs: ms(restartMs) },
    'published',
  );
  return version;
}

/** What a staged version records and where it is. */
export interface StagedVersion {
  staging: string;
  version: string;
  base: string | undefined;
  count: number;
  /** The hot segment's files and their SHA-256. */
  files: Map<string, string>;
  manifest: Manifest;
}

/**
 * Writes the provenance file into the staged version (who published what, from which base, with which token, the
 * SHA-256 of every hot file and the segment manifest with the sealed files' digests: every reader's copy is checked
 * against them, copyVersion), renames it into `versions/`, fences, and switches CURRENT by compare-and-swap from
 * `base`: a CURRENT moved by anyone else (a restore without the lease, a stale NFS read at start) refuses it, and the
 * caller reloads CURRENT. Crash points `{step}after-copy`, `{step}before-switch`, `{step}after-switch`.
 */
export async function commitVersion(
  ctx: PublishContext,
  v: StagedVersion,
  step: '' | 'seal-' | 'merge-',
): Promise<void> {
  const { root, c, lease } = ctx;
  await writeDurably(
    join(v.staging, VERSION_INFO),
    JSON.stringify({
      version: v.version,
      collection: c,
      base: v.base ?? null,
      count: v.count,
      holder: lease.identity,
      token: lease.token,
      createdAt: new Date().toISOString(),
      files: Object.fromEntries(v.files),
      ...manifestJson(v.manifest),
    }),
  );
  ctx.hooks?.step?.(`${step}after-copy`);
  await rename(v.staging, versionDir(root, c, v.version));
  await fsyncDir(versionsDir(root, c));
  ctx.hooks?.step?.(`${step}before-switch`);
  await ctx.fence(c);
  await switchCurrent(root, c, v.version, { expected: v.base });
  ctx.hooks?.step?.(`${step}after-switch`);
}

/** The version sealed segments are linked from; a working copy with sealed segments always came from one. */
export function requireBase(c: Collection, base: string | undefined): string {
  if (!base)
    throw new TransientError(
      `${c}: the working copy has sealed segments but no base version to link them from`,
    );
  return base;
}

/** Real Chroma reads on the restarted working copy: the flushed bytes hold everything (count, a query, every id). */
async function validateWorkingCopy(wc: WorkingCopy, count: number, ids: string[]): Promise<void> {
  const got = await wc.count();
  if (got !== count) throw new TransientError(`validation: count ${got} after restart, expected ${count}`);
  if (count > 0) await wc.probeQuery();
  const present = await wc.presentIds(ids);
  if (present.size !== new Set(ids).size) {
    throw new TransientError(
      `validation: ${new Set(ids).size - present.size} merged id(s) missing after restart`,
    );
  }
}

/**
 * Old versions (and abandoned staging or damaged dirs) go only after `graceMs`; CURRENT and the newest `keep` stay.
 * Never throws: housekeeping off the runs' path to COMPLETED.
 */
export async function pruneOld(
  ctx: Pick<PublishContext, 'root' | 'c' | 'log' | 'metrics'>,
  opts: { keep: number; graceMs: number },
): Promise<void> {
  const { root, c, log } = ctx;
  try {
    const removed = await pruneVersions(root, c, opts);
    removed.push(...(await removeLeftovers(root, c, { graceMs: opts.graceMs })));
    if (removed.length) log.info({ removed }, 'pruned old versions');
    await countVersions(ctx.metrics, root, c);
  } catch (err) {
    log.warn({ err }, 'prune failed');
  }
}

/** The versions gauge, from what the volume holds. */
export async function countVersions(metrics: CompactorMetrics, root: string, c: Collection): Promise<void> {
  metrics.versions.set({ collection: c }, (await listVersions(root, c)).length);
}
