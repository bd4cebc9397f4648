import { describe, expect, it } from 'vitest';
import {
  WorkerSettings,
  parseControllerConfig,
  parseWorkerConfigMap,
  DispatchSettings,
} from '../../../controller/config.js';
import { buildWorkerJob, parseMembers, workerJobName } from '../../../controller/worker-job.js';

const settings = WorkerSettings.parse({ image: 'embedctl:1.0', pvcName: 'chroma' });
const members = [
  { name: 'ej-b', attempt: 1, uid: 'u-b' },
  { name: 'ej-a', attempt: 2, uid: 'u-a' },
];

describe('buildWorkerJob', () => {
  const job = buildWorkerJob(members, 'receipts', settings);
  const spec = job.spec as Record<string, any>; // eslint-disable-line @typescript-eslint/no-explicit-any
  const pod = spec.template.spec;
  const container = pod.containers[0];

  it('names the Job deterministically from members and attempts', () => {
    expect(job.metadata.name).toBe(workerJobName([...members].reverse()));
    expect(workerJobName([{ name: 'ej-a', attempt: 3 }])).not.toBe(
      workerJobName([{ name: 'ej-a', attempt: 2 }]),
    );
    expect(parseMembers(job)).toEqual([
      { name: 'ej-b', attempt: 1 },
      { name: 'ej-a', attempt: 2 },
    ]);
  });

  it('runs the worker on its EmbeddingJobs', () => {
    expect(container.args).toEqual(['worker', '--jobs', 'ej-b,ej-a', '--namespace', 'receipts']);
    expect(container.env[0]).toEqual({ name: 'WORKER_JOB_NAME', value: job.metadata.name });
  });

  it('owns nothing it should not: owner references to every member, no controller flag', () => {
    expect(job.metadata.ownerReferences?.map((o) => [o.name, o.uid, o.controller])).toEqual([
      ['ej-b', 'u-b', false],
      ['ej-a', 'u-a', false],
    ]);
  });

  it('fails fast on bad input / missing source, ignores disruptions, cleans up', () => {
    expect(spec.backoffLimit).toBe(0);
    expect(spec.podReplacementPolicy).toBe('Failed');
    expect(spec.activeDeadlineSeconds).toBe(1800);
    expect(spec.ttlSecondsAfterFinished).toBe(600);
    expect(spec.podFailurePolicy.rules[0]).toMatchObject({
      action: 'FailJob',
      onExitCodes: { operator: 'In', values: [2, 3] },
    });
    expect(spec.podFailurePolicy.rules[1]).toMatchObject({
      action: 'Ignore',
      onPodConditions: [{ type: 'DisruptionTarget' }],
    });
  });

  it('meets the restricted Pod Security profile and mounts Chroma read-only', () => {
    expect(pod.securityContext).toMatchObject({
      runAsNonRoot: true,
      seccompProfile: { type: 'RuntimeDefault' },
    });
    expect(container.securityContext).toMatchObject({
      allowPrivilegeEscalation: false,
      capabilities: { drop: ['ALL'] },
      readOnlyRootFilesystem: true,
    });
    expect(pod.volumes).toContainEqual({
      name: 'chroma',
      persistentVolumeClaim: { claimName: 'chroma', readOnly: true },
    });
    expect(container.volumeMounts).toContainEqual({
      name: 'chroma',
      mountPath: '/mnt/chroma',
      readOnly: true,
    });
    expect(pod.restartPolicy).toBe('Never');
  });

  it('limits /tmp to scratchSize when the ConfigMap sets it, and leaves it unlimited otherwise', () => {
    expect(pod.volumes).toContainEqual({ name: 'tmp', emptyDir: {} });
    const limited = buildWorkerJob(members, 'receipts', { ...settings, scratchSize: '2Gi' });
    const limitedPod = (limited.spec as Record<string, any>).template.spec; // eslint-disable-line @typescript-eslint/no-explicit-any
    expect(limitedPod.volumes).toContainEqual({ name: 'tmp', emptyDir: { sizeLimit: '2Gi' } });
  });
});

describe('configuration', () => {
  const env = {
    NAMESPACE: 'receipts',
    POD_NAME: 'controller-0',
    EMBED_QUEUE_URL: 'http://127.0.0.1:5000/123/embed',
    EMBED_DLQ_URL: 'http://127.0.0.1:5000/123/embed-dlq',
    AWS_REGION: 'us-east-1',
    ARTIFACTS_BUCKET: 'artifacts',
  };

  it('applies documented defaults', () => {
    const c = parseControllerConfig(env);
    expect(c.ingest).toMatchObject({ pollers: 4, waitSeconds: 20, maxOutstanding: 2000 });
    expect(c.dispatch).toMatchObject({ batchSize: 10, maxActivePods: 20 });
    expect(c.leader).toMatchObject({ enabled: true, leaseDurationSeconds: 15 });
    expect(c.metricsPort).toBe(9090);
  });

  it('names the variable and the bad value', () => {
    expect(() => parseControllerConfig({ ...env, EMBED_QUEUE_URL: 'nope', METRICS_PORT: 'x' })).toThrow(
      /EMBED_QUEUE_URL: .*\(got "nope"\).*METRICS_PORT/,
    );
    expect(() => parseControllerConfig({ ...env, NAMESPACE: undefined })).toThrow(/NAMESPACE: .*\(not set\)/);
  });

  it('takes the image-pull grace from its flag, and names the flag when it is bad', () => {
    expect(parseControllerConfig(env).status.imagePullGraceSeconds).toBe(60);
    expect(parseControllerConfig(env, { imagePullGrace: '20' }).status.imagePullGraceSeconds).toBe(20);
    expect(() => parseControllerConfig(env, { imagePullGrace: 'soon' })).toThrow(/--image-pull-grace/);
  });

  it('reads worker settings and dispatch overrides from ConfigMap strings', () => {
    const { worker, dispatch } = parseWorkerConfigMap(
      {
        image: 'img:2',
        batchSize: '5',
        maxActivePods: '3',
        env: '[{"name":"A","value":"1"}]',
        resources: '{"limits":{"memory":"1Gi"}}',
      },
      DispatchSettings.parse({}),
    );
    expect(worker.image).toBe('img:2');
    expect(worker.env).toEqual([{ name: 'A', value: '1' }]);
    expect(dispatch).toMatchObject({ batchSize: 5, maxActivePods: 3, batchWindowSeconds: 2 });
    expect(() => parseWorkerConfigMap({ image: 'i', resources: '{bad' }, DispatchSettings.parse({}))).toThrow(
      /ConfigMap key resources: must be JSON/,
    );
  });
});
