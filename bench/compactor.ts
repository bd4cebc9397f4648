import { spawn } from 'node:child_process';
import { existsSync, openSync } from 'node:fs';
import { cp, mkdir, readFile, rm } from 'node:fs/promises';
import { homedir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { ChromaClient } from 'chromadb';
import { setTimeout as sleep } from 'node:timers/promises';
import { startChromaServer, freePort } from '../core/chroma/server.js';
import { runCollection } from '../core/contracts/compaction-run.js';
import { lineVectorId, wordVectorId, type Collection } from '../core/contracts/ids.js';
import type { VectorRecord } from '../core/ports/vector-store.js';
import { DynamoStreamFeed, FileCheckpointStore } from '../core/aws/dynamo-stream-feed.js';
import { switchCurrent, versionDir } from '../core/snapshot/volume.js';
import { WorkingCopy } from '../compactor/working-copy.js';
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
 * - compactor.publish_words_s / compactor.copy_words_s / compactor.publish_vs_copy_ratio: the same at production
 *   scale (the 70,000-vector words collection, its lane alone; medians of PUBLISH_ROUNDS publishes).
 * - compactor.run_to_completed_s: with a live snapshot at the original's production scale (12,800 line and 70,000
 *   word vectors, BENCH_COMPACTOR_SCALE scales it), one receipt's CompactionRun row written → stream processor →
 *   SQS → the `embedctl compactor` process → both collections COMPLETED. Median of RUNS_TO_COMPLETED receipts.
 * - compactor.rss_mb: that compactor process's peak RSS (VmHWM; its Chroma child servers not included),
 *   compactor.chroma_rss_mb: the largest Chroma child server's peak RSS.
 * The base snapshot is built once (add at ~300 vectors/s takes minutes) and cached under
 * ~/.cache/receipt-embeddings-bench/.
 */
export type Figures = Record<string, { value: number; unit: string }>;

const DIM = 1536;
const MERGE_RUNS = Number(process.env.BENCH_COMPACTOR_MERGE_RUNS ?? 20);
const LINES_PER_RUN = 100;
const SCALE = Number(process.env.BENCH_COMPACTOR_SCALE ?? 1);
const BASE = { lines: Math.round(12_800 * SCALE), words: Math.round(70_000 * SCALE) };
const RUNS_TO_COMPLETED = 3;
const PUBLISH_ROUNDS = 3;
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
  const compactor = compactorFor(w, `bench-${c}`, {
    dimensions: DIM,
    batchSize: 1000,
    batchWindowMs: 1000,
    visibilitySeconds: 600,
  });
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

/** Builds (or reuses) the production-scale base snapshot of one collection. */
async function baseSnapshot(c: Collection, count: number): Promise<string> {
  const dir = join(homedir(), '.cache', 'receipt-embeddings-bench', `compactor-base-${c}-${count}-${DIM}`);
  if (existsSync(join(dir, 'DONE'))) return join(dir, 'db');
  await rm(dir, { recursive: true, force: true });
  await mkdir(dir, { recursive: true });
  const wc = new WorkingCopy(c, join(dir, 'db'));
  await wc.reset(undefined);
  const perReceipt = c === 'lines' ? 40 : 200;
  const t = performance.now();
  for (let done = 0, seed = 500_000; done < count; seed++) {
    const n = Math.min(perReceipt, count - done);
    const r =
      c === 'lines' ? receipt(seed, n, 0).lines : receipt(seed, Math.ceil(n / 5), 5).words.slice(0, n);
    await wc.add(r);
    done += n;
    if (done % 10_000 < perReceipt)
      console.error(
        `[bench] base ${c}: ${done}/${count} (${Math.round(done / ((performance.now() - t) / 1000))}/s)`,
      );
  }
  await wc.stop();
  await import('node:fs/promises').then((fs) => fs.writeFile(join(dir, 'DONE'), new Date().toISOString()));
  return join(dir, 'db');
}

/**
 * Part 3: publish vs a plain copy at production scale. The words lane alone on a copy of the 70,000-vector base (the
 * other lane would compete for the two cores and inflate only one side): per round one receipt's 200 word vectors
 * are merged and published, then the published version is copied with `fs.cp`; medians over PUBLISH_ROUNDS.
 */
async function publishVsCopy(env: TestEnv): Promise<Figures> {
  const base = await baseSnapshot('words', BASE.words);
  const w: World = await makeWorld(env, 'bench-publish');
  try {
    await cp(base, versionDir(w.root, 'words', BASE_VERSION), { recursive: true });
    await switchCurrent(w.root, 'words', BASE_VERSION, { expected: undefined });
    const { compactor, lane, timer } = await openLane(w, 'words');
    const rounds: { publishS: number; copyS: number }[] = [];
    for (let i = 0; i < PUBLISH_ROUNDS; i++) {
      await writeRun(w, receipt(20_000 + i, 40, 5), { dim: DIM });
      await pumpStream(w);
      const result = await lane.processBatch(await lane.receive(new AbortController().signal));
      if (!result.published) throw new Error(`round ${i}: nothing published`);
      const copy = join(w.dir, `copy-${i}`);
      const t = performance.now();
      await cp(versionDir(w.root, 'words', result.published), copy, { recursive: true });
      rounds.push({ publishS: timer.lastS(), copyS: (performance.now() - t) / 1000 });
      await rm(copy, { recursive: true, force: true });
      console.error(
        `[bench] publish ${i + 1}: ${rounds.at(-1)!.publishS.toFixed(2)} s, copy ${rounds.at(-1)!.copyS.toFixed(2)} s`,
      );
    }
    await lane.close();
    await compactor.deps.lease.release();
    return {
      'compactor.publish_words_s': { value: await median(rounds.map((r) => r.publishS)), unit: 's' },
      'compactor.copy_words_s': { value: await median(rounds.map((r) => r.copyS)), unit: 's' },
      'compactor.publish_vs_copy_ratio': {
        value: await median(rounds.map((r) => r.publishS / r.copyS)),
        unit: 'ratio',
      },
    };
  } finally {
    await rm(w.dir, { recursive: true, force: true });
  }
}

/** Part 2: run → COMPLETED latency at production scale, and the compactor's peak RSS. */
async function runToCompleted(env: TestEnv): Promise<Figures> {
  const bases = {
    lines: await baseSnapshot('lines', BASE.lines),
    words: await baseSnapshot('words', BASE.words),
  };
  const w: World = await makeWorld(env, 'bench-scale');
  for (const c of ['lines', 'words'] as const) {
    await cp(bases[c], versionDir(w.root, c, BASE_VERSION), { recursive: true });
    await switchCurrent(w.root, c, BASE_VERSION, { expected: undefined });
  }
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
    return {
      'compactor.run_to_completed_s': { value: await median(times), unit: 's' },
      'compactor.rss_mb': { value: rss, unit: 'MB' },
      'compactor.chroma_rss_mb': { value: chromaRss, unit: 'MB' },
      'compactor.base_vectors': { value: BASE.lines + BASE.words, unit: 'vectors' },
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

export async function benchCompactor(env: TestEnv): Promise<Figures> {
  const parts = (process.env.BENCH_COMPACTOR_PARTS ?? 'merge,publish,scale').split(',');
  return {
    ...(parts.includes('merge') ? await mergeVsRaw(env) : {}),
    ...(parts.includes('publish') ? await publishVsCopy(env) : {}),
    ...(parts.includes('scale') ? await runToCompleted(env) : {}),
  };
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
