import { mkdirSync } from 'node:fs';
import { join } from 'node:path';

import type { Component, ComponentContext } from './component.js';
import { httpOk } from './http.js';
import { waitUntilReady } from './processes.js';

export interface Etcd extends Component {
  /** Client URL, `http://127.0.0.1:<port>`. */
  url: string;
}

/** A single-member etcd on two free loopback ports, data in `<runDir>/etcd`, fsync off. */
export async function startEtcd(ctx: ComponentContext, timeoutMs = 30_000): Promise<Etcd> {
  const [clientPort, peerPort] = [await ctx.port(), await ctx.port()];
  const url = `http://127.0.0.1:${clientPort}`;
  const peer = `http://127.0.0.1:${peerPort}`;
  const dataDir = join(ctx.runDir, 'etcd');
  mkdirSync(dataDir, { recursive: true });
  const proc = ctx.registry.spawn({
    name: 'etcd',
    command: join(ctx.binDir, 'etcd'),
    args: [
      '--name=testenv',
      `--data-dir=${dataDir}`,
      `--listen-client-urls=${url}`,
      `--advertise-client-urls=${url}`,
      `--listen-peer-urls=${peer}`,
      `--initial-advertise-peer-urls=${peer}`,
      `--initial-cluster=testenv=${peer}`,
      '--initial-cluster-state=new',
      '--unsafe-no-fsync',
      '--log-level=warn',
    ],
  });
  await waitUntilReady(
    proc,
    httpOk(`${url}/health`, {
      accept: (body) => (JSON.parse(body) as { health?: string }).health === 'true',
    }),
    timeoutMs,
  );
  return { name: 'etcd', url, stop: () => proc.stop() };
}
