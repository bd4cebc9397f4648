import type { KubeConfig } from '@kubernetes/client-node';
import { ENV, processEnv, type Env } from '../config/env.js';
import { loadCredentials } from './credentials.js';
import { KubeRest } from './rest.js';

export interface KubeClientOptions {
  /** Path of a kubeconfig file. Default: in-cluster when running in a pod, else $KUBECONFIG / ~/.kube/config. */
  kubeconfig?: string;
  /** Connection pool size. Default 32. */
  maxSockets?: number;
}

/**
 * Loads credentials (file, in-cluster, or default chain) into a client-node KubeConfig. Imports client-node on
 * demand: the package costs ~80 MB of RSS, so processes that only need `KubeRest` should use `makeKubeClient`.
 */
export async function loadKubeConfig(
  opts: KubeClientOptions = {},
  env: Env = processEnv(),
): Promise<KubeConfig> {
  const { KubeConfig } = await import('@kubernetes/client-node');
  const kc = new KubeConfig();
  if (opts.kubeconfig) kc.loadFromFile(opts.kubeconfig);
  else if (env[ENV.KUBERNETES_SERVICE_HOST]) kc.loadFromCluster();
  else kc.loadFromDefault();
  return kc;
}

/**
 * The one factory the programs use: a keep-alive JSON client for the configured cluster. Static credentials
 * (in-cluster, token, client certificate) are read directly; only kubeconfigs that need client-node's auth machinery
 * (exec plugins, auth providers, proxies, merged files) load client-node.
 */
export async function makeKubeClient(
  opts: KubeClientOptions = {},
  env: Env = processEnv(),
): Promise<KubeRest> {
  const pool = opts.maxSockets === undefined ? {} : { maxSockets: opts.maxSockets };
  const creds = loadCredentials(opts, env);
  if (creds) return KubeRest.fromCredentials(creds, pool);
  return KubeRest.create(await loadKubeConfig(opts, env), pool);
}
