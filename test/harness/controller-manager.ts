import { existsSync, mkdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';

import type { ApiServer } from './apiserver.js';
import { SERVICE_CLUSTER_IP_RANGE } from './apiserver.js';
import type { Component, ComponentContext } from './component.js';
import { httpGet, httpOk } from './http.js';
import { waitUntilReady } from './processes.js';

/**
 * Controllers left out: they need a cloud provider or node CIDR allocation, and there are no nodes here. Everything
 * else (job, garbage collector, ttl-after-finished, namespace, serviceaccount, …) runs for real.
 */
export const EXCLUDED_CONTROLLERS = [
  'node-ipam-controller',
  'node-route-controller',
  'service-lb-controller',
  'cloud-node-lifecycle-controller',
];

export interface ControllerManager extends Component {
  /** `https://127.0.0.1:<port>` (healthz, metrics). */
  url: string;
}

/**
 * kube-controller-manager against `api`, without leader election, serving on a free loopback port. Ready once
 * /healthz answers and the service-account controller has created `default/default` (which also proves it talks
 * to the apiserver, and is what the ServiceAccount admission plugin needs before pods can be created).
 */
export async function startControllerManager(
  ctx: ComponentContext,
  api: ApiServer,
  timeoutMs = 90_000,
): Promise<ControllerManager> {
  const certDir = join(ctx.runDir, 'controller-manager');
  mkdirSync(certDir, { recursive: true });
  const port = await ctx.port();
  const url = `https://127.0.0.1:${port}`;
  const proc = ctx.registry.spawn({
    name: 'kube-controller-manager',
    command: join(ctx.binDir, 'kube-controller-manager'),
    args: [
      `--kubeconfig=${api.kubeconfigPath}`,
      `--authentication-kubeconfig=${api.kubeconfigPath}`,
      `--authorization-kubeconfig=${api.kubeconfigPath}`,
      // Token auth only: the apiserver publishes no client-CA configmap for the controller-manager to look up.
      '--authentication-skip-lookup=true',
      '--leader-elect=false',
      '--bind-address=127.0.0.1',
      `--secure-port=${port}`,
      `--cert-dir=${certDir}`,
      `--service-account-private-key-file=${api.saPrivateKeyFile}`,
      `--root-ca-file=${api.caFile}`,
      '--use-service-account-credentials=false',
      `--service-cluster-ip-range=${SERVICE_CLUSTER_IP_RANGE}`,
      `--controllers=*,${EXCLUDED_CONTROLLERS.map((c) => `-${c}`).join(',')}`,
      '--profiling=false',
    ],
  });
  const servingCert = join(certDir, 'kube-controller-manager.crt');
  const readCert = (): string | undefined =>
    existsSync(servingCert) ? readFileSync(servingCert, 'utf8') : undefined;
  const defaultServiceAccount = `${api.server}/api/v1/namespaces/default/serviceaccounts/default`;
  await waitUntilReady(
    proc,
    async () =>
      (await httpOk(`${url}/healthz`, { ca: readCert })()) &&
      (await httpGet(defaultServiceAccount, { ca: api.caPem, token: api.token })).status === 200,
    timeoutMs,
    200,
  );
  return { name: 'kube-controller-manager', url, stop: () => proc.stop() };
}
