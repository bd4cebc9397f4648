import { z } from 'zod';
import { CHROMA_MOUNT_PATH, ENV, type Env } from './env.js';
import { definedOnly, envVar, parseEnv } from './parse.js';
import { parseVectorStoreEnv, type VectorStoreConfig } from './vector-store.js';

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
  return definedOnly({
    apiKey: e.OPENAI_API_KEY,
    baseUrl: e.OPENAI_BASE_URL,
    model: e.EMBEDDING_MODEL,
    dimensions: e.EMBEDDING_DIMENSIONS,
  });
}

/** `embedctl worker` besides the embedder and the AWS settings. */
const WorkerEnv = z.object({
  [ENV.VECTORS_BUCKET]: envVar.required,
  [ENV.ARTIFACTS_BUCKET]: envVar.required,
  /** Comma-separated further buckets a job may name. */
  [ENV.ARTIFACTS_BUCKETS_ALLOWED]: envVar.optional,
  [ENV.LEDGER_TABLE]: envVar.required,
  [ENV.CHROMA_ROOT]: envVar.orDefault(CHROMA_MOUNT_PATH),
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
  /** VECTOR_STORE and, in remote mode, the Chroma server merchant resolution queries. */
  vectorStore: VectorStoreConfig;
  workerJobName?: string;
  namespace?: string;
  podName?: string;
  embedder: EmbedderConfig;
}

export function parseWorkerEnv(env: Env): WorkerConfig {
  const e = parseEnv(WorkerEnv, env, 'worker configuration');
  return definedOnly({
    vectorsBucket: e.VECTORS_BUCKET,
    artifactsBucket: e.ARTIFACTS_BUCKET,
    artifactsBucketsAllowed: e.ARTIFACTS_BUCKETS_ALLOWED,
    ledgerTable: e.LEDGER_TABLE,
    chromaRoot: e.CHROMA_ROOT,
    vectorStore: parseVectorStoreEnv(env),
    workerJobName: e.WORKER_JOB_NAME,
    namespace: e.NAMESPACE,
    podName: e.POD_NAME,
    embedder: parseEmbedderEnv(env),
  });
}
