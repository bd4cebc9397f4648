import { processEnv, type Env } from '../config/env.js';
import { loadCredentials } from './credentials.js';
import { KubeRest } from './rest.js';

export interface KubeClientOptions {
  /** Path of a kubeconfig file. Default: in-cluster when running in a pod, else $KUBECONFIG / ~/.kube/config. */
  kubeconfig?: string;
  /** Connection pool size. Default 32. */
  maxSockets?: number;
}

/** The one factory the programs use: a keep-alive JSON client for the configured cluster (credentials.ts). */
export function makeKubeClient(opts: KubeClientOptions = {}, env: Env = processEnv()): KubeRest {
  return KubeRest.fromCredentials(
    loadCredentials(opts, env),
    opts.maxSockets === undefined ? {} : { maxSockets: opts.maxSockets },
  );
}
