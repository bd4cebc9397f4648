import { inject } from 'vitest';

import { kubectlFor, type NodeClusterEnv } from '../harness/node/cluster.js';
import '../harness/node/global-setup.js';
export { announce, awsOf } from '../harness/node/announce.js';
import { waitFor as waitForValue } from '../support/wait.js';

/** `waitFor` (test/support/wait.ts), polling once a second by default: each probe here runs kubectl. */
export const waitFor = <T>(
  what: string,
  probe: () => Promise<T | undefined> | T | undefined,
  timeoutMs: number,
  intervalMs = 1_000,
): Promise<T> => waitForValue(what, probe, timeoutMs, intervalMs);

export function nodeEnv(): NodeClusterEnv {
  return inject('nodeEnv');
}

/** kubectl 1.35.4 against the node, as admin; throws with stderr on a non-zero exit. */
export function kubectl(env: NodeClusterEnv, args: string[], opts: { input?: string } = {}): string {
  return kubectlFor(env.binDir, env.kubeconfigPath, 60_000)(args, opts.input);
}

export function kubectlJson<T>(env: NodeClusterEnv, args: string[]): T {
  return JSON.parse(kubectl(env, [...args, '-o', 'json'])) as T;
}

export interface EmbeddingJobItem {
  metadata: { name: string };
  spec: { imageId: string; receiptId: number };
  status?: {
    phase?: string;
    reason?: string;
    message?: string;
    conditions?: { type: string; status: string; reason?: string; message?: string }[];
  };
}

export function embeddingJobs(env: NodeClusterEnv): EmbeddingJobItem[] {
  return kubectlJson<{ items: EmbeddingJobItem[] }>(env, ['-n', env.namespace, 'get', 'embeddingjobs']).items;
}

export function compactorReplicas(env: NodeClusterEnv): { spec: number; ready: number } {
  const d = kubectlJson<{ spec: { replicas?: number }; status: { readyReplicas?: number } }>(env, [
    '-n',
    env.namespace,
    'get',
    'deploy/embedctl-compactor',
  ]);
  return { spec: d.spec.replicas ?? 0, ready: d.status.readyReplicas ?? 0 };
}
