// Proves that every server of the integration environment (test/harness) is real and reachable with the clients
// the project uses. Adapter-level behaviour is tested elsewhere.
import { execFile } from 'node:child_process';
import { join } from 'node:path';
import { promisify } from 'node:util';

import {
  CreateTableCommand,
  DescribeTableCommand,
  DynamoDBClient,
  PutItemCommand,
} from '@aws-sdk/client-dynamodb';
import {
  DescribeStreamCommand,
  DynamoDBStreamsClient,
  GetRecordsCommand,
  GetShardIteratorCommand,
} from '@aws-sdk/client-dynamodb-streams';
import { CreateBucketCommand, GetObjectCommand, PutObjectCommand, S3Client } from '@aws-sdk/client-s3';
import {
  CreateQueueCommand,
  DeleteMessageCommand,
  ReceiveMessageCommand,
  SQSClient,
  SendMessageCommand,
} from '@aws-sdk/client-sqs';
import type { V1Job, V1Pod } from '@kubernetes/client-node';
import { BatchV1Api, CoreV1Api, KubeConfig, VersionApi } from '@kubernetes/client-node';
import { ChromaClient } from 'chromadb';
import OpenAI from 'openai';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';

import '../harness/env.js';
import { waitFor } from '../support/wait.js';

const env = inject('testEnv');
const aws = {
  endpoint: env.aws.endpoint,
  region: env.aws.region,
  credentials: { accessKeyId: env.aws.accessKeyId, secretAccessKey: env.aws.secretAccessKey },
};
const suffix = Date.now().toString(36);

const eventually = <T>(what: string, fn: () => Promise<T | undefined>, timeoutMs = 30_000): Promise<T> =>
  waitFor(what, fn, timeoutMs);

describe('kube-apiserver and kube-controller-manager', () => {
  const kc = new KubeConfig();
  kc.loadFromFile(env.kubeconfigPath);
  const core = kc.makeApiClient(CoreV1Api);
  const batch = kc.makeApiClient(BatchV1Api);
  const namespace = `harness-${suffix}`;

  beforeAll(async () => {
    await core.createNamespace({ body: { metadata: { name: namespace } } });
  });
  afterAll(async () => {
    await core.deleteNamespace({ name: namespace });
  });

  it('serves /version v1.35.4 to client-node and to kubectl with the written kubeconfig', async () => {
    const version = await kc.makeApiClient(VersionApi).getCode();
    expect(version.gitVersion).toBe('v1.35.4');
    const { stdout } = await promisify(execFile)(join(env.binDir, 'kubectl'), [
      `--kubeconfig=${env.kubeconfigPath}`,
      'version',
      '-o=json',
    ]);
    expect((JSON.parse(stdout) as { serverVersion: { gitVersion: string } }).serverVersion.gitVersion).toBe(
      'v1.35.4',
    );
  });

  it('created the namespace, and the controller-manager gave it a default ServiceAccount', async () => {
    const ns = await core.readNamespace({ name: namespace });
    expect(ns.status?.phase).toBe('Active');
    await eventually('default ServiceAccount', () =>
      core.readNamespacedServiceAccount({ name: 'default', namespace }),
    );
  });

  it('runs a Job for real: pod creation, completion, ttlSecondsAfterFinished and garbage collection', async () => {
    const name = 'harness-job';
    const job: V1Job = {
      metadata: { name },
      spec: {
        ttlSecondsAfterFinished: 0,
        backoffLimit: 0,
        template: {
          spec: { restartPolicy: 'Never', containers: [{ name: 'main', image: 'registry.invalid/none:0' }] },
        },
      },
    };
    const created = await batch.createNamespacedJob({ namespace, body: job });

    // The job controller creates the pod (no scheduler and no kubelet: it stays Pending).
    const pod = await eventually<V1Pod>('a pod for the Job', async () => {
      const pods = await core.listNamespacedPod({
        namespace,
        labelSelector: `batch.kubernetes.io/job-name=${name}`,
      });
      return pods.items[0];
    });
    expect(pod.metadata?.ownerReferences?.[0]).toMatchObject({
      kind: 'Job',
      name,
      uid: created.metadata?.uid,
    });
    expect(pod.status?.phase).toBe('Pending');

    // Play kubelet: the pod succeeded.
    const now = new Date();
    pod.status = {
      ...pod.status,
      phase: 'Succeeded',
      startTime: now,
      containerStatuses: [
        {
          name: 'main',
          image: 'registry.invalid/none:0',
          imageID: '',
          ready: false,
          restartCount: 0,
          state: { terminated: { exitCode: 0, reason: 'Completed', startedAt: now, finishedAt: now } },
        },
      ],
    };
    await core.replaceNamespacedPodStatus({ name: pod.metadata!.name!, namespace, body: pod });

    // ttl-after-finished deletes the completed Job; the garbage collector then deletes its pod.
    await eventually('Job deleted after it completed', async () => {
      const jobs = await batch.listNamespacedJob({ namespace });
      return jobs.items.length === 0 ? true : undefined;
    });
    await eventually('pod garbage-collected', async () => {
      const pods = await core.listNamespacedPod({ namespace });
      return pods.items.length === 0 ? true : undefined;
    });
  });
});

describe('moto', () => {
  it('records a PutItem as an INSERT in the DynamoDB stream', async () => {
    const ddb = new DynamoDBClient(aws);
    const streams = new DynamoDBStreamsClient(aws);
    const TableName = `harness-${suffix}`;
    await ddb.send(
      new CreateTableCommand({
        TableName,
        AttributeDefinitions: [{ AttributeName: 'pk', AttributeType: 'S' }],
        KeySchema: [{ AttributeName: 'pk', KeyType: 'HASH' }],
        BillingMode: 'PAY_PER_REQUEST',
        StreamSpecification: { StreamEnabled: true, StreamViewType: 'NEW_AND_OLD_IMAGES' },
      }),
    );
    await ddb.send(new PutItemCommand({ TableName, Item: { pk: { S: 'a' }, n: { N: '1' } } }));

    const { Table } = await ddb.send(new DescribeTableCommand({ TableName }));
    expect(Table?.LatestStreamArn).toBeTruthy();
    const { StreamDescription } = await streams.send(
      new DescribeStreamCommand({ StreamArn: Table!.LatestStreamArn! }),
    );
    const shard = StreamDescription?.Shards?.[0];
    const { ShardIterator } = await streams.send(
      new GetShardIteratorCommand({
        StreamArn: Table!.LatestStreamArn!,
        ShardId: shard!.ShardId!,
        ShardIteratorType: 'TRIM_HORIZON',
      }),
    );
    const { Records } = await streams.send(new GetRecordsCommand({ ShardIterator }));
    expect(Records).toHaveLength(1);
    expect(Records![0]).toMatchObject({
      eventName: 'INSERT',
      dynamodb: { Keys: { pk: { S: 'a' } }, NewImage: { pk: { S: 'a' }, n: { N: '1' } } },
    });
  });

  it('sends and receives an SQS message', async () => {
    const sqs = new SQSClient(aws);
    const { QueueUrl } = await sqs.send(new CreateQueueCommand({ QueueName: `harness-${suffix}` }));
    expect(new URL(QueueUrl!).pathname).toMatch(/^\/\d{12}\/harness-/);
    await sqs.send(new SendMessageCommand({ QueueUrl, MessageBody: '{"hello":"sqs"}' }));
    const { Messages } = await sqs.send(
      new ReceiveMessageCommand({ QueueUrl, WaitTimeSeconds: 2, MaxNumberOfMessages: 1 }),
    );
    expect(Messages?.[0]?.Body).toBe('{"hello":"sqs"}');
    await sqs.send(new DeleteMessageCommand({ QueueUrl, ReceiptHandle: Messages![0]!.ReceiptHandle }));
  });

  it('puts and gets an S3 object', async () => {
    const s3 = new S3Client({ ...aws, forcePathStyle: true });
    const Bucket = `harness-${suffix}`;
    await s3.send(new CreateBucketCommand({ Bucket }));
    await s3.send(new PutObjectCommand({ Bucket, Key: 'a/b.txt', Body: 'hello s3' }));
    const got = await s3.send(new GetObjectCommand({ Bucket, Key: 'a/b.txt' }));
    expect(await got.Body?.transformToString()).toBe('hello s3');
  });
});

describe('chroma', () => {
  it('answers the heartbeat over HTTP and through the JS client', async () => {
    const res = await fetch(`${env.chroma.url}/api/v2/heartbeat`);
    expect(res.status).toBe(200);
    expect(await res.json()).toHaveProperty(['nanosecond heartbeat']);
    const client = new ChromaClient({ host: env.chroma.host, port: env.chroma.port, ssl: false });
    expect(await client.heartbeat()).toBeGreaterThan(0);
  });
});

describe('embeddings', () => {
  it('returns vectors of the configured dimension through the openai SDK', async () => {
    const openai = new OpenAI({ baseURL: env.embeddings.baseUrl, apiKey: env.embeddings.apiKey });
    const res = await openai.embeddings.create({
      model: env.embeddings.model,
      input: ['TOTAL 12.50', 'COFFEE'],
    });
    expect(res.data).toHaveLength(2);
    for (const d of res.data) expect(d.embedding).toHaveLength(env.embeddings.dimensions);
    expect(res.data[0]!.embedding).not.toEqual(res.data[1]!.embedding);
  });
});
