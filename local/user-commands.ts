import { Option, type Command } from 'commander';
import { copyFile, mkdtemp, readdir, rm, stat, writeFile } from 'node:fs/promises';
import { hostname, tmpdir } from 'node:os';
import { basename, join } from 'node:path';
import { parseSubmitCloudEnv } from '../core/config/cloud-commands.js';
import { ENV, LEASE_NAMES, processEnv } from '../core/config/env.js';
import { awsSettingsFromEnv } from '../core/aws/config.js';
import { S3Store } from '../core/aws/s3-store.js';
import { SqsQueue } from '../core/aws/sqs-queue.js';
import { similarity } from '../core/chroma/store.js';
import { embeddingJobName, type EmbeddingJob } from '../core/contracts/embedding-job.js';
import type { EmbedMessage } from '../core/contracts/embed-message.js';
import { COLLECTIONS, parseVectorId, type Collection } from '../core/contracts/ids.js';
import { ConfigError, UsageError } from '../core/errors.js';
import { safeField, safeText } from '../cli/safe-text.js';
import { existingHome, exitCodeOf, intArg, nonEmptyArg, writeError } from '../cli/usage.js';
import { loadKubeConfig, makeKubeClient } from '../core/kube/client.js';
import { EmbeddingJobClient } from '../core/kube/embedding-jobs.js';
import type { FencedLease, LeaseBackend } from '../core/lease/lease.js';
import { FileLeaseBackend } from '../core/lease/file-lease.js';
import { withHeldLease } from '../core/lease/hold.js';
import { KubeLeaseBackend } from '../core/lease/kube-lease.js';
import { isCompacted, type LocalJob } from '../core/local/job-table.js';
import type { ObjectStore } from '../core/ports/object-store.js';
import type { Queue } from '../core/ports/queue.js';
import { fileSha256 } from '../core/snapshot/file-digests.js';
import { fenceVolume } from '../core/snapshot/fence.js';
import { describeLiveState, ensureLiveIntact, intactVersion } from '../core/snapshot/repair.js';
import { archiveKey, readPointer } from '../core/snapshot/s3-snapshot.js';
import {
  listVersions,
  pruneVersions,
  readCurrent,
  readCurrentText,
  removeLeftovers,
  switchCurrent,
  versionsDir,
} from '../core/snapshot/volume.js';
import { DEFAULT_CONFIG } from '../compactor/compactor.js';
import { runCompactorChild } from './compactor-child.js';
import {
  ARTIFACTS_BUCKET,
  embedderFromEnv,
  homePaths,
  LOCAL_KEEP_VERSIONS,
  lockHome,
  openLocal,
  runnerState,
  VECTORS_BUCKET,
  type RunnerState,
} from './home.js';
import { readInputFolder, submitReceipts } from './input.js';
import { openSnapshotView } from './snapshot-view.js';

/**
 * The user commands `submit`, `status`, `query`, `snapshot`, `compact`. Local mode (the default) works on a
 * `--home` directory; `--cloud` uses the same environment variables as the deployed programs (core/config/env.ts):
 * SQS + S3 for submit, the EmbeddingJobs of a namespace for status, the shared volume (CHROMA_ROOT) or the S3
 * mirror (VECTORS_BUCKET) for query and snapshot.
 */
export function registerUserCommands(program: Command, homeOption: () => Option): void {
  program
    .command('submit')
    .description(
      'upload NDJSON pairs and send one EMBED message per receipt (a folder, or lines.ndjson words.ndjson)',
    )
    .argument('<paths...>', 'a folder of NDJSON pairs (any depth), or the two files of one receipt')
    .addOption(homeOption())
    .option('--cloud', `send to SQS ${ENV.EMBED_QUEUE_URL} with the files in S3 ${ENV.ARTIFACTS_BUCKET}`)
    .option('--bucket <name>', 'artifacts bucket (cloud: default $ARTIFACTS_BUCKET)')
    .option('--json', 'machine-readable output')
    .action(
      async (paths: string[], f: { home: string; cloud?: boolean; bucket?: string; json?: boolean }) => {
        await guarded(async () => {
          const receipts = [];
          const rejected = [];
          const { folders, cleanup } = await asFolders(paths);
          try {
            for (const p of folders) {
              const r = await readInputFolder(p);
              receipts.push(...r.receipts);
              rejected.push(...r.rejected);
            }
          } finally {
            await cleanup();
          }
          if (receipts.length === 0 && rejected.length === 0)
            throw new UsageError(
              `no receipt in ${paths.join(' ')}: a receipt is a folder with lines.ndjson + words.ndjson, or a <name>.lines.ndjson + <name>.words.ndjson pair`,
            );
          let target: {
            store: ObjectStore;
            queue: Queue;
            bucket: string;
            known?: (m: EmbedMessage) => boolean;
            close(): void;
          };
          if (f.cloud) {
            const env = processEnv();
            const cloud = parseSubmitCloudEnv(env, f.bucket);
            const settings = awsSettingsFromEnv(env);
            target = {
              store: new S3Store(settings),
              queue: new SqsQueue(cloud.queueUrl, settings, cloud.dlqUrl),
              bucket: cloud.bucket,
              close: () => {},
            };
          } else {
            const ports = openLocal(f.home);
            target = {
              store: ports.store,
              queue: ports.queues.embed,
              bucket: f.bucket ?? ARTIFACTS_BUCKET,
              // A receipt with a job and the same content is not uploaded or queued again.
              known: (m) => ports.jobs.get(embeddingJobName(m)) !== undefined,
              close: ports.close,
            };
          }
          try {
            const { sent, unchanged } = receipts.length
              ? await submitReceipts(target.store, target.queue, target.bucket, receipts, {
                  ...(target.known ? { known: target.known } : {}),
                })
              : { sent: [], unchanged: [] };
            if (f.json) print({ submitted: sent, unchanged, rejected });
            else {
              say(
                `submitted ${sent.length} receipt(s) to ${target.queue.name}${unchanged.length ? `; ${unchanged.length} unchanged, already submitted` : ''}\n`,
              );
              for (const r of rejected) say(`  ✗ ${r.source}: ${r.reason}\n`);
              if (!f.cloud && sent.length) say(`next: embedctl local run --home ${f.home} --receipts 0\n`);
            }
            return rejected.length && !sent.length ? 1 : 0;
          } finally {
            target.close();
          }
        });
      },
    );

  program
    .command('status')
    .description(
      'jobs and their runs: the local job table, or EmbeddingJobs in a namespace (like kubectl get ej)',
    )
    .addOption(homeOption())
    .option('--cloud', 'list EmbeddingJobs through the Kubernetes API')
    .option('--namespace <ns>', 'namespace of the EmbeddingJobs (cloud; default $NAMESPACE or "default")')
    .option('--kubeconfig <path>', 'kubeconfig (cloud; default $KUBECONFIG, ~/.kube/config or in-cluster)')
    .option('--all', 'list every job, not only unfinished and failed ones')
    .option('--json', 'machine-readable output')
    .action(
      async (f: {
        home: string;
        cloud?: boolean;
        namespace?: string;
        kubeconfig?: string;
        all?: boolean;
        json?: boolean;
      }) => {
        await guarded(async () => {
          if (f.cloud) {
            const ns = f.namespace ?? processEnv()[ENV.NAMESPACE] ?? 'default';
            const client = new EmbeddingJobClient(
              await makeKubeClient(f.kubeconfig ? { kubeconfig: f.kubeconfig } : {}),
            );
            const items = await client.list(ns);
            if (f.json) print(items);
            else printTable(items.map(cloudRow));
            return items.some((j) => j.status?.phase === 'Failed') ? 1 : 0;
          }
          const ports = openLocal(existingHome(f.home));
          try {
            const jobs = ports.jobs.list();
            const counts = ports.jobs.counts();
            const runner = runnerState(ports.paths);
            const depth = Object.fromEntries(
              await Promise.all(
                Object.values(ports.queues).map(async (q) => [q.name, await q.depth()] as const),
              ),
            );
            const deadLetters = Object.values(ports.queues).flatMap((q) => q.deadLetters());
            if (f.json) {
              print({ counts, queues: depth, runner, jobs, deadLetters });
            } else {
              const shown = f.all ? jobs : jobs.filter((j) => j.phase !== 'Succeeded' || !isCompacted(j));
              printTable(shown.map((j) => localRow(j, runner)));
              say(
                `\n${jobs.length} job(s): ${Object.entries(counts)
                  .map(([k, v]) => `${v} ${k}`)
                  .join(', ')}${f.all ? '' : ' (finished and compacted ones hidden; --all shows them)'}\n`,
              );
              say(
                `queues: ${Object.entries(depth)
                  .map(([k, v]) => `${k} ${v.visible} visible/${v.inFlight} in flight`)
                  .join(', ')}\n`,
              );
              for (const d of deadLetters) say(`dead letter on ${d.queue}: ${d.reason}\n`);
              say(`${runnerText(runner, counts.Scheduled + counts.Running)}\n`);
            }
            return counts.Failed > 0 || deadLetters.length > 0 ? 1 : 0;
          } finally {
            ports.close();
          }
        });
      },
    );

  program
    .command('query')
    .description('nearest vectors of the live snapshot to a text, or to the vector with this id')
    .argument(
      '<text-or-id>',
      'free text (embedded like the workers do), or a vector id IMAGE#…#RECEIPT#…#LINE#…',
      nonEmptyArg,
    )
    .addOption(homeOption())
    .option(
      '--cloud',
      `read the live version from ${ENV.CHROMA_ROOT} (or the S3 mirror in ${ENV.VECTORS_BUCKET})`,
    )
    .option('--chroma-root <dir>', 'root of the snapshot volume (cloud; default $CHROMA_ROOT)')
    .addOption(
      new Option(
        '-c, --collection <name>',
        'lines or words (default: words for a word id or a one-word text, else lines)',
      ).choices(COLLECTIONS),
    )
    .option('-n, --results <n>', 'how many neighbours', intArg(1, 1000), 5)
    .option('--json', 'machine-readable output')
    .action(
      async (
        text: string,
        f: {
          home: string;
          cloud?: boolean;
          chromaRoot?: string;
          collection?: string;
          results: number;
          json?: boolean;
        },
      ) => {
        await guarded(async () => {
          const id = parseVectorId(text);
          const collection = (f.collection ??
            (id
              ? id.wordId !== undefined
                ? 'words'
                : 'lines'
              : /\s/.test(text.trim())
                ? 'lines'
                : 'words')) as Collection;
          if (!COLLECTIONS.includes(collection))
            throw new ConfigError(`--collection must be lines or words, not ${collection}`);
          const n = f.results;
          // Only the collection asked for: a damaged other collection does not stand in the way.
          const { view, cleanup } = await openView(f, { collections: [collection] });
          try {
            const store = view.store(collection);
            if (!store)
              throw new ConfigError(
                `no published ${collection} snapshot yet: run the pipeline first (embedctl local run)`,
              );
            let vector: Float32Array;
            if (id) {
              const got = await store.get(collection, { ids: [text], include: ['embeddings'] });
              if (!got.embeddings?.[0])
                throw new ConfigError(
                  `no vector with id ${text} in ${collection} ${view.versions[collection]}`,
                );
              vector = got.embeddings[0];
            } else {
              [vector] = (await (await embedderFromEnv()).embed([text])) as [Float32Array];
            }
            const hits = await store.query(collection, vector, n);
            const rows = hits.map((h) => ({
              similarity: Math.round(similarity(h.distance) * 1000) / 1000,
              ...h,
            }));
            if (f.json) print({ collection, version: view.versions[collection], hits: rows });
            else {
              say(`${collection} ${view.versions[collection]} (${view.origins[collection]}):\n`);
              for (const h of rows) {
                const merchant =
                  typeof h.metadata?.merchant_name === 'string' && h.metadata.merchant_name
                    ? `  [${h.metadata.merchant_name}]`
                    : '';
                say(
                  `  ${h.similarity.toFixed(3)}  ${JSON.stringify(h.document ?? '')}${merchant}  ${h.id}\n`,
                );
              }
            }
            return 0;
          } finally {
            await view.close();
            await cleanup();
          }
        });
      },
    );

  const snapshot = program
    .command('snapshot')
    .description('published snapshot versions: list, restore, verify');
  snapshot
    .command('list')
    .description('versions per collection on the volume, CURRENT marked, and the object-store pointer')
    .addOption(homeOption())
    .option('--cloud', `the volume at ${ENV.CHROMA_ROOT} and the S3 mirror in ${ENV.VECTORS_BUCKET}`)
    .option('--chroma-root <dir>', 'root of the snapshot volume (cloud; default $CHROMA_ROOT)')
    .option('--json', 'machine-readable output')
    .action(async (f: { home: string; cloud?: boolean; chromaRoot?: string; json?: boolean }) => {
      await guarded(async () => {
        const { root, mirror, close } = snapshotTarget(f);
        try {
          const out = await Promise.all(
            COLLECTIONS.map(async (c) => ({
              collection: c,
              current: root ? await readCurrent(root, c) : undefined,
              versions: root ? await listVersions(root, c) : [],
              pointer: mirror
                ? await readPointer(mirror.store, mirror.bucket, c).catch(() => undefined)
                : undefined,
            })),
          );
          if (f.json) print(out);
          else
            for (const c of out) {
              say(
                `${c.collection}: CURRENT ${c.current ?? '(none)'}, object-store pointer ${c.pointer ?? '(none)'}\n`,
              );
              for (const v of c.versions) say(`  ${v === c.current ? '*' : ' '} ${v}\n`);
            }
          return 0;
        } finally {
          close();
        }
      });
    });

  snapshot
    .command('restore')
    .description(
      'repair the live version (default) or make a named version live: an intact copy on the volume, else the object-store archive',
    )
    .argument('<collection>', 'lines or words')
    .argument(
      '[version]',
      'version id (default: keep CURRENT when intact; when it is damaged or missing, install the newest intact copy)',
    )
    .addOption(homeOption())
    .option(
      '--cloud',
      `the volume at ${ENV.CHROMA_ROOT} and the S3 mirror in ${ENV.VECTORS_BUCKET}, fenced by the compactor's Lease`,
    )
    .option('--chroma-root <dir>', 'root of the snapshot volume (cloud; default $CHROMA_ROOT)')
    .option(
      '--namespace <ns>',
      'namespace of the compactor\'s Lease (cloud; default $NAMESPACE or "default")',
    )
    .option('--lease-name <name>', `the compactor's Lease (cloud; default ${LEASE_NAMES.compactor})`)
    .option('--kubeconfig <path>', 'kubeconfig (cloud; default $KUBECONFIG, ~/.kube/config or in-cluster)')
    .option(
      '--lease-wait <seconds>',
      "how long to wait for the compactor's lease while someone holds it (0: one attempt)",
      intArg(0, 3600),
      DEFAULT_LEASE_WAIT_SECONDS,
    )
    .action(
      async (collection: string, version: string | undefined, f: WriterFlags & { leaseWait: number }) => {
        await guarded(async () => {
          const c = collectionArg(collection);
          const { root, mirror, close } = snapshotTarget(f);
          const work = await mkdtemp(join(tmpdir(), 'restore-'));
          try {
            if (!root) throw new ConfigError(`no volume: set ${ENV.CHROMA_ROOT} or --chroma-root`);
            const backend = await writerLease(f);
            return await withWriterLease(backend, 'restore', f.leaseWait * 1000, async (lease) => {
              const opts = { root, collection: c, workDir: work, ...(mirror ? { mirror } : {}) };
              // The fence before CURRENT moves: the lease is still ours, and FENCE records our token, so a compactor
              // deposed by this restore fails its next fence instead of publishing over it.
              const fence = () => fenceVolume(root, lease, { collection: c, command: 'snapshot restore' });
              if (!version) {
                // Repair: the live version is checked file by file; a damaged or missing one is replaced by the
                // newest intact copy (core/snapshot/repair.ts), or refused with the reason of every copy tried.
                const state = await ensureLiveIntact({ ...opts, beforeSwitch: fence });
                say(`${describeLiveState(c, state)}\n`);
                return state.kind === 'empty' ? 1 : 0;
              }
              // What CURRENT was when we took the lease: the switch is a compare-and-swap on it.
              const expected = await readCurrentText(root, c);
              const got = await intactVersion(opts, version);
              await fence();
              await switchCurrent(root, c, version, { expected });
              say(
                `${c}: ${
                  got.from === 'volume'
                    ? `${version} on the volume is intact`
                    : `installed ${version} from the object-store mirror${got.rejected.length ? ` (the volume's copy: ${got.rejected[0]!.problem})` : ''}`
                } — CURRENT is now ${version}\n`,
              );
              return 0;
            });
          } finally {
            await rm(work, { recursive: true, force: true });
            close();
          }
        });
      },
    );

  snapshot
    .command('prune')
    .description('remove old versions from the volume: keeps the newest --keep and CURRENT (never removed)')
    .argument('[collection]', 'lines or words (default: both)')
    .option(
      '--keep <n>',
      `versions to keep besides CURRENT, newest first (default: ${LOCAL_KEEP_VERSIONS} locally, ${DEFAULT_CONFIG.keepVersions} with --cloud, as the compactor keeps)`,
      intArg(0),
    )
    .addOption(homeOption())
    .option(
      '--cloud',
      `the volume at ${ENV.CHROMA_ROOT} (not fenced: only versions older than ${DEFAULT_CONFIG.graceMs / 60_000} minutes go)`,
    )
    .option('--chroma-root <dir>', 'root of the snapshot volume (cloud; default $CHROMA_ROOT)')
    .option('--json', 'machine-readable output')
    .action(
      async (
        collection: string | undefined,
        f: { home: string; cloud?: boolean; chromaRoot?: string; keep?: number; json?: boolean },
      ) => {
        await guarded(async () => {
          const keep = f.keep ?? (f.cloud ? DEFAULT_CONFIG.keepVersions : LOCAL_KEEP_VERSIONS);
          const collections = collection ? [collectionArg(collection)] : COLLECTIONS;
          const { root, lease, close } = snapshotTarget(f);
          try {
            if (!root) throw new ConfigError(`no volume: set ${ENV.CHROMA_ROOT} or --chroma-root`);
            // Locally the compactor's lease is held, so nothing publishes meanwhile and readers copy only CURRENT:
            // no grace period. In the cloud, nothing younger than the compactor's grace period is touched.
            const graceMs = lease ? 0 : DEFAULT_CONFIG.graceMs;
            const prune = async () => {
              const results = [];
              for (const c of collections) {
                const before = await dirBytes(versionsDir(root, c));
                const removed = await pruneVersions(root, c, { keep, graceMs });
                const leftovers = await removeLeftovers(root, c, { graceMs });
                results.push({
                  collection: c,
                  current: await readCurrent(root, c),
                  kept: await listVersions(root, c),
                  removed,
                  leftovers,
                  freedBytes: before - (await dirBytes(versionsDir(root, c))),
                });
              }
              return results;
            };
            const out = lease
              ? await withWriterLease(new FileLeaseBackend(lease), 'prune', 0, prune)
              : await prune();
            if (f.json) print(out);
            else
              for (const r of out) {
                say(
                  `${r.collection}: removed ${r.removed.length} version(s)${r.leftovers.length ? ` and ${r.leftovers.length} leftover dir(s)` : ''}, freed ${(r.freedBytes / 1e6).toFixed(1)} MB; kept ${r.kept.length} (CURRENT ${r.current ?? '(none)'})\n`,
                );
              }
            return 0;
          } finally {
            close();
          }
        });
      },
    );

  snapshot
    .command('verify')
    .description(
      'open each live version with Chroma: count, a self-query, and the archive checksum of the mirror',
    )
    .addOption(homeOption())
    .option('--cloud', `the volume at ${ENV.CHROMA_ROOT} and the S3 mirror in ${ENV.VECTORS_BUCKET}`)
    .option('--chroma-root <dir>', 'root of the snapshot volume (cloud; default $CHROMA_ROOT)')
    .option('--json', 'machine-readable output')
    .action(async (f: { home: string; cloud?: boolean; chromaRoot?: string; json?: boolean }) => {
      await guarded(async () => {
        const { view, cleanup } = await openView(f, { partial: true });
        const { root, mirror, close } = snapshotTarget(f);
        const results: {
          collection: Collection;
          version?: string;
          count?: number;
          ok: boolean;
          problems: string[];
        }[] = [];
        try {
          for (const c of COLLECTIONS) {
            const store = view.store(c);
            const failure = view.failures[c];
            const version = view.versions[c] ?? failure?.version;
            const problems: string[] = [];
            let count: number | undefined;
            if (failure) problems.push(failure.detail);
            else if (!store) problems.push('no published version');
            if (root && !(await readCurrent(root, c))) {
              // Opened from the mirror, or versions on the volume: the volume lost its CURRENT (or never got one).
              const onVolume = await listVersions(root, c);
              if (store || onVolume.length)
                problems.push(
                  `the volume has no CURRENT (${onVolume.length} version(s) on it); repair it with: embedctl snapshot restore ${c}`,
                );
            }
            if (store && !failure) {
              count = await store.count(c);
              const sample = await store.get(c, { limit: 1, include: ['embeddings'] });
              if (count > 0 && !sample.embeddings?.[0])
                problems.push('count > 0 but no vector could be read');
              if (sample.embeddings?.[0]) {
                // Identical texts give identical vectors, so the nearest hit may be another id: check the distance.
                const [hit] = await store.query(c, sample.embeddings[0], 1);
                if (!hit || !(hit.distance <= 1e-4)) {
                  problems.push(
                    `self-query of ${sample.ids[0]} returned ${hit ? `distance ${hit.distance}` : 'nothing'}`,
                  );
                }
              }
              if (mirror && version) {
                const pointer = await readPointer(mirror.store, mirror.bucket, c).catch(() => undefined);
                if (pointer && pointer !== version)
                  problems.push(`object-store pointer is ${pointer}, the volume's CURRENT is ${version}`);
                problems.push(...(await checkArchive(mirror, c, version)));
              }
            }
            results.push({ collection: c, version, count, ok: problems.length === 0, problems });
          }
        } finally {
          await view.close();
          await cleanup();
          close();
        }
        if (f.json) print(results);
        else
          for (const r of results) {
            say(
              `${r.ok ? 'ok  ' : 'FAIL'} ${r.collection} ${r.version ?? ''}${r.count === undefined ? '' : ` ${r.count} vectors`}${r.problems.length ? `: ${r.problems.join('; ')}` : ''}\n`,
            );
          }
        return results.every((r) => r.ok) ? 0 : 1;
      });
    });

  program
    .command('compact')
    .description(
      'one compaction pass over what is queued (local mode; in the cloud the compactor Deployment does this)',
    )
    .addOption(homeOption())
    .action(async (f: { home: string }) => {
      await guarded(async () => {
        // A running `local run` compacts already; and while this pass runs, no run may start on the home.
        const paths = homePaths(existingHome(f.home));
        const unlock = lockHome(paths);
        let result: Awaited<ReturnType<typeof runCompactorChild>>;
        try {
          result = await runCompactorChild({ home: f.home, once: true });
        } finally {
          // The pass's working copies (a full copy of each live version) are not kept once it is over.
          await rm(paths.scratch, { recursive: true, force: true });
          unlock();
        }
        const { code, stats } = result;
        say(
          stats.publishes > 0
            ? `published ${stats.publishes} version(s); merging took ${(stats.mergeMs / 1000).toFixed(1)} s\n`
            : 'nothing to compact: the LINES and WORDS queues are empty\n',
        );
        return code;
      });
    });
}

/**
 * Runs a command body; errors print one line that says what to do (JSON with --json), with exit code 1 (2 for bad
 * usage or configuration): cli/usage.ts.
 */
async function guarded(fn: () => Promise<number>): Promise<void> {
  try {
    process.exitCode = await fn();
  } catch (err) {
    writeError(err);
    process.exitCode = exitCodeOf(err);
  }
}

/** Text for a person on stdout, control characters escaped (cli/safe-text.ts). */
function say(text: string): void {
  process.stdout.write(safeText(text));
}

function print(value: unknown): void {
  process.stdout.write(`${JSON.stringify(value, null, 2)}\n`);
}

function collectionArg(value: string): Collection {
  if (!COLLECTIONS.includes(value as Collection))
    throw new ConfigError(`collection must be lines or words, not "${value}"`);
  return value as Collection;
}

/** `snapshot restore` waits this long by default for the compactor's lease while someone else holds it. */
export const DEFAULT_LEASE_WAIT_SECONDS = 5;

interface WriterFlags extends ViewFlags {
  namespace?: string;
  leaseName?: string;
  kubeconfig?: string;
}

/**
 * The compactor's lease, which every writer of CURRENT holds: the file lease of the home (local mode), or the
 * coordination.k8s.io Lease the compactor Deployment holds (cloud: --lease-name, default embedctl-compactor, in
 * --namespace, default $NAMESPACE). $LEASE_NAME is not read: in a controller pod it names the controller's Lease.
 */
async function writerLease(f: WriterFlags): Promise<LeaseBackend> {
  if (!f.cloud) return new FileLeaseBackend(homePaths(existingHome(f.home)).lease);
  const kc = await loadKubeConfig(f.kubeconfig ? { kubeconfig: f.kubeconfig } : {});
  return new KubeLeaseBackend(
    kc,
    f.namespace ?? processEnv()[ENV.NAMESPACE] ?? 'default',
    f.leaseName ?? LEASE_NAMES.compactor,
  );
}

/**
 * Runs `fn` holding the compactor's lease (core/lease/hold.ts), so a restore or prune never interleaves with a
 * publish: waits up to `waitMs` while another holder (a running compactor) has it, then refuses naming the holder
 * (LeaseHeldError, exit 1). `prune --cloud` takes no lease: it relies on the compactor's grace period.
 */
async function withWriterLease<T>(
  backend: LeaseBackend,
  what: string,
  waitMs: number,
  fn: (lease: FencedLease) => Promise<T>,
): Promise<T> {
  return withHeldLease(
    backend,
    {
      identity: `${what}-${hostname()}-${process.pid}`,
      durationMs: 60_000,
      waitMs,
      hint:
        backend instanceof KubeLeaseBackend
          ? 'the compactor is running; scale its Deployment to 0 (or wait until it is idle and exits), or pass a longer --lease-wait'
          : 'a run is in progress; try again when it is idle, or pass a longer --lease-wait',
    },
    fn,
  );
}

/** Bytes of the files under `dir` (0 when it does not exist). */
async function dirBytes(dir: string): Promise<number> {
  let total = 0;
  const walk = async (d: string): Promise<void> => {
    for (const e of await readdir(d, { withFileTypes: true }).catch(() => [])) {
      const p = join(d, e.name);
      if (e.isDirectory()) await walk(p);
      else total += (await stat(p).catch(() => undefined))?.size ?? 0;
    }
  };
  await walk(dir);
  return total;
}

/** `submit a.lines.ndjson a.words.ndjson` and `submit folder/` both become folders. */
async function asFolders(paths: string[]): Promise<{ folders: string[]; cleanup: () => Promise<void> }> {
  const folders: string[] = [];
  const files: string[] = [];
  for (const p of paths) {
    const s = await stat(p).catch(() => undefined);
    if (!s) throw new UsageError(`${p} does not exist`);
    if (!s.isDirectory() && !p.endsWith('.ndjson'))
      throw new UsageError(
        `${p} is not a receipt folder or an NDJSON file (lines.ndjson, words.ndjson or <name>.lines.ndjson, <name>.words.ndjson)`,
      );
    (s.isDirectory() ? folders : files).push(p);
  }
  if (files.length === 0) return { folders, cleanup: async () => {} };
  const dir = await mkdtemp(join(tmpdir(), 'submit-'));
  for (const f of files) await copyFile(f, join(dir, basename(f)));
  return { folders: [...folders, dir], cleanup: () => rm(dir, { recursive: true, force: true }) };
}

interface ViewFlags {
  home: string;
  cloud?: boolean;
  chromaRoot?: string;
}

function snapshotTarget(f: ViewFlags): {
  root?: string;
  mirror?: { store: ObjectStore; bucket: string };
  lease?: string;
  close(): void;
} {
  if (f.cloud) {
    const root = f.chromaRoot ?? processEnv()[ENV.CHROMA_ROOT];
    const bucket = processEnv()[ENV.VECTORS_BUCKET];
    return {
      ...(root ? { root } : {}),
      ...(bucket ? { mirror: { store: new S3Store(awsSettingsFromEnv()), bucket } } : {}),
      close: () => {},
    };
  }
  const ports = openLocal(existingHome(f.home));
  return {
    root: ports.paths.volume,
    mirror: { store: ports.store, bucket: VECTORS_BUCKET },
    lease: ports.paths.lease,
    close: ports.close,
  };
}

async function openView(f: ViewFlags, opts: Parameters<typeof openSnapshotView>[3] = {}) {
  const target = snapshotTarget(f);
  const scratch = await mkdtemp(join(tmpdir(), 'embedctl-view-'));
  try {
    const view = await openSnapshotView(target.root, scratch, target.mirror, opts);
    return {
      view,
      cleanup: async () => {
        target.close();
        await rm(scratch, { recursive: true, force: true });
      },
    };
  } catch (err) {
    target.close();
    await rm(scratch, { recursive: true, force: true });
    throw err;
  }
}

async function checkArchive(
  mirror: { store: ObjectStore; bucket: string },
  c: Collection,
  version: string,
): Promise<string[]> {
  const key = archiveKey(c, version);
  if (!(await mirror.store.head(mirror.bucket, key))) return [`no archive ${key} in the object store`];
  const hashKey = `${key}.sha256`;
  if (!(await mirror.store.head(mirror.bucket, hashKey))) return [];
  const expected = (await mirror.store.getBuffer(mirror.bucket, hashKey)).toString('utf8').trim();
  const work = await mkdtemp(join(tmpdir(), 'verify-'));
  try {
    const path = join(work, 'a.tar.gz');
    await writeFile(path, await mirror.store.getBuffer(mirror.bucket, key));
    const actual = await fileSha256(path);
    return actual === expected ? [] : [`archive sha256 ${actual} does not match the recorded ${expected}`];
  } finally {
    await rm(work, { recursive: true, force: true });
  }
}

const age = (ms: number) => {
  const s = Math.max(0, Math.round((Date.now() - ms) / 1000));
  return s < 120 ? `${s}s` : s < 7200 ? `${Math.round(s / 60)}m` : `${Math.round(s / 3600)}h`;
};

function compactedText(
  c: Partial<Record<Collection, string>> | undefined,
  collections: readonly Collection[],
): string {
  if (!c) return '-';
  if (collections.every((k) => c[k] === 'Completed')) return 'True';
  if (collections.some((k) => c[k] === 'Failed')) return 'Failed';
  return 'Pending';
}

/** The runner of the home, for `status`: whether the jobs shown Scheduled or Running are really being worked on. */
function runnerText(r: RunnerState, claimed: number): string {
  if (r.alive) return `runner: pid ${r.pid} is running`;
  const jobs = claimed
    ? `; its ${claimed} Scheduled/Running job(s) are not being worked on and resume on the next embedctl local run`
    : '';
  return r.pid === undefined
    ? `runner: none is running${jobs}`
    : `runner (pid ${r.pid}) is not alive: it was stopped or killed${jobs}`;
}

function localRow(j: LocalJob, runner: RunnerState): Record<string, string> {
  return {
    NAME: j.name,
    PHASE: j.phase,
    ATTEMPTS: String(j.attempts),
    LINES: j.result ? String(j.result.rows) : '',
    WORDS: j.result ? String(j.result.words) : '',
    COMPACTED: j.phase === 'Succeeded' ? compactedText(j.compaction, j.spec.collections) : '',
    AGE: age(j.createdAt),
    MESSAGE:
      j.phase === 'Failed' || j.phase === 'Pending'
        ? `${j.reason ?? ''}${j.message ? `: ${j.message}` : ''}`.slice(0, 160)
        : (j.phase === 'Scheduled' || j.phase === 'Running') && !runner.alive
          ? 'runner not alive: resumes on the next local run'
          : '',
  };
}

function cloudRow(j: EmbeddingJob): Record<string, string> {
  const s = j.status ?? {};
  return {
    NAME: j.metadata.name,
    PHASE: s.phase ?? '',
    ATTEMPTS: String(s.attempts ?? 0),
    LINES: s.result ? String(s.result.rows) : '',
    WORDS: s.result ? String(s.result.words) : '',
    COMPACTED: s.phase === 'Succeeded' ? compactedText(s.compaction, j.spec.collections) : '',
    AGE: j.metadata.creationTimestamp ? age(Date.parse(j.metadata.creationTimestamp)) : '',
    MESSAGE: s.phase === 'Failed' ? (s.message ?? '').slice(0, 160) : '',
  };
}

function printTable(rows: Record<string, string>[]): void {
  if (rows.length === 0) {
    say('No jobs to show.\n');
    return;
  }
  rows = rows.map((r) => Object.fromEntries(Object.entries(r).map(([k, v]) => [k, safeField(v)])));
  const cols = Object.keys(rows[0]!);
  const width = cols.map((c) => Math.max(c.length, ...rows.map((r) => (r[c] ?? '').length)));
  const line = (r: Record<string, string>) =>
    cols
      .map((c, i) => (r[c] ?? '').padEnd(width[i]!))
      .join('   ')
      .trimEnd();
  say(`${line(Object.fromEntries(cols.map((c) => [c, c])))}\n`);
  for (const r of rows) say(`${line(r)}\n`);
}
