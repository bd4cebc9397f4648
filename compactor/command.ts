import type { Command } from 'commander';
import { hostname, tmpdir } from 'node:os';
import { join } from 'node:path';
import { collectDefaultMetrics, Registry } from 'prom-client';
import { awsSettingsFromEnv } from '../core/aws/config.js';
import { DynamoLedger } from '../core/aws/dynamo-ledger.js';
import { S3Store } from '../core/aws/s3-store.js';
import { SqsQueue } from '../core/aws/sqs-queue.js';
import { parseCompactorEnv, parseCompactorLease, parseCompactorTuning } from '../core/config/compactor.js';
import { DEFAULT_METRICS_PORT, ENV, processEnv, type Env } from '../core/config/env.js';
import { parseVectorStoreEnv } from '../core/config/vector-store.js';
import { EXIT } from '../core/config/exit-codes.js';
import { ConfigError } from '../core/errors.js';
import { HealthServer } from '../core/http/health-server.js';
import { makeKubeClient } from '../core/kube/client.js';
import { FileLeaseBackend } from '../core/lease/file-lease.js';
import { KubeLeaseBackend } from '../core/lease/kube-lease.js';
import { FencedLease, LeaseLostError } from '../core/lease/lease.js';
import type { LeaseBackend } from '../core/lease/lock.js';
import { createLogger, type Logger } from '../core/log.js';
import { crashHooksFromEnv } from '../core/testing/crash-points.js';
import { Compactor } from './compactor.js';
import { CompactorMetrics } from './metrics.js';

/** The lease: `LEASE_FILE` (local mode, tests) or the coordination.k8s.io Lease LEASE_NAME in NAMESPACE. */
export function leaseFromEnv(env: Env, log: Logger): FencedLease {
  const config = parseCompactorLease(env);
  let backend: LeaseBackend;
  if (config.file) backend = new FileLeaseBackend(config.file);
  else {
    backend = new KubeLeaseBackend(makeKubeClient(), config.namespace, config.name);
  }
  return new FencedLease(backend, {
    identity: config.identity ?? `${hostname()}-${process.pid}`,
    durationMs: config.durationMs,
    log,
  });
}

/**
 * Builds the cloud compactor (SQS, DynamoDB, S3, Lease) from the environment (core/config/compactor.ts), with its
 * metrics on `metrics` and the crash-matrix hooks the environment asks for.
 */
export function compactorFromEnv(
  env: Env = processEnv(),
  log = createLogger('compactor'),
  metrics = new CompactorMetrics(),
): Compactor {
  const config = parseCompactorEnv(env);
  const aws = awsSettingsFromEnv(env);
  const store = parseVectorStoreEnv(env);
  const workRoot = config.workDir ?? join(tmpdir(), 'embedctl-compactor');
  return new Compactor({
    queues: {
      lines: new SqsQueue(config.queues.lines, aws, config.queues.dlq),
      words: new SqsQueue(config.queues.words, aws, config.queues.dlq),
    },
    ledger: new DynamoLedger(config.ledgerTable, aws),
    objects: new S3Store(aws),
    bucket: config.vectorsBucket,
    lease: leaseFromEnv(env, log),
    // Remote mode mounts no volume: the crash record stays in the pod's scratch (it survives container restarts).
    root: store.mode === 'remote' ? join(workRoot, 'state') : config.chromaRoot,
    workRoot,
    ...(store.mode === 'remote'
      ? {
          remote: {
            url: store.url,
            tenant: store.tenant,
            database: store.database,
            leaseName: parseCompactorLease(env).name,
          },
        }
      : {}),
    log,
    config: parseCompactorTuning(env),
    metrics,
    hooks: crashHooksFromEnv(env),
  });
}

/**
 * Runs a compactor until SIGTERM/SIGINT (or idle exit), serving /metrics, /healthz and /readyz. Resolves to the
 * process exit code (core/config/exit-codes.ts): `leaseLost` when the lease was lost (the pod restarts and waits for the
 * lease again).
 */
export async function runCompactor(
  compactor: Compactor,
  opts: { metricsPort?: number; log: Logger; registry: Registry },
): Promise<number> {
  const controller = new AbortController();
  const onSignal = () => controller.abort();
  process.once('SIGTERM', onSignal);
  process.once('SIGINT', onSignal);
  const health = new HealthServer({
    port: opts.metricsPort ?? DEFAULT_METRICS_PORT,
    registry: opts.registry,
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
      opts.log.error({ err }, 'compactor lease lost: exiting without further writes');
      return EXIT.leaseLost;
    }
    if ((err as Error).name === 'AbortError' && controller.signal.aborted) return EXIT.ok;
    opts.log.error({ err }, 'compactor failed');
    return err instanceof ConfigError ? EXIT.usage : EXIT.failed;
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
      // The flags override their variables.
      const env: Env = {
        ...processEnv(),
        ...(opts.exitWhenIdle ? { [ENV.COMPACTOR_EXIT_WHEN_IDLE_MS]: opts.exitWhenIdle } : {}),
        ...(opts.leaseFile ? { [ENV.LEASE_FILE]: opts.leaseFile } : {}),
      };
      const log = createLogger('compactor');
      let code: number;
      try {
        // One registry, injected: the compactor's metrics and the process's, served on /metrics.
        const registry = new Registry();
        collectDefaultMetrics({ register: registry });
        const compactor = compactorFromEnv(env, log, new CompactorMetrics(registry));
        code = await runCompactor(compactor, {
          metricsPort: parseCompactorEnv(env).metricsPort,
          log,
          registry,
        });
      } catch (err) {
        log.error({ err }, 'compactor could not start');
        code = err instanceof ConfigError ? EXIT.usage : EXIT.failed;
      }
      process.exit(code);
    });
}
