import { spawn } from 'node:child_process';
import { existsSync, openSync } from 'node:fs';
import { cp, link, mkdir, readFile, rm, stat, writeFile } from 'node:fs/promises';
import { homedir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { ChromaClient } from 'chromadb';
import { setTimeout as sleep } from 'node:timers/promises';
import { startChromaServer, freePort } from '../core/chroma/server.js';
import { runCollection } from '../core/contracts/compaction-run.js';
import { lineVectorId, wordVectorId, type Collection } from '../core/contracts/ids.js';
import type { VectorRecord, VectorStore } from '../core/ports/vector-store.js';
import { DynamoStreamFeed, FileCheckpointStore } from '../core/aws/dynamo-stream-feed.js';
import { ChromaVectorStore } from '../core/chroma/store.js';
import { SEALED_DIR, segmentId, type SealedSegment } from '../core/segments/manifest.js';
import { openSegments } from '../core/segments/open.js';
import { listFiles, sha256Files } from '../core/snapshot/file-digests.js';
import { uploadSnapshot } from '../core/snapshot/s3-snapshot.js';
import {
  copyVersion,
  listVersions,
  readManifest,
  switchCurrent,
  VERSION_INFO,
  versionDir,
} from '../core/snapshot/volume.js';
import { WorkingCopy } from '../compactor/working-copy.js';
import { DEFAULT_CONFIG } from '../compactor/config.js';
import { sealThreshold } from '../compactor/merge-policy.js';
import { StreamProcessor } from '../stream/processor.js';
import type { TestEnv } from '../test/harness/env.js';
import { startEnvironment } from '../test/harness/environment.js';
import {
  childEnv,
  compactorFor,
  makeWorld,
  pumpStream,
  silent,
  writeRun,
  type Receipt,
  type World,
} from '../test/integration/compactor/fixtures.js';

/**
 * Compactor benchmark (issue 5), 1536-dimensional vectors, ratios against baselines measured in the same run:
 * - compactor.merge_vectors_per_s: MERGE_RUNS receipts' line deltas merged into the working copy (download, verify,
 *   decode, collapse, read existing, add, verify ids) — the batch time minus the publish.
 * - compactor.raw_add_vectors_per_s (= compactor.raw_chroma_vectors_per_s): the same vectors added to a fresh Chroma
 *   collection with the JS client (`collection.add`, chunks of 1000). compactor.merge_vs_raw_ratio = merge / raw.
 * - compactor.publish_s: stop, staged copy verified by SHA-256, restart + validation with real Chroma reads (count,
 *   query, every merged id), rename, fence, CURRENT switch, on the merge run's small directory; compactor.copy_s:
 *   `fs.cp` of the same directory; compactor.publish_vs_copy_ratio_small.
 * - segments (issue 14, at 1× and 4×: BENCH_COMPACTOR_SCALES): the words lane on the base installed as sealed
 *   segments; compactor.publish_bytes_ratio_{1x,4x} (bytes a publish writes / the live version),
 *   versions_disk_ratio (kept versions, each inode once / one version), s3_bytes_per_snapshot_ratio,
 *   query_fanout_ratio (merchant resolution's queries over the segments / one directory of the same vectors).
 * - compactor.run_to_completed_s_{1x,4x}: with the segmented base live (1×: 12,800 line and 70,000 word vectors; 4×:
 *   four times that in four sealed segments per collection), one receipt's CompactionRun row written → stream
 *   processor → SQS → the `embedctl compactor` process → both collections COMPLETED. Median of RUNS_TO_COMPLETED
 *   receipts; compactor.run_to_completed_growth_4x = 4× / 1×.
 * - compactor.rss_mb: that compactor process's peak RSS (VmHWM; its Chroma child servers not included),
 *   compactor.chroma_rss_mb: the largest Chroma child server's peak RSS.
 * The bases are built once (add at ~40-300 vectors/s takes minutes to hours) and cached under
 * ~/.cache/receipt-embeddings-bench/ by size and part.
 */
export type Figures = Record<string, { value: number; unit: string }>;

const DIM = 1536;
const MERGE_RUNS = Number(process.env.BENCH_COMPACTOR_MERGE_RUNS ?? 20);
const LINES_PER_RUN = 100;
const SCALE = Number(process.env.BENCH_COMPACTOR_SCALE ?? 1);
const RUNS_TO_COMPLETED = 3;
const PUBLISH_ROUNDS = 5;
const QUERY_ROUNDS = 30;
/** Vectors in the lines hot segment during the fan-out figure: half the seal threshold (8,000 at 1× and 4×). */
const FANOUT_HOT = Number(process.env.BENCH_COMPACTOR_FANOUT_HOT ?? 4000);
const BASE_VERSION = '00000000T000000000Z-base00';
const ROOT = fileURLToPath(new URL('../', import.meta.url));

function gaussVec(seed: number): Float32Array {
  let a = (seed * 2654435761) >>> 0 || 1;
  const rnd = () => {
    a = (a + 0x6d2b79f5) | 0;
    let t = Math.imul(a ^ (a >>> 15), 1 | a);
    t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t;
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
  const v = new Float32Array(DIM);
  let n = 0;
  for (let i = 0; i < DIM; i += 2) {
    const u = rnd() || 1e-12;
    const w = rnd();
    const m = Math.sqrt(-2 * Math.log(u));
    v[i] = m * Math.cos(2 * Math.PI * w);
    if (i + 1 < DIM) v[i + 1] = m * Math.sin(2 * Math.PI * w);
  }
  for (let i = 0; i < DIM; i++) n += v[i]! * v[i]!;
  n = Math.sqrt(n);
  for (let i = 0; i < DIM; i++) v[i]! /= n;
  return v;
}

function receipt(seed: number, lines: number, wordsPerLine: number): Receipt {
  const imageId = `${seed.toString(16).padStart(8, '0')}-0000-4000-8000-${seed.toString(16).padStart(12, '0')}`;
  const receiptId = 1;
  const r: Receipt = { imageId, receiptId, lines: [], words: [] };
  for (let l = 0; l < lines; l++) {
    r.lines.push({
      id: lineVectorId(imageId, receiptId, l),
      document: `LINE ${seed} ${l} TOTAL 12.34`,
      metadata: {
        image_id: imageId,
        receipt_id: receiptId,
        line_id: l,
        text: `LINE ${seed} ${l}`,
        merchant_name: 'Bench Mart',
      },
      embedding: gaussVec(seed * 10_000 + l),
    });
    for (let w = 0; w < wordsPerLine; w++) {
      r.words.push({
        id: wordVectorId(imageId, receiptId, l, w),
        document: `W${w}`,
        metadata: { image_id: imageId, receipt_id: receiptId, line_id: l, word_id: w, text: `W${w}` },
        embedding: gaussVec(seed * 1_000_000 + l * 100 + w + 5_000_000),
      });
    }
  }
  return r;
}

async function median(xs: number[]): Promise<number> {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.floor(s.length / 2)]!;
}

async function vmHwmMb(pid: number): Promise<number> {
  try {
    const m = /VmHWM:\s+(\d+) kB/.exec(await readFile(`/proc/${pid}/status`, 'utf8'));
    return m ? Number(m[1]) / 1024 : 0;
  } catch {
    return 0;
  }
}

async function childPids(pid: number): Promise<number[]> {
  try {
    return (await readFile(`/proc/${pid}/task/${pid}/children`, 'utf8'))
      .trim()
      .split(/\s+/)
      .filter(Boolean)
      .map(Number);
  } catch {
    return [];
  }
}

/** An in-process compactor holding the lease, one lane open, its publishes timed (`timer.lastS()`: the last one). */
async function openLane(w: World, c: Collection) {
  const compactor = compactorFor(
    w,
    `bench-${c}`,
    {
      dimensions: DIM,
      batchSize: 1000,
      batchWindowMs: 1000,
      visibilitySeconds: 600,
    },
    60_000, // the tests' 3 s lease lapses on a loaded machine during a 70,000-vector open
  );
  await compactor.deps.lease.acquire();
  await compactor.fence(undefined);
  const lane = compactor.lanes[c];
  await lane.init();
  let last = 0;
  const publish = lane.publish.bind(lane);
  lane.publish = async (ids: string[]) => {
    const t = performance.now();
    const v = await publish(ids);
    last = (performance.now() - t) / 1000;
    return v;
  };
  return { compactor, lane, timer: { lastS: () => last } };
}

/** Part 1, ROUNDS times interleaved (merge, then raw, per round) so host noise hits both; medians reported. */
async function mergeVsRaw(env: TestEnv): Promise<Figures> {
  const rounds: Figures[] = [];
  for (let i = 0; i < Number(process.env.BENCH_COMPACTOR_ROUNDS ?? 3); i++)
    rounds.push(await mergeVsRawOnce(env));
  const out: Figures = {};
  for (const k of Object.keys(rounds[0]!)) {
    out[k] = { value: await median(rounds.map((r) => r[k]!.value)), unit: rounds[0]![k]!.unit };
  }
  const ratios = rounds.map((r) => r['compactor.merge_vs_raw_ratio']!.value);
  out['compactor.merge_vs_raw_ratio_min'] = { value: Math.min(...ratios), unit: 'ratio' };
  out['compactor.merge_vs_raw_ratio_max'] = { value: Math.max(...ratios), unit: 'ratio' };
  return out;
}

/** Merge throughput vs raw add, publish vs copy, once. */
async function mergeVsRawOnce(env: TestEnv): Promise<Figures> {
  const w = await makeWorld(env, 'bench-merge');
  const receipts = Array.from({ length: MERGE_RUNS }, (_, i) => receipt(1000 + i, LINES_PER_RUN, 1));
  for (const r of receipts) await writeRun(w, { ...r, words: r.words.slice(0, 1) }, { dim: DIM });
  await pumpStream(w);
  const { compactor, lane, timer } = await openLane(w, 'lines');
  const msgs = await lane.receive(new AbortController().signal);
  if (msgs.length !== MERGE_RUNS) throw new Error(`expected ${MERGE_RUNS} messages, got ${msgs.length}`);
  const t0 = performance.now();
  const result = await lane.processBatch(msgs);
  const batchS = (performance.now() - t0) / 1000;
  const n = MERGE_RUNS * LINES_PER_RUN;
  if (result.added !== n) throw new Error(`merged ${result.added} of ${n}`);
  const publishS = timer.lastS();
  const mergeS = batchS - publishS;
  const published = versionDir(w.root, 'lines', result.published!);
  await lane.close();
  await compactor.deps.lease.release();

  const t1 = performance.now();
  await cp(published, join(w.dir, 'copy-baseline'), { recursive: true });
  const copyS = (performance.now() - t1) / 1000;

  // Raw baseline: the same vectors straight into a fresh collection with the JS client.
  const server = await startChromaServer({ path: join(w.dir, 'raw') });
  let rawS: number;
  try {
    const client = new ChromaClient({ host: server.host, port: server.port });
    const col = await client.getOrCreateCollection({
      name: 'lines',
      embeddingFunction: null,
      configuration: { hnsw: { space: 'l2' } },
    });
    const all: VectorRecord[] = receipts.flatMap((r) => r.lines);
    const t2 = performance.now();
    for (let i = 0; i < all.length; i += 1000) {
      const chunk = all.slice(i, i + 1000);
      await col.add({
        ids: chunk.map((r) => r.id),
        embeddings: chunk.map((r) => Array.from(r.embedding)),
        documents: chunk.map((r) => r.document),
        metadatas: chunk.map((r) => r.metadata as Record<string, string | number | boolean>),
      });
    }
    rawS = (performance.now() - t2) / 1000;
  } finally {
    await server.stop();
  }
  await rm(w.dir, { recursive: true, force: true });
  return {
    'compactor.merge_vectors_per_s': { value: n / mergeS, unit: 'vectors/s' },
    'compactor.raw_add_vectors_per_s': { value: n / rawS, unit: 'vectors/s' },
    'compactor.raw_chroma_vectors_per_s': { value: n / rawS, unit: 'vectors/s' },
    'compactor.merge_vs_raw_ratio': { value: n / mergeS / (n / rawS), unit: 'ratio' },
    'compactor.publish_s': { value: publishS, unit: 's' },
    'compactor.copy_s': { value: copyS, unit: 's' },
    'compactor.publish_vs_copy_ratio_small': { value: publishS / copyS, unit: 'ratio' },
  };
}

/**
 * Builds (or reuses) the production-scale base snapshot of one collection: part 0 is the 1× base; parts 1, 2, 3 hold
 * other receipts (their own seeds) and become the extra sealed segments of the 4× base.
 */
export async function baseSnapshot(c: Collection, count: number, part = 0): Promise<string> {
  const key = `compactor-base-${c}-${count}-${DIM}${part ? `-part${part}` : ''}`;
  const dir = join(homedir(), '.cache', 'receipt-embeddings-bench', key);
  if (existsSync(join(dir, 'DONE'))) return join(dir, 'db');
  if (part > 0 && process.env.BENCH_COMPACTOR_BUILD_PARTS !== '1') {
    // Part 0 under other ids (bench/clone-base.py): a genuine Chroma directory in seconds instead of 4-30 min.
    const source = await baseSnapshot(c, count, 0);
    await mkdir(dir, { recursive: true });
    await run('python3', [join(ROOT, 'bench/clone-base.py'), source, join(dir, 'db'), String(part)]);
    await writeFile(join(dir, 'DONE'), new Date().toISOString());
    return join(dir, 'db');
  }
  const perReceipt = c === 'lines' ? 40 : 200;
  // Resumable: a build cut short (a timeout on a loaded machine) goes on from the receipts it holds. Generous
  // request deadline: the index grows to 70,000 vectors and the machine is shared.
  const wc = new WorkingCopy(c, join(dir, 'db'), undefined, 600_000);
  let done = 0;
  if (existsSync(join(dir, 'db'))) {
    await wc.start();
    done = await wc.count();
    if (done % perReceipt !== 0) done = -1;
  }
  if (done <= 0) {
    await wc.stop();
    await rm(dir, { recursive: true, force: true });
    await mkdir(dir, { recursive: true });
    await wc.reset(undefined);
    done = 0;
  }
  const t = performance.now();
  const resumedAt = done;
  const perReceiptSeeds = Math.ceil(count / perReceipt);
  for (let seed = 500_000 + part * perReceiptSeeds + done / perReceipt; done < count; seed++) {
    const n = Math.min(perReceipt, count - done);
    const r =
      c === 'lines' ? receipt(seed, n, 0).lines : receipt(seed, Math.ceil(n / 5), 5).words.slice(0, n);
    await wc.add(r);
    done += n;
    if (done % 10_000 < perReceipt)
      console.error(
        `[bench] base ${c}: ${done}/${count} (${Math.round((done - resumedAt) / ((performance.now() - t) / 1000))}/s)`,
      );
  }
  await wc.stop();
  await import('node:fs/promises').then((fs) => fs.writeFile(join(dir, 'DONE'), new Date().toISOString()));
  return join(dir, 'db');
}

/** Runs a program to its end; its exit code other than 0 throws. */
function run(cmd: string, args: string[]): Promise<void> {
  return new Promise((resolve, reject) => {
    const p = spawn(cmd, args, { stdio: ['ignore', 'inherit', 'inherit'] });
    p.once('error', reject);
    p.once('exit', (code) => (code === 0 ? resolve() : reject(new Error(`${cmd} exited with ${code}`))));
  });
}

/**
 * The vectors of parts 0..scale-1 of collection `c` in one Chroma directory, built once and cached: a copy of part 0
 * to which the other parts' records are added. For lines, the query fan-out baseline; for both, the one sealed
 * segment the merge policy leaves at 4× (compactor/merge-policy.ts).
 */
export async function singleDirectory(scale: number, c: Collection = 'lines'): Promise<string> {
  if (scale === 1) return baseSnapshot(c, PARTS[c], 0);
  const dir = join(
    homedir(),
    '.cache',
    'receipt-embeddings-bench',
    `compactor-single-${c}-${PARTS[c] * scale}-${DIM}`,
  );
  if (existsSync(join(dir, 'DONE'))) return join(dir, 'db');
  await rm(dir, { recursive: true, force: true });
  await mkdir(dir, { recursive: true });
  await cp(await baseSnapshot(c, PARTS[c], 0), join(dir, 'db'), { recursive: true });
  const wc = new WorkingCopy(c, join(dir, 'db'), undefined, 600_000);
  await wc.start();
  try {
    for (let part = 1; part < scale; part++) {
      // A copy: Chroma writes its SQLite file when it opens, and the cached parts are linked into the volume.
      const copy = join(dir, `part${part}`);
      await cp(await baseSnapshot(c, PARTS[c], part), copy, { recursive: true });
      const server = await startChromaServer({ path: copy });
      try {
        const from = new ChromaVectorStore(server.url, { timeoutMs: 600_000 });
        for (let offset = 0; ; offset += 1000) {
          const page = await from.get(c, {
            include: ['embeddings', 'documents', 'metadatas'],
            limit: 1000,
            offset,
          });
          await wc.add(
            page.ids.map((id, i) => ({
              id,
              document: page.documents[i] ?? '',
              metadata: page.metadatas[i] ?? {},
              embedding: page.embeddings![i]!,
            })),
          );
          if (page.ids.length < 1000) break;
        }
      } finally {
        await server.stop();
        await rm(copy, { recursive: true, force: true });
      }
      console.error(`[bench] single ${c} directory: part ${part} added`);
    }
  } finally {
    await wc.stop();
  }
  await writeFile(join(dir, 'DONE'), new Date().toISOString());
  return join(dir, 'db');
}

/** Vectors per part of the bases: the 1× base is part 0; the 4× base is parts 0..3 merged into one directory. */
const PARTS = { lines: Math.round(12_800 * SCALE), words: Math.round(70_000 * SCALE) };

/** A sealed segment for the bench from a cached Chroma directory: its files' digests, cached beside it. */
async function cachedSegment(db: string, count: number): Promise<SealedSegment> {
  const cached = join(db, '..', 'segment.json');
  let files: Record<string, string>;
  if (existsSync(cached)) files = JSON.parse(await readFile(cached, 'utf8')) as Record<string, string>;
  else {
    const names = await listFiles(db);
    const digests = await sha256Files(names.map((f) => join(db, f)));
    files = Object.fromEntries(names.map((f, i) => [f, digests[i]!]));
    await writeFile(cached, JSON.stringify(files));
  }
  return { id: segmentId(new Map(Object.entries(files))), count, files };
}

/**
 * Installs the base of `scale` as version BASE_VERSION on the volume as the merge policy leaves it
 * (compactor/merge-policy.ts: every seal is merged into the largest segment): ONE sealed segment per collection
 * holding all its vectors (1×: part 0; 4×: parts 0..3 in one directory, bench singleDirectory), hard-linked from
 * the cache (nothing opens the volume's files: the compactor and readers copy them), plus the `extra` cached
 * directories as further sealed segments (a seal not merged yet); the hot segment is empty. Returns the live vectors.
 */
async function installSegmentedBase(
  root: string,
  c: Collection,
  scale: number,
  extra: { db: string; count: number }[] = [],
): Promise<number> {
  const dir = versionDir(root, c, BASE_VERSION);
  const segments: SealedSegment[] = [];
  const dbs = [{ db: await singleDirectory(scale, c), count: PARTS[c] * scale }, ...extra];
  for (const { db, count } of dbs) {
    const seg = await cachedSegment(db, count);
    for (const f of Object.keys(seg.files)) {
      await mkdir(dirname(join(dir, SEALED_DIR, seg.id, f)), { recursive: true });
      await link(join(db, f), join(dir, SEALED_DIR, seg.id, f));
    }
    segments.push(seg);
  }
  await writeFile(
    join(dir, VERSION_INFO),
    JSON.stringify({ version: BASE_VERSION, collection: c, files: {}, segments, tombstones: {} }),
  );
  await switchCurrent(root, c, BASE_VERSION, { expected: undefined });
  return segments.reduce((n, x) => n + x.count, 0);
}

/**
 * Files under `dir` with the bytes they occupy on disk (allocated blocks: a publish's sparse copy writes no zeros) and
 * their inode (hard links: one inode, many paths).
 */
async function filesOf(dir: string): Promise<{ size: number; ino: number; nlink: number }[]> {
  const out = [];
  for (const f of await listFiles(dir)) {
    const st = await stat(join(dir, f));
    out.push({ size: st.blocks * 512, ino: st.ino, nlink: st.nlink });
  }
  return out;
}

const bytesOf = (files: { size: number }[]) => files.reduce((n, f) => n + f.size, 0);

/** Bytes on disk of several directories, each inode once (hard-linked sealed files count once). */
async function bytesOnce(dirs: string[]): Promise<number> {
  const seen = new Map<number, number>();
  for (const d of dirs) for (const f of await filesOf(d)) seen.set(f.ino, f.size);
  return [...seen.values()].reduce((a, b) => a + b, 0);
}

/**
 * Part 3 (issue 14): the words lane alone on the segmented base at `scale` (1× or 4×): PUBLISH_ROUNDS receipts of 200
 * word vectors merged and published, each publish timed and its new bytes on the volume counted (files not linked from
 * an older version); then every version's bytes (each inode once) against one version's; the S3 snapshot of the last
 * version after the base's (segments already in the mirror are not uploaded again); and merchant-resolution queries
 * (3 query vectors, top 20, one queryMany, as core/merchant/resolver.ts) over the segmented lines version against
 * one directory holding the same lines vectors.
 */
async function segmentsAt(env: TestEnv, scale: number): Promise<Figures> {
  const w: World = await makeWorld(env, `bench-seg-${scale}`);
  const x = `${scale}x`;
  try {
    const liveWords = await installSegmentedBase(w.root, 'words', scale);
    const liveLines = await installSegmentedBase(w.root, 'lines', scale);
    const { compactor, lane, timer } = await openLane(w, 'words');
    const base = versionDir(w.root, 'words', BASE_VERSION);
    const firstUpload = await uploadSnapshot(w.objects, w.bucket, 'words', BASE_VERSION, base);
    const rounds: { publishS: number; written: number; live: number }[] = [];
    let last = BASE_VERSION;
    for (let i = 0; i < PUBLISH_ROUNDS; i++) {
      await writeRun(w, receipt(20_000 + i, 40, 5), { dim: DIM });
      await pumpStream(w);
      const result = await lane.processBatch(await lane.receive(new AbortController().signal));
      if (!result.published) throw new Error(`round ${i}: nothing published`);
      last = result.published;
      const files = await filesOf(versionDir(w.root, 'words', last));
      const written = bytesOf(files.filter((f) => f.nlink === 1));
      rounds.push({ publishS: timer.lastS(), written, live: bytesOf(files) });
      console.error(
        `[bench] ${x} publish ${i + 1}: ${timer.lastS().toFixed(2)} s, ${(written / 1e6).toFixed(1)} MB written of ${(bytesOf(files) / 1e6).toFixed(0)} MB`,
      );
    }
    const versions = (await listVersions(w.root, 'words')).map((v) => versionDir(w.root, 'words', v));
    const allBytes = await bytesOnce(versions);
    const oneVersion = rounds.at(-1)!.live;
    const upload = await uploadSnapshot(
      w.objects,
      w.bucket,
      'words',
      last,
      versionDir(w.root, 'words', last),
    );
    await lane.close();
    await compactor.deps.lease.release();
    const fanout = await queryFanout(w, scale);
    return {
      [`compactor.publish_words_s_${x}`]: { value: await median(rounds.map((r) => r.publishS)), unit: 's' },
      [`compactor.publish_bytes_ratio_${x}`]: {
        value: await median(rounds.map((r) => r.written / r.live)),
        unit: 'ratio',
      },
      [`compactor.publish_bytes_mb_${x}`]: {
        value: (await median(rounds.map((r) => r.written))) / 1e6,
        unit: 'MB',
      },
      [`compactor.versions_disk_ratio_${x}`]: { value: allBytes / oneVersion, unit: 'ratio' },
      [`compactor.versions_kept_${x}`]: { value: versions.length, unit: 'versions' },
      [`compactor.s3_bytes_per_snapshot_ratio_${x}`]: { value: upload.bytes / oneVersion, unit: 'ratio' },
      [`compactor.s3_first_snapshot_mb_${x}`]: { value: firstUpload.bytes / 1e6, unit: 'MB' },
      [`compactor.live_vectors_${x}`]: { value: liveWords + liveLines, unit: 'vectors' },
      ...fanout,
    };
  } finally {
    await rm(w.dir, { recursive: true, force: true });
  }
}

/**
 * query_fanout_ratio at `scale`: median time of one merchant resolution's queries over the lines version as readers
 * open it (its sealed segments plus the hot segment, core/segments/open.ts) against one Chroma directory holding the
 * same vectors (the single-directory base of PARTS.lines × scale, built once and cached).
 */
async function queryFanout(w: World, scale: number): Promise<Figures> {
  const x = `${scale}x`;
  const copy = join(w.dir, 'fanout-seg');
  await copyVersion(versionDir(w.root, 'lines', BASE_VERSION), copy);
  const single = join(w.dir, 'fanout-one');
  await cp(await singleDirectory(scale), single, { recursive: true });
  // The typical state the merge policy leaves: one sealed segment and a hot segment holding new vectors (half the
  // seal threshold on average); the single directory gets the same vectors added.
  const hot = Array.from({ length: Math.ceil(FANOUT_HOT / 40) }, (_, i) => receipt(880_000 + i, 40, 0).lines)
    .flat()
    .slice(0, FANOUT_HOT);
  for (const d of [copy, single]) {
    const wc = new WorkingCopy('lines', d, undefined, 600_000);
    await wc.start();
    await wc.add(hot);
    await wc.stop();
  }
  const segmented = await openSegments(copy);
  const server = await startChromaServer({ path: single });
  try {
    const one = new ChromaVectorStore(server.url);
    const probes = Array.from({ length: QUERY_ROUNDS }, (_, i) =>
      [0, 1, 2].map((k) => gaussVec(777_000 + i * 3 + k)),
    );
    const time = async (store: VectorStore) => {
      await store.queryMany!('lines', probes[0]!, 20); // loads the indexes
      const ts: number[] = [];
      for (const p of probes) {
        const t = performance.now();
        await store.queryMany!('lines', p, 20);
        ts.push(performance.now() - t);
      }
      return median(ts);
    };
    // Interleaved, twice, so host noise hits both.
    const seg = [await time(segmented.store)];
    const flat = [await time(one)];
    seg.push(await time(segmented.store));
    flat.push(await time(one));
    const segMs = Math.min(...seg);
    const flatMs = Math.min(...flat);
    // Same vectors, same answers: the merged top-k's distances equal the single directory's (ids may differ among
    // equal distances: the cloned parts hold part 0's vectors under other ids).
    let differ = 0;
    for (const p of probes.slice(0, 5)) {
      const d = (hits: { distance: number }[][]) => hits.map((h) => h.map((x) => x.distance.toFixed(4)));
      const a = d(await segmented.store.queryMany('lines', p, 20));
      const b = d(await one.queryMany('lines', p, 20));
      if (JSON.stringify(a) !== JSON.stringify(b)) differ++;
    }
    if (differ)
      console.error(
        `[bench] ${x} fan-out: ${differ} of 5 top-20 distance lists differ (HNSW is approximate)`,
      );
    return {
      [`compactor.query_fanout_ms_${x}`]: { value: segMs, unit: 'ms' },
      [`compactor.query_one_dir_ms_${x}`]: { value: flatMs, unit: 'ms' },
      [`compactor.query_fanout_ratio_${x}`]: { value: segMs / flatMs, unit: 'ratio' },
      [`compactor.segments_${x}`]: { value: segmented.manifest.segments.length + 1, unit: 'segments' },
      [`compactor.fanout_hot_vectors_${x}`]: { value: FANOUT_HOT, unit: 'vectors' },
    };
  } finally {
    await segmented.close();
    await server.stop();
  }
}

/**
 * A sealed segment of `n` new word vectors (receipts of their own seeds, ids apart from every base part), built once
 * and cached: what a seal leaves for the merge policy at its threshold.
 */
async function sealSized(c: Collection, n: number): Promise<{ db: string; count: number }> {
  const prev = process.env.BENCH_COMPACTOR_BUILD_PARTS;
  process.env.BENCH_COMPACTOR_BUILD_PARTS = '1';
  try {
    return { db: await baseSnapshot(c, n, 50), count: n };
  } finally {
    if (prev === undefined) delete process.env.BENCH_COMPACTOR_BUILD_PARTS;
    else process.env.BENCH_COMPACTOR_BUILD_PARTS = prev;
  }
}

/**
 * The merge policy's cost at `scale` (compactor/merge-policy.ts, compactor/segment-merge.ts): the words base as the
 * policy leaves it plus one segment sealed at the policy's threshold (max(sealVectors, mergeRatio × the base)); the
 * lane builds the merge in the background and installs it as a new version. Reported: its time, vectors added per
 * second, bytes it wrote to the volume, and the write amplification of the policy = bytes the seal and the merge
 * write to the volume / bytes of the sealed segment (the changed vectors), plus Chroma's peak RSS meanwhile.
 */
async function mergeAt(env: TestEnv, scale: number): Promise<Figures> {
  const w: World = await makeWorld(env, `bench-mergepol-${scale}`);
  const x = `${scale}x`;
  try {
    const base = PARTS.words * scale;
    const n = sealThreshold(DEFAULT_CONFIG, {
      segments: [{ id: '0'.repeat(32), count: base, files: {} }],
      tombstones: {},
    });
    const seal = await sealSized('words', n);
    await installSegmentedBase(w.root, 'words', scale, [seal]);
    const sealBytes = bytesOf(await filesOf(seal.db));
    let chromaRss = 0;
    const sampler = setInterval(() => {
      void (async () => {
        // The merge's own Chroma server (its directory under the lane's merge scratch), not the test environment's.
        for (const p of await childPids(process.pid)) {
          const cmd = await readFile(`/proc/${p}/cmdline`, 'utf8').catch(() => '');
          if (cmd.includes('/merge/')) chromaRss = Math.max(chromaRss, await vmHwmMb(p));
        }
      })();
    }, 200);
    const t = performance.now();
    const { compactor, lane } = await openLane(w, 'words'); // init starts the merge the policy asks for
    await lane.installMergeIfReady(true);
    const seconds = (performance.now() - t) / 1000;
    clearInterval(sampler);
    const built = lane.lastMerge;
    if (!built) throw new Error('no merge installed');
    const v = versionDir(w.root, 'words', lane.base!);
    const m = await readManifest(v);
    if (m.segments.length !== 1 || m.segments[0]!.count !== base + n)
      throw new Error(`merge left ${m.segments.length} segments, ${m.segments[0]?.count} vectors`);
    const written = bytesOf((await filesOf(v)).filter((f) => f.nlink === 1));
    await lane.close();
    await compactor.deps.lease.release();
    console.error(
      `[bench] ${x} merge: ${n} sealed vectors into ${base}: ${built.seconds.toFixed(1)} s build, ${(written / 1e6).toFixed(0)} MB written`,
    );
    return {
      [`compactor.merge_sealed_vectors_${x}`]: { value: n, unit: 'vectors' },
      [`compactor.merge_build_s_${x}`]: { value: built.seconds, unit: 's' },
      [`compactor.merge_open_build_install_s_${x}`]: { value: seconds, unit: 's' },
      [`compactor.merge_vectors_per_s_${x}`]: { value: built.added / built.seconds, unit: 'vectors/s' },
      [`compactor.merge_bytes_mb_${x}`]: { value: written / 1e6, unit: 'MB' },
      [`compactor.merge_write_amplification_${x}`]: {
        value: (sealBytes + written) / sealBytes,
        unit: 'ratio',
      },
      [`compactor.merge_chroma_rss_mb_${x}`]: { value: chromaRss, unit: 'MB' },
    };
  } finally {
    await rm(w.dir, { recursive: true, force: true });
  }
}

/**
 * Part 2: run → COMPLETED latency on the segmented base at `scale` (1×: 82,800 live vectors in one sealed segment per
 * collection; 4×: 331,200 in four), and the compactor's peak RSS.
 */
async function runToCompleted(env: TestEnv, scale: number): Promise<Figures> {
  const w: World = await makeWorld(env, `bench-scale-${scale}`);
  let live = 0;
  for (const c of ['lines', 'words'] as const) live += await installSegmentedBase(w.root, c, scale);
  const port = await freePort();
  const child = spawn(process.execPath, ['--import', 'tsx', join(ROOT, 'cli/main.ts'), 'compactor'], {
    cwd: ROOT,
    env: childEnv(w, env, {
      EMBEDDING_DIMENSIONS: String(DIM),
      METRICS_PORT: String(port),
      COMPACTOR_EXIT_WHEN_IDLE_MS: '',
      COMPACTOR_WAIT_SECONDS: '1',
      COMPACTOR_BATCH_WINDOW_MS: '200',
      COMPACTOR_VISIBILITY_SECONDS: '300',
      COMPACTOR_S3_EVERY_PUBLISHES: '1000',
      COMPACTOR_S3_EVERY_SECONDS: '100000',
      LEASE_DURATION_MS: '15000',
      LOG_LEVEL: process.env.BENCH_COMPACTOR_LOG ? 'info' : 'warn',
    }),
    stdio: [
      'ignore',
      process.env.BENCH_COMPACTOR_LOG ? openSync(process.env.BENCH_COMPACTOR_LOG, 'w') : 'ignore',
      'inherit',
    ],
  });
  let rss = 0;
  let chromaRss = 0;
  const sampler = setInterval(() => {
    void (async () => {
      rss = Math.max(rss, await vmHwmMb(child.pid!));
      for (const p of await childPids(child.pid!)) chromaRss = Math.max(chromaRss, await vmHwmMb(p));
    })();
  }, 200);
  const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
  const stop = new AbortController();
  let streamDone: Promise<void> | undefined;
  try {
    for (let i = 0; ; i++) {
      if (i > 1200) throw new Error('compactor not ready after 240 s');
      const ok = await fetch(`http://127.0.0.1:${port}/readyz`)
        .then((r) => r.ok)
        .catch(() => false);
      if (ok) break;
      await sleep(200);
    }
    const processor = new StreamProcessor({
      feed: new DynamoStreamFeed({
        streamArn: w.streamArn,
        checkpoints: new FileCheckpointStore(join(w.dir, 'cp.json')),
        settings: w.aws,
        idleMs: 20,
      }),
      queues: w.queues,
      log: silent,
    });
    streamDone = processor.run(stop.signal);
    const times: number[] = [];
    for (let i = 0; i < RUNS_TO_COMPLETED; i++) {
      const r = receipt(9_000 + i, 40, 5);
      const t0 = performance.now();
      const run = await writeRun(w, r, { dim: DIM });
      for (;;) {
        const item = (await w.ledger.getRun(run.image_id, run.receipt_id, run.run_id))!;
        const states = (['lines', 'words'] as const).map((c) => runCollection(item, c)?.state);
        if (states.every((s) => s === 'COMPLETED')) break;
        if (states.some((s) => s === 'FAILED')) throw new Error(`run failed: ${JSON.stringify(item)}`);
        if (performance.now() - t0 > 300_000) throw new Error('run not COMPLETED after 300 s');
        await sleep(25);
      }
      times.push((performance.now() - t0) / 1000);
      console.error(`[bench] run ${i + 1}: ${times.at(-1)!.toFixed(2)} s to COMPLETED`);
    }
    const x = `_${scale}x`;
    return {
      [`compactor.run_to_completed_s${x}`]: { value: await median(times), unit: 's' },
      [`compactor.rss_mb${x}`]: { value: rss, unit: 'MB' },
      [`compactor.chroma_rss_mb${x}`]: { value: chromaRss, unit: 'MB' },
      [`compactor.base_vectors${x}`]: { value: live, unit: 'vectors' },
    };
  } finally {
    stop.abort();
    await streamDone?.catch(() => undefined);
    child.kill('SIGTERM');
    await exited;
    clearInterval(sampler);
    await rm(w.dir, { recursive: true, force: true });
  }
}

/**
 * Parts (BENCH_COMPACTOR_PARTS): merge (merge_vs_raw_ratio), segments (publish bytes, versions on disk, S3 bytes,
 * query fan-out at 1× and 4×), scale (run → COMPLETED at 1× and 4×; growth = 4× / 1×). BENCH_COMPACTOR_SCALES
 * (default 1,4) picks the scales.
 */
export async function benchCompactor(env: TestEnv): Promise<Figures> {
  const parts = (process.env.BENCH_COMPACTOR_PARTS ?? 'merge,segments,scale,mergepolicy').split(',');
  const scales = (process.env.BENCH_COMPACTOR_SCALES ?? '1,4').split(',').map(Number);
  const out: Figures = parts.includes('merge') ? await mergeVsRaw(env) : {};
  const report = (f: Figures) => {
    // Printed as each part ends: a later part that fails loses nothing measured.
    for (const [k, v] of Object.entries(f)) console.error(`[bench] ${k} ${v.value.toFixed(3)} ${v.unit}`);
    return Object.assign(out, f);
  };
  for (const scale of scales) {
    if (parts.includes('segments')) report(await segmentsAt(env, scale));
    if (parts.includes('scale')) report(await runToCompleted(env, scale));
    if (parts.includes('mergepolicy')) report(await mergeAt(env, scale));
  }
  // The issue's names: the 1× latency, the 4× publish-bytes ratio, the 4× (else 1×) disk, S3 and fan-out ratios.
  const at = (name: string, x: string) => out[`${name}_${x}`];
  const top = scales.includes(4) ? '4x' : '1x';
  const alias = (to: string, from: string | undefined) => {
    const f = from && out[from];
    if (f) out[to] = f;
  };
  alias('compactor.run_to_completed_s', 'compactor.run_to_completed_s_1x');
  alias('compactor.rss_mb', `compactor.rss_mb_${top}`);
  alias('compactor.publish_bytes_ratio_4x', 'compactor.publish_bytes_ratio_4x');
  alias('compactor.versions_disk_ratio', `compactor.versions_disk_ratio_${top}`);
  alias('compactor.s3_bytes_per_snapshot_ratio', `compactor.s3_bytes_per_snapshot_ratio_${top}`);
  alias('compactor.query_fanout_ratio', `compactor.query_fanout_ratio_${top}`);
  alias('compactor.merge_write_amplification', `compactor.merge_write_amplification_${top}`);
  const r1 = at('compactor.run_to_completed_s', '1x');
  const r4 = at('compactor.run_to_completed_s', '4x');
  if (r1 && r4) out['compactor.run_to_completed_growth_4x'] = { value: r4.value / r1.value, unit: 'ratio' };
  return out;
}

if (process.argv[1] && fileURLToPath(import.meta.url) === process.argv[1]) {
  const environment = await startEnvironment();
  try {
    const figures = await benchCompactor(environment.env);
    for (const [k, v] of Object.entries(figures))
      console.log(`${k.padEnd(40)} ${v.value.toFixed(3).padStart(12)} ${v.unit}`);
  } finally {
    await environment.stop();
  }
}
