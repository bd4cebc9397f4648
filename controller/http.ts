import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { Registry } from 'prom-client';
import { metricsHost } from '../core/listen-host.js';
import type { Logger } from '../core/log.js';

export interface Probes {
  /** Liveness: false restarts the pod (e.g. a watch that stays dead). */
  healthy(): boolean;
  /** Readiness: caches synced. */
  ready(): boolean;
}

/** `/metrics`, `/healthz`, `/readyz` on one port. `port: 0` picks a free one (tests). */
export class HttpServer {
  private server: Server | undefined;
  constructor(
    private readonly opts: { port: number; host?: string; registry: Registry; probes: Probes; log: Logger },
  ) {}

  get port(): number | undefined {
    return (this.server?.address() as AddressInfo | null)?.port;
  }

  /** The address it listens on (loopback outside a cluster: core/listen-host.ts). */
  get address(): string | undefined {
    return (this.server?.address() as AddressInfo | null)?.address;
  }

  async start(signal: AbortSignal): Promise<void> {
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
        res.writeHead(ok ? 200 : 503, { 'Content-Type': 'text/plain' }).end(ok ? 'ok' : 'not ok');
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
    await new Promise<void>((resolve) => {
      if (signal.aborted) resolve();
      signal.addEventListener('abort', () => resolve(), { once: true });
    });
    await new Promise<void>((resolve) => server.close(() => resolve()));
    server.closeAllConnections();
  }
}
