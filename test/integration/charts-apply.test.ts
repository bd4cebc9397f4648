/**
 * The synthesized charts on the real kube-apiserver of the test harness:
 * KEDA's CRDs are installed (taken from the KEDA Go module at test time, never vendored), then
 * `kubectl apply --dry-run=server` and a real apply of charts/, then Pod Security "restricted" is proven by creating
 * every pod template of the charts as a Pod (admitted) and a privileged Pod (rejected), and the RBAC matrix is
 * checked with `kubectl auth can-i --as=system:serviceaccount:…`.
 */
import { execFile, execFileSync } from 'node:child_process';
import { existsSync, mkdirSync, readFileSync, readdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';

import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { parseAllDocuments, stringify } from 'yaml';

import '../harness/env.js';
import { OUTPUT_EXTENSION, synthToDir } from '../../cdk8s/app.js';
import { loadEnvironment } from '../../cdk8s/config.js';
import { KUSTOMIZE_OVERLAYS } from '../../cdk8s/kustomize.js';
import { DispatchSettings, parseWorkerConfigMap } from '../../controller/config.js';
import { buildWorkerJob } from '../../controller/worker-job.js';

const env = inject('testEnv');
const REPO = fileURLToPath(new URL('../../', import.meta.url));
const CHARTS = join(REPO, 'charts');
const KEDA_MODULE = 'github.com/kedacore/keda/v2@v2.20.2';
const run = promisify(execFile);

type Obj = {
  apiVersion: string;
  kind: string;
  metadata: { name: string; namespace?: string };
  [k: string]: unknown;
};

interface Result {
  code: number;
  stdout: string;
  stderr: string;
}

async function kubectl(args: string[], input?: string): Promise<Result> {
  const bin = join(env.binDir, 'kubectl');
  const full = ['--kubeconfig', env.kubeconfigPath, ...args];
  if (input === undefined) {
    try {
      const { stdout, stderr } = await run(bin, full, { encoding: 'utf8', maxBuffer: 64 << 20 });
      return { code: 0, stdout, stderr };
    } catch (e) {
      const err = e as { code?: number; stdout?: string; stderr?: string };
      return {
        code: typeof err.code === 'number' ? err.code : 1,
        stdout: err.stdout ?? '',
        stderr: err.stderr ?? '',
      };
    }
  }
  try {
    const stdout = execFileSync(bin, full, { encoding: 'utf8', input, stdio: ['pipe', 'pipe', 'pipe'] });
    return { code: 0, stdout, stderr: '' };
  } catch (e) {
    const err = e as { status?: number; stdout?: string; stderr?: string };
    return { code: err.status ?? 1, stdout: err.stdout ?? '', stderr: err.stderr ?? '' };
  }
}

async function ok(args: string[], input?: string): Promise<string> {
  const r = await kubectl(args, input);
  if (r.code !== 0)
    throw new Error(`kubectl ${args.join(' ')} failed (${r.code}):\n${r.stderr}\n${r.stdout}`);
  return r.stdout;
}

function readDocs(path: string): Obj[] {
  return parseAllDocuments(readFileSync(path, 'utf8'))
    .map((d) => d.toJSON() as Obj | null)
    .filter((o): o is Obj => o !== null);
}

const chartFiles = (dir: string): string[] =>
  readdirSync(dir)
    .filter((f) => f.endsWith(OUTPUT_EXTENSION))
    .sort()
    .map((f) => join(dir, f));

/** Every pod template of a set of objects, and the worker pod the controller builds from their ConfigMap. */
function podTemplates(all: Obj[], namespace: string): { name: string; spec: Record<string, unknown> }[] {
  const out: { name: string; spec: Record<string, unknown> }[] = [];
  for (const o of all) {
    const t = (o.spec as { template?: { spec?: Record<string, unknown> } } | undefined)?.template?.spec;
    if (t) out.push({ name: `pss-${o.kind.toLowerCase()}-${o.metadata.name}`, spec: t });
    if (o.kind === 'ConfigMap' && o.metadata.name === 'embedctl-worker') {
      // The worker pod as the controller builds it from the charts' ConfigMap.
      const { worker } = parseWorkerConfigMap(o.data as Record<string, string>, DispatchSettings.parse({}));
      const job = buildWorkerJob([{ name: 'ej-example', uid: 'u', attempt: 1 }], namespace, worker);
      out.push({
        name: 'pss-worker-job',
        spec: job.spec!.template.spec as unknown as Record<string, unknown>,
      });
    }
  }
  return out;
}

/**
 * KEDA's ScaledObject and TriggerAuthentication CRDs. Preferred source: the KEDA Go module (module cache, or the
 * Go module proxy). Fallback (stated in the test output): minimal CRDs that accept any spec, so the schema check of
 * our KEDA objects is then only the structural one.
 */
function kedaCrds(workDir: string): { files: string[]; source: string } {
  try {
    const json = execFileSync('go', ['mod', 'download', '-json', KEDA_MODULE], {
      encoding: 'utf8',
      timeout: 180_000,
      cwd: workDir,
      env: { ...process.env, GOFLAGS: '-mod=mod' },
    });
    const dir = (JSON.parse(json) as { Dir?: string }).Dir;
    if (dir) {
      const files = ['keda.sh_scaledobjects.yaml', 'keda.sh_triggerauthentications.yaml'].map((f) =>
        join(dir, 'config', 'crd', 'bases', f),
      );
      if (files.every((f) => existsSync(f))) return { files, source: `KEDA Go module ${KEDA_MODULE}` };
    }
  } catch {
    // fall through to the minimal CRDs
  }
  const minimal = (kind: string, plural: string): Obj => ({
    apiVersion: 'apiextensions.k8s.io/v1',
    kind: 'CustomResourceDefinition',
    metadata: { name: `${plural}.keda.sh` },
    spec: {
      group: 'keda.sh',
      scope: 'Namespaced',
      names: { kind, plural, singular: kind.toLowerCase(), listKind: `${kind}List` },
      versions: [
        {
          name: 'v1alpha1',
          served: true,
          storage: true,
          schema: { openAPIV3Schema: { type: 'object', 'x-kubernetes-preserve-unknown-fields': true } },
        },
      ],
    },
  });
  const file = join(workDir, 'keda-minimal-crds.yaml');
  writeFileSync(
    file,
    [minimal('ScaledObject', 'scaledobjects'), minimal('TriggerAuthentication', 'triggerauthentications')]
      .map((o) => stringify(o))
      .join('---\n'),
  );
  return {
    files: [file],
    source: 'minimal generated CRDs (x-kubernetes-preserve-unknown-fields): KEDA module unavailable',
  };
}

/** Prometheus Operator's CRDs are not fetched; minimal ones (ServiceMonitor, PrometheusRule) let prod be dry-run. */
function minimalPrometheusOperatorCrds(workDir: string): string {
  const file = join(workDir, 'prometheus-operator-minimal-crds.yaml');
  const crd = (kind: string, plural: string): object => ({
    apiVersion: 'apiextensions.k8s.io/v1',
    kind: 'CustomResourceDefinition',
    metadata: { name: `${plural}.monitoring.coreos.com` },
    spec: {
      group: 'monitoring.coreos.com',
      scope: 'Namespaced',
      names: { kind, plural, singular: kind.toLowerCase() },
      versions: [
        {
          name: 'v1',
          served: true,
          storage: true,
          schema: { openAPIV3Schema: { type: 'object', 'x-kubernetes-preserve-unknown-fields': true } },
        },
      ],
    },
  });
  writeFileSync(
    file,
    [crd('ServiceMonitor', 'servicemonitors'), crd('PrometheusRule', 'prometheusrules')]
      .map((o) => stringify(o))
      .join('---\n'),
  );
  return file;
}

const dev = loadEnvironment('dev');
const NS = dev.namespace;
const workDir = join(env.tmpDir, 'charts-apply');
const fileArgs = (files: string[]): string[] => files.flatMap((f) => ['-f', f]);

describe('charts/ on the real apiserver', () => {
  let kedaSource = '';

  beforeAll(async () => {
    mkdirSync(workDir, { recursive: true });
    const keda = kedaCrds(workDir);
    kedaSource = keda.source;
    console.log(`[charts-apply] KEDA CRDs from: ${kedaSource}`);
    await ok(['apply', '--server-side', '--force-conflicts', ...fileArgs(keda.files)]);
    await ok(['wait', '--for=condition=Established', '--timeout=60s', 'crd/scaledobjects.keda.sh']);
    await ok(['wait', '--for=condition=Established', '--timeout=60s', 'crd/triggerauthentications.keda.sh']);
  });

  afterAll(async () => {
    await kubectl(['delete', 'namespace', NS, '--wait=false', '--ignore-not-found']);
    await kubectl([
      'delete',
      'storageclass,persistentvolume,validatingadmissionpolicy,validatingadmissionpolicybinding',
      '-l',
      'app.kubernetes.io/part-of=receipt-embeddings',
    ]);
  });

  it('passes a server-side dry run, then applies for real', async () => {
    const files = chartFiles(CHARTS);
    const [nsFile, crdFile] = files;
    // Namespaced objects cannot be dry-run before their namespace exists, and CRs not before their CRD:
    // dry-run and apply the namespace and CRD charts first, then dry-run everything.
    await ok(['apply', '--dry-run=server', ...fileArgs([nsFile!, crdFile!])]);
    await ok(['apply', ...fileArgs([nsFile!, crdFile!])]);
    await ok([
      'wait',
      '--for=condition=Established',
      '--timeout=60s',
      'crd/embeddingjobs.embedding.receipts.dev',
    ]);
    const dry = await kubectl(['apply', '--dry-run=server', '-f', CHARTS]);
    expect(dry.stderr).not.toMatch(/error/i);
    expect(dry.code).toBe(0);
    expect(dry.stdout).toMatch(
      /scaledobject.keda.sh\/embedctl-compactor (created|configured) \(server dry run\)/,
    );

    const applied = await ok(['apply', '-f', CHARTS]);
    for (const f of files) {
      for (const o of readDocs(f)) {
        const group = o.apiVersion.includes('/') ? `.${o.apiVersion.split('/')[0]}` : '';
        const ns = o.metadata.namespace ? ['-n', o.metadata.namespace] : [];
        await ok([...ns, 'get', `${o.kind.toLowerCase()}${group}`, o.metadata.name]);
      }
    }
    expect(applied).toMatch(/deployment.apps\/embedctl-controller/);
    // Re-applying changes nothing: `kubectl diff` (a server-side dry run compared with the live objects) is empty.
    const diff = await kubectl(['diff', '-f', CHARTS]);
    expect(diff.stdout + diff.stderr).toBe('');
    expect(diff.code).toBe(0);
  });

  it('also accepts the prod, kind and node environments (server-side dry run)', async () => {
    await ok(['apply', '-f', minimalPrometheusOperatorCrds(workDir)]);
    await ok([
      'wait',
      '--for=condition=Established',
      '--timeout=60s',
      'crd/servicemonitors.monitoring.coreos.com',
      'crd/prometheusrules.monitoring.coreos.com',
    ]);
    // Each in its own namespace: switching an install from one environment to another in place is not an upgrade
    // (the `app.kubernetes.io/instance` selector label and the PVC are immutable; docs/deploy.md says so).
    for (const name of ['prod', 'kind', 'node']) {
      const dir = join(workDir, name);
      const namespace = `charts-it-${name}`;
      synthToDir(loadEnvironment(name, { namespace }), dir);
      await ok(['apply', '-f', join(dir, `0000-namespace${OUTPUT_EXTENSION}`)]);
      const dry = await kubectl(['apply', '--dry-run=server', '-f', dir]);
      expect(dry.stderr, `${name}: ${dry.stderr}`).not.toMatch(/error/i);
      expect(dry.code, name).toBe(0);
      await ok(['delete', 'namespace', namespace, '--wait=false']);
    }
  });

  it('stores one egress NetworkPolicy per component, deny-all for the rest, as synthesized', async () => {
    const live = JSON.parse(await ok(['-n', NS, 'get', 'networkpolicies', '-o', 'json'])) as {
      items: { metadata: { name: string }; spec: { podSelector: unknown; egress?: unknown[] } }[];
    };
    expect(live.items.map((p) => p.metadata.name).sort()).toEqual([
      'allow-metrics-scrape',
      'default-deny-egress',
      'default-deny-ingress',
      'egress-compactor',
      'egress-controller',
      'egress-worker',
    ]);
    const synthesized = readDocs(join(CHARTS, `0007-network${OUTPUT_EXTENSION}`));
    for (const want of synthesized) {
      const got = live.items.find((p) => p.metadata.name === want.metadata.name)!;
      expect(got.spec, want.metadata.name).toMatchObject(want.spec as object);
    }
  });

  describe('Pod Security "restricted" is enforced in the namespace', () => {
    const podFrom = (name: string, spec: Record<string, unknown>): string =>
      JSON.stringify({ apiVersion: 'v1', kind: 'Pod', metadata: { name, namespace: NS }, spec });

    const templates = () => podTemplates(chartFiles(CHARTS).flatMap(readDocs), NS);

    it('admits every pod template of the charts as a Pod (controller, compactor, worker)', async () => {
      const list = templates();
      expect(list.map((t) => t.name).sort()).toEqual([
        'pss-deployment-embedctl-compactor',
        'pss-deployment-embedctl-controller',
        'pss-worker-job',
      ]);
      for (const t of list) {
        const r = await kubectl(['create', '-f', '-'], podFrom(t.name, t.spec));
        expect(r.stderr, t.name).toBe('');
        expect(r.code, `${t.name}: ${r.stderr}`).toBe(0);
      }
      const names = await ok(['-n', NS, 'get', 'pods', '-o', 'jsonpath={.items[*].metadata.name}']);
      for (const t of list) expect(names).toContain(t.name);
    });

    it('lets the ReplicaSet controller create both controller pods from the Deployment', async () => {
      const selector = 'app.kubernetes.io/component=controller,app.kubernetes.io/name=receipt-embeddings';
      let names: string[] = [];
      for (let i = 0; i < 60 && names.length < dev.controller.replicas; i++) {
        const out = await ok([
          '-n',
          NS,
          'get',
          'pods',
          '-l',
          selector,
          '-o',
          'jsonpath={.items[*].metadata.name}',
        ]);
        names = out.split(' ').filter(Boolean);
        if (names.length < dev.controller.replicas) await sleep(1000);
      }
      expect(names).toHaveLength(dev.controller.replicas);
      const rs = await ok([
        '-n',
        NS,
        'get',
        'events',
        '--field-selector',
        'reason=FailedCreate',
        '-o',
        'name',
      ]);
      expect(rs.trim()).toBe('');
    });

    it('rejects a privileged pod', async () => {
      const r = await kubectl(
        ['create', '-f', '-'],
        podFrom('pss-privileged', {
          containers: [{ name: 'bad', image: dev.images.controller, securityContext: { privileged: true } }],
        }),
      );
      expect(r.code).not.toBe(0);
      expect(r.stderr).toMatch(/violates PodSecurity "restricted:latest"/);
      expect(r.stderr).toMatch(/privileged/);
    });

    it('rejects a root pod without seccomp even when it is otherwise harmless', async () => {
      const r = await kubectl(
        ['create', '-f', '-'],
        podFrom('pss-root', {
          containers: [{ name: 'root', image: dev.images.controller, securityContext: { runAsUser: 0 } }],
        }),
      );
      expect(r.code).not.toBe(0);
      expect(r.stderr).toMatch(/violates PodSecurity/);
    });

    it('admits the worker Job the controller itself builds from the charts ConfigMap', async () => {
      const cm = JSON.parse(await ok(['-n', NS, 'get', 'configmap', 'embedctl-worker', '-o', 'json'])) as {
        data: Record<string, string>;
      };
      const { worker } = parseWorkerConfigMap(cm.data, DispatchSettings.parse({}));
      const job = buildWorkerJob(
        [{ name: 'ej-example', uid: '00000000-0000-4000-8000-000000000001', attempt: 1 }],
        NS,
        worker,
      );
      // Owner references would point at an EmbeddingJob that does not exist here; the garbage collector would
      // delete the Job before its pod is seen.
      delete (job.metadata as { ownerReferences?: unknown }).ownerReferences;
      const created = await kubectl(['create', '-f', '-'], JSON.stringify(job));
      expect(created.stderr).toBe('');
      expect(created.code).toBe(0);
      const name = job.metadata!.name!;
      let pods = '';
      for (let i = 0; i < 60 && !pods; i++) {
        pods = await ok(['-n', NS, 'get', 'pods', '-l', `job-name=${name}`, '-o', 'name']);
        if (!pods) await sleep(1000);
      }
      expect(pods.trim()).toMatch(new RegExp(`^pod/${name}-`));
      const pod = JSON.parse(await ok(['-n', NS, 'get', pods.trim(), '-o', 'json'])) as {
        spec: {
          serviceAccountName: string;
          containers: { volumeMounts?: { mountPath: string; readOnly?: boolean }[] }[];
        };
      };
      expect(pod.spec.serviceAccountName).toBe('embedctl-worker');
      expect(pod.spec.containers[0]!.volumeMounts).toContainEqual(
        expect.objectContaining({ mountPath: '/mnt/chroma', readOnly: true }),
      );
    });
  });

  describe('ValidatingAdmissionPolicy on the Jobs the controller creates (security issue 18 item 1)', () => {
    const asController = ['--as', `system:serviceaccount:${NS}:embedctl-controller`];
    let n = 0;
    /** The Job the controller builds from the charts' ConfigMap, changed by `mutate`, created as the controller. */
    const createAsController = async (
      mutate: (spec: { serviceAccountName?: string; containers: Record<string, unknown>[] }) => void,
    ): Promise<Result> => {
      const cm = JSON.parse(await ok(['-n', NS, 'get', 'configmap', 'embedctl-worker', '-o', 'json'])) as {
        data: Record<string, string>;
      };
      const { worker } = parseWorkerConfigMap(cm.data, DispatchSettings.parse({}));
      const job = buildWorkerJob(
        [{ name: `ej-vap-${n++}`, uid: '00000000-0000-4000-8000-000000000002', attempt: 1 }],
        NS,
        worker,
      );
      delete (job.metadata as { ownerReferences?: unknown }).ownerReferences;
      mutate((job.spec as { template: { spec: never } }).template.spec);
      return kubectl(['create', '--dry-run=server', ...asController, '-f', '-'], JSON.stringify(job));
    };

    it.each([
      {
        what: 'another ServiceAccount',
        mutate: (s: { serviceAccountName?: string }) => void (s.serviceAccountName = 'embedctl-compactor'),
        message: /ServiceAccount embedctl-worker only/,
      },
      {
        what: 'another image',
        mutate: (s: { containers: Record<string, unknown>[] }) =>
          void (s.containers[0]!.image = 'evil.example/x:1'),
        message: /worker images must be one of/,
      },
      {
        what: 'a reference to another Secret',
        mutate: (s: { containers: Record<string, unknown>[] }) =>
          void (s.containers[0]!.env = [
            { name: 'K', valueFrom: { secretKeyRef: { name: 'aws-keys', key: 'k' } } },
          ]),
        message: /may reference only the Secrets/,
      },
      {
        what: 'envFrom a Secret',
        mutate: (s: { containers: Record<string, unknown>[] }) =>
          void (s.containers[0]!.envFrom = [{ secretRef: { name: 'aws-keys' } }]),
        message: /no envFrom/,
      },
    ])('denies a Job created as the controller with $what', async ({ mutate, message }) => {
      // The policy takes effect once the apiserver has compiled it (a second or two after the apply).
      let r: Result | undefined;
      for (let i = 0; i < 30; i++) {
        r = await createAsController(mutate as never);
        if (r.code !== 0) break;
        await sleep(1000);
      }
      expect(r!.code).not.toBe(0);
      expect(r!.stderr).toMatch(/ValidatingAdmissionPolicy .*receipt-embeddings-worker-jobs/);
      expect(r!.stderr).toMatch(message);
    });

    it('admits (once it is in force, above) the worker Job exactly as the controller builds it', async () => {
      const r = await createAsController(() => undefined);
      expect(r.stderr).toBe('');
      expect(r.code).toBe(0);
    });
  });

  describe('RBAC matrix (kubectl auth can-i as each service account)', () => {
    const can = async (sa: string, verb: string, resource: string, ns = NS): Promise<boolean> => {
      // `kind/status` would name an object called "status"; subresources need their own flag.
      const sub = /^(.*)\/(status|finalizers)$/.exec(resource);
      const r = await kubectl([
        'auth',
        'can-i',
        verb,
        ...(sub ? [sub[1]!, `--subresource=${sub[2]}`] : [resource]),
        '-n',
        ns,
        `--as=system:serviceaccount:${NS}:${sa}`,
      ]);
      return r.stdout.trim() === 'yes';
    };
    const must: [string, string, string][] = [
      ['embedctl-controller', 'create', 'embeddingjobs.embedding.receipts.dev'],
      ['embedctl-controller', 'watch', 'embeddingjobs.embedding.receipts.dev'],
      ['embedctl-controller', 'delete', 'embeddingjobs.embedding.receipts.dev'],
      ['embedctl-controller', 'patch', 'embeddingjobs.embedding.receipts.dev/status'],
      ['embedctl-controller', 'create', 'jobs.batch'],
      ['embedctl-controller', 'delete', 'jobs.batch'],
      ['embedctl-controller', 'watch', 'jobs.batch'],
      ['embedctl-controller', 'list', 'pods'],
      ['embedctl-controller', 'create', 'events'],
      // The "pod rejected by admission" path lists FailedCreate Events (a 403 there retried forever).
      ['embedctl-controller', 'list', 'events'],
      ['embedctl-controller', 'update', 'leases.coordination.k8s.io/embedctl-controller'],
      ['embedctl-controller', 'get', 'configmaps/embedctl-worker'],
      ['embedctl-compactor', 'get', 'leases.coordination.k8s.io/embedctl-compactor'],
      ['embedctl-compactor', 'update', 'leases.coordination.k8s.io/embedctl-compactor'],
      ['embedctl-controller', 'update', 'configmaps/embedctl-stream-checkpoint'],
      ['embedctl-worker', 'get', 'embeddingjobs.embedding.receipts.dev'],
      ['embedctl-worker', 'patch', 'embeddingjobs.embedding.receipts.dev/status'],
    ];
    const mustNot: [string, string, string, string?][] = [
      ['embedctl-controller', 'get', 'secrets'],
      ['embedctl-controller', 'list', 'secrets'],
      ['embedctl-controller', 'create', 'pods'],
      ['embedctl-controller', 'update', 'jobs.batch'],
      ['embedctl-controller', 'get', 'configmaps/other'],
      ['embedctl-controller', 'update', 'leases.coordination.k8s.io/embedctl-compactor'],
      ['embedctl-controller', 'create', 'embeddingjobs.embedding.receipts.dev', 'default'],
      ['embedctl-controller', 'create', 'jobs.batch', 'kube-system'],
      ['embedctl-controller', 'create', 'clusterroles.rbac.authorization.k8s.io'],
      ['embedctl-controller', 'create', 'rolebindings.rbac.authorization.k8s.io'],
      ['embedctl-controller', 'delete', 'namespaces'],
      ['embedctl-compactor', 'get', 'secrets'],
      ['embedctl-compactor', 'list', 'pods'],
      ['embedctl-compactor', 'create', 'leases.coordination.k8s.io'],
      ['embedctl-compactor', 'update', 'leases.coordination.k8s.io/embedctl-controller'],
      ['embedctl-compactor', 'get', 'embeddingjobs.embedding.receipts.dev'],
      ['embedctl-worker', 'get', 'pods'],
      ['embedctl-worker', 'get', 'secrets'],
      ['embedctl-worker', 'get', 'configmaps'],
      ['embedctl-worker', 'get', 'leases.coordination.k8s.io'],
      ['embedctl-worker', 'list', 'embeddingjobs.embedding.receipts.dev'],
      ['embedctl-worker', 'update', 'embeddingjobs.embedding.receipts.dev'],
      ['embedctl-worker', 'delete', 'embeddingjobs.embedding.receipts.dev'],
      ['embedctl-worker', 'create', 'jobs.batch'],
      ['embedctl-controller', 'delete', 'configmaps/embedctl-stream-checkpoint'],
      // Verbs no request of the programs uses (docs/security.md, RBAC).
      ['embedctl-controller', 'update', 'embeddingjobs.embedding.receipts.dev'],
      ['embedctl-controller', 'patch', 'embeddingjobs.embedding.receipts.dev'],
      ['embedctl-controller', 'update', 'embeddingjobs.embedding.receipts.dev/finalizers'],
      ['embedctl-controller', 'get', 'pods'],
      ['embedctl-controller', 'patch', 'events'],
      ['embedctl-controller', 'create', 'events.events.k8s.io'],
      ['embedctl-controller', 'patch', 'leases.coordination.k8s.io/embedctl-controller'],
      ['embedctl-controller', 'list', 'configmaps/embedctl-worker'],
      ['embedctl-controller', 'watch', 'configmaps/embedctl-worker'],
      ['embedctl-compactor', 'patch', 'leases.coordination.k8s.io/embedctl-compactor'],
    ];

    it.each(must)('%s can %s %s', async (sa, verb, resource) => {
      expect(await can(sa, verb, resource)).toBe(true);
    });

    it.each(mustNot)('%s cannot %s %s (namespace %s)', async (sa, verb, resource, ns) => {
      expect(await can(sa, verb, resource, ns ?? NS)).toBe(false);
    });
  });
});

/**
 * The Kustomize layout (cdk8s/kustomize.ts): every overlay, rendered by the test environment's kubectl, is the cdk8s
 * synth of its environment object for object, and installs on the real apiserver, where Pod Security "restricted"
 * admits its pod templates. One overlay at a time: they share the namespace and the cluster-scoped names.
 */
describe('Kustomize overlays (charts/overlays) on the real apiserver', () => {
  const key = (o: Obj): string => `${o.kind}/${o.metadata.namespace ?? ''}/${o.metadata.name}`;
  const render = async (env: string): Promise<Obj[]> =>
    parseAllDocuments(await ok(['kustomize', join(CHARTS, 'overlays', env)]))
      .map((d) => d.toJSON() as Obj | null)
      .filter((o): o is Obj => o !== null);

  beforeAll(async () => {
    mkdirSync(workDir, { recursive: true });
    await ok(['apply', '--server-side', '--force-conflicts', ...fileArgs(kedaCrds(workDir).files)]);
    await ok(['apply', '-f', minimalPrometheusOperatorCrds(workDir)]);
    for (const crd of [
      'scaledobjects.keda.sh',
      'servicemonitors.monitoring.coreos.com',
      'prometheusrules.monitoring.coreos.com',
    ])
      await ok(['wait', '--for=condition=Established', '--timeout=60s', `crd/${crd}`]);
  });

  it.each(KUSTOMIZE_OVERLAYS)('overlays/%s renders to the cdk8s synth of its environment', async (env) => {
    const got = new Map((await render(env)).map((o) => [key(o), o]));
    const dir = join(workDir, `synth-${env}`);
    const want = synthToDir(loadEnvironment(env), dir).flatMap((f) => readDocs(join(dir, f)));
    expect([...got.keys()].sort()).toEqual(want.map(key).sort());
    for (const w of want) expect(got.get(key(w)), key(w)).toEqual(w);
  });

  it.each(KUSTOMIZE_OVERLAYS)(
    'kubectl apply -k overlays/%s installs, and the namespace admits its pod templates as "restricted" Pods',
    async (env) => {
      const overlay = join(CHARTS, 'overlays', env);
      const objects = await render(env);
      const ns = objects.find((o) => o.kind === 'Namespace')!.metadata.name;
      // The previous install (the plain charts, or the previous overlay) is still being deleted.
      await kubectl(['wait', '--for=delete', `namespace/${ns}`, '--timeout=120s']);
      await ok(['apply', '-k', overlay]);
      for (const o of objects) {
        const group = o.apiVersion.includes('/') ? `.${o.apiVersion.split('/')[0]}` : '';
        await ok([
          ...(o.metadata.namespace ? ['-n', o.metadata.namespace] : []),
          'get',
          `${o.kind.toLowerCase()}${group}`,
          o.metadata.name,
        ]);
      }
      const list = podTemplates(objects, ns);
      expect(list.map((t) => t.name).sort()).toEqual([
        'pss-deployment-embedctl-compactor',
        'pss-deployment-embedctl-controller',
        'pss-worker-job',
      ]);
      for (const t of list) {
        const pod = JSON.stringify({
          apiVersion: 'v1',
          kind: 'Pod',
          metadata: { name: t.name, namespace: ns },
          spec: t.spec,
        });
        const r = await kubectl(['create', '-f', '-'], pod);
        expect(r.code, `${env} ${t.name}: ${r.stderr}`).toBe(0);
        expect(r.stderr, `${env} ${t.name}`).toBe('');
      }
      const bad = await kubectl(
        ['create', '-f', '-'],
        JSON.stringify({
          apiVersion: 'v1',
          kind: 'Pod',
          metadata: { name: 'pss-privileged', namespace: ns },
          spec: { containers: [{ name: 'bad', image: 'x:1', securityContext: { privileged: true } }] },
        }),
      );
      expect(bad.stderr).toMatch(/violates PodSecurity "restricted:latest"/);
      await ok(['delete', '-k', overlay, '--wait=false']);
    },
  );
});
