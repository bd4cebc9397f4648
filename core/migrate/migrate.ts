import { mkdir, mkdtemp, readFile, rename, rm } from 'node:fs/promises';
import { join } from 'node:path';
import { openChromaDir, type ChromaDirCollection } from '../chroma/dir-reader.js';
import { startChromaServer } from '../chroma/server.js';
import { ChromaVectorStore } from '../chroma/store.js';
import type { Collection } from '../contracts/ids.js';
import { fsyncDir, writeDurably } from '../durable-fs.js';
import { PipelineError } from '../errors.js';
import type { FencedLease } from '../lease/lease.js';
import type { ObjectStore } from '../ports/object-store.js';
import type { Metadata } from '../ports/vector-store.js';
import { copyFilesHashing, listFiles } from '../snapshot/file-digests.js';
import {
  DEFAULT_RESTORE_LIMITS,
  readPointer,
  uploadSnapshot,
  type RestoreLimits,
} from '../snapshot/s3-snapshot.js';
import {
  checkVersion,
  listVersions,
  newVersionId,
  readCurrent,
  switchCurrent,
  VERSION_INFO,
  versionDir,
  versionsDir,
} from '../snapshot/volume.js';
import type { CrashHooks } from '../testing/crash-points.js';
import {
  fetchSourceSnapshot,
  findSourceSnapshot,
  sourceUri,
  type LambdaSource,
  type SourceSnapshot,
} from './lambda-snapshot.js';
import { migrateMetadata } from './metadata.js';

/**
 * `embedctl migrate`: takes over the original system's snapshots (docs/migrate.md, docs/adr/0014). Per collection:
 * read the pointer → download and verify → read the Chroma 1.5.x files directly (core/chroma/dir-reader.ts) → write
 * every record into a fresh Chroma of this project on scratch → restart it and verify id by id (document, metadata,
 * float32-exact vector), count and a query → copy into a new version on the volume with every file's SHA-256 and the
 * source recorded (embedctl-version.json `migratedFrom`) → fence → switch CURRENT → upload to the S3 mirror.
 *
 * Idempotent and resumable: a version whose `migratedFrom` names the same source snapshot and which is intact is
 * reused — already live: nothing to do but the mirror; installed but not live (a crash before the switch): switched
 * to. Anything before the install lives in scratch and is redone.
 */
export interface MigrateDeps {
  source: LambdaSource;
  root: string;
  mirror?: { store: ObjectStore; bucket: string } | undefined;
  scratch: string;
  lease: FencedLease;
  fence(c: Collection): Promise<unknown>;
  hooks?: CrashHooks | undefined;
  limits?: RestoreLimits;
  /** Replace a live version this project's compactor published (else refused). */
  replace?: boolean;
  log?: (line: string) => void;
}

export interface MigratedFrom {
  source: string;
  version: string;
  layout: SourceSnapshot['layout'];
  hash: string | null;
}

export type Plan =
  | { collection: Collection; action: 'none'; reason: string }
  | { collection: Collection; action: 'mirror-only' | 'switch'; snapshot: SourceSnapshot; version: string }
  | { collection: Collection; action: 'migrate'; snapshot: SourceSnapshot; current: string | undefined };

export interface MigrateResult {
  collection: Collection;
  action: Plan['action'];
  sourceVersion?: string;
  version?: string;
  count?: number;
  mirrored?: boolean;
  reason?: string;
}

export class MigrationRefusedError extends PipelineError {
  constructor(message: string, context: Record<string, unknown>) {
    super('BadInput', message, context);
  }
}

export class MigrationVerifyError extends PipelineError {
  constructor(c: Collection, problem: string) {
    super('SnapshotDamaged', `${c}: the migrated copy differs from the source: ${problem}`, {
      collection: c,
      problem,
    });
  }
}

const sameSource = (a: MigratedFrom | undefined, b: MigratedFrom) =>
  !!a && a.source === b.source && a.version === b.version && a.layout === b.layout && a.hash === b.hash;

export function migratedFrom(src: LambdaSource, snap: SourceSnapshot): MigratedFrom {
  return { source: sourceUri(src), version: snap.version, layout: snap.layout, hash: snap.hash ?? null };
}

async function versionInfo(
  root: string,
  c: Collection,
  v: string,
): Promise<{ migratedFrom?: MigratedFrom } | undefined> {
  try {
    return JSON.parse(await readFile(join(versionDir(root, c, v), VERSION_INFO), 'utf8')) as {
      migratedFrom?: MigratedFrom;
    };
  } catch {
    return undefined;
  }
}

/** What migrate would do for `c` (nothing is written). */
export async function planCollection(
  deps: Pick<MigrateDeps, 'source' | 'root' | 'replace'>,
  c: Collection,
): Promise<Plan> {
  const snap = await findSourceSnapshot(deps.source, c);
  if (!snap)
    return {
      collection: c,
      action: 'none',
      reason: `no ${c}/snapshot/latest-pointer.txt under ${sourceUri(deps.source)}`,
    };
  const want = migratedFrom(deps.source, snap);
  const current = await readCurrent(deps.root, c);
  // Newest first: an intact version migrated from this very snapshot is reused.
  for (const v of (await listVersions(deps.root, c)).reverse()) {
    if (!sameSource((await versionInfo(deps.root, c, v))?.migratedFrom, want)) continue;
    if (await checkVersion(versionDir(deps.root, c, v))) continue; // damaged: migrate afresh
    return { collection: c, action: v === current ? 'mirror-only' : 'switch', snapshot: snap, version: v };
  }
  if (current && !deps.replace && !(await versionInfo(deps.root, c, current))?.migratedFrom)
    throw new MigrationRefusedError(
      `${c}: the live version ${current} was published by this project's compactor; migrating would replace it (pass --replace to do so)`,
      { collection: c, current },
    );
  return { collection: c, action: 'migrate', snapshot: snap, current };
}

/** Carries out a plan. */
export async function runPlan(deps: MigrateDeps, plan: Plan): Promise<MigrateResult> {
  const c = plan.collection;
  if (plan.action === 'none') return { collection: c, action: 'none', reason: plan.reason };
  let version: string;
  let count: number | undefined;
  if (plan.action === 'migrate') {
    const done = await migrateInto(deps, plan.snapshot, plan.current);
    version = done.version;
    count = done.count;
  } else {
    version = plan.version;
    if (plan.action === 'switch') {
      const expected = await readCurrent(deps.root, c);
      await deps.fence(c);
      await switchCurrent(deps.root, c, version, { expected });
    }
    count = (await versionInfoCount(deps.root, c, version)) ?? undefined;
  }
  deps.hooks?.step?.('migrate-switched');
  const mirrored = await mirror(deps, c, version);
  return {
    collection: c,
    action: plan.action,
    sourceVersion: plan.snapshot.version,
    version,
    count,
    mirrored,
  };
}

async function versionInfoCount(root: string, c: Collection, v: string): Promise<number | undefined> {
  const info = (await versionInfo(root, c, v)) as { count?: number } | undefined;
  return info?.count;
}

/** Uploads the version to the S3 mirror unless its pointer already names it (or a newer version). */
async function mirror(deps: MigrateDeps, c: Collection, version: string): Promise<boolean> {
  if (!deps.mirror) return false;
  const { store, bucket } = deps.mirror;
  const pointer = await readPointer(store, bucket, c);
  if (pointer !== undefined && pointer >= version) return false;
  await uploadSnapshot(store, bucket, c, version, versionDir(deps.root, c, version), {
    assertHeld: () => deps.lease.assertHeld(),
  });
  return true;
}

async function migrateInto(
  deps: MigrateDeps,
  snap: SourceSnapshot,
  current: string | undefined,
): Promise<{ version: string; count: number }> {
  const c = snap.collection;
  const log = deps.log ?? (() => {});
  const work = await mkdtemp(join(deps.scratch, `migrate-${c}-`));
  try {
    const src = join(work, 'source');
    const dst = join(work, 'chroma');
    await mkdir(src, { recursive: true });
    log(`${c}: downloading ${snap.layout} snapshot ${snap.version} (${snap.bytes} bytes)`);
    await fetchSourceSnapshot(deps.source, snap, src, work, deps.limits ?? DEFAULT_RESTORE_LIMITS);
    const reader = openChromaDir(src, c);
    let count: number;
    try {
      log(`${c}: writing ${reader.count} records`);
      await withServer(dst, async (store) => {
        for (const page of reader.pages()) {
          await store.upsert(
            c,
            page.map((r) => ({
              id: r.id,
              document: r.document ?? '',
              metadata: migrateMetadata(r.metadata),
              embedding: r.embedding,
            })),
          );
        }
      });
      deps.hooks?.step?.('migrate-written');
      // Verified on the flushed bytes: the server restarted on them is what gets installed.
      count = await withServer(dst, (store) => verify(c, reader, store));
    } finally {
      reader.close();
    }
    log(`${c}: ${count} records verified id by id`);
    const version = newVersionId();
    await deps.lease.assertHeld();
    const staging = join(versionsDir(deps.root, c), `.staging-${version}`);
    await mkdir(staging, { recursive: true });
    const files = await copyFilesHashing(dst, staging, await listFiles(dst));
    await writeDurably(
      join(staging, VERSION_INFO),
      JSON.stringify({
        version,
        collection: c,
        base: current ?? null,
        count,
        holder: deps.lease.identity,
        token: deps.lease.token,
        createdAt: new Date().toISOString(),
        migratedFrom: migratedFrom(deps.source, snap),
        files: Object.fromEntries(files),
      }),
    );
    await rename(staging, versionDir(deps.root, c, version));
    await fsyncDir(versionsDir(deps.root, c));
    deps.hooks?.step?.('migrate-installed');
    await deps.fence(c);
    await switchCurrent(deps.root, c, version, { expected: current });
    return { version, count };
  } finally {
    await rm(work, { recursive: true, force: true });
  }
}

async function withServer<T>(dir: string, fn: (store: ChromaVectorStore) => Promise<T>): Promise<T> {
  const server = await startChromaServer({ path: dir });
  try {
    return await fn(new ChromaVectorStore(server.url));
  } finally {
    await server.stop();
  }
}

/** Every source record is in `store` with the same document, (migrated) metadata and bit-identical vector. */
async function verify(c: Collection, reader: ChromaDirCollection, store: ChromaVectorStore): Promise<number> {
  const total = await store.count(c);
  if (total !== reader.count)
    throw new MigrationVerifyError(c, `count ${total}, the source has ${reader.count}`);
  let seen = 0;
  let probe: Float32Array | undefined;
  let probeId = '';
  for (const page of reader.pages()) {
    const got = await store.get(c, {
      ids: page.map((r) => r.id),
      include: ['embeddings', 'documents', 'metadatas'],
    });
    const at = new Map(got.ids.map((id, i) => [id, i]));
    for (const r of page) {
      const i = at.get(r.id);
      if (i === undefined) throw new MigrationVerifyError(c, `${r.id} is missing`);
      if ((got.documents[i] ?? '') !== (r.document ?? ''))
        throw new MigrationVerifyError(c, `${r.id}: the document differs`);
      if (!sameMetadata(got.metadatas[i] ?? {}, migrateMetadata(r.metadata)))
        throw new MigrationVerifyError(c, `${r.id}: the metadata differs`);
      const e = got.embeddings![i]!;
      if (e.length !== r.embedding.length || e.some((x, k) => !Object.is(x, r.embedding[k])))
        throw new MigrationVerifyError(c, `${r.id}: the vector differs`);
      probe ??= r.embedding;
      if (!probeId) probeId = r.id;
      seen++;
    }
  }
  if (probe) {
    const [hit] = await store.query(c, probe, 1);
    if (!hit || hit.id !== probeId || hit.distance > 1e-4)
      throw new MigrationVerifyError(c, `a query with ${probeId}'s vector found ${hit?.id ?? 'nothing'}`);
  }
  return seen;
}

function sameMetadata(a: Metadata, b: Metadata): boolean {
  const ka = Object.keys(a).sort();
  const kb = Object.keys(b).sort();
  return ka.length === kb.length && ka.every((k, i) => k === kb[i] && Object.is(a[k], b[k]));
}
