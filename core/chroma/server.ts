import { spawn, type ChildProcess } from 'node:child_process';
import { mkdirSync } from 'node:fs';
import { createServer } from 'node:net';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { childEnv } from '../child-env.js';
import { TransientError } from '../errors.js';
import { processEnv } from '../config/env.js';

/**
 * A Chroma server (`chroma run`, the Rust server shipped in the npm `chromadb` package) on one persist directory.
 * Node has no embedded Chroma, so every reader and writer owns a child server on a loopback port. Never start two
 * servers on one directory: Chroma has no lock and corrupts silently.
 */
export interface ChromaServer {
  readonly url: string;
  readonly host: string;
  readonly port: number;
  readonly path: string;
  readonly pid: number;
  /** SIGTERM, wait for exit (Chroma flushes on SIGTERM). */
  stop(): Promise<void>;
}

export function chromaCliPath(): string {
  // The package exports only its client; the CLI sits next to it in dist/.
  const require = createRequire(import.meta.url);
  return join(dirname(require.resolve('chromadb')), '..', 'cli.mjs');
}

export async function freePort(host = '127.0.0.1'): Promise<number> {
  return new Promise((resolve, reject) => {
    const srv = createServer();
    srv.once('error', reject);
    srv.listen(0, host, () => {
      const port = (srv.address() as { port: number }).port;
      srv.close(() => resolve(port));
    });
  });
}

export async function startChromaServer(opts: {
  path: string;
  host?: string;
  port?: number;
  readyTimeoutMs?: number;
  onExit?: (code: number | null) => void;
  /** Called synchronously right after the child is spawned (before it is ready), e.g. to record its pid. */
  onSpawn?: (pid: number) => void;
}): Promise<ChromaServer> {
  const host = opts.host ?? '127.0.0.1';
  mkdirSync(opts.path, { recursive: true });
  for (let attempt = 1; ; attempt++) {
    const port = opts.port ?? (await freePort(host));
    const child = spawn(
      process.execPath,
      [chromaCliPath(), 'run', '--path', opts.path, '--host', host, '--port', String(port)],
      // A minimal environment: the server needs no API key or cloud credentials of its parent.
      {
        stdio: ['ignore', 'ignore', 'pipe'],
        env: childEnv(processEnv(), { prefixes: ['CHROMA_', 'RUST_'] }),
      },
    );
    if (child.pid !== undefined) opts.onSpawn?.(child.pid);
    let stderr = '';
    let head = ''; // a panic's message comes first, then a backtrace longer than the tail kept
    child.stderr?.on('data', (d: Buffer) => {
      if (head.length < 4000) head = (head + d.toString()).slice(0, 4000);
      stderr = (stderr + d.toString()).slice(-4000);
    });
    const url = `http://${host}:${port}`;
    try {
      await waitReady(url, child, opts.readyTimeoutMs ?? 30_000);
    } catch (err) {
      await stopChild(child);
      // A port taken between probing and binding is the one race worth retrying.
      if (attempt < 3 && opts.port === undefined) continue;
      const panic = /panicked at [^\n]*\n[^\n]*/.exec(head)?.[0];
      throw new TransientError(
        `chroma did not start on ${url}: ${String(err)}; ${panic ?? `stderr: ${stderr}`}`,
        {
          path: opts.path,
        },
      );
    }
    child.once('exit', (code) => opts.onExit?.(code));
    return { url, host, port, path: opts.path, pid: child.pid!, stop: () => stopChild(child) };
  }
}

async function waitReady(url: string, child: ChildProcess, timeoutMs: number): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    // A panic aborts the server (SIGABRT): exitCode stays null, so the signal is checked too, or the wait runs out.
    if (child.exitCode !== null || child.signalCode !== null)
      throw new Error(`exited with ${child.exitCode ?? child.signalCode}`);
    try {
      const res = await fetch(`${url}/api/v2/heartbeat`);
      if (res.ok) return;
    } catch {
      // not listening yet
    }
    await sleep(50);
  }
  throw new Error('heartbeat timeout');
}

async function stopChild(child: ChildProcess): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return;
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  child.kill('SIGTERM');
  const timer = setTimeout(() => child.kill('SIGKILL'), 10_000);
  await exited;
  clearTimeout(timer);
}
