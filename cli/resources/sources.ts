import { awsSettingsFromEnv } from '../../core/aws/config.js';
import { DynamoLedger } from '../../core/aws/dynamo-ledger.js';
import { SqsQueue } from '../../core/aws/sqs-queue.js';
import { ENV, processEnv } from '../../core/config/env.js';
import type { CompactionRunItem } from '../../core/contracts/compaction-run.js';
import type { EmbeddingJob } from '../../core/contracts/embedding-job.js';
import { COLLECTIONS } from '../../core/contracts/ids.js';
import { ConfigError } from '../../core/errors.js';
import type { ObjectStore } from '../../core/ports/object-store.js';
import type { Ledger } from '../../core/ports/ledger.js';
import { readPointer } from '../../core/snapshot/s3-snapshot.js';
import { listVersions, readCurrent } from '../../core/snapshot/volume.js';
import { openLocal } from '../../local/home.js';
import { cloudJobClient, cloudNamespace } from '../cloud.js';
import type { VolumeFlags } from '../options.js';
import { snapshotTarget } from '../snapshot-target.js';
import { existingHome } from '../usage.js';
import { localJobAsEmbeddingJob, type DeadLetterView, type SnapshotSet } from './views.js';

/**
 * Where `embedctl get|describe|wait` read each resource: the home's SQLite job table, ledger, snapshot volume and
 * queues (local mode), or (--cloud) the EmbeddingJobs through the apiserver, the DynamoDB ledger ($LEDGER_TABLE), the
 * volume and its S3 mirror (cli/cloud.ts) and the SQS dead-letter queues ($EMBED_DLQ_URL, $COMPACTION_DLQ_URL).
 * Each is opened only when asked for, so `get jobs --cloud` needs no AWS settings.
 */
export interface ResourceFlags extends VolumeFlags {
  namespace?: string;
  kubeconfig?: string;
}

export interface Resources {
  jobs(): Promise<EmbeddingJob[]>;
  runs(): Promise<CompactionRunItem[]>;
  snapshots(): Promise<SnapshotSet[]>;
  deadLetters(): Promise<DeadLetterView[]>;
  close(): void;
}

export function openResources(f: ResourceFlags): Resources {
  return f.cloud ? cloudResources(f) : localResources(f);
}

function localResources(f: ResourceFlags): Resources {
  const ports = openLocal(existingHome(f.home));
  const jobs = async () => ports.jobs.list().map(localJobAsEmbeddingJob);
  return {
    jobs,
    runs: async () => runsOf(await jobs(), ports.ledger),
    snapshots: () => readSnapshots(f),
    deadLetters: async () =>
      Object.values(ports.queues).flatMap((q) =>
        q.deadLetters().map(({ attributes: _a, ...d }) => ({ kind: 'message' as const, ...d })),
      ),
    close: ports.close,
  };
}

function cloudResources(f: ResourceFlags): Resources {
  const env = processEnv();
  const jobs = async () => (await cloudJobClient(f.kubeconfig)).list(cloudNamespace(f.namespace));
  return {
    jobs,
    runs: async () => {
      const table = env[ENV.LEDGER_TABLE];
      if (!table) throw new ConfigError(`get runs --cloud reads the ledger: set ${ENV.LEDGER_TABLE}`);
      return runsOf(await jobs(), new DynamoLedger(table, awsSettingsFromEnv(env)));
    },
    snapshots: () => readSnapshots(f),
    deadLetters: async () => {
      const urls = [env[ENV.EMBED_DLQ_URL], env[ENV.COMPACTION_DLQ_URL]].filter((u): u is string => !!u);
      if (urls.length === 0)
        throw new ConfigError(
          `get deadletters --cloud reads the dead-letter queues: set ${ENV.EMBED_DLQ_URL} and/or ${ENV.COMPACTION_DLQ_URL}`,
        );
      const settings = awsSettingsFromEnv(env);
      return Promise.all(
        urls.map(async (url) => {
          const q = new SqsQueue(url, settings);
          return { kind: 'queue' as const, queue: q.name, ...(await q.depth()) };
        }),
      );
    },
    close: () => {},
  };
}

/** The CompactionRun of each job that produced one (its status.result.runId), in the jobs' order. */
async function runsOf(jobs: EmbeddingJob[], ledger: Ledger): Promise<CompactionRunItem[]> {
  const runs = await Promise.all(
    jobs.map((j) =>
      j.status?.result?.runId
        ? ledger.getRun(j.spec.imageId, j.spec.receiptId, j.status.result.runId)
        : undefined,
    ),
  );
  return runs.filter((r): r is CompactionRunItem => r !== undefined);
}

/** Per collection: the versions on the volume, CURRENT, and the object-store pointer (what `snapshot list` shows). */
export async function readSnapshots(f: VolumeFlags): Promise<SnapshotSet[]> {
  const { root, mirror, close } = snapshotTarget(f);
  try {
    return await Promise.all(COLLECTIONS.map((c) => snapshotSet(c, root, mirror)));
  } finally {
    close();
  }
}

async function snapshotSet(
  collection: (typeof COLLECTIONS)[number],
  root: string | undefined,
  mirror: { store: ObjectStore; bucket: string } | undefined,
): Promise<SnapshotSet> {
  const current = root ? await readCurrent(root, collection) : undefined;
  const pointer = mirror
    ? await readPointer(mirror.store, mirror.bucket, collection).catch(() => undefined)
    : undefined;
  return {
    collection,
    ...(current ? { current } : {}),
    versions: root ? await listVersions(root, collection) : [],
    ...(pointer ? { pointer } : {}),
  };
}
