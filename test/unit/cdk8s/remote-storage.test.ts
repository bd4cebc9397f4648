import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { parseAllDocuments } from 'yaml';
import { synthToDir } from '../../../cdk8s/app.js';
import { loadEnvironment } from '../../../cdk8s/config.js';
import { DispatchSettings, parseWorkerConfigMap } from '../../../controller/config.js';
import { buildWorkerJob } from '../../../controller/worker-job.js';
import { ENV } from '../../../core/config/env.js';
import { parseVectorStoreEnv } from '../../../core/config/vector-store.js';

type Obj = { kind: string; metadata: { name: string }; [k: string]: unknown };
type Container = {
  env?: { name: string; value?: string }[];
  volumeMounts?: { mountPath: string }[];
};
type PodSpec = { containers: Container[]; volumes?: Record<string, unknown>[] };

const tmpRoot = mkdtempSync(join(tmpdir(), 'remote-storage-'));
afterAll(() => rmSync(tmpRoot, { recursive: true, force: true }));

const REMOTE = {
  mode: 'remote',
  url: 'http://chroma.vectors.svc.cluster.local:8000',
  database: 'receipts-prod',
  egress: { cidrs: ['10.100.0.0/16'], ports: [8000] },
};

function synth(name: string, overrides?: unknown): Obj[] {
  const dir = join(tmpRoot, `${name}-${overrides ? 'remote' : 'volume'}`);
  return synthToDir(loadEnvironment(name, overrides), dir).flatMap((f) =>
    parseAllDocuments(readFileSync(join(dir, f), 'utf8')).map((d) => d.toJSON() as Obj),
  );
}

const envOf = (c: Container) => Object.fromEntries((c.env ?? []).map((e) => [e.name, e.value]));

describe.each(['dev', 'prod'])('the %s environment with storage mode remote', (name) => {
  const all = synth(name, { storage: REMOTE });
  const compactor = all.find(
    (o) => o.kind === 'Deployment' && o.metadata.name === 'embedctl-compactor',
  ) as unknown as {
    spec: { template: { spec: PodSpec } };
  };
  const configMap = all.find(
    (o) => o.kind === 'ConfigMap' && o.metadata.name === 'embedctl-worker',
  ) as unknown as {
    data: Record<string, string>;
  };

  it('synthesizes no PV, PVC or StorageClass and no volume mount of Chroma in the compactor or worker Jobs', () => {
    for (const kind of ['PersistentVolume', 'PersistentVolumeClaim', 'StorageClass'])
      expect(all.filter((o) => o.kind === kind)).toEqual([]);
    const pod = compactor.spec.template.spec;
    expect(pod.volumes?.map((v) => v.name)).toEqual(['tmp']);
    expect(pod.containers[0]!.volumeMounts?.map((m) => m.mountPath)).toEqual(['/tmp']);
    const { worker } = parseWorkerConfigMap(configMap.data, DispatchSettings.parse({}));
    expect(worker.pvcName).toBeUndefined();
    const job = buildWorkerJob([{ name: 'ej-1', attempt: 1, uid: 'u' }], 'receipt-embeddings', worker);
    const spec = job.spec!.template.spec!;
    expect(spec.volumes?.some((v) => v.persistentVolumeClaim)).toBe(false);
    expect(spec.containers[0]!.volumeMounts?.map((m) => m.mountPath)).toEqual(['/tmp']);
  });

  it('passes the Chroma server to the compactor and the workers, and the variables parse as remote mode', () => {
    const workerEnv = Object.fromEntries(
      (JSON.parse(configMap.data.env!) as { name: string; value?: string }[]).map((e) => [e.name, e.value]),
    );
    for (const env of [envOf(compactor.spec.template.spec.containers[0]!), workerEnv]) {
      expect(env[ENV.CHROMA_ROOT]).toBeUndefined();
      expect(parseVectorStoreEnv(env)).toEqual({
        mode: 'remote',
        url: REMOTE.url,
        tenant: 'default_tenant',
        database: 'receipts-prod',
      });
    }
  });

  it('lets the compactor and the workers (not the controller) reach the server', () => {
    const egress = (c: string) =>
      JSON.stringify(
        all.find((o) => o.kind === 'NetworkPolicy' && o.metadata.name === `egress-${c}`)!['spec'],
      );
    expect(egress('compactor')).toContain('10.100.0.0/16');
    expect(egress('worker')).toContain('10.100.0.0/16');
    expect(egress('controller')).not.toContain('10.100.0.0/16');
  });
});

describe('the same environment with its volume', () => {
  it('keeps the PVC, the mounts and CHROMA_ROOT (remote mode is opt-in)', () => {
    const all = synth('dev');
    expect(all.some((o) => o.kind === 'PersistentVolumeClaim')).toBe(true);
    const compactor = all.find(
      (o) => o.kind === 'Deployment' && o.metadata.name === 'embedctl-compactor',
    ) as unknown as {
      spec: { template: { spec: PodSpec } };
    };
    const env = envOf(compactor.spec.template.spec.containers[0]!);
    expect(env[ENV.CHROMA_ROOT]).toBe('/mnt/chroma');
    expect(env[ENV.VECTOR_STORE]).toBeUndefined();
  });

  it('refuses a remote storage without a URL or egress, naming the field', () => {
    expect(() => loadEnvironment('dev', { storage: { mode: 'remote', url: 'chroma:8000' } })).toThrow(
      /storage\.url|egress/,
    );
  });
});
