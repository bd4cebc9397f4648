import { mkdirSync } from 'node:fs';
import { join } from 'node:path';

import type { Component, ComponentContext } from './component.js';
import { httpOk } from './http.js';
import { waitUntilReady } from './processes.js';

export interface Chroma extends Component {
  url: string;
  host: string;
  port: number;
}

/**
 * `chroma run` (npm chromadb 3.5.0; the Rust server runs inside that node process) on a free loopback port with its
 * data under `<runDir>/chroma`. The bin is started directly, not through npx, so the recorded PID is the server.
 */
export async function startChroma(
  ctx: ComponentContext,
  chromaBin: string,
  timeoutMs = 60_000,
): Promise<Chroma> {
  const host = '127.0.0.1';
  const port = await ctx.port();
  const url = `http://${host}:${port}`;
  const dataDir = join(ctx.runDir, 'chroma');
  mkdirSync(dataDir, { recursive: true });
  const proc = ctx.registry.spawn({
    name: 'chroma',
    command: chromaBin,
    args: ['run', '--path', dataDir, '--host', host, '--port', String(port)],
  });
  await waitUntilReady(proc, httpOk(`${url}/api/v2/heartbeat`), timeoutMs);
  return { name: 'chroma', url, host, port, stop: () => proc.stop() };
}
