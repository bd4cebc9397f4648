import { spawn } from 'node:child_process';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import type { JobResult } from '../core/contracts/embedding-job.js';
import { closeNow, readBody } from '../core/http/plain-server.js';
import { buildReceiptItems } from '../core/receipt/embedding-inputs.js';
import { generateReceipt, generateReceipts, putReceipt } from '../core/sample/index.js';
import type { TestEnv } from '../test/harness/env.js';
import { startEnvironment } from '../test/harness/environment.js';
import {
  awsFixtures,
  seedLinesSnapshot,
  workerProcessEnv,
  workItem,
} from '../test/integration/worker/helpers.js';
import { DEFAULT_JOB_CONCURRENCY } from '../worker/batch.js';
import type { IdealPlan } from './worker-ideal.js';

/**
 * Worker benchmark: one batch of 50 synthetic receipts through the real `embedctl worker` process (jobs-file mode,
 * so no Kubernetes), against moto S3/DynamoDB, a seeded `lines` snapshot on a volume directory (merchant
 * resolution on), and the OpenAI-compatible endpoint behind a proxy that adds a fixed latency to every request.
 *
 * Figures:
 * - worker.receipts_per_s, worker.vectors_per_s: over the batch (processBatch wall time, not process start-up).
 * - worker.embed_share: time with ≥ 1 embedding request in flight / batch time.
 * - The ideal, measured right after the worker by bench/worker-ideal.ts, a process of its own with the worker's
 *   environment (where the worker sat): the batch's external work with no compute —
 *   - embedding: the batch's own input texts sent straight to the endpoint (same proxy, 2048 inputs per request,
 *     same request concurrency) — what batching and concurrency allow for the embedding calls alone;
 *   - I/O: the same S3 and DynamoDB requests the worker made for the batch, sent straight with the SDK with the
 *     worker's concurrency and no compute: per receipt the run lookup, the labels query and both NDJSON GETs (bodies
 *     drained), then PUTs of the batch's real delta bytes (fresh keys) and the conditional CompactionRun put, at most
 *     `--job-concurrency` receipts reading and `--write-concurrency` (default the same) writing at once;
 *   - both at once (worker.ideal_ms): what a pipeline that overlapped them perfectly would do. On a shared machine
 *     the two slow each other down, so max() of the two measured apart (worker.separate_baselines_ratio) is
 *     shorter than anything that must do both.
 * - worker.efficiency_ratio: ideal / whole batch time.
 * - worker.embed_only_ratio: the embedding baseline alone / whole batch time (the ratio without the I/O baseline).
 * - worker.embed_efficiency: the embedding baseline / the worker's embedding busy time (how well its requests are
 *   packed).
 * - worker.latency_bound_ratio: ceil(ceil(inputs / 2048) / concurrency) × latency / batch time (pure latency bound,
 *   ignoring the endpoint's own compute and transfer).
 * - worker.rss_mb_batch50: the worker process's peak RSS (getrusage maxRSS; the Chroma child server not included).
 * - worker.batch_cpu_ms, worker.main_thread_busy_ms: the worker's CPU time during the batch (all threads) and its
 *   event loop's busy time (utilisation × batch time).
 */
export type Figures = Record<string, { value: number; unit: string }>;

const ROOT = fileURLToPath(new URL('../', import.meta.url));
const RECEIPTS = 50;
const LATENCY_MS = 200;
const CONCURRENCY = 4;
const MAX_INPUTS = 2048;
const DIMENSIONS = 1536;

export async function benchWorker(env: TestEnv): Promise<Figures> {
  const fx = await awsFixtures(env, 'bench');
  const proxy = await latencyProxy(env.embeddings.baseUrl, LATENCY_MS);
  const dir = await mkdtemp(join(tmpdir(), 'bench-worker-'));
  try {
    // The live snapshot: two receipts of every merchant branch, as the compactor would have published them.
    const seeded = Array.from({ length: 30 }, (_, i) =>
      generateReceipt(880_000 + i, { merchant: i % 6, branch: Math.floor(i / 6) }),
    );
    const volume = await seedLinesSnapshot(seeded, join(dir, 'volume'), DIMENSIONS);
    const receipts = generateReceipts(RECEIPTS, 424_242);
    const jobs = [];
    for (const [i, r] of receipts.entries()) {
      jobs.push(workItem(await putReceipt(fx.store, fx.artifacts, r), `ej-bench-${i}`, 'ejw-bench'));
    }
    await writeFile(join(dir, 'jobs.json'), JSON.stringify(jobs));
    const reportFile = join(dir, 'reports.ndjson');
    // The worker and the ideal run as processes of their own with the same environment.
    const childEnv = workerProcessEnv(env, fx, {
      tmpDir: dir,
      openaiBaseUrl: proxy.url,
      dimensions: DIMENSIONS,
      chromaRoot: volume.root,
    });
    const workerArgs = process.env.BENCH_WORKER_ARGS ? process.env.BENCH_WORKER_ARGS.split(' ') : [];
    const { code } = await runChild(
      [
        // Profiling, e.g. BENCH_NODE_ARGS="--cpu-prof --cpu-prof-dir=/tmp/prof".
        ...(process.env.BENCH_NODE_ARGS ? process.env.BENCH_NODE_ARGS.split(' ') : []),
        'worker/main.ts',
        'worker',
        '--jobs-file',
        join(dir, 'jobs.json'),
        '--report-file',
        reportFile,
        '--embed-concurrency',
        String(CONCURRENCY),
        ...workerArgs,
      ],
      childEnv,
    );
    const lines = (await readFile(reportFile, 'utf8'))
      .split('\n')
      .filter(Boolean)
      .map((l) => JSON.parse(l) as Record<string, unknown>);
    const summary = lines.find((l) => l.summary)?.summary as
      | {
          exitCode: number;
          succeeded: number;
          vectors: number;
          durationMs: number;
          maxRssMb: number;
          batchCpuMs: number;
          eventLoopUtilization: number;
          embedder?: { requests: number; inputs: number; busyMs: number };
        }
      | undefined;
    if (code !== 0 || !summary || summary.succeeded !== RECEIPTS || !summary.embedder) {
      throw new Error(`worker bench run failed (exit ${code}): ${JSON.stringify(summary)}`);
    }
    if (process.env.BENCH_VERBOSE) console.error(JSON.stringify(summary));
    // Baseline: the same number of inputs sent straight to the endpoint (through the same latency proxy) with the
    // best batching and the same concurrency — the ideal the worker's whole batch is compared with.
    // The worker's own input texts (rebuilt from the generated receipts; labels and the merchant are not part of
    // any input), so the endpoint does the same work per input as for the worker.
    const baselineInputs = receipts.flatMap((r) => {
      const built = buildReceiptItems({ ...r, labels: [] });
      return [...built.lines.map((i) => i.input), ...built.words.map((i) => i.input)];
    });
    if (baselineInputs.length !== summary.embedder.inputs) {
      throw new Error(
        `baseline has ${baselineInputs.length} inputs, the worker embedded ${summary.embedder.inputs}`,
      );
    }
    const args = workerArgs.join(' ');
    const readConcurrency = Number(/--job-concurrency[= ](\d+)/.exec(args)?.[1] ?? DEFAULT_JOB_CONCURRENCY);
    const plan: IdealPlan = {
      inputs: baselineInputs,
      dimensions: DIMENSIONS,
      maxInputsPerRequest: MAX_INPUTS,
      embedConcurrency: CONCURRENCY,
      readConcurrency,
      writeConcurrency: Number(/--write-concurrency[= ](\d+)/.exec(args)?.[1] ?? readConcurrency),
      artifactsBucket: fx.artifacts,
      vectorsBucket: fx.vectors,
      table: fx.table,
      jobs,
      results: lines.flatMap((l) => (l.result ? [l.result as unknown as JobResult] : [])),
    };
    await writeFile(join(dir, 'ideal.json'), JSON.stringify(plan));
    const ideal = await runChild(['bench/worker-ideal.ts', join(dir, 'ideal.json')], childEnv);
    if (ideal.code !== 0) throw new Error(`worker ideal run failed (exit ${ideal.code})`);
    const {
      embedMs: baselineMs,
      ioMs: ioBaselineMs,
      bothMs: idealMs,
    } = JSON.parse(ideal.stdout) as {
      embedMs: number;
      ioMs: number;
      bothMs: number;
    };
    const merchants = lines.filter((l) => (l.result as { merchant?: string } | undefined)?.merchant).length;
    const seconds = summary.durationMs / 1000;
    const inputs = summary.embedder.inputs;
    const latencyBoundMs = Math.ceil(Math.ceil(inputs / MAX_INPUTS) / CONCURRENCY) * LATENCY_MS;
    return {
      'worker.receipts_per_s': { value: round(RECEIPTS / seconds), unit: 'receipts/s' },
      'worker.vectors_per_s': { value: round(summary.vectors / seconds), unit: 'vectors/s' },
      'worker.embed_share': { value: round(summary.embedder.busyMs / summary.durationMs, 3), unit: 'ratio' },
      'worker.efficiency_ratio': { value: round(idealMs / summary.durationMs, 3), unit: 'ratio' },
      'worker.embed_only_ratio': { value: round(baselineMs / summary.durationMs, 3), unit: 'ratio' },
      'worker.embed_efficiency': { value: round(baselineMs / summary.embedder.busyMs, 3), unit: 'ratio' },
      'worker.latency_bound_ratio': { value: round(latencyBoundMs / summary.durationMs, 3), unit: 'ratio' },
      'worker.separate_baselines_ratio': {
        value: round(Math.max(baselineMs, ioBaselineMs) / summary.durationMs, 3),
        unit: 'ratio',
      },
      'worker.embed_baseline_ms': { value: Math.round(baselineMs), unit: 'ms' },
      'worker.io_baseline_ms': { value: Math.round(ioBaselineMs), unit: 'ms' },
      'worker.ideal_ms': { value: Math.round(idealMs), unit: 'ms' },
      'worker.embedding_requests': { value: summary.embedder.requests, unit: 'requests' },
      'worker.batch_ms': { value: summary.durationMs, unit: 'ms' },
      'worker.merchants_resolved': { value: merchants, unit: 'receipts' },
      'worker.rss_mb_batch50': { value: summary.maxRssMb, unit: 'MB' },
      'worker.batch_cpu_ms': { value: summary.batchCpuMs, unit: 'ms' },
      'worker.main_thread_busy_ms': {
        value: Math.round(summary.eventLoopUtilization * summary.durationMs),
        unit: 'ms',
      },
    };
  } finally {
    await proxy.close();
    await rm(dir, { recursive: true, force: true });
  }
}

/** Runs `node --import tsx ARGS` from the repository root; resolves with its exit code and stdout. */
function runChild(args: string[], env: NodeJS.ProcessEnv): Promise<{ code: number | null; stdout: string }> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, ['--import', 'tsx', ...args], {
      cwd: ROOT,
      stdio: ['ignore', 'pipe', 'inherit'],
      env,
    });
    let stdout = '';
    child.stdout.on('data', (c: Buffer) => (stdout += c.toString()));
    child.once('error', reject);
    child.once('exit', (code) => resolve({ code, stdout }));
  });
}

const round = (n: number, digits = 1) => Math.round(n * 10 ** digits) / 10 ** digits;

/** Forwards /v1/embeddings to the real endpoint after a fixed delay (an API with a fixed per-request latency). */
async function latencyProxy(
  upstream: string,
  latencyMs: number,
): Promise<{ url: string; close(): Promise<void> }> {
  const server: Server = createServer((req, res) => {
    void (async () => {
      const body = await readBody(req);
      await new Promise((r) => setTimeout(r, latencyMs));
      const path = (req.url ?? '').replace(/^\/v1/, '');
      const up = await fetch(upstream + path, {
        method: req.method,
        headers: { 'content-type': 'application/json', authorization: req.headers.authorization ?? '' },
        ...(req.method === 'POST' ? { body: new Uint8Array(body) } : {}),
      });
      const out = Buffer.from(await up.arrayBuffer());
      res.writeHead(up.status, { 'content-type': up.headers.get('content-type') ?? 'application/json' });
      res.end(out);
    })().catch((err: unknown) => {
      res.writeHead(502);
      res.end(String(err));
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  return {
    url: `http://127.0.0.1:${port}/v1`,
    close: () => closeNow(server),
  };
}

if (process.argv[1] && import.meta.url === pathToFileURL(process.argv[1]).href) {
  const environment = await startEnvironment({ log: () => {} });
  try {
    console.log(JSON.stringify(await benchWorker(environment.env), null, 2));
  } finally {
    await environment.stop();
  }
}
