import { createServer } from 'node:net';

/** Ports handed out in this process, so two concurrent allocations never return the same port. */
const handedOut = new Set<number>();

function bindEphemeral(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.unref();
    server.once('error', reject);
    server.listen({ host: '127.0.0.1', port: 0, exclusive: true }, () => {
      const address = server.address();
      const port = typeof address === 'object' && address ? address.port : 0;
      server.close(() => resolve(port));
    });
  });
}

/** A free TCP port on 127.0.0.1 (released again before it is returned; the caller binds it next). */
export async function freePort(): Promise<number> {
  for (;;) {
    const port = await bindEphemeral();
    if (!handedOut.has(port)) {
      handedOut.add(port);
      return port;
    }
  }
}

/** Hands out free ports and remembers them, so teardown can check that none is still bound. */
export class PortAllocator {
  readonly allocated: number[] = [];

  async next(): Promise<number> {
    const port = await freePort();
    this.allocated.push(port);
    return port;
  }

  /** The allocated ports that something still listens on. */
  async stillBound(): Promise<number[]> {
    const bound = await Promise.all(this.allocated.map(isPortBound));
    return this.allocated.filter((_, i) => bound[i]);
  }
}

/** True when something is listening on 127.0.0.1:port (a bind attempt fails with EADDRINUSE). */
export function isPortBound(port: number): Promise<boolean> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.once('error', (err: NodeJS.ErrnoException) =>
      err.code === 'EADDRINUSE' ? resolve(true) : reject(err),
    );
    server.listen({ host: '127.0.0.1', port, exclusive: true }, () => server.close(() => resolve(false)));
  });
}
