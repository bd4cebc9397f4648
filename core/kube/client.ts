import { KubeConfig } from '@kubernetes/client-node';
import { KubeRest } from './rest.js';

export interface KubeClientOptions {
  /** Path of a kubeconfig file. Default: in-cluster when running in a pod, else $KUBECONFIG / ~/.kube/config. */
  kubeconfig?: string;
  /** Connection pool size. Default 32. */
  maxSockets?: number;
}

/** Loads credentials (file, in-cluster, or default chain) into a KubeConfig. */
export function loadKubeConfig(
  opts: KubeClientOptions = {},
  env: NodeJS.ProcessEnv = process.env,
): KubeConfig {
  const kc = new KubeConfig();
  if (opts.kubeconfig) kc.loadFromFile(opts.kubeconfig);
  else if (env.KUBERNETES_SERVICE_HOST) kc.loadFromCluster();
  else kc.loadFromDefault();
  return kc;
}

/** The one factory the programs use: a keep-alive JSON client for the configured cluster. */
export async function makeKubeClient(
  opts: KubeClientOptions = {},
  env: NodeJS.ProcessEnv = process.env,
): Promise<KubeRest> {
  return KubeRest.create(
    loadKubeConfig(opts, env),
    opts.maxSockets === undefined ? {} : { maxSockets: opts.maxSockets },
  );
}
