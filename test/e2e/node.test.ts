// The deployed system on a real node: the `node` charts applied with kubectl (test/harness/node), real pods from
// the project's image, the real KEDA operator. Everything is observed from outside, as a user would: kubectl, HTTP
// to pod IPs on the harness's bridge, and embedctl on the volume.
import { spawnSync } from 'node:child_process';
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';

import { describe, expect, it } from 'vitest';

import { SqsQueue } from '../../core/aws/sqs-queue.js';
import { generateReceipt, generateReceipts, type GeneratedReceipt } from '../../core/sample/index.js';
import { panelQueries, rateInterval, readDashboard, substitute } from '../support/dashboard.js';
import { expectedIds, liveIds } from '../support/snapshot.js';
import { activeTargets, alerts, labelValues, queryRange } from './prometheus.js';
import {
  announce,
  awsOf,
  compactorReplicas,
  embeddingJobs,
  kubectl,
  kubectlJson,
  nodeEnv,
  waitFor,
  type EmbeddingJobItem,
} from './support.js';

const env = nodeEnv();
const ns = env.namespace;
const ROOT = join(import.meta.dirname, '..', '..');
/** Every good receipt announced so far, in this file's order: the live snapshot must hold exactly their ids. */
const announced: GeneratedReceipt[] = [];
/** The dashboard's queries are asked over the whole run. */
const runStart = Date.now();

const key = (r: { imageId: string; receiptId: number }): string => `${r.imageId}#${r.receiptId}`;
const compacted = (j: EmbeddingJobItem): boolean =>
  j.status?.phase === 'Succeeded' &&
  !!j.status.conditions?.some((c) => c.type === 'Compacted' && c.status === 'True');

/** Waits until every receipt's EmbeddingJob is Succeeded + Compacted (or, for `bad`, Failed); returns them. */
async function settle(
  what: string,
  receipts: GeneratedReceipt[],
  bad: GeneratedReceipt[] = [],
  timeoutMs = 300_000,
): Promise<EmbeddingJobItem[]> {
  const names = new Set([...receipts, ...bad].map(key));
  const badNames = new Set(bad.map(key));
  return waitFor(
    what,
    () => {
      const mine = embeddingJobs(env).filter((j) => names.has(key(j.spec)));
      const wrong = mine.filter((j) => j.status?.phase === 'Failed' && !badNames.has(key(j.spec)));
      if (wrong.length)
        throw new Error(`good receipts failed: ${JSON.stringify(wrong.map((j) => j.status))}`);
      const done = mine.filter((j) =>
        badNames.has(key(j.spec)) ? j.status?.phase === 'Failed' : compacted(j),
      );
      return mine.length === names.size && done.length === names.size ? mine : undefined;
    },
    timeoutMs,
    2_000,
  );
}

async function expectExactLive(): Promise<void> {
  const want = expectedIds(announced);
  const live = await liveIds(env.chromaHostPath);
  for (const c of ['lines', 'words'] as const) {
    expect(live[c].count).toBe(want[c].size);
    expect(live[c].ids).toEqual(want[c]);
  }
}

/**
 * Sets worker ConfigMap keys and waits out the controller's re-read (every 5 s); resolves with a function that puts
 * them back.
 */
async function patchWorkerConfig(data: Record<string, string>): Promise<() => void> {
  const before = kubectlJson<{ data: Record<string, string> }>(env, [
    '-n',
    ns,
    'get',
    'cm/embedctl-worker',
  ]).data;
  const merge = (d: Record<string, string>) =>
    kubectl(env, [
      '-n',
      ns,
      'patch',
      'cm/embedctl-worker',
      '--type=merge',
      '-p',
      JSON.stringify({ data: d }),
    ]);
  merge(data);
  await new Promise((r) => setTimeout(r, 7_000));
  return () => merge(Object.fromEntries(Object.keys(data).map((k) => [k, before[k]!])));
}

function leaseHolder(): string {
  return (
    kubectlJson<{ spec: { holderIdentity?: string } }>(env, ['-n', ns, 'get', 'lease', 'embedctl-controller'])
      .spec.holderIdentity ?? ''
  );
}

interface PodList {
  items: {
    metadata: { name: string };
    spec: {
      containers: { securityContext?: { readOnlyRootFilesystem?: boolean } }[];
      volumes?: { name: string; persistentVolumeClaim?: { claimName: string; readOnly?: boolean } }[];
    };
    status: { podIP?: string; phase?: string };
  }[];
}

function pods(selector: string): PodList['items'] {
  return kubectlJson<PodList>(env, ['-n', ns, 'get', 'pods', '-l', selector]).items;
}

async function get(url: string): Promise<{ status: number; body: string }> {
  const res = await fetch(url, { signal: AbortSignal.timeout(5_000) });
  return { status: res.status, body: await res.text() };
}

describe('the node environment deployed with kubectl', () => {
  it('every Deployment is Available; pods pass Pod Security "restricted", run as 10001 on a read-only root; probes and /metrics answer', async () => {
    const labels = kubectlJson<{ metadata: { labels: Record<string, string> } }>(env, ['get', 'ns', ns])
      .metadata.labels;
    expect(labels['pod-security.kubernetes.io/enforce']).toBe('restricted');
    kubectl(env, [
      '-n',
      ns,
      'wait',
      '--for=condition=Available',
      '--timeout=120s',
      'deploy/embedctl-controller',
    ]);

    const controllers = pods('app.kubernetes.io/component=controller');
    expect(controllers).toHaveLength(2);
    for (const p of controllers) {
      expect(kubectl(env, ['-n', ns, 'exec', p.metadata.name, '--', 'id', '-u']).trim()).toBe('10001');
      const write = (): string => kubectl(env, ['-n', ns, 'exec', p.metadata.name, '--', 'touch', '/app/x']);
      expect(write).toThrow(/Read-only file system/);
      expect((await get(`http://${p.status.podIP}:9090/healthz`)).status).toBe(200);
      const metrics = await get(`http://${p.status.podIP}:9090/metrics`);
      expect(metrics.status).toBe(200);
      expect(metrics.body).toMatch(/^# HELP /m);
    }

    // The namespace rejects what the charts never ask for.
    expect(() =>
      kubectl(env, [
        '-n',
        ns,
        'run',
        'root-shell',
        '--image=localhost/receipt-embeddings-controller:dev',
        '--image-pull-policy=Never',
        '--overrides={"spec":{"containers":[{"name":"root-shell","image":"localhost/receipt-embeddings-controller:dev","securityContext":{"privileged":true}}]}}',
      ]),
    ).toThrow(/violates PodSecurity "restricted/);
  });

  it('RBAC: each ServiceAccount can do what its program needs and nothing else', () => {
    // `resource#sub` asks about a subresource; `resource/name` about one object.
    const can = (sa: string, verb: string, resource: string): boolean => {
      const [res, sub] = resource.split('#') as [string, string | undefined];
      const args = ['auth', 'can-i', verb, res, '-n', ns, `--as=system:serviceaccount:${ns}:${sa}`];
      if (sub) args.push(`--subresource=${sub}`);
      try {
        return kubectl(env, args).trim() === 'yes';
      } catch {
        return false; // `no` exits 1
      }
    };
    const matrix: [string, string, string, boolean][] = [
      ['embedctl-controller', 'create', 'embeddingjobs.embedding.receipts.dev', true],
      ['embedctl-controller', 'patch', 'embeddingjobs.embedding.receipts.dev#status', true],
      ['embedctl-controller', 'create', 'jobs.batch', true],
      ['embedctl-controller', 'list', 'pods', true],
      ['embedctl-controller', 'get', 'pods', false],
      ['embedctl-controller', 'list', 'events', true],
      ['embedctl-controller', 'patch', 'events', false],
      ['embedctl-controller', 'patch', 'embeddingjobs.embedding.receipts.dev', false],
      ['embedctl-controller', 'update', 'embeddingjobs.embedding.receipts.dev#finalizers', false],
      ['embedctl-controller', 'patch', 'leases.coordination.k8s.io/embedctl-controller', false],
      ['embedctl-controller', 'update', 'leases.coordination.k8s.io/embedctl-controller', true],
      ['embedctl-controller', 'update', 'leases.coordination.k8s.io/embedctl-compactor', false],
      ['embedctl-controller', 'get', 'secrets', false],
      ['embedctl-controller', 'create', 'pods', false],
      ['embedctl-controller', 'update', 'configmaps/embedctl-worker', false],
      ['embedctl-controller', 'update', 'configmaps/embedctl-stream-checkpoint', true],
      ['embedctl-worker', 'get', 'embeddingjobs.embedding.receipts.dev', true],
      ['embedctl-worker', 'patch', 'embeddingjobs.embedding.receipts.dev#status', true],
      ['embedctl-worker', 'list', 'embeddingjobs.embedding.receipts.dev', false],
      ['embedctl-worker', 'delete', 'embeddingjobs.embedding.receipts.dev', false],
      ['embedctl-worker', 'create', 'jobs.batch', false],
      ['embedctl-worker', 'get', 'secrets', false],
      ['embedctl-compactor', 'update', 'leases.coordination.k8s.io/embedctl-compactor', true],
      ['embedctl-compactor', 'patch', 'leases.coordination.k8s.io/embedctl-compactor', false],
      ['embedctl-compactor', 'update', 'leases.coordination.k8s.io/embedctl-controller', false],
      ['embedctl-compactor', 'get', 'embeddingjobs.embedding.receipts.dev', false],
      ['embedctl-compactor', 'list', 'pods', false],
      ['embedctl-compactor', 'get', 'secrets', false],
    ];
    const got = matrix.map(([sa, verb, res]) => [sa, verb, res, can(sa, verb, res)]);
    expect(got).toEqual(matrix);
  });

  it('pipeline: 100 EMBED messages → EmbeddingJobs → worker pods → deltas → stream → KEDA 0→1 → snapshots with exactly the expected ids → queues drain → KEDA 1→0', async () => {
    expect(compactorReplicas(env).spec).toBe(0);
    const receipts = generateReceipts(100, 11);
    const t0 = Date.now();
    await announce(env, receipts);
    announced.push(...receipts);

    let scaledUpAfter: number | undefined;
    // Finished worker Jobs are cleaned up, so their pods are recorded while they exist.
    const workers = new Map<string, PodList['items'][number]>();
    const jobs = await waitFor(
      'all 100 EmbeddingJobs Succeeded and Compacted',
      () => {
        if (scaledUpAfter === undefined && compactorReplicas(env).spec === 1) scaledUpAfter = Date.now() - t0;
        for (const w of pods('batch.kubernetes.io/job-name')) workers.set(w.metadata.name, w);
        const ejs = embeddingJobs(env);
        const done = ejs.filter(compacted);
        const failed = ejs.filter((j) => j.status?.phase === 'Failed');
        if (failed.length) throw new Error(`failed: ${JSON.stringify(failed.map((j) => j.status))}`);
        return ejs.length === 100 && done.length === 100 ? ejs : undefined;
      },
      480_000,
      1_000,
    );
    expect(new Set(jobs.map((j) => `${j.spec.imageId}#${j.spec.receiptId}`)).size).toBe(100);
    expect(scaledUpAfter, 'KEDA scaled the compactor to 1').toBeDefined();

    // Worker pods ran from the worker template and mounted the shared volume read-only.
    expect(workers.size).toBeGreaterThan(0);
    for (const w of workers.values()) {
      const chroma = w.spec.volumes?.find((v) => v.persistentVolumeClaim);
      expect(chroma?.persistentVolumeClaim).toMatchObject({ claimName: 'embedctl-chroma', readOnly: true });
      expect(w.spec.containers[0]?.securityContext?.readOnlyRootFilesystem).toBe(true);
    }

    // The live snapshot on the volume holds exactly the receipts' ids, each once.
    await expectExactLive();
    // … and embedctl, from outside the cluster, agrees: the volume, and its S3 mirror (uploaded just after the
    // switch of CURRENT, so it may lag by a moment).
    const verifyOnce = (): { collection: 'lines' | 'words'; count: number; ok: boolean }[] | undefined => {
      const r = spawnSync(
        process.execPath,
        ['--import', 'tsx', join(ROOT, 'cli/main.ts'), 'snapshot', 'verify', '--cloud', '--json'],
        {
          encoding: 'utf8',
          timeout: 120_000,
          env: {
            ...process.env,
            CHROMA_ROOT: env.chromaHostPath,
            VECTORS_BUCKET: env.config.buckets.vectors,
            AWS_ENDPOINT_URL: env.aws.endpoint,
            AWS_REGION: env.aws.region,
            AWS_ACCESS_KEY_ID: env.aws.accessKeyId,
            AWS_SECRET_ACCESS_KEY: env.aws.secretAccessKey,
          },
        },
      );
      if (r.status !== 0)
        throw new Error(`verify exited ${r.status}: ${r.stdout.slice(-2000)} ${r.stderr.slice(-2000)}`);
      return JSON.parse(r.stdout) as { collection: 'lines' | 'words'; count: number; ok: boolean }[];
    };
    const verify = await waitFor('embedctl snapshot verify --cloud to pass', verifyOnce, 90_000, 3_000);
    const want = expectedIds(announced);
    for (const v of verify) expect(v).toMatchObject({ ok: true, count: want[v.collection].size });

    // Queues drain and KEDA takes the compactor back to zero.
    await waitFor(
      'the compactor scaled back to 0',
      () => (compactorReplicas(env).spec === 0 ? true : undefined),
      180_000,
    );
    await waitFor(
      'no compactor pod left',
      () => (pods('app.kubernetes.io/component=compactor').length === 0 ? true : undefined),
      120_000,
    );
    // Events tell the story: KEDA's scaling, the Job controller's pods, the controller's EmbeddingJob events.
    const events = kubectlJson<{ items: { reason: string; involvedObject: { kind: string } }[] }>(env, [
      '-n',
      ns,
      'get',
      'events',
    ]).items;
    const kinds = new Set(events.map((e) => e.involvedObject.kind));
    for (const k of ['EmbeddingJob', 'Job', 'Deployment']) expect(kinds, `events about ${k}`).toContain(k);
    console.log(
      JSON.stringify({
        receipts: 100,
        kedaScaleUpS: (scaledUpAfter ?? 0) / 1000,
        wallS: (Date.now() - t0) / 1000,
      }),
    );
  });

  it('faults mid-run — a worker pod deleted, the leader controller pod deleted, the kubelet SIGKILLed — and a bad receipt: every good receipt exactly once, the bad one Failed with file/row/field', async () => {
    const receipts = generateReceipts(40, 23);
    const bad = generateReceipt(23_999, { defect: 'bad-value' });
    const leader = leaseHolder();
    expect(leader).toMatch(/^embedctl-controller-/);
    await announce(env, [...receipts, bad]);
    announced.push(...receipts);

    const worker = await waitFor(
      'a running worker pod',
      () => pods('batch.kubernetes.io/job-name').find((p) => p.status.phase === 'Running')?.metadata.name,
      120_000,
      250,
    );
    kubectl(env, ['-n', ns, 'delete', 'pod', worker, '--grace-period=1', '--wait=false']);
    kubectl(env, ['-n', ns, 'delete', 'pod', leader, '--wait=false']);
    process.kill(Number(readFileSync(env.kubeletPidFile, 'utf8')), 'SIGKILL');

    const mine = await settle('40 good receipts Compacted and the bad one Failed', receipts, [bad]);
    const failed = mine.filter((j) => j.status?.phase === 'Failed');
    expect(failed.map((j) => j.spec.receiptId)).toEqual([bad.receiptId]);
    const def = bad.defect!;
    expect(JSON.stringify(failed[0]?.status)).toContain(`${def.file}, row ${def.row}, field ${def.field}`);
    await waitFor(
      'another controller leads',
      () => (leaseHolder() && leaseHolder() !== leader ? true : undefined),
      120_000,
    );
    kubectl(env, [
      '-n',
      ns,
      'wait',
      '--for=condition=Available',
      '--timeout=180s',
      'deploy/embedctl-controller',
    ]);
    await expectExactLive();
  });

  it('a worker OOMKilled by its memory limit: its jobs say OOMKilled and are retried to success', async () => {
    const restore = await patchWorkerConfig({
      resources: JSON.stringify({
        requests: { cpu: '100m', memory: '32Mi' },
        limits: { cpu: '1', memory: '32Mi' },
      }),
    });
    const receipts = generateReceipts(3, 31);
    const names = new Set(receipts.map(key));
    try {
      await announce(env, receipts);
      announced.push(...receipts);
      await waitFor(
        'an EmbeddingJob retrying after OOMKilled',
        () =>
          embeddingJobs(env).some(
            (j) => names.has(key(j.spec)) && j.status?.conditions?.some((c) => c.reason === 'OOMKilled'),
          ) || undefined,
        120_000,
      );
    } finally {
      restore();
    }
    await settle('the OOMKilled receipts retried to Compacted', receipts);
    await expectExactLive();
  });

  it('an image that does not exist: the job says ErrImageNeverPull, does not spin, and is retried once the image is fixed', async () => {
    const restore = await patchWorkerConfig({ image: 'localhost/receipt-embeddings-worker:does-not-exist' });
    const receipts = generateReceipts(2, 37);
    const names = new Set(receipts.map(key));
    try {
      await announce(env, receipts);
      announced.push(...receipts);
      const stuck = await waitFor(
        'an EmbeddingJob with the image pull condition',
        () =>
          embeddingJobs(env).find(
            (j) =>
              names.has(key(j.spec)) &&
              j.status?.conditions?.some(
                (c) => c.reason === 'ImagePull' && /ErrImageNeverPull/.test(c.message ?? ''),
              ),
          ),
        120_000,
      );
      // It does not spin: one worker Job for it while it waits, not a new one per reconcile.
      const jobsOf = () =>
        kubectlJson<{ items: { metadata: { annotations?: Record<string, string> } }[] }>(env, [
          '-n',
          ns,
          'get',
          'jobs',
        ]).items.filter((j) =>
          Object.values(j.metadata.annotations ?? {}).some((v) => v.includes(stuck.metadata.name)),
        );
      expect(jobsOf()).toHaveLength(1);
      await new Promise((r) => setTimeout(r, 10_000));
      expect(jobsOf()).toHaveLength(1);
    } finally {
      restore();
    }
    // After the grace (20 s in the node environment) the Job is given up and the retry runs with the fixed image.
    await settle('the receipts Compacted after the image was fixed', receipts);
    await expectExactLive();
  });

  it('the compactor pod deleted mid-publish: the next one takes the lease and the snapshot ends exact', async () => {
    const receipts = generateReceipts(30, 41);
    await announce(env, receipts);
    announced.push(...receipts);
    const staging = (): boolean =>
      ['lines', 'words'].some((c) => {
        try {
          return readdirSync(join(env.chromaHostPath, c, 'versions')).some((d) => d.startsWith('.staging-'));
        } catch {
          return false;
        }
      });
    const victim = await waitFor(
      'the compactor staging a version',
      () => {
        const p = pods('app.kubernetes.io/component=compactor').find((x) => x.status.phase === 'Running');
        return p && staging() ? p.metadata.name : undefined;
      },
      180_000,
      100,
    );
    kubectl(env, ['-n', ns, 'delete', 'pod', victim, '--grace-period=0', '--force', '--wait=false']);
    await settle('30 receipts Compacted after the compactor was killed', receipts);
    await expectExactLive();
    await waitFor(
      'the compactor scaled back to 0',
      () => (compactorReplicas(env).spec === 0 ? true : undefined),
      180_000,
    );
  });
});

describe("observability: Debian's Prometheus scraping the pods as the ServiceMonitor says, with the PrometheusRule loaded", () => {
  const prom = env.prometheusUrl;
  const DLQ_ALERT = 'EmbedctlMessagesDeadLettered';

  it("scrapes both controller pods through the ServiceMonitor's relabelling, and kube-state-metrics", async () => {
    const targets = await waitFor(
      'two controller targets up',
      async () => {
        const t = await activeTargets(prom);
        const up = t.filter((x) => x.labels.service === 'embedctl-controller-metrics' && x.health === 'up');
        return up.length === 2 ? t : undefined;
      },
      60_000,
    );
    const controllers = new Set(pods('app.kubernetes.io/component=controller').map((p) => p.metadata.name));
    for (const t of targets.filter((x) => x.labels.service === 'embedctl-controller-metrics')) {
      expect(t.labels).toMatchObject({
        namespace: ns,
        container: 'controller',
        job: 'embedctl-controller-metrics',
        endpoint: 'metrics',
      });
      expect(controllers).toContain(t.labels.pod);
    }
    expect(targets.find((x) => x.labels.job === 'kube-state-metrics')?.health).toBe('up');
  });

  it('filling both dead-letter queues fires EmbedctlMessagesDeadLettered for each (a poison LINES message, a malformed EMBED message)', async () => {
    const ours = (a: { labels: Record<string, string> }) => a.labels.alertname === DLQ_ALERT;
    expect((await alerts(prom)).filter(ours), 'not firing before the DLQs are filled').toEqual([]);
    const aws = awsOf(env);
    const q = env.config.queues;
    const dlqDepth = (url: string) => new SqsQueue(url, aws).depth().then((d) => d.visible + d.inFlight);
    const before = { embed: await dlqDepth(q.embedDlq), compaction: await dlqDepth(q.compactionDlq) };
    const t0 = Date.now();
    // KEDA wakes the compactor for the LINES message; it cannot parse it and dead-letters it (InvalidMessage).
    await new SqsQueue(q.lines, aws).send([{ body: 'not a compaction message' }]);
    // The controller rejects an EMBED message without a receipt and dead-letters it.
    await new SqsQueue(q.embed, aws).send([{ body: JSON.stringify({ not: 'an EMBED message' }) }]);

    const firing = await waitFor(
      `${DLQ_ALERT} firing for queues lines and embed`,
      async () => {
        const a = (await alerts(prom)).filter((x) => ours(x) && x.state === 'firing');
        const queues = new Set(a.map((x) => x.labels.queue));
        return queues.has('lines') && queues.has('embed') ? a : undefined;
      },
      300_000,
      2_000,
    );
    expect(await dlqDepth(q.embedDlq)).toBe(before.embed + 1);
    expect(await dlqDepth(q.compactionDlq)).toBe(before.compaction + 1);
    for (const a of firing) {
      expect(a.labels).toMatchObject({ severity: 'warning' });
      expect(a.annotations.description).toContain(`queue ${a.labels.queue}`);
    }
    console.log(JSON.stringify({ dlqAlertFiringAfterS: (Date.now() - t0) / 1000 }));
  });

  it('every panel query of dashboards/embedctl.json returns data over the run, and the namespace variable lists the install', async () => {
    const scrapeSeconds = Number(/^(\d+)s$/.exec(env.config.monitoring.scrapeInterval)?.[1]);
    expect(scrapeSeconds, 'the node environment scrapes every N seconds').toBeGreaterThan(0);
    // A job that fails while both controllers stay up: the faults test's failure can be counted by the leader it
    // deletes moments later, before a second scrape (the counter's series starts at the failure, its reason unknown
    // in advance), which left "Failures by reason" empty in one run.
    const bad = generateReceipt(29_999, { defect: 'bad-value' });
    await announce(env, [bad]);
    await settle('one more bad receipt Failed', [], [bad]);
    await new Promise((r) => setTimeout(r, 4 * scrapeSeconds * 1000));
    const end = Date.now();
    const stepSeconds = 10;
    const vars = {
      namespace: ns, // a DNS label: nothing in it is special in a regex
      __rate_interval: rateInterval(stepSeconds, scrapeSeconds),
    };
    const dashboard = readDashboard();
    const queries = panelQueries(dashboard);
    expect(queries.length).toBeGreaterThan(20);
    const empty: string[] = [];
    for (const q of queries) {
      const series = await queryRange(prom, substitute(q.expr, vars), { start: runStart, end, stepSeconds });
      const hasValue = series.some((s) => s.values.some(([, v]) => !Number.isNaN(Number(v))));
      if (!hasValue) empty.push(`${q.name}: ${q.expr}`);
    }
    expect(empty, 'panel queries without a single value over the run').toEqual([]);

    const variable = dashboard.templating?.list.find((v) => v.name === 'namespace')?.definition ?? '';
    const [, metric, label] = /^label_values\((\w+), (\w+)\)$/.exec(variable) ?? [];
    expect(metric, `the namespace variable's query: ${variable}`).toBeDefined();
    expect(await labelValues(prom, label!, metric!, { start: runStart, end })).toContain(ns);
  });
});
