import { createHash, randomUUID } from 'node:crypto';
import { mkdtemp, rm } from 'node:fs/promises';
import { cpus, loadavg, tmpdir } from 'node:os';
import { join } from 'node:path';
import { WorkingCopy } from '../compactor/working-copy.js';
import { wordVectorId } from '../core/contracts/ids.js';
import type { VectorRecord } from '../core/ports/vector-store.js';
import type { Figures } from './run.js';

/**
 * The sharded compactor of docs/scale.md, simulated where it saturates: N shards, each its own collection on its own
 * Chroma server (as N singleton compactors, one Lease each, would own), receipts assigned by a stable hash of their
 * receipt id prefix; every shard merges its share through the compactor's own add path (WorkingCopy.add) at once.
 * Aggregate vectors/s for N = 1, 2, 4 against N = 1 in interleaved rounds (`speedup_N`: the same vectors on one
 * shard; it includes that a smaller collection inserts faster), and against one shard holding only 1/N of them
 * (`parallel_speedup_N`: the parallelism alone, at most the cores the shards get). The HNSW insert runs in each shard's
 * Chroma server process, so N shards use up to N cores; the driving process only packs and posts (as each compactor
 * process would). Queues, ledger and publish are left out: they are per shard too and not the bottleneck
 * (compactor.merge_vs_raw_ratio ≈ 1).
 *
 * Env: BENCH_SHARDED_VECTORS (4000), BENCH_SHARDED_DIMS (1536), BENCH_SHARDED_ROUNDS (2), BENCH_SHARDED_COUNTS (1,2,4).
 */
export async function benchSharded(): Promise<Figures> {
  const total = Number(process.env.BENCH_SHARDED_VECTORS ?? 4000);
  const dims = Number(process.env.BENCH_SHARDED_DIMS ?? 1536);
  const rounds = Number(process.env.BENCH_SHARDED_ROUNDS ?? 2);
  const counts = (process.env.BENCH_SHARDED_COUNTS ?? '1,2,4').split(',').map(Number);
  const records = makeRecords(total, dims);
  const perCount = new Map<number, number[]>(counts.map((n) => [n, []]));
  // One shard holding only 1/N of the vectors: what each of N shards does alone, to tell parallelism from size.
  const alone = new Map<number, number[]>(counts.map((n) => [n, []]));
  const balance = new Map<number, number>();
  const load = loadavg()[0]!;
  for (let round = 0; round < rounds; round++) {
    for (const n of round % 2 ? [...counts].reverse() : counts) {
      const { vps, maxOverMean } = await mergeSharded(records, n);
      perCount.get(n)!.push(vps);
      balance.set(n, maxOverMean);
      const single = n === 1 ? vps : (await mergeSharded(records.slice(0, Math.round(total / n)), 1)).vps;
      alone.get(n)!.push(single);
      console.error(
        `[bench] sharded: ${n} shard(s) round ${round + 1}: ${vps.toFixed(0)} vectors/s; one shard of that size alone ${single.toFixed(0)}`,
      );
    }
  }
  const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;
  const figures: Figures = {
    'sharded.cores': { value: cpus().length, unit: 'cores' },
    'sharded.load_avg_at_start': { value: load, unit: 'load' },
  };
  // Ratios within a round (measured minutes apart at most), then their median: the load of a shared machine moves
  // absolute rates by 3x between rounds.
  const ratios = (n: number, base: number[]) => perCount.get(n)!.map((v, i) => v / base[i]!);
  for (const n of counts) {
    figures[`sharded.vectors_per_s_${n}`] = {
      value: Math.round(median(perCount.get(n)!)),
      unit: 'vectors/s',
    };
    if (n !== 1) {
      const speedup = median(ratios(n, perCount.get(1)!));
      figures[`sharded.speedup_${n}`] = { value: Number(speedup.toFixed(2)), unit: 'ratio' };
      // Aggregate over one shard of the same size alone: the parallel part only (at most min(N, cores)).
      figures[`sharded.alone_vectors_per_s_${n}`] = {
        value: Math.round(median(alone.get(n)!)),
        unit: 'vectors/s',
      };
      const parallel = median(ratios(n, alone.get(n)!));
      figures[`sharded.parallel_speedup_${n}`] = { value: Number(parallel.toFixed(2)), unit: 'ratio' };
    }
    figures[`sharded.balance_${n}`] = { value: Number(balance.get(n)!.toFixed(3)), unit: 'max/mean vectors' };
  }
  return figures;
}

/** Stable shard of a receipt: the first 4 bytes of SHA-256 of its id prefix, modulo the shard count. */
export function shardOf(receiptPrefix: string, shards: number): number {
  return createHash('sha256').update(receiptPrefix).digest().readUInt32BE(0) % shards;
}

/** `total` word vectors of 20-word receipts, deterministic pseudo-random unit-ish vectors. */
function makeRecords(total: number, dims: number): VectorRecord[] {
  const out: VectorRecord[] = [];
  let x = 12345;
  let imageId = randomUUID();
  for (let i = 0; i < total; i++) {
    if (i % 20 === 0) imageId = randomUUID();
    const e = new Float32Array(dims);
    for (let d = 0; d < dims; d++) {
      x = (x * 1664525 + 1013904223) >>> 0;
      e[d] = x / 4294967296 - 0.5;
    }
    out.push({
      id: wordVectorId(imageId, 1, Math.floor((i % 20) / 5), i % 5),
      document: `w${i}`,
      metadata: { image_id: imageId, receipt_id: 1 },
      embedding: e,
    });
  }
  return out;
}

/** Every shard, on its own fresh server, merges its share in receipt-sized adds at once; returns aggregate vectors/s. */
async function mergeSharded(
  records: VectorRecord[],
  n: number,
): Promise<{ vps: number; maxOverMean: number }> {
  const parts: VectorRecord[][] = Array.from({ length: n }, () => []);
  for (const r of records) parts[shardOf(r.id.slice(0, r.id.indexOf('#WORD#')), n)]!.push(r);
  const root = await mkdtemp(join(tmpdir(), `bench-sharded-${n}-`));
  const copies = parts.map((_, i) => new WorkingCopy('words', join(root, `shard-${i}`)));
  try {
    await Promise.all(copies.map((wc) => wc.reset(undefined)));
    const t0 = performance.now();
    await Promise.all(
      copies.map(async (wc, i) => {
        const mine = parts[i]!;
        // 200 vectors per add: one merged batch of ten receipts, as a compactor lane applies them.
        for (let k = 0; k < mine.length; k += 200) await wc.add(mine.slice(k, k + 200));
      }),
    );
    const seconds = (performance.now() - t0) / 1000;
    const counts = await Promise.all(copies.map((wc) => wc.count()));
    if (counts.reduce((a, b) => a + b, 0) !== records.length)
      throw new Error(`sharded bench: ${counts.join('+')} stored, ${records.length} sent`);
    const mean = records.length / n;
    return { vps: records.length / seconds, maxOverMean: Math.max(...parts.map((p) => p.length)) / mean };
  } finally {
    await Promise.all(copies.map((wc) => wc.stop()));
    await rm(root, { recursive: true, force: true });
  }
}
