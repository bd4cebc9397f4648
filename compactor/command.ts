import type { Command } from 'commander';
import { hostname, tmpdir } from 'node:os';
import { join } from 'node:path';
import { register as defaultRegistry } from 'prom-client';
import { ENV, DEFAULT_METRICS_PORT, CHROMA_MOUNT_PATH, LEASE_NAMES } from '../cdk8s/env.js';
import { awsSettingsFromEnv } from '../core/aws/config.js';
import { DynamoLedger } from '../core/aws/dynamo-ledger.js';
import { S3Store } from '../core/aws/s3-store.js';
import { SqsQueue } from '../core/aws/sqs-queue.js';
import { ConfigError, errorMessage } from '../core/errors.js';
import { HealthServer } from '../core/http/health-server.js';
import { makeKubeClient } from '../core/kube/client.js';
import { FileLeaseBackend } from '../core/lease/file-lease.js';
import { KubeLeaseBackend } from '../core/lease/kube-lease.js';
import { FencedLease, LeaseLostError } from '../core/lease/lease.js';
import type { LeaseBackend } from '../core/lease/lock.js';
import { createLogger, type Logger } from '../core/log.js';
import { Compactor, type CompactorConfig } from './compactor.js';

/** Exit codes of `embedctl compactor`. */
export const EXIT = { ok: 0, error: 1, config: 2, leaseLost: 3 } as const;

function required(env: NodeJS.ProcessEnv, name: string): string {
  const v = env[name];
  if (!v) throw new ConfigError(`${name} is not set`, { name });
  return v;
}

function num(env: NodeJS.ProcessEnv, name: string): number | undefined {
  const v = env[name];
  if (v === undefined || v === '') return undefined;
  const n = Number(v);
  if (!Number.isFinite(n) || n < 0)
    throw new ConfigError(`${name} must be a non-negative number, got ${v}`, { name });
  return n;
}

/** Compactor tuning from COMPACTOR_* variables (all optional; defaults in DEFAULT_CONFIG). */
export function configFromEnv(env: NodeJS.ProcessEnv = process.env): Partial<CompactorConfig> {
  const c: Partial<CompactorConfig> = {};
  const set = <K extends keyof CompactorConfig>(k: K, v: number | undefined) => {
    if (v !== undefined) (c as Record<string, number>)[k] = v;
  };
  set('batchSize', num(env, 'COMPACTOR_BATCH_SIZE'));
  set('batchWindowMs', num(env, 'COMPACTOR_BATCH_WINDOW_MS'));
  set('publishHoldMs', num(env, 'COMPACTOR_PUBLISH_HOLD_MS'));
  set('waitSeconds', num(env, 'COMPACTOR_WAIT_SECONDS'));
  set('visibilitySeconds', num(env, 'COMPACTOR_VISIBILITY_SECONDS'));
  set('maxReceives', num(env, 'COMPACTOR_MAX_RECEIVES'));
  set('keepVersions', num(env, 'COMPACTOR_KEEP_VERSIONS'));
  const grace = num(env, 'COMPACTOR_GRACE_SECONDS');
  if (grace !== undefined) c.graceMs = grace * 1000;
  set('s3EveryPublishes', num(env, 'COMPACTOR_S3_EVERY_PUBLISHES'));
  set('s3EverySeconds', num(env, 'COMPACTOR_S3_EVERY_SECONDS'));
  set('s3Keep', num(env, 'COMPACTOR_S3_KEEP'));
  set('dimensions', num(env, ENV.EMBEDDING_DIMENSIONS));
  set('exitWhenIdleMs', num(env, 'COMPACTOR_EXIT_WHEN_IDLE_MS'));
  set('maxGroupBytes', num(env, 'COMPACTOR_MAX_GROUP_BYTES'));
  const stall = num(env, 'COMPACTOR_STALL_SECONDS');
  if (stall !== undefined) c.stallMs = stall * 1000;
  set('crashLimit', num(env, 'COMPACTOR_CRASH_LIMIT'));
  const chroma = num(env, 'COMPACTOR_CHROMA_TIMEOUT_SECONDS');
  if (chroma !== undefined) c.chromaTimeoutMs = chroma * 1000;
  return c;
}

/** The lease: `LEASE_FILE` (local mode, tests) or the coordination.k8s.io Lease LEASE_NAME in NAMESPACE. */
export function leaseFromEnv(env: NodeJS.ProcessEnv, log: Logger): FencedLease {
  let backend: LeaseBackend;
  if (env.LEASE_FILE) backend = new FileLeaseBackend(env.LEASE_FILE);
  else {
    backend = new KubeLeaseBackend(
      makeKubeClient(),
      env[ENV.NAMESPACE] ?? 'default',
      env[ENV.LEASE_NAME] ?? LEASE_NAMES.compactor,
    );
  }
  return new FencedLease(backend, {
    identity: env[ENV.POD_NAME] || `${hostname()}-${process.pid}`,
    durationMs: num(env, 'LEASE_DURATION_MS') ?? 15_000,
    log,
  });
}

/** Builds the cloud compactor (SQS, DynamoDB, S3, Lease) from the environment names in cdk8s/env.ts. */
export function compactorFromEnv(
  env: NodeJS.ProcessEnv = process.env,
  log = createLogger('compactor'),
): Compactor {
  const aws = awsSettingsFromEnv(env);
  const dlq = required(env, ENV.COMPACTION_DLQ_URL);
  return new Compactor({
    queues: {
      lines: new SqsQueue(required(env, ENV.LINES_QUEUE_URL), aws, dlq),
      words: new SqsQueue(required(env, ENV.WORDS_QUEUE_URL), aws, dlq),
    },
    ledger: new DynamoLedger(required(env, ENV.LEDGER_TABLE), aws),
    objects: new S3Store(aws),
    bucket: required(env, ENV.VECTORS_BUCKET),
    lease: leaseFromEnv(env, log),
    root: env[ENV.CHROMA_ROOT] || CHROMA_MOUNT_PATH,
    workRoot: env.COMPACTOR_WORK_DIR || join(tmpdir(), 'embedctl-compactor'),
    log,
    config: configFromEnv(env),
  });
}

/**
 * Runs a compactor until SIGTERM/SIGINT (or idle exit), serving /metrics, /healthz and /readyz. Resolves to the
 * process exit code: 3 when the lease was lost (the pod restarts and waits for the lease again).
 */
export async function runCompactor(
  compactor: Compactor,
  opts: { metricsPort?: number; log: Logger },
): Promise<number> {
  const controller = new AbortController();
  const onSignal = () => controller.abort();
  process.once('SIGTERM', onSignal);
  process.once('SIGINT', onSignal);
  const health = new HealthServer({
    port: opts.metricsPort ?? DEFAULT_METRICS_PORT,
    registry: defaultRegistry, // compactor and stream metrics live on prom-client's default registry
    probes: { healthy: () => compactor.isHealthy(), ready: () => compactor.isReady() },
    log: opts.log,
  });
  await health.listen();
  opts.log.info({ metricsPort: health.port }, 'compactor starting');
  try {
    await compactor.run(controller.signal);
    return EXIT.ok;
  } catch (err) {
    if (err instanceof LeaseLostError || compactor.deps.lease.lostSignal.aborted) {
      opts.log.error({ err: errorMessage(err) }, 'compactor lease lost: exiting without further writes');
      return EXIT.leaseLost;
    }
    if ((err as Error).name === 'AbortError' && controller.signal.aborted) return EXIT.ok;
    opts.log.error({ err: errorMessage(err), stack: (err as Error).stack }, 'compactor failed');
    return err instanceof ConfigError ? EXIT.config : EXIT.error;
  } finally {
    process.off('SIGTERM', onSignal);
    process.off('SIGINT', onSignal);
    await health.close();
  }
}

export function register(program: Command): void {
  program
    .command('compactor')
    .description(
      'Singleton compactor: merge LINES/WORDS deltas into versioned Chroma snapshots (Lease-fenced)',
    )
    .option('--exit-when-idle <ms>', 'exit 0 after both queues were empty this long')
    .option('--lease-file <path>', 'use a file lease (local mode) instead of the Kubernetes Lease')
    .action(async (opts: { exitWhenIdle?: string; leaseFile?: string }) => {
      const env = { ...process.env };
      if (opts.exitWhenIdle) env.COMPACTOR_EXIT_WHEN_IDLE_MS = opts.exitWhenIdle;
      if (opts.leaseFile) env.LEASE_FILE = opts.leaseFile;
      const log = createLogger('compactor');
      let code: number;
      try {
        const compactor = compactorFromEnv(env, log);
        code = await runCompactor(compactor, {
          metricsPort: num(env, ENV.METRICS_PORT) ?? DEFAULT_METRICS_PORT,
          log,
        });
      } catch (err) {
        log.error({ err: errorMessage(err) }, 'compactor could not start');
        code = err instanceof ConfigError ? EXIT.config : EXIT.error;
      }
      process.exit(code);
    });
}
