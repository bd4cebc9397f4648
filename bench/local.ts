/**
 * Local mode end to end (`embedctl local run` in process, its workers and compactor as child processes, exactly as
 * `npm run demo` runs them) on 200 synthetic receipts in a fresh temp home, with the local embedder (or OpenAI
 * when OPENAI_API_KEY is set).
 *
 * Figures:
 * - local.receipts_per_s, local.vectors_per_s: receipts / vectors (both collections) over the whole run, from
 *   submit to the last version published (the summary's snapshot queries excluded).
 * - local.overhead_share: share of the wall time in which neither embedding (in any worker) nor a Chroma merge (in
 *   either compactor lane) was in progress: 1 − |union of those intervals| / wall time. Workers record their
 *   embedding intervals, the compactor child its merge intervals (epoch ms, comparable across processes).
 * - local.stage_*_s: wall time of each stage (they overlap: workers, stream and compactor run together).
 *
 * Standalone: `npx tsx bench/local.ts [receipts]`.
 */
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { localLogger } from '../local/log.js';
import { childEntry, localRun, type RunSummary } from '../local/run.js';

export type Figures = Record<string, { value: number; unit: string }>;

/** Seed of the synthetic receipts every local-mode bench run uses (bench/cluster.ts sends the same ones). */
export const BENCH_SEED = 42;

/**
 * One `embedctl local run` of `receipts` synthetic receipts (BENCH_SEED) in a fresh temp home, 2 workers at a time;
 * its summary and its wall time without the summary's snapshot queries. Throws unless every receipt succeeded.
 */
export async function benchLocalRun(
  receipts: number,
  batchSize: number,
): Promise<{ summary: RunSummary; wallMs: number }> {
  const home = await mkdtemp(join(tmpdir(), 'bench-local-'));
  try {
    const s = await localRun({
      home,
      receipts,
      seed: BENCH_SEED,
      concurrency: 2,
      batchSize,
      maxAttempts: 3,
      places: true,
      timeoutMs: 30 * 60_000,
      queries: false,
      // The pipeline's figures, comparable with earlier runs: bench/embedder.ts measures the sentence model.
      embedder: 'lexical',
      self: childEntry(),
      log: localLogger('bench'),
      progress: false,
    });
    if (!s.complete || s.receipts.failed > 0)
      throw new Error(`local run incomplete: ${JSON.stringify(s.failures)}`);
    return { summary: s, wallMs: s.totalMs - (s.stages.summary?.wallMs ?? 0) };
  } finally {
    await rm(home, { recursive: true, force: true });
  }
}

export async function benchLocal(receipts = 200): Promise<Figures> {
  const { summary: s, wallMs } = await benchLocalRun(receipts, 25);
  const vectors = s.vectors.lines.snapshot + s.vectors.words.snapshot;
  const figures: Figures = {
    'local.receipts_per_s': { value: s.receipts.succeeded / (wallMs / 1000), unit: 'receipts/s' },
    'local.vectors_per_s': { value: vectors / (wallMs / 1000), unit: 'vectors/s' },
    'local.overhead_share': { value: s.overhead.share, unit: 'share' },
    'local.work_s': { value: s.overhead.workMs / 1000, unit: 's' },
    'local.receipts': { value: s.receipts.succeeded, unit: 'receipts' },
    'local.vectors': { value: vectors, unit: 'vectors' },
    'local.wall_s': { value: wallMs / 1000, unit: 's' },
  };
  const b = s.overhead.breakdown;
  if (b) {
    figures['local.overhead_before_first_work_s'] = { value: b.beforeFirstMs / 1000, unit: 's' };
    figures['local.overhead_gaps_s'] = { value: b.gapsMs / 1000, unit: 's' };
    figures['local.overhead_gaps_publishing_s'] = { value: b.gapsPublishingMs / 1000, unit: 's' };
    figures['local.overhead_after_last_work_s'] = { value: b.afterLastMs / 1000, unit: 's' };
  }
  for (const [name, t] of Object.entries(s.stages)) {
    if (name === 'summary') continue;
    figures[`local.stage_${name}_s`] = { value: t.wallMs / 1000, unit: 's' };
    if (t.busyMs !== undefined) figures[`local.stage_${name}_busy_s`] = { value: t.busyMs / 1000, unit: 's' };
  }
  return figures;
}

if (process.argv[1] === fileURLToPath(import.meta.url)) {
  const n = process.argv[2] ? Number(process.argv[2]) : undefined;
  const figures = await benchLocal(n);
  for (const [k, v] of Object.entries(figures))
    console.log(`${k.padEnd(36)} ${v.value.toFixed(3).padStart(10)} ${v.unit}`);
}
