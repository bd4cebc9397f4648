import { ENV, processEnv, type Env } from './config/env.js';

/**
 * Where a program's /metrics, /healthz and /readyz listen when no host is given: on every interface inside a
 * Kubernetes pod (the kubelet's probes and Prometheus reach the pod IP, and the NetworkPolicy limits who may), on
 * loopback anywhere else (unauthenticated /metrics on a workstation must not be on the LAN). The kubelet sets
 * KUBERNETES_SERVICE_HOST in every pod.
 */
export function metricsHost(env: Env = processEnv()): string {
  return env[ENV.KUBERNETES_SERVICE_HOST] ? '0.0.0.0' : '127.0.0.1';
}
