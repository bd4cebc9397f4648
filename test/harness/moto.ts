import { join } from 'node:path';

import type { Component, ComponentContext } from './component.js';
import { httpOk } from './http.js';
import { waitUntilReady } from './processes.js';

export interface Moto extends Component {
  /** `http://127.0.0.1:<port>`: SQS, S3, DynamoDB and DynamoDB Streams all answer on this one endpoint. */
  endpoint: string;
}

/** `moto_server` from the venv at `venvDir` (moto[server] 5.2.5), all services on one port (default: a free loopback port). */
export async function startMoto(
  ctx: ComponentContext,
  venvDir: string,
  opts: { host?: string; port?: number; timeoutMs?: number } = {},
): Promise<Moto> {
  const host = opts.host ?? '127.0.0.1';
  const port = opts.port ?? (await ctx.port());
  const timeoutMs = opts.timeoutMs ?? 60_000;
  const endpoint = `http://${host}:${port}`;
  const proc = ctx.registry.spawn({
    name: 'moto',
    command: join(venvDir, 'bin', 'moto_server'),
    args: ['-H', host, '-p', String(port)],
    env: { ...process.env, PYTHONUNBUFFERED: '1', PYTHONDONTWRITEBYTECODE: '1' },
  });
  await waitUntilReady(proc, httpOk(`${endpoint}/moto-api/`), timeoutMs);
  return { name: 'moto', endpoint, stop: () => proc.stop() };
}
