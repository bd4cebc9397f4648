import { mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, relative } from 'node:path';
import { fileURLToPath } from 'node:url';

import { afterAll, describe, expect, it } from 'vitest';
import { parseAllDocuments } from 'yaml';

import { DEFAULT_ENV, OUTPUT_EXTENSION, synthToDir } from '../../cdk8s/app.js';
import { KUSTOMIZE_BASE_ENV, KUSTOMIZE_OVERLAYS, writeKustomize } from '../../cdk8s/kustomize.js';
import { ENVIRONMENT_NAMES, NODE_BRIDGE_IP, NODE_PORTS, loadEnvironment } from '../../cdk8s/config.js';
import { ENV, ENV_VARS } from '../../core/config/env.js';
import { embeddingJobCrd } from '../../crds/embedding-job-crd.js';
import { workerImageAllowlist, workerSecretAllowlist } from '../../cdk8s/charts/admission.js';
import { DispatchSettings, parseWorkerConfigMap } from '../../controller/config.js';
import { buildWorkerJob } from '../../controller/worker-job.js';
import { WORKER_LABELS } from '../../core/contracts/labels.js';
import { imageAllowed } from '../../core/contracts/image-reference.js';

type Obj = {
  apiVersion: string;
  kind: string;
  metadata: { name: string; namespace?: string };
  [k: string]: unknown;
};
type PodSpec = {
  securityContext?: Record<string, unknown>;
  containers: Container[];
  initContainers?: Container[];
  volumes?: Record<string, unknown>[];
  hostNetwork?: boolean;
  hostPID?: boolean;
  hostIPC?: boolean;
  automountServiceAccountToken?: boolean;
  serviceAccountName?: string;
};
type Container = {
  name: string;
  image: string;
  args?: string[];
  securityContext?: Record<string, unknown>;
  resources?: { requests?: Record<string, string>; limits?: Record<string, string> };
  env?: { name: string }[];
  volumeMounts?: { name: string; mountPath: string; readOnly?: boolean }[];
};

const REPO = fileURLToPath(new URL('../../', import.meta.url));
const tmpRoot = mkdtempSync(join(tmpdir(), 'charts-test-'));
afterAll(() => rmSync(tmpRoot, { recursive: true, force: true }));

function synth(envName: string): { files: string[]; dir: string; byFile: Map<string, Obj[]>; all: Obj[] } {
  const dir = join(tmpRoot, envName);
  const files = synthToDir(loadEnvironment(envName), dir);
  const byFile = new Map<string, Obj[]>();
  for (const f of files) {
    const docs = parseAllDocuments(readFileSync(join(dir, f), 'utf8')).map((d) => d.toJSON() as Obj);
    byFile.set(f, docs);
  }
  return { files, dir, byFile, all: [...byFile.values()].flat() };
}

const synthesized = Object.fromEntries(ENVIRONMENT_NAMES.map((n) => [n, synth(n)]));

/** Every pod spec in a chart set: Deployment/Job templates, and the worker Job the controller builds from them. */
function podSpecs(all: Obj[]): { where: string; spec: PodSpec }[] {
  const out: { where: string; spec: PodSpec }[] = [];
  for (const o of all) {
    const spec = o.spec as {
      template?: { spec?: PodSpec };
      jobTemplate?: { spec: { template: { spec: PodSpec } } };
    };
    if (o.kind === 'Pod') out.push({ where: `Pod/${o.metadata.name}`, spec: o.spec as PodSpec });
    if (spec?.template?.spec) out.push({ where: `${o.kind}/${o.metadata.name}`, spec: spec.template.spec });
    if (spec?.jobTemplate)
      out.push({ where: `${o.kind}/${o.metadata.name}`, spec: spec.jobTemplate.spec.template.spec });
    if (o.kind === 'ConfigMap' && o.metadata.name === 'embedctl-worker') {
      const { worker } = parseWorkerConfigMap(o.data as Record<string, string>, DispatchSettings.parse({}));
      const job = buildWorkerJob(
        [{ name: 'ej-example', attempt: 1, uid: 'u' }],
        o.metadata.namespace!,
        worker,
      );
      const template = job.spec!.template as { spec: PodSpec };
      out.push({ where: `ConfigMap/${o.metadata.name}#workerJob`, spec: template.spec });
    }
  }
  return out;
}

const find = (all: Obj[], kind: string, name: string): Obj => {
  const o = all.find((x) => x.kind === kind && x.metadata.name === name);
  if (!o) throw new Error(`${kind}/${name} not synthesized`);
  return o;
};

describe.each(ENVIRONMENT_NAMES)('charts for %s', (envName) => {
  const { files, byFile, all } = synthesized[envName]!;
  const cfg = loadEnvironment(envName);

  it('match the snapshot', () => {
    expect(Object.fromEntries(byFile)).toMatchSnapshot();
  });

  it('are ordered: namespace, CRDs and storage before the workloads that use them', () => {
    expect(files.slice(0, 4)).toEqual([
      `0000-namespace${OUTPUT_EXTENSION}`,
      `0001-crds${OUTPUT_EXTENSION}`,
      `0002-storage${OUTPUT_EXTENSION}`,
      `0003-rbac${OUTPUT_EXTENSION}`,
    ]);
  });

  it('label the namespace for Pod Security "restricted" (enforce, audit, warn)', () => {
    const ns = find(all, 'Namespace', cfg.namespace) as unknown as {
      metadata: { labels: Record<string, string> };
    };
    for (const mode of ['enforce', 'audit', 'warn']) {
      expect(ns.metadata.labels[`pod-security.kubernetes.io/${mode}`]).toBe('restricted');
    }
  });

  it('put every namespaced object in the namespace and no namespace on cluster-scoped ones', () => {
    const clusterScoped = new Set([
      'Namespace',
      'CustomResourceDefinition',
      'StorageClass',
      'PersistentVolume',
      'ValidatingAdmissionPolicy',
      'ValidatingAdmissionPolicyBinding',
    ]);
    for (const o of all) {
      if (clusterScoped.has(o.kind))
        expect(o.metadata.namespace, `${o.kind}/${o.metadata.name}`).toBeUndefined();
      else expect(o.metadata.namespace, `${o.kind}/${o.metadata.name}`).toBe(cfg.namespace);
    }
  });

  it('include the EmbeddingJob CRD from its single source of truth', () => {
    const crd = embeddingJobCrd() as { metadata: { name: string } };
    const got = find(all, 'CustomResourceDefinition', crd.metadata.name) as Record<string, unknown>;
    const { metadata: _m, ...rest } = got;
    const { metadata: _n, ...expected } = crd as Record<string, unknown>;
    expect(rest).toEqual(expected);
  });

  it('make every pod template restricted-compliant, with resources and a writable /tmp', () => {
    const specs = podSpecs(all);
    expect(specs.map((s) => s.where).sort()).toEqual([
      'ConfigMap/embedctl-worker#workerJob',
      'Deployment/embedctl-compactor',
      'Deployment/embedctl-controller',
    ]);
    for (const { where, spec } of specs) {
      const psc = spec.securityContext ?? {};
      expect(psc.runAsNonRoot, where).toBe(true);
      expect(psc.runAsUser, where).toBe(10001);
      expect(psc.seccompProfile, where).toEqual({ type: 'RuntimeDefault' });
      expect(spec.hostNetwork ?? false, where).toBe(false);
      expect(spec.hostPID ?? false, where).toBe(false);
      expect(spec.hostIPC ?? false, where).toBe(false);
      const allowedVolumes = [
        'configMap',
        'csi',
        'downwardAPI',
        'emptyDir',
        'ephemeral',
        'persistentVolumeClaim',
      ];
      for (const v of spec.volumes ?? []) {
        const type = Object.keys(v).find((k) => k !== 'name')!;
        expect([...allowedVolumes, 'projected', 'secret'], `${where} volume ${String(v.name)}`).toContain(
          type,
        );
      }
      for (const c of [...spec.containers, ...(spec.initContainers ?? [])]) {
        const at = `${where}/${c.name}`;
        const sc = c.securityContext ?? {};
        expect(sc.allowPrivilegeEscalation, at).toBe(false);
        expect(sc.privileged ?? false, at).toBe(false);
        expect(sc.runAsNonRoot, at).toBe(true);
        expect(sc.readOnlyRootFilesystem, at).toBe(true);
        expect(sc.capabilities, at).toEqual({ drop: ['ALL'] });
        expect(sc.seccompProfile, at).toEqual({ type: 'RuntimeDefault' });
        expect(c.image, at).not.toMatch(/:latest$/);
        // One image per program (docs/adr/0016).
        const program = /worker/.test(where)
          ? 'worker'
          : /compactor/.test(where)
            ? 'compactor'
            : 'controller';
        expect(c.image, at).toBe(cfg.images[program]);
        for (const k of ['cpu', 'memory']) {
          expect(c.resources?.requests?.[k], `${at} request ${k}`).toBeTruthy();
          expect(c.resources?.limits?.[k], `${at} limit ${k}`).toBeTruthy();
        }
        expect(
          c.volumeMounts?.some((m) => m.mountPath === '/tmp'),
          `${at} /tmp`,
        ).toBe(true);
      }
    }
  });

  it('give the programs the documented environment variables only', () => {
    const known = new Set(ENV_VARS.map((e) => e.name));
    for (const { where, spec } of podSpecs(all)) {
      for (const c of spec.containers) {
        for (const e of c.env ?? []) expect(known.has(e.name), `${where}: ${e.name}`).toBe(true);
      }
    }
    const compactor = find(all, 'Deployment', 'embedctl-compactor') as unknown as {
      spec: { template: { spec: PodSpec } };
    };
    const env = compactor.spec.template.spec.containers[0]!.env!.map((e) => e.name);
    expect(env).toContain(ENV.CHROMA_ROOT);
    expect(env.includes(ENV.AWS_ENDPOINT_URL)).toBe(cfg.aws.endpoint !== undefined);
  });

  it('run the controller with 2 replicas, probes, metrics port, anti-affinity and a PDB', () => {
    const dep = find(all, 'Deployment', 'embedctl-controller') as unknown as {
      spec: { replicas: number; template: { spec: PodSpec & Record<string, unknown> } };
    };
    expect(dep.spec.replicas).toBe(2);
    const c = dep.spec.template.spec.containers[0] as unknown as Record<string, unknown>;
    expect(c.livenessProbe).toMatchObject({ httpGet: { path: '/healthz', port: 9090 } });
    expect(c.readinessProbe).toMatchObject({ httpGet: { path: '/readyz', port: 9090 } });
    expect(c.ports).toEqual([{ containerPort: 9090, name: 'metrics', protocol: 'TCP' }]);
    expect(dep.spec.template.spec.affinity).toMatchObject({ podAntiAffinity: {} });
    expect(find(all, 'PodDisruptionBudget', 'embedctl-controller')).toMatchObject({
      spec: { minAvailable: 1 },
    });
  });

  it('run the compactor as a KEDA-scaled singleton with the PVC read-write', () => {
    const dep = find(all, 'Deployment', 'embedctl-compactor') as unknown as {
      spec: { replicas: number; strategy: { type: string }; template: { spec: PodSpec } };
    };
    expect(dep.spec.replicas).toBe(0);
    expect(dep.spec.strategy.type).toBe('Recreate');
    const mount = dep.spec.template.spec.containers[0]!.volumeMounts!.find(
      (m) => m.mountPath === '/mnt/chroma',
    );
    expect(mount?.readOnly ?? false).toBe(false);
    const so = find(all, 'ScaledObject', 'embedctl-compactor') as unknown as {
      spec: {
        minReplicaCount: number;
        maxReplicaCount: number;
        cooldownPeriod: number;
        triggers: { type: string; metadata: Record<string, string>; authenticationRef: { name: string } }[];
      };
    };
    expect(so.spec.minReplicaCount).toBe(0);
    expect(so.spec.maxReplicaCount).toBe(1);
    expect(so.spec.cooldownPeriod).toBeGreaterThan(0);
    expect(so.spec.triggers.map((t) => [t.type, t.metadata.queueURL])).toEqual([
      ['aws-sqs-queue', cfg.queues.lines],
      ['aws-sqs-queue', cfg.queues.words],
    ]);
    for (const t of so.spec.triggers) {
      expect(t.metadata.awsEndpoint).toBe(cfg.aws.endpoint);
      expect(t.authenticationRef.name).toBe('embedctl-compactor-aws');
    }
    const ta = find(all, 'TriggerAuthentication', 'embedctl-compactor-aws') as unknown as {
      spec: Record<string, unknown>;
    };
    if (cfg.aws.staticCredentialsSecret) expect(ta.spec.secretTargetRef).toHaveLength(2);
    else expect(ta.spec.podIdentity).toMatchObject({ provider: 'aws' });
  });

  it('hold the Jobs the controller creates to the worker policy (ValidatingAdmissionPolicy + the controller flags)', () => {
    const vap = find(all, 'ValidatingAdmissionPolicy', `${cfg.namespace}-worker-jobs`) as unknown as {
      spec: {
        failurePolicy: string;
        matchConditions: { expression: string }[];
        variables: { name: string; expression: string }[];
        validations: { expression: string }[];
      };
    };
    expect(vap.spec.failurePolicy).toBe('Fail');
    expect(vap.spec.matchConditions.map((c) => c.expression)).toEqual([
      `request.userInfo.username == "system:serviceaccount:${cfg.namespace}:embedctl-controller"`,
    ]);
    const text = vap.spec.validations.map((v) => v.expression).join('\n');
    expect(text).toContain('serviceAccountName == "embedctl-worker"');
    expect(text).toContain('variables.allowedImages.exists(');
    expect(text).toContain('in variables.allowedSecrets');
    const allowed = workerImageAllowlist(cfg);
    const list = (xs: string[]): string => `[${xs.map((x) => JSON.stringify(x)).join(', ')}]`;
    expect(vap.spec.variables).toEqual([
      { name: 'allowedImages', expression: list(allowed) },
      { name: 'allowedSecrets', expression: list(workerSecretAllowlist(cfg)) },
    ]);
    expect(find(all, 'ValidatingAdmissionPolicyBinding', `${cfg.namespace}-worker-jobs`)).toMatchObject({
      spec: { policyName: `${cfg.namespace}-worker-jobs`, validationActions: ['Deny'] },
    });
    const args = podSpecs(all).find((p) => p.where === 'Deployment/embedctl-controller')!.spec.containers[0]!
      .args as string[];
    expect(args.slice(args.indexOf('--allowed-images'), args.indexOf('--allowed-images') + 2)).toEqual([
      '--allowed-images',
      allowed.join(','),
    ]);
    expect(imageAllowed(cfg.images.worker, allowed)).toBe(true);
  });

  it("let KEDA read queue depth with its own identity, never the compactor's role", () => {
    const ta = find(all, 'TriggerAuthentication', 'embedctl-compactor-aws') as unknown as {
      spec: { podIdentity?: Record<string, unknown>; secretTargetRef?: { name: string; key: string }[] };
    };
    if (cfg.aws.staticCredentialsSecret) {
      // Emulators (kind, node): static keys from the Secret, no pod identity at all.
      expect(ta.spec.podIdentity).toBeUndefined();
      expect(ta.spec.secretTargetRef?.map((r) => [r.name, r.key])).toEqual([
        [cfg.aws.staticCredentialsSecret, 'AWS_ACCESS_KEY_ID'],
        [cfg.aws.staticCredentialsSecret, 'AWS_SECRET_ACCESS_KEY'],
      ]);
    } else {
      expect(ta.spec.podIdentity).toEqual({ provider: 'aws', identityOwner: 'keda' });
    }
  });

  it('mount the shared volume read-only in workers, through a ReadWriteMany PVC', () => {
    const pvc = find(all, 'PersistentVolumeClaim', 'embedctl-chroma') as unknown as {
      spec: { accessModes: string[] };
    };
    expect(pvc.spec.accessModes).toEqual(['ReadWriteMany']);
    const worker = podSpecs(all).find((s) => s.where.includes('workerJob'))!.spec;
    // The worker reports through its EmbeddingJobs' status, so it carries a token (bound to a get/patch-status Role).
    expect(worker.automountServiceAccountToken).toBe(true);
    expect(worker.serviceAccountName).toBe('embedctl-worker');
    expect(worker.containers[0]!.volumeMounts).toContainEqual({
      name: 'chroma',
      mountPath: '/mnt/chroma',
      readOnly: true,
    });
    if (cfg.storage.mode === 'efs-dynamic') {
      expect(all.find((o) => o.kind === 'StorageClass')).toMatchObject({
        provisioner: 'efs.csi.aws.com',
        parameters: { provisioningMode: 'efs-ap', uid: '10001', gid: '10001' },
      });
    } else {
      expect(all.find((o) => o.kind === 'PersistentVolume')).toMatchObject({
        spec: { accessModes: ['ReadWriteMany'], persistentVolumeReclaimPolicy: 'Retain' },
      });
    }
  });

  it('grant least privilege: no wildcards, no secrets, worker only reads and reports its EmbeddingJobs, compactor only its Lease', () => {
    const roles = all.filter((o) => o.kind === 'Role' || o.kind === 'ClusterRole') as unknown as {
      kind: string;
      metadata: { name: string };
      rules: { apiGroups: string[]; resources: string[]; verbs: string[]; resourceNames?: string[] }[];
    }[];
    expect(roles.map((r) => `${r.kind}/${r.metadata.name}`).sort()).toEqual([
      'Role/embedctl-compactor',
      'Role/embedctl-controller',
      'Role/embedctl-worker',
    ]);
    for (const r of roles) {
      for (const rule of r.rules) {
        expect([...rule.apiGroups, ...rule.resources, ...rule.verbs]).not.toContain('*');
        expect(rule.resources).not.toContain('secrets');
      }
    }
    const compactor = roles.find((r) => r.metadata.name === 'embedctl-compactor')!;
    expect(compactor.rules).toEqual([
      {
        apiGroups: ['coordination.k8s.io'],
        resources: ['leases'],
        resourceNames: ['embedctl-compactor'],
        verbs: ['get', 'update'],
      },
    ]);
    const worker = roles.find((r) => r.metadata.name === 'embedctl-worker')!;
    expect(worker.rules).toEqual([
      { apiGroups: ['embedding.receipts.dev'], resources: ['embeddingjobs'], verbs: ['get'] },
      { apiGroups: ['embedding.receipts.dev'], resources: ['embeddingjobs/status'], verbs: ['patch'] },
    ]);
    const controller = roles.find((r) => r.metadata.name === 'embedctl-controller')!;
    const leaseRule = controller.rules.find((x) => x.resources.includes('leases'))!;
    expect(leaseRule.resourceNames).toEqual(['embedctl-controller']);
    // Exactly the verbs its requests use (docs/security.md, RBAC), with `list events` for the FailedCreate check.
    const verbs = Object.fromEntries(
      controller.rules.map((x) => [
        `${x.apiGroups[0] || 'core'}/${x.resources[0]}${x.resourceNames ? `/${x.resourceNames[0]}` : ''}`,
        x.verbs,
      ]),
    );
    expect(verbs).toEqual({
      'embedding.receipts.dev/embeddingjobs': ['get', 'list', 'watch', 'create', 'delete'],
      'embedding.receipts.dev/embeddingjobs/status': ['get', 'update', 'patch'],
      'batch/jobs': ['get', 'list', 'watch', 'create', 'delete'],
      'core/pods': ['list', 'watch'],
      'core/events': ['create', 'list'],
      'coordination.k8s.io/leases/embedctl-controller': ['get', 'update'],
      'core/configmaps/embedctl-worker': ['get'],
      'core/configmaps/embedctl-stream-checkpoint': ['get', 'update'],
    });
    const bindings = all.filter((o) => o.kind === 'RoleBinding') as unknown as {
      subjects: { name: string }[];
    }[];
    // Each service account is bound to its own Role only.
    expect(bindings.flatMap((b) => b.subjects.map((s) => s.name)).sort()).toEqual([
      'embedctl-compactor',
      'embedctl-controller',
      'embedctl-worker',
    ]);
  });

  it('annotate service accounts for IRSA when roles are configured', () => {
    for (const [sa, arn] of [
      ['embedctl-controller', cfg.iam.controllerRoleArn],
      ['embedctl-worker', cfg.iam.workerRoleArn],
      ['embedctl-compactor', cfg.iam.compactorRoleArn],
    ] as const) {
      const o = find(all, 'ServiceAccount', sa) as unknown as {
        metadata: { annotations?: Record<string, string> };
      };
      expect(o.metadata.annotations?.['eks.amazonaws.com/role-arn']).toBe(arn);
    }
  });

  it('emit a ServiceMonitor only when enabled', () => {
    expect(all.some((o) => o.kind === 'ServiceMonitor')).toBe(cfg.monitoring.serviceMonitor);
  });

  it('emit the PrometheusRule only when alerts are enabled', () => {
    expect(all.some((o) => o.kind === 'PrometheusRule')).toBe(cfg.monitoring.alerts.enabled);
  });

  it('deny ingress by default and allow only the metrics scrape', () => {
    expect(find(all, 'NetworkPolicy', 'default-deny-ingress')).toMatchObject({
      spec: { podSelector: {}, policyTypes: ['Ingress'] },
    });
    expect(find(all, 'NetworkPolicy', 'allow-metrics-scrape')).toMatchObject({
      spec: { ingress: [{ ports: [{ port: 9090, protocol: 'TCP' }] }] },
    });
  });
});

describe.each(ENVIRONMENT_NAMES)('egress of %s (one NetworkPolicy per component)', (envName) => {
  const { all } = synthesized[envName]!;
  const cfg = loadEnvironment(envName);
  type Peer = {
    ipBlock?: { cidr: string };
    namespaceSelector?: { matchLabels: Record<string, string> };
    podSelector?: { matchLabels: Record<string, string> };
  };
  type Rule = { to?: Peer[]; ports: { port: number; protocol: string }[] };
  const policy = (name: string) =>
    find(all, 'NetworkPolicy', `egress-${name}`) as unknown as {
      spec: { podSelector: { matchLabels: Record<string, string> }; egress: Rule[] };
    };
  /** Every (destination, port) a component may reach, as strings. */
  const reach = (name: string): Set<string> =>
    new Set(
      policy(name).spec.egress.flatMap((r) =>
        (r.to ?? [{ ipBlock: { cidr: 'ANYWHERE' } }]).flatMap((p) =>
          r.ports.map(
            (pt) =>
              `${p.ipBlock?.cidr ?? JSON.stringify(p.podSelector?.matchLabels)}:${pt.protocol}/${pt.port}`,
          ),
        ),
      ),
    );
  const targets = (t: { cidrs: string[]; ports: number[] }) =>
    t.cidrs.flatMap((c) => t.ports.map((p) => `${c}:TCP/${p}`));
  const n = cfg.network;

  it('denies all egress by default; every rule names its destination', () => {
    expect(find(all, 'NetworkPolicy', 'default-deny-egress')).toMatchObject({
      spec: { podSelector: {}, policyTypes: ['Egress'] },
    });
    for (const c of ['controller', 'compactor', 'worker']) {
      for (const r of policy(c).spec.egress) expect(r.to?.length, c).toBeGreaterThan(0);
      expect(reach(c).has('ANYWHERE:TCP/443')).toBe(false);
    }
  });

  it('sends DNS only to kube-dns in kube-system', () => {
    for (const c of ['controller', 'compactor', 'worker']) {
      const dns = policy(c).spec.egress.filter((r) => r.ports.some((p) => p.port === 53));
      expect(dns).toHaveLength(1);
      expect(dns[0]!.to).toEqual([
        {
          namespaceSelector: { matchLabels: { 'kubernetes.io/metadata.name': 'kube-system' } },
          podSelector: { matchLabels: { 'k8s-app': 'kube-dns' } },
        },
      ]);
    }
  });

  it('lets every component reach the apiserver and the AWS endpoints, and only workers the embeddings API', () => {
    const base = [...targets(n.apiServer), ...targets(n.aws)];
    const agent = cfg.identity === 'pod-identity' ? ['169.254.170.23/32:TCP/80'] : [];
    const dns = `${JSON.stringify(n.dns.podSelector)}`;
    const expected = (extra: string[]) =>
      new Set([`${dns}:UDP/53`, `${dns}:TCP/53`, ...base, ...agent, ...extra]);
    expect(reach('controller')).toEqual(expected([]));
    expect(reach('compactor')).toEqual(expected([]));
    expect(reach('worker')).toEqual(expected(targets(n.embeddingApi)));
  });

  it('selects the pods the controller creates for workers, and the Deployments pods', () => {
    expect(policy('worker').spec.podSelector.matchLabels).toEqual(WORKER_LABELS);
    for (const c of ['controller', 'compactor']) {
      const dep = find(all, 'Deployment', `embedctl-${c}`) as unknown as {
        spec: { template: { metadata: { labels: Record<string, string> } } };
      };
      expect(dep.spec.template.metadata.labels).toMatchObject(policy(c).spec.podSelector.matchLabels);
    }
  });

  if (envName === 'node')
    it('node: the outside servers on the bridge stay reachable, each by the components that use it', () => {
      const bridge = `${NODE_BRIDGE_IP}/32`;
      for (const c of ['controller', 'compactor', 'worker']) {
        expect(reach(c)).toContain(`${bridge}:TCP/${NODE_PORTS.apiserver}`);
        expect(reach(c)).toContain(`${bridge}:TCP/${NODE_PORTS.aws}`);
      }
      expect(reach('worker')).toContain(`${bridge}:TCP/${NODE_PORTS.embeddings}`);
      expect(reach('controller')).not.toContain(`${bridge}:TCP/${NODE_PORTS.embeddings}`);
      expect(reach('compactor')).not.toContain(`${bridge}:TCP/${NODE_PORTS.embeddings}`);
    });
});

describe('charts/ on disk', () => {
  it(`equals a fresh synth of the default environment (${DEFAULT_ENV}); run \`npm run synth\` if this fails`, () => {
    const fresh = synthesized[DEFAULT_ENV]!;
    const onDisk = readdirSync(join(REPO, 'charts'))
      .filter((f) => f.endsWith(OUTPUT_EXTENSION))
      .sort();
    expect(onDisk).toEqual(fresh.files);
    for (const f of fresh.files) {
      expect(readFileSync(join(REPO, 'charts', f), 'utf8'), f).toBe(readFileSync(join(fresh.dir, f), 'utf8'));
    }
  });

  it('holds the Kustomize base and overlays of a fresh synth; run `npm run synth` if this fails', () => {
    const dir = join(tmpRoot, 'kustomize');
    const fresh = writeKustomize(
      dir,
      loadEnvironment(KUSTOMIZE_BASE_ENV),
      KUSTOMIZE_OVERLAYS.map((n) => loadEnvironment(n)),
    );
    const onDisk = ['base', 'overlays']
      .flatMap((d) => readdirSync(join(REPO, 'charts', d), { recursive: true, withFileTypes: true }))
      .filter((e) => e.isFile())
      .map((e) => relative(join(REPO, 'charts'), join(e.parentPath, e.name)))
      .sort();
    expect(onDisk).toEqual(fresh);
    for (const f of fresh) {
      expect(readFileSync(join(REPO, 'charts', f), 'utf8'), f).toBe(readFileSync(join(dir, f), 'utf8'));
    }
    for (const env of KUSTOMIZE_OVERLAYS) expect(fresh).toContain(`overlays/${env}/kustomization.yaml`);
  });

  it('is deterministic: two synths are byte-identical', () => {
    const again = synthToDir(loadEnvironment(DEFAULT_ENV), join(tmpRoot, 'again'));
    for (const f of again) {
      expect(readFileSync(join(tmpRoot, 'again', f), 'utf8')).toBe(
        readFileSync(join(synthesized[DEFAULT_ENV]!.dir, f), 'utf8'),
      );
    }
  });
});

describe('configuration', () => {
  it('rejects an SQS URL KEDA cannot use', () => {
    expect(() =>
      loadEnvironment('dev', { queues: { lines: 'https://sqs.us-east-1.amazonaws.com/lines' } }),
    ).toThrow(/queues.lines/);
  });

  it('merges overrides and leaves the rest', () => {
    const cfg = loadEnvironment('prod', {
      images: { worker: 'example.com/x@sha256:' + 'a'.repeat(64) },
      worker: { batchSize: 7 },
    });
    expect(cfg.images.worker).toMatch(/@sha256:/);
    expect(cfg.images.controller).toMatch(/receipt-embeddings-controller:0\.1\.0$/);
    expect(cfg.worker.batchSize).toBe(7);
    expect(cfg.worker.maxActivePods).toBe(10);
  });

  it('rejects unknown environments', () => {
    expect(() => loadEnvironment('staging')).toThrow(/unknown environment/);
  });

  it('refuses a PDB that would block node drains', () => {
    expect(() => loadEnvironment('dev', { controller: { replicas: 2, pdbMinAvailable: 2 } })).toThrow(
      /drains/,
    );
  });
});

describe('Grafana dashboard', () => {
  const dashboard = JSON.parse(readFileSync(join(REPO, 'dashboards', 'embedctl.json'), 'utf8')) as {
    uid: string;
    panels: { type: string; targets?: { expr: string }[] }[];
  };
  const exprs = dashboard.panels.flatMap((p) => p.targets?.map((t) => t.expr) ?? []).join('\n');

  it('covers backlog, job phases, merge throughput, publish duration and DLQ', () => {
    for (const metric of [
      'embedctl_ingest_messages_total',
      'embedctl_outstanding_embeddingjobs',
      'workqueue_depth',
      'embedctl_embeddingjob_transitions_total',
      'embedctl_compactor_merged_vectors_total',
      'embedctl_compactor_publish_seconds_bucket',
      'embedctl_dlq_messages_total',
    ]) {
      expect(exprs).toContain(metric);
    }
  });

  it('has unique panel ids and a stable uid', () => {
    const ids = dashboard.panels.map((p) => (p as unknown as { id: number }).id);
    expect(new Set(ids).size).toBe(ids.length);
    expect(dashboard.uid).toBe('embedctl-overview');
  });
});
