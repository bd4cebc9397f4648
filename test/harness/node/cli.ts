/**
 * `npm run cluster -- up | down | status`: one real Kubernetes node on this machine (kubelet, containerd, KEDA),
 * with the `node` charts deployed. See docs/deploy.md "A real node on this machine".
 *
 * `up` runs in the foreground until Ctrl-C (or `down` from another shell), then tears everything down and checks
 * that the host is as it was. State: /run/receipt-embeddings-node.json while it runs.
 */
import { existsSync, readFileSync, rmSync, writeFileSync } from 'node:fs';

import { kubectlFor, startNodeCluster } from './cluster.js';
import type { NodeClusterEnv } from './cluster.js';

const STATE = '/run/receipt-embeddings-node.json';
interface State {
  owner: number;
  env: NodeClusterEnv;
}

function usage(message: string): never {
  process.stderr.write(`${message}\nusage: npm run cluster -- up | down | status\n`);
  process.exit(2);
}

function readState(): State | undefined {
  if (!existsSync(STATE)) return undefined;
  const state = JSON.parse(readFileSync(STATE, 'utf8')) as State;
  try {
    process.kill(state.owner, 0);
    return state;
  } catch {
    rmSync(STATE, { force: true }); // its owner died; the next `up` reaps what it left
    return undefined;
  }
}

function howTo(env: NodeClusterEnv): string {
  const q = env.config.queues;
  return [
    `node ${env.nodeName} is Ready; the charts are deployed in namespace ${env.namespace}.`,
    '',
    `  export KUBECONFIG=${env.kubeconfigPath}`,
    `  ${env.binDir}/kubectl -n ${env.namespace} get deploy,pods,ej`,
    '',
    'Submit receipts (a folder of lines.ndjson/words.ndjson pairs) as the original system did, one EMBED message each:',
    `  AWS_ENDPOINT_URL=${env.aws.endpoint} AWS_REGION=${env.aws.region} AWS_ACCESS_KEY_ID=${env.aws.accessKeyId} \\`,
    `  AWS_SECRET_ACCESS_KEY=${env.aws.secretAccessKey} EMBED_QUEUE_URL=${q.embed} ARTIFACTS_BUCKET=${env.config.buckets.artifacts} \\`,
    '    npx embedctl submit --cloud <folder>',
    '',
    'Then watch KEDA scale the compactor 0→1→0, and query the live snapshot from outside the cluster:',
    `  CHROMA_ROOT=${env.chromaHostPath} npx embedctl query "MILK" --cloud`,
    '',
    `Prometheus (what the ServiceMonitor selects, kube-state-metrics, the PrometheusRule): ${env.prometheusUrl}`,
    '  import dashboards/embedctl.json into a Grafana whose Prometheus data source is that URL.',
    '',
    'Ctrl-C (or `npm run cluster -- down`) stops the node and puts the host back as it was.',
  ].join('\n');
}

async function up(): Promise<void> {
  if (readState()) usage(`a node is already up (state ${STATE}); \`npm run cluster -- down\` first`);
  const cluster = await startNodeCluster();
  writeFileSync(STATE, JSON.stringify({ owner: process.pid, env: cluster.env } satisfies State));
  process.stdout.write(`${howTo(cluster.env)}\n`);
  const down = (): void => {
    process.stdout.write('stopping the node…\n');
    void cluster
      .stop()
      .then(() => process.stdout.write('host restored\n'))
      .catch((err: unknown) => {
        process.stderr.write(`${err instanceof Error ? err.message : String(err)}\n`);
        process.exitCode = 1;
      })
      .finally(() => rmSync(STATE, { force: true }));
  };
  process.once('SIGINT', down);
  process.once('SIGTERM', down);
}

async function down(): Promise<void> {
  const state = readState();
  if (!state) {
    process.stdout.write('no node is up\n');
    return;
  }
  process.kill(state.owner, 'SIGTERM');
  const deadline = Date.now() + 180_000;
  while (existsSync(STATE)) {
    if (Date.now() > deadline) throw new Error(`node (pid ${state.owner}) did not stop within 180 s`);
    await new Promise((r) => setTimeout(r, 500));
  }
  process.stdout.write('node stopped\n');
}

function status(): void {
  const state = readState();
  if (!state) {
    process.stdout.write('no node is up\n');
    process.exitCode = 3;
    return;
  }
  const kubectl = kubectlFor(state.env.binDir, state.env.kubeconfigPath);
  process.stdout.write(kubectl(['get', 'nodes,deploy,pods,scaledobjects', '-A']));
  process.stdout.write(`\n${howTo(state.env)}\n`);
}

const [command, ...rest] = process.argv.slice(2);
if (rest.length) usage(`unexpected arguments: ${rest.join(' ')}`);
if (command === 'up') await up();
else if (command === 'down') await down();
else if (command === 'status') status();
else usage(command ? `unknown command: ${command}` : 'missing command');
