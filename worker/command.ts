import type { Command } from 'commander';
import { appendFile, readFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { performance } from 'node:perf_hooks';
import { join } from 'node:path';
import { z } from 'zod';
import { ENV } from '../cdk8s/env.js';
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
import type { Embedder } from '../core/ports/embedder.js';
import { KubeStatusReporter, loadWorkItems } from './kube.js';
import { DEFAULT_JOB_CONCURRENCY, processBatch } from './batch.js';
import type { FailureReason, Reporter, WorkItem } from './work-item.js';

/** Exit codes understood by the controller's podFailurePolicy (controller/README.md). */
export const EXIT = { ok: 0, retry: 1, badInput: 2, sourceMissing: 3 } as const;

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
  const env = process.env;
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
    return EXIT.badInput;
  }
  if (!['openai', 'local'].includes(flags.embedder)) {
    log.fatal(`--embedder must be openai or local, not ${flags.embedder}`);
    return EXIT.badInput;
  }
  let embedder: Embedder;
  let embedderFor: ((model: string) => Embedder) | undefined;
  let vectorsBucket: string;
  let artifactBuckets: string[];
  let table: string;
  try {
    vectorsBucket = required(env, ENV.VECTORS_BUCKET);
    artifactBuckets = allowedBuckets(required(env, ENV.ARTIFACTS_BUCKET), env[ENV.ARTIFACTS_BUCKETS_ALLOWED]);
    table = required(env, ENV.LEDGER_TABLE);
    const dimensions = Number(env[ENV.EMBEDDING_DIMENSIONS] ?? DEFAULT_DIMENSIONS);
    if (!Number.isInteger(dimensions) || dimensions < 1) {
      throw new ConfigError(
        `${ENV.EMBEDDING_DIMENSIONS} must be a positive integer, not ${env[ENV.EMBEDDING_DIMENSIONS]}`,
      );
    }
    if (flags.embedder === 'local') {
      embedder = new LocalEmbedder(dimensions);
    } else {
      const make = (model: string) =>
        new OpenAIEmbedder({
          apiKey: env[ENV.OPENAI_API_KEY] ?? '',
          ...(env[ENV.OPENAI_BASE_URL] ? { baseURL: env[ENV.OPENAI_BASE_URL] } : {}),
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
      embedder = embedderFor(env[ENV.EMBEDDING_MODEL] ?? DEFAULT_MODEL);
    }
  } catch (err) {
    // Configuration the operator can fix (a missing secret, say): retryable, so the items are not failed for good.
    log.fatal(errorMessage(err));
    return EXIT.retry;
  }

  const aws = awsSettingsFromEnv(env);
  const store = new S3Store(aws);
  const ledger = new DynamoLedger(table, aws);
  const scratch = flags.scratch ?? join(tmpdir(), `embedctl-worker-${process.pid}`);
  const linesIndex = flags.merchant
    ? new SnapshotLinesIndexSource({
        chromaRoot: env[ENV.CHROMA_ROOT] ?? '/mnt/chroma',
        scratchDir: scratch,
        objectStore: store,
        vectorsBucket,
        log,
      })
    : undefined;

  let items: WorkItem[];
  let reporter: Reporter;
  let closeKube = () => {};
  const workerJob = env.WORKER_JOB_NAME;
  try {
    if (flags.jobsFile) {
      items = await readJobsFile(flags.jobsFile);
      reporter = fileReporter(flags.reportFile);
    } else {
      const namespace = flags.namespace ?? env[ENV.NAMESPACE];
      if (!namespace) {
        log.fatal(`--namespace or ${ENV.NAMESPACE} is required`);
        return EXIT.badInput;
      }
      const kube = await makeKubeClient(flags.kubeconfig ? { kubeconfig: flags.kubeconfig } : {});
      closeKube = () => kube.close();
      const client = new EmbeddingJobClient(kube);
      const names = flags
        .jobs!.split(',')
        .map((s) => s.trim())
        .filter(Boolean);
      items = await loadWorkItems(client, namespace, names, workerJob, log);
      reporter = new KubeStatusReporter(client, namespace, workerJob ?? env[ENV.POD_NAME] ?? 'worker', log);
    }
  } catch (err) {
    log.fatal({ err: errorMessage(err) }, 'could not load the batch');
    return err instanceof ConfigError || err instanceof z.ZodError ? EXIT.badInput : EXIT.retry;
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

function required(env: NodeJS.ProcessEnv, name: string): string {
  const v = env[name];
  if (!v) throw new ConfigError(`${name} is not set`);
  return v;
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
