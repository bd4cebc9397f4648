import { describe, expect, it } from 'vitest';

import { workerImageAllowlist, workerSecretAllowlist } from '../../../cdk8s/charts/admission.js';
import { ENVIRONMENT_NAMES, loadEnvironment } from '../../../cdk8s/config.js';
import { NAMES } from '../../../cdk8s/common.js';
import { workerConfigData } from '../../../cdk8s/worker-config.js';
import { DispatchSettings, parseWorkerConfigMap } from '../../../controller/config.js';
import {
  WORKER_SERVICE_ACCOUNT,
  WorkerConfigRefused,
  type WorkerPolicy,
} from '../../../controller/worker-policy.js';
import { imageAllowed, imageRepository } from '../../../core/contracts/image-reference.js';

const policy: WorkerPolicy & { configMap: string } = {
  configMap: 'embedctl-worker',
  serviceAccountName: WORKER_SERVICE_ACCOUNT,
  allowedImages: ['registry.example/receipt-embeddings'],
  allowedSecrets: ['openai'],
};
const good = {
  image: 'registry.example/receipt-embeddings:0.1.0',
  serviceAccountName: 'embedctl-worker',
  env: JSON.stringify([
    {
      name: 'OPENAI_API_KEY',
      valueFrom: { secretKeyRef: { name: 'openai', key: 'api-key', optional: true } },
    },
  ]),
};
const parse = (data: Record<string, string>) =>
  parseWorkerConfigMap(data, DispatchSettings.parse({}), policy);
const refusal = (data: Record<string, string>): string[] => {
  try {
    parse(data);
  } catch (err) {
    if (err instanceof WorkerConfigRefused) return err.problems;
    throw err;
  }
  return [];
};

describe('worker policy (the worker ConfigMap cannot escalate through the Jobs it describes)', () => {
  it('accepts the fixed ServiceAccount, an allowed image and the OpenAI Secret', () => {
    expect(parse(good).worker.serviceAccountName).toBe('embedctl-worker');
  });

  it('refuses another ServiceAccount, naming the key', () => {
    expect(refusal({ ...good, serviceAccountName: 'embedctl-compactor' })).toEqual([
      'serviceAccountName: must be "embedctl-worker" (got "embedctl-compactor")',
    ]);
  });

  it.each([
    'registry.example/receipt-embeddings-evil:1',
    'evil.example/receipt-embeddings:0.1.0',
    'registry.example/other:0.1.0',
  ])('refuses image %s', (image) => {
    expect(refusal({ ...good, image })).toEqual([expect.stringMatching(/^image: .* is not allowed/)]);
  });

  it('refuses env that references another Secret', () => {
    const env = JSON.stringify([
      { name: 'X', valueFrom: { secretKeyRef: { name: 'compactor-keys', key: 'k' } } },
    ]);
    expect(refusal({ ...good, env })).toEqual([
      'env[0] (X): may not reference Secret "compactor-keys" (allowed: openai)',
    ]);
  });

  it('refuses every image when no allowlist is set', () => {
    expect(() =>
      parseWorkerConfigMap(good, DispatchSettings.parse({}), { ...policy, allowedImages: [] }),
    ).toThrow(/none; set --allowed-images/);
  });

  it.each([
    ['registry.example/repo:1', 'registry.example/repo', true],
    ['registry.example/repo@sha256:abc', 'registry.example/repo', true],
    ['registry.example/repo', 'registry.example/repo', true],
    ['registry.example/repo2:1', 'registry.example/repo', false],
    ['registry.example/team/x:1', 'registry.example/team/', true],
    ['registry.example/repo@sha256:abc', 'registry.example/repo@sha256:abc', true],
    ['registry.example/repo@sha256:abd', 'registry.example/repo@sha256:abc', false],
  ])('imageAllowed(%s, [%s]) is %s', (image, prefix, want) => {
    expect(imageAllowed(image, [prefix])).toBe(want);
  });

  it('imageRepository drops tag and digest, keeping a registry port', () => {
    expect(imageRepository('localhost:5000/a/b:dev')).toBe('localhost:5000/a/b');
    expect(imageRepository('r/x@sha256:00')).toBe('r/x');
    expect(imageRepository('r/x')).toBe('r/x');
  });

  it.each(ENVIRONMENT_NAMES)('accepts the worker ConfigMap the charts write for %s', (name) => {
    const cfg = loadEnvironment(name);
    expect(NAMES.worker).toBe(WORKER_SERVICE_ACCOUNT);
    const data = workerConfigData(cfg);
    expect(() =>
      parseWorkerConfigMap(data, DispatchSettings.parse({}), {
        configMap: NAMES.workerConfigMap,
        serviceAccountName: WORKER_SERVICE_ACCOUNT,
        allowedImages: workerImageAllowlist(cfg),
        allowedSecrets: workerSecretAllowlist(cfg),
      }),
    ).not.toThrow();
  });
});
