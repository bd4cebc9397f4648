import { mkdirSync } from 'node:fs';
import { join } from 'node:path';

import type { ApiServer } from '../apiserver.js';
import type { Component, ComponentContext } from '../component.js';
import { httpGet } from '../http.js';
import { waitUntilReady } from '../processes.js';
import { waitEstablished } from './crds.js';
import { sh } from './host.js';

export const KEDA_NAMESPACE = 'keda';

/**
 * A CA and a serving certificate for the operator's gRPC metrics service: it loads them at start even with cert
 * rotation off. Nothing connects to it here (no metrics apiserver: KEDA alone scales 0↔1).
 */
function writeCerts(dir: string): void {
  mkdirSync(dir, { recursive: true });
  const o = (args: string[]): void => void sh('openssl', args, { timeoutMs: 30_000 });
  o([
    'req',
    '-x509',
    '-newkey',
    'rsa:2048',
    '-nodes',
    '-keyout',
    join(dir, 'ca.key'),
    '-out',
    join(dir, 'ca.crt'),
    '-days',
    '2',
    '-subj',
    '/CN=keda-ca',
  ]);
  o([
    'req',
    '-newkey',
    'rsa:2048',
    '-nodes',
    '-keyout',
    join(dir, 'tls.key'),
    '-out',
    join(dir, 'tls.csr'),
    '-subj',
    '/CN=keda-operator',
    '-addext',
    'subjectAltName=DNS:localhost,IP:127.0.0.1',
  ]);
  o([
    'x509',
    '-req',
    '-in',
    join(dir, 'tls.csr'),
    '-CA',
    join(dir, 'ca.crt'),
    '-CAkey',
    join(dir, 'ca.key'),
    '-CAcreateserial',
    '-out',
    join(dir, 'tls.crt'),
    '-days',
    '2',
    '-copy_extensions',
    'copy',
  ]);
}

/**
 * The real KEDA operator (built from its Go module), out of cluster with the admin kubeconfig: its CRDs applied
 * server-side, namespace `keda`, every listener on loopback, no webhook/APIService patching.
 */
export async function startKeda(
  ctx: ComponentContext,
  opts: { api: ApiServer; kedaDir: string; kubectl: (args: string[]) => string; timeoutMs?: number },
): Promise<Component> {
  opts.kubectl(['apply', '--server-side', '-f', join(opts.kedaDir, 'crds')]);
  waitEstablished(opts.kubectl, ['scaledobjects.keda.sh', 'triggerauthentications.keda.sh']);
  opts.kubectl(['create', 'namespace', KEDA_NAMESPACE]);
  const certDir = join(ctx.runDir, 'keda', 'certs');
  writeCerts(certDir);
  const [metrics, probes, grpc] = [await ctx.port(), await ctx.port(), await ctx.port()];
  const proc = ctx.registry.spawn({
    name: 'keda-operator',
    command: join(opts.kedaDir, 'bin', 'keda-operator'),
    args: [
      '--leader-elect=false',
      `--metrics-bind-address=127.0.0.1:${metrics}`,
      `--health-probe-bind-address=127.0.0.1:${probes}`,
      `--metrics-service-bind-address=127.0.0.1:${grpc}`,
      `--cert-dir=${certDir}`,
      `--ca-dir=${certDir}`,
      '--enable-cert-rotation=false',
      '--enable-webhook-patching=false',
      '--enable-apiservice-patching=false',
      '--zap-log-level=info',
    ],
    env: {
      ...process.env,
      KUBECONFIG: opts.api.kubeconfigPath,
      WATCH_NAMESPACE: '', // must be set; empty = every namespace
      KEDA_CLUSTER_OBJECT_NAMESPACE: KEDA_NAMESPACE, // else it reads the in-pod service-account namespace file
      POD_NAMESPACE: KEDA_NAMESPACE,
    },
  });
  await waitUntilReady(
    proc,
    async () => (await httpGet(`http://127.0.0.1:${probes}/readyz`)).status === 200,
    opts.timeoutMs ?? 60_000,
    250,
  );
  return { name: 'keda-operator', stop: () => proc.stop() };
}
