import { existsSync, mkdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';

import type { ApiServer } from '../apiserver.js';
import type { Component, ComponentContext } from '../component.js';
import { httpOk } from '../http.js';
import { waitUntilReady } from '../processes.js';

/** kube-scheduler against `api`, without leader election, serving /healthz on a free loopback port. */
export async function startScheduler(
  ctx: ComponentContext,
  api: ApiServer,
  timeoutMs = 60_000,
): Promise<Component> {
  const certDir = join(ctx.runDir, 'scheduler');
  mkdirSync(certDir, { recursive: true });
  const port = await ctx.port();
  const proc = ctx.registry.spawn({
    name: 'kube-scheduler',
    command: join(ctx.binDir, 'kube-scheduler'),
    args: [
      `--kubeconfig=${api.kubeconfigPath}`,
      `--authentication-kubeconfig=${api.kubeconfigPath}`,
      `--authorization-kubeconfig=${api.kubeconfigPath}`,
      '--authentication-skip-lookup=true', // token auth only, as for the controller-manager
      '--leader-elect=false',
      '--bind-address=127.0.0.1',
      `--secure-port=${port}`,
      `--cert-dir=${certDir}`,
      '--profiling=false',
    ],
  });
  const cert = join(certDir, 'kube-scheduler.crt');
  await waitUntilReady(
    proc,
    httpOk(`https://127.0.0.1:${port}/healthz`, {
      ca: () => (existsSync(cert) ? readFileSync(cert, 'utf8') : undefined),
    }),
    timeoutMs,
    200,
  );
  return { name: 'kube-scheduler', stop: () => proc.stop() };
}
