// Metrics listeners (issue 18, item 12): the controller's and the compactor's /metrics servers listen on loopback
// outside a cluster (KUBERNETES_SERVICE_HOST unset), on every interface in a pod. Real sockets.
import { afterEach, describe, expect, it } from 'vitest';
import { Registry } from 'prom-client';
import { HealthServer } from '../../../core/http/health-server.js';
import { metricsHost } from '../../../core/listen-host.js';
import { createLogger } from '../../../core/log.js';

const saved = process.env.KUBERNETES_SERVICE_HOST;
afterEach(() => {
  if (saved === undefined) delete process.env.KUBERNETES_SERVICE_HOST;
  else process.env.KUBERNETES_SERVICE_HOST = saved;
});
const probes = { healthy: () => true, ready: () => true };

const newServer = () =>
  new HealthServer({ port: 0, registry: new Registry(), probes, log: createLogger('test', 'silent') });

/** The controller runs the health server as a Runnable. */
async function controllerAddress(): Promise<string | undefined> {
  const server = newServer();
  const stop = new AbortController();
  const running = server.start(stop.signal);
  while (server.port === undefined) await new Promise((r) => setTimeout(r, 5));
  const address = server.address;
  stop.abort();
  await running;
  return address;
}

/** The compactor listens and closes it around its run. */
async function compactorAddress(): Promise<string | undefined> {
  const health = newServer();
  await health.listen();
  const address = health.address;
  await health.close();
  return address;
}

describe('metrics listeners', () => {
  it('listen on 127.0.0.1 when not in a cluster', async () => {
    delete process.env.KUBERNETES_SERVICE_HOST;
    expect(await controllerAddress()).toBe('127.0.0.1');
    expect(await compactorAddress()).toBe('127.0.0.1');
  });

  it('listen on every interface in a pod (KUBERNETES_SERVICE_HOST set)', async () => {
    process.env.KUBERNETES_SERVICE_HOST = '10.96.0.1';
    expect(await controllerAddress()).toBe('0.0.0.0');
    expect(await compactorAddress()).toBe('0.0.0.0');
    expect(metricsHost({})).toBe('127.0.0.1');
  });
});
