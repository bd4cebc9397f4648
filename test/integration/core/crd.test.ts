import { beforeAll, describe, expect, inject, it } from 'vitest';
import { randomUUID } from 'node:crypto';
import { execFileSync } from 'node:child_process';
import { join } from 'node:path';
import { chmodSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { ROOT } from '../../support/local-cli.js';
import {
  CustomObjectsApi,
  KubeConfig,
  CoreV1Api,
  Watch,
  PatchStrategy,
  setHeaderOptions,
} from '@kubernetes/client-node';
import '../../harness/env.js';
import { CRD_FILE } from '../../../crds/generate.js';
import {
  GROUP,
  PLURAL,
  VERSION,
  newEmbeddingJob,
  type EmbeddingJob,
} from '../../../core/contracts/embedding-job.js';

const env = inject('testEnv');
const kubectl = (...args: string[]) =>
  execFileSync(join(env.binDir, 'kubectl'), ['--kubeconfig', env.kubeconfigPath, ...args], {
    encoding: 'utf8',
  });

/** Loads the test kubeconfig into `kc`, applies the CRD and creates `namespace`; returns the custom-objects client. */
async function crdNamespace(kc: KubeConfig, namespace: string): Promise<CustomObjectsApi> {
  kc.loadFromFile(env.kubeconfigPath);
  kubectl('apply', '-f', CRD_FILE);
  kubectl('wait', '--for=condition=Established', '--timeout=30s', `crd/${PLURAL}.${GROUP}`);
  await kc.makeApiClient(CoreV1Api).createNamespace({ body: { metadata: { name: namespace } } });
  return kc.makeApiClient(CustomObjectsApi);
}

describe('EmbeddingJob CRD on the real apiserver', () => {
  const kc = new KubeConfig();
  let api: CustomObjectsApi;
  const namespace = `crd-${Date.now().toString(36)}`;
  const message = {
    image_id: randomUUID(),
    receipt_id: 7,
    artifacts_bucket: 'artifacts',
    lines_key: 'receipts/x/lines.ndjson',
    words_key: 'receipts/x/words.ndjson',
  };

  beforeAll(async () => {
    api = await crdNamespace(kc, namespace);
  });

  it('creates with defaults, patches status through the subresource, and a watch sees it', async () => {
    const events: string[] = [];
    const watch = await watchUntilStarted(
      kc,
      `/apis/${GROUP}/${VERSION}/namespaces/${namespace}/${PLURAL}`,
      (type, obj) => events.push(`${type}:${obj.status?.phase ?? '-'}`),
    );
    try {
      const ej = newEmbeddingJob(message, namespace);
      const created = (await api.createNamespacedCustomObject({
        group: GROUP,
        version: VERSION,
        namespace,
        plural: PLURAL,
        body: ej,
      })) as EmbeddingJob;
      expect(created.spec).toMatchObject({ priority: 0, collections: ['lines', 'words'], source: 'sqs' });
      expect(created.metadata.generation).toBe(1);

      await api.patchNamespacedCustomObjectStatus(
        {
          group: GROUP,
          version: VERSION,
          namespace,
          plural: PLURAL,
          name: ej.metadata.name,
          body: { status: { phase: 'Running', attempts: 1, observedGeneration: 1 } },
        },
        setHeaderOptions('Content-Type', PatchStrategy.MergePatch),
      );
      // Status writes through the main resource are ignored (status subresource).
      await api.patchNamespacedCustomObject(
        {
          group: GROUP,
          version: VERSION,
          namespace,
          plural: PLURAL,
          name: ej.metadata.name,
          body: { status: { phase: 'Failed' } },
        },
        setHeaderOptions('Content-Type', PatchStrategy.MergePatch),
      );
      const got = (await api.getNamespacedCustomObject({
        group: GROUP,
        version: VERSION,
        namespace,
        plural: PLURAL,
        name: ej.metadata.name,
      })) as EmbeddingJob;
      expect(got.status).toMatchObject({ phase: 'Running', attempts: 1 });
      await expect
        .poll(() => events, { timeout: 5000 })
        .toEqual(expect.arrayContaining(['ADDED:-', 'MODIFIED:Running']));

      // Printer columns and the short name work for users of kubectl.
      const table = kubectl('get', 'ej', '-n', namespace);
      expect(table).toMatch(/NAME\s+PHASE\s+ATTEMPTS\s+LINES\s+WORDS\s+COMPACTED\s+AGE/);
      expect(table).toContain(ej.metadata.name);
    } finally {
      watch.abort();
    }
  });

  it.each([
    ['imageId', { imageId: 'not-a-uuid' }],
    ['receiptId', { receiptId: 0 }],
    ['linesKey', { linesKey: '' }],
    ['collections', { collections: ['pixels'] }],
    ['artifactsBucket', { artifactsBucket: 'arn:aws:s3:us-east-1:999999999999:accesspoint/attacker' }],
    ['artifactsBucket', { artifactsBucket: 'arn:aws:s3-object-lambda:us-east-1:999999999999:accesspoint/x' }],
    ['artifactsBucket', { artifactsBucket: 'Upper.Case' }],
    ['artifactsBucket', { artifactsBucket: 'b'.repeat(64) }],
    ['linesKey', { linesKey: 'r/../../other-bucket/secret' }],
    ['linesKey', { linesKey: '/etc/passwd' }],
    ['wordsKey', { wordsKey: 'r//words.ndjson' }],
    ['wordsKey', { wordsKey: 'k'.repeat(1025) }],
  ])('the apiserver rejects an invalid %s (%j)', async (field, override) => {
    const ej = newEmbeddingJob(message, namespace, 'manual');
    ej.metadata.name = `bad-${field.toLowerCase()}-${Math.random().toString(36).slice(2, 8)}`;
    Object.assign(ej.spec, override);
    await expect(
      api.createNamespacedCustomObject({
        group: GROUP,
        version: VERSION,
        namespace,
        plural: PLURAL,
        body: ej,
      }),
    ).rejects.toThrow(new RegExp(`spec\\.${field}`));
  });
});

describe('EmbeddingJob spec is immutable (CEL self == oldSelf)', () => {
  const kc = new KubeConfig();
  let api: CustomObjectsApi;
  const namespace = `crd-imm-${Date.now().toString(36)}`;

  beforeAll(async () => {
    api = await crdNamespace(kc, namespace);
  });

  it('refuses a spec change, still takes metadata and status changes', async () => {
    const ej = newEmbeddingJob(
      {
        image_id: randomUUID(),
        receipt_id: 3,
        artifacts_bucket: 'artifacts',
        lines_key: 'receipts/y/lines.ndjson',
        words_key: 'receipts/y/words.ndjson',
      },
      namespace,
    );
    const ref = { group: GROUP, version: VERSION, namespace, plural: PLURAL, name: ej.metadata.name };
    await api.createNamespacedCustomObject({
      group: GROUP,
      version: VERSION,
      namespace,
      plural: PLURAL,
      body: ej,
    });
    const merge = setHeaderOptions('Content-Type', PatchStrategy.MergePatch);
    for (const spec of [
      { artifactsBucket: 'other-bucket' },
      { linesKey: 'receipts/z/lines.ndjson' },
      { priority: 5 },
    ]) {
      await expect(api.patchNamespacedCustomObject({ ...ref, body: { spec } }, merge)).rejects.toThrow(
        /spec is immutable/,
      );
    }
    await api.patchNamespacedCustomObject(
      { ...ref, body: { metadata: { labels: { touched: 'yes' } } } },
      merge,
    );
    await api.patchNamespacedCustomObjectStatus({ ...ref, body: { status: { phase: 'Running' } } }, merge);
    const got = (await api.getNamespacedCustomObject(ref)) as EmbeddingJob;
    expect(got.spec).toEqual(ej.spec);
    expect(got.metadata.labels?.touched).toBe('yes');
    expect(got.status?.phase).toBe('Running');
  });
});

describe('kubectl-shaped output (issue 16 part 3)', () => {
  const kc = new KubeConfig();
  let api: CustomObjectsApi;
  const namespace = `crd-get-${Date.now().toString(36)}`;
  let name: string;

  beforeAll(async () => {
    api = await crdNamespace(kc, namespace);
    const ej = newEmbeddingJob(
      {
        image_id: randomUUID(),
        receipt_id: 4,
        artifacts_bucket: 'artifacts',
        lines_key: 'receipts/w/lines.ndjson',
        words_key: 'receipts/w/words.ndjson',
      },
      namespace,
    );
    name = ej.metadata.name;
    const ref = { group: GROUP, version: VERSION, namespace, plural: PLURAL };
    await api.createNamespacedCustomObject({ ...ref, body: ej });
    const at = new Date().toISOString();
    await api.patchNamespacedCustomObjectStatus(
      {
        ...ref,
        name,
        body: {
          status: {
            phase: 'Failed',
            attempts: 3,
            message: 'gave up after 3 attempt(s): lines.ndjson is missing',
            conditions: [
              {
                type: 'Running',
                status: 'False',
                reason: 'SourceMissing',
                message: 'x',
                lastTransitionTime: at,
              },
            ],
          },
        },
      },
      setHeaderOptions('Content-Type', PatchStrategy.MergePatch),
    );
  });

  it('kubectl get ej -o wide shows REASON and MESSAGE; the default table does not', () => {
    const wide = kubectl('get', 'ej', '-n', namespace, '-o', 'wide');
    expect(wide.split('\n')[0]).toMatch(
      /^NAME\s+PHASE\s+ATTEMPTS\s+LINES\s+WORDS\s+COMPACTED\s+AGE\s+REASON\s+MESSAGE$/,
    );
    expect(wide).toMatch(new RegExp(`${name}\\s+Failed\\s+3\\s.*SourceMissing\\s+gave up after 3 attempt`));
    expect(kubectl('get', 'ej', '-n', namespace).split('\n')[0]).not.toMatch(/REASON|MESSAGE/);
  });

  it('kubectl get receipts (the category) lists EmbeddingJobs', () => {
    expect(kubectl('get', 'receipts', '-n', namespace, '-o', 'name')).toBe(`embeddingjob.${GROUP}/${name}\n`);
  });

  it('a timestamp that is no RFC 3339 date-time is refused (format: date-time)', async () => {
    await expect(
      api.patchNamespacedCustomObjectStatus(
        {
          group: GROUP,
          version: VERSION,
          namespace,
          plural: PLURAL,
          name,
          body: { status: { startTime: 'yesterday' } },
        },
        setHeaderOptions('Content-Type', PatchStrategy.MergePatch),
      ),
    ).rejects.toThrow(/startTime/);
  });

  it('kubectl embedctl (a kubectl-embedctl on PATH) prints the same rows as kubectl get ej', () => {
    // kubectl finds plugins as `kubectl-<name>` executables on PATH. package.json's bin installs the built CLI under
    // that name (test/unit/cli/kubectl-plugin.test.ts); here a shim runs the source, as the other CLI tests do.
    const dir = mkdtempSync(join(tmpdir(), 'kubectl-plugin-'));
    try {
      const shim = join(dir, 'kubectl-embedctl');
      writeFileSync(
        shim,
        `#!/bin/sh\nexec "${process.execPath}" --import tsx "${join(ROOT, 'cli', 'main.ts')}" "$@"\n`,
      );
      chmodSync(shim, 0o755);
      // Only the shim's directory and the system's: kubectl warns about (and `plugin list` counts) unreadable entries.
      const path = { ...process.env, PATH: `${dir}:/usr/bin:/bin`, LOG_LEVEL: 'warn' };
      const run = (...args: string[]) =>
        execFileSync(join(env.binDir, 'kubectl'), args, { encoding: 'utf8', env: path, cwd: ROOT });
      expect(run('plugin', 'list', '--name-only')).toMatch(/^kubectl-embedctl$/m);
      const out = run(
        'embedctl',
        'get',
        'jobs',
        '--cloud',
        '-n',
        namespace,
        '--kubeconfig',
        env.kubeconfigPath,
        '-o',
        'wide',
      );
      const row = (text: string) =>
        text
          .split('\n')
          .find((l) => l.startsWith(name))!
          .split(/\s{3,}/)
          .filter((c) => !/^\d+[smhd]$/.test(c));
      expect(row(out)).toEqual(row(kubectl('get', 'ej', '-n', namespace, '-o', 'wide')));
      const yaml = run(
        'embedctl',
        'get',
        'jobs',
        name,
        '--cloud',
        '-n',
        namespace,
        '--kubeconfig',
        env.kubeconfigPath,
        '-o',
        'yaml',
      );
      expect(yaml).toMatch(new RegExp(`^kind: EmbeddingJob$`, 'm'));
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});

/**
 * A freshly established CRD's watch cache answers 429 until it has initialised (as informers see after a restart);
 * retry the watch like an informer would.
 */
async function watchUntilStarted(
  kc: KubeConfig,
  path: string,
  onEvent: (type: string, obj: EmbeddingJob) => void,
): Promise<AbortController> {
  for (let attempt = 0; ; attempt++) {
    let failed: unknown;
    const ctl = await new Watch(kc).watch(path, {}, onEvent, (err: unknown) => (failed = err));
    await new Promise((r) => setTimeout(r, 300));
    if (!failed) return ctl;
    ctl.abort();
    if (attempt >= 20) throw failed;
  }
}
