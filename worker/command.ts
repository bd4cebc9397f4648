import type { Command } from 'commander';
import { appendFile, readFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { performance } from 'node:perf_hooks';
import { join } from 'node:path';
import { z } from 'zod';
import { ENV, processEnv } from '../core/config/env.js';
import { EXIT } from '../core/config/exit-codes.js';
import { parseWorkerEnv, type WorkerConfig } from '../core/config/worker.js';
import { awsSettingsFromEnv } from '../core/aws/config.js';
import { DynamoLedger } from '../core/aws/dynamo-ledger.js';
import { S3Store } from '../core/aws/s3-store.js';
import { allowedBuckets } from '../core/contracts/artifact-location.js';
import { EmbeddingJobSpec, type JobResult } from '../core/contracts/embedding-job.js';
import { LocalEmbedder } from '../core/embedding/local-embedder.js';
import { DEFAULT_DIMENSIONS, DEFAULT_MODEL, OpenAIEmbedder } from '../core/embedding/openai-embedder.js';
import { ConfigError, errorMessage } from '../core/errors.js';
import { makeKubeClient } from '../core/kube/client.js';
import { EmbeddingJobClient } from '../core/kube/embedding-jobs.js';
import { createLogger, type Logger } from '../core/log.js';
import { SnapshotLinesIndexSource } from '../core/chroma/lines-snapshot.js';
import { RemoteLinesIndexSource } from '../core/chroma/remote-lines.js';
import type { Embedder } from '../core/ports/embedder.js';
import { KubeStatusReporter, loadWorkItems } from './kube.js';
import { DEFAULT_JOB_CONCURRENCY, processBatch } from './batch.js';
import type { FailureReason, Reporter, WorkItem } from './work-item.js';

interface Flags {
  jobs?: string;
  namespace?: string;
  kubeconfig?: string;
  jobsFile?: string;
  reportFile?: string;
  embedder: string;
  jobConcurrency: string;
  writeConcurrency?: string;
  embedConcurrency: string;
  scratch?: string;
  merchant: boolean;
}

export function register(program: Command): void {
  program
    .command('worker')
    .description(
      'embed a batch of EmbeddingJobs: NDJSON → merchant → embeddings → deltas + CompactionRun (worker/README.md)',
    )
    .option('--jobs <names>', 'comma-separated EmbeddingJob names')
    .option('--namespace <ns>', 'namespace of the EmbeddingJobs (default $NAMESPACE)')
    .option('--kubeconfig <path>', 'kubeconfig file (default: in-cluster, then $KUBECONFIG)')
    .option(
      '--jobs-file <path>',
      'without Kubernetes: a JSON array of {name, spec, attemptKey?}; see --report-file',
    )
    .option(
      '--report-file <path>',
      'with --jobs-file: append one JSON report per item (NDJSON) and a summary line',
    )
    .option(
      '--embedder <kind>',
      'openai (OPENAI_API_KEY, OPENAI_BASE_URL) or local (deterministic lexical)',
      'openai',
    )
    .option('--job-concurrency <n>', 'receipts read and written at once', String(DEFAULT_JOB_CONCURRENCY))
    .option(
      '--write-concurrency <n>',
      'receipts writing deltas + CompactionRun at once (default: --job-concurrency)',
    )
    .option('--embed-concurrency <n>', 'embedding requests in flight', '4')
    .option('--scratch <dir>', 'local scratch for the lines snapshot copy (default: a temp dir)')
    .option('--no-merchant', 'skip merchant resolution')
    .action(async (flags: Flags) => {
      const log = createLogger('worker');
      process.exitCode = await runWorker(flags, log);
    });
}

async function runWorker(flags: Flags, log: Logger): Promise<number> {
  const jobConcurrency = Number(flags.jobConcurrency);
  const embedConcurrency = Number(flags.embedConcurrency);
  const writeConcurrency = Number(flags.writeConcurrency ?? jobConcurrency);
  if (
    !flags.jobs === !flags.jobsFile ||
    !(jobConcurrency >= 1) ||
    !(embedConcurrency >= 1) ||
    !(writeConcurrency >= 1)
  ) {
    log.fatal('exactly one of --jobs or --jobs-file is required; concurrencies must be ≥ 1');
    return EXIT.usage;
  }
  if (!['openai', 'local'].includes(flags.embedder)) {
    log.fatal(`--embedder must be openai or local, not ${flags.embedder}`);
    return EXIT.usage;
  }
  let config: WorkerConfig;
  let embedder: Embedder;
  let embedderFor: ((model: string) => Embedder) | undefined;
  let artifactBuckets: string[];
  try {
    config = parseWorkerEnv(processEnv());
    artifactBuckets = allowedBuckets(config.artifactsBucket, config.artifactsBucketsAllowed);
    const { apiKey, baseUrl, model, dimensions = DEFAULT_DIMENSIONS } = config.embedder;
    if (flags.embedder === 'local') {
      embedder = new LocalEmbedder(dimensions);
    } else {
      const make = (model: string) =>
        new OpenAIEmbedder({
          apiKey: apiKey ?? '',
          ...(baseUrl ? { baseURL: baseUrl } : {}),
          model,
          dimensions,
          concurrency: embedConcurrency,
        });
      const cache = new Map<string, Embedder>();
      embedderFor = (model) => {
        let e = cache.get(model);
        if (!e) cache.set(model, (e = make(model)));
        return e;
      };
      embedder = embedderFor(model ?? DEFAULT_MODEL);
    }
  } catch (err) {
    // Configuration the operator can fix (a missing secret, say): retryable, so the items are not failed for good.
    log.fatal(errorMessage(err));
    return EXIT.failed;
  }

  const { vectorsBucket, ledgerTable: table } = config;
  const aws = awsSettingsFromEnv(processEnv());
  const store = new S3Store(aws);
  const ledger = new DynamoLedger(table, aws);
  const scratch = flags.scratch ?? join(tmpdir(), `embedctl-worker-${process.pid}`);
  const vectorStore = config.vectorStore;
  const linesIndex = !flags.merchant
    ? undefined
    : vectorStore.mode === 'remote'
      ? new RemoteLinesIndexSource({ ...vectorStore, log })
      : new SnapshotLinesIndexSource({
          chromaRoot: config.chromaRoot,
          scratchDir: scratch,
          objectStore: store,
          vectorsBucket,
          log,
        });

  let items: WorkItem[];
  let reporter: Reporter;
  let closeKube = () => {};
  const workerJob = config.workerJobName;
  try {
    if (flags.jobsFile) {
      items = await readJobsFile(flags.jobsFile);
      reporter = fileReporter(flags.reportFile);
    } else {
      const namespace = flags.namespace ?? config.namespace;
      if (!namespace) {
        log.fatal(`--namespace or ${ENV.NAMESPACE} is required`);
        return EXIT.usage;
      }
      const kube = await makeKubeClient(flags.kubeconfig ? { kubeconfig: flags.kubeconfig } : {});
      closeKube = () => kube.close();
      const client = new EmbeddingJobClient(kube);
      const names = flags
        .jobs!.split(',')
        .map((s) => s.trim())
        .filter(Boolean);
      items = await loadWorkItems(client, namespace, names, workerJob, log);
      reporter = new KubeStatusReporter(client, namespace, workerJob ?? config.podName ?? 'worker', log);
    }
  } catch (err) {
    log.fatal({ err }, 'could not load the batch');
    return err instanceof ConfigError || err instanceof z.ZodError ? EXIT.usage : EXIT.failed;
  }

  const stop = new AbortController();
  for (const sig of ['SIGTERM', 'SIGINT'] as const) {
    process.once(sig, () => {
      log.warn({ signal: sig }, 'stopping: finishing items in progress, leaving the rest unreported');
      stop.abort();
    });
  }
  log.info({ items: items.map((i) => i.name), workerJob }, 'batch started');
  const cpuBefore = cpuMs();
  const eluBefore = performance.eventLoopUtilization();
  const outcome = await processBatch(
    {
      store,
      ledger,
      embedder,
      ...(embedderFor ? { embedderFor } : {}),
      vectorsBucket,
      artifactBuckets,
      linesIndex,
      reporter,
      log,
      jobConcurrency,
      writeConcurrency,
      signal: stop.signal,
    },
    items,
  );
  const summary = {
    exitCode: outcome.exitCode,
    receipts: items.length,
    succeeded: outcome.outcomes.filter((o) => o.status === 'succeeded').length,
    failed: outcome.outcomes.filter((o) => o.status === 'failed').length,
    unreported: outcome.outcomes.filter((o) => !o.reported).length,
    vectors: outcome.vectors,
    durationMs: outcome.durationMs,
    maxRssMb: Math.round(process.resourceUsage().maxRSS / 1024),
    batchCpuMs: cpuMs() - cpuBefore,
    eventLoopUtilization: Math.round(performance.eventLoopUtilization(eluBefore).utilization * 100) / 100,
    ...(embedder instanceof OpenAIEmbedder ? { embedder: embedder.stats } : {}),
    ...(outcome.merchantIndex ? { merchantIndex: outcome.merchantIndex } : {}),
    phaseMs: outcome.phaseMs,
    phaseSpanMs: outcome.phaseSpanMs,
  };
  log.info(summary, 'batch finished');
  if (flags.reportFile) await appendFile(flags.reportFile, JSON.stringify({ summary }) + '\n');
  closeKube();
  return outcome.exitCode;
}

function cpuMs(): number {
  const u = process.cpuUsage();
  return Math.round((u.user + u.system) / 1000);
}

const JobsFile = z.array(
  z.object({
    name: z.string().min(1),
    uid: z.string().optional(),
    attemptKey: z.union([z.string(), z.number()]).default(1),
    spec: EmbeddingJobSpec,
  }),
);

async function readJobsFile(path: string): Promise<WorkItem[]> {
  return JobsFile.parse(JSON.parse(await readFile(path, 'utf8')));
}

/** Reports as NDJSON lines `{name, outcome, result?|reason, message}` (appended one by one, so a kill keeps them). */
function fileReporter(path: string | undefined): Reporter {
  const write = async (line: object) => {
    const text = JSON.stringify(line) + '\n';
    if (path) await appendFile(path, text);
    else process.stderr.write(text);
  };
  return {
    succeeded: (item: WorkItem, result: JobResult) =>
      write({ name: item.name, outcome: 'Succeeded', result }),
    failed: (item: WorkItem, f: { reason: FailureReason; message: string }) =>
      write({ name: item.name, outcome: 'Failed', reason: f.reason, message: f.message }),
  };
}
