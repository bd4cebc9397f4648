import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { Registry } from 'prom-client';
import { metricsHost } from '../listen-host.js';
import type { Logger } from '../log.js';

export interface Probes {
  /** Liveness (`/healthz`): false restarts the pod (a watch that stays dead, a compactor that stopped progressing). */
  healthy(): boolean;
  /** Readiness (`/readyz`): caches synced, lease held. */
  ready(): boolean;
}

export interface HealthServerOptions {
  /** 0 picks a free port (tests). */
  port: number;
  /** Default: loopback outside a cluster, every interface in a pod (core/listen-host.ts). */
  host?: string;
  registry: Registry;
  probes: Probes;
  log: Logger;
}

/**
 * `/metrics` (the given registry), `/healthz` and `/readyz` (the probes: 200 or 503) on one port — the one health
 * endpoint of every long-running program. Either a Runnable (`start` serves until the signal aborts) or, for a
 * program without a manager, `listen` … `close`.
 */
export class HealthServer {
  private server: Server | undefined;
  constructor(private readonly opts: HealthServerOptions) {}

  get port(): number | undefined {
    return (this.server?.address() as AddressInfo | null)?.port;
  }

  get address(): string | undefined {
    return (this.server?.address() as AddressInfo | null)?.address;
  }

  async listen(): Promise<void> {
    const { registry, probes } = this.opts;
    const server = createServer((req, res) => {
      const path = (req.url ?? '/').split('?')[0];
      if (path === '/metrics') {
        registry.metrics().then(
          (text) => res.writeHead(200, { 'Content-Type': registry.contentType }).end(text),
          (err: unknown) => res.writeHead(500).end(String(err)),
        );
      } else if (path === '/healthz' || path === '/readyz') {
        const ok = path === '/healthz' ? probes.healthy() : probes.ready();
        res.writeHead(ok ? 200 : 503, { 'Content-Type': 'text/plain' }).end(ok ? 'ok\n' : 'not ok\n');
      } else {
        res.writeHead(404).end();
      }
    });
    this.server = server;
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen(this.opts.port, this.opts.host ?? metricsHost(), () => resolve());
    });
    this.opts.log.info({ address: this.address, port: this.port }, 'serving /metrics, /healthz, /readyz');
  }

  async close(): Promise<void> {
    const server = this.server;
    if (!server) return;
    await new Promise<void>((resolve) => server.close(() => resolve()));
    server.closeAllConnections();
  }

  /** Runnable: serves until `signal` aborts. */
  async start(signal: AbortSignal): Promise<void> {
    await this.listen();
    await new Promise<void>((resolve) => {
      if (signal.aborted) resolve();
      signal.addEventListener('abort', () => resolve(), { once: true });
    });
    await this.close();
  }
}
