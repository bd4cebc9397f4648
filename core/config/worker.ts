import { z } from 'zod';
import { CHROMA_MOUNT_PATH, ENV, type Env } from './env.js';
import { envVar, parseEnv } from './parse.js';

/** The embedding provider: OpenAI-compatible when OPENAI_API_KEY is set (the worker, local mode's workers). */
const EmbedderEnv = z.object({
  [ENV.OPENAI_API_KEY]: envVar.optional,
  [ENV.OPENAI_BASE_URL]: envVar.optional,
  /** Unset: the embedder's default model. */
  [ENV.EMBEDDING_MODEL]: envVar.optional,
  /** Unset: the embedder's default dimension. */
  [ENV.EMBEDDING_DIMENSIONS]: envVar.positive.optional(),
});

export interface EmbedderConfig {
  apiKey?: string;
  baseUrl?: string;
  model?: string;
  dimensions?: number;
}

export function parseEmbedderEnv(env: Env): EmbedderConfig {
  const e = parseEnv(EmbedderEnv, env, 'embedder configuration');
  return {
    ...(e.OPENAI_API_KEY ? { apiKey: e.OPENAI_API_KEY } : {}),
    ...(e.OPENAI_BASE_URL ? { baseUrl: e.OPENAI_BASE_URL } : {}),
    ...(e.EMBEDDING_MODEL ? { model: e.EMBEDDING_MODEL } : {}),
    ...(e.EMBEDDING_DIMENSIONS !== undefined ? { dimensions: e.EMBEDDING_DIMENSIONS } : {}),
  };
}

/** `embedctl worker` besides the embedder and the AWS settings. */
const WorkerEnv = z.object({
  [ENV.VECTORS_BUCKET]: envVar.required,
  [ENV.ARTIFACTS_BUCKET]: envVar.required,
  /** Comma-separated further buckets a job may name. */
  [ENV.ARTIFACTS_BUCKETS_ALLOWED]: envVar.optional,
  [ENV.LEDGER_TABLE]: envVar.required,
  [ENV.CHROMA_ROOT]: z.string().min(1).default(CHROMA_MOUNT_PATH),
  /** Set by the controller (controller/worker-job.ts); unset when run by hand. */
  [ENV.WORKER_JOB_NAME]: envVar.optional,
  /** Checked only when the jobs come from Kubernetes (--jobs, not --jobs-file). */
  [ENV.NAMESPACE]: envVar.optional,
  [ENV.POD_NAME]: envVar.optional,
});

export interface WorkerConfig {
  vectorsBucket: string;
  artifactsBucket: string;
  artifactsBucketsAllowed?: string;
  ledgerTable: string;
  chromaRoot: string;
  workerJobName?: string;
  namespace?: string;
  podName?: string;
  embedder: EmbedderConfig;
}

export function parseWorkerEnv(env: Env): WorkerConfig {
  const e = parseEnv(WorkerEnv, env, 'worker configuration');
  return {
    vectorsBucket: e.VECTORS_BUCKET,
    artifactsBucket: e.ARTIFACTS_BUCKET,
    ...(e.ARTIFACTS_BUCKETS_ALLOWED ? { artifactsBucketsAllowed: e.ARTIFACTS_BUCKETS_ALLOWED } : {}),
    ledgerTable: e.LEDGER_TABLE,
    chromaRoot: e.CHROMA_ROOT,
    ...(e.WORKER_JOB_NAME ? { workerJobName: e.WORKER_JOB_NAME } : {}),
    ...(e.NAMESPACE ? { namespace: e.NAMESPACE } : {}),
    ...(e.POD_NAME ? { podName: e.POD_NAME } : {}),
    embedder: parseEmbedderEnv(env),
  };
}
