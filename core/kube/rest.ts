import { Agent, request as httpsRequest } from 'node:https';
import { request as httpRequest, Agent as HttpAgent, type IncomingMessage } from 'node:http';
import { readFile } from 'node:fs/promises';
import { createInterface } from 'node:readline';
import type { KubeCredentials } from './credentials.js';
import { ExecTokenSource } from './exec-credential.js';

/**
 * A small JSON client for the Kubernetes API over one keep-alive connection pool: the one door of every program to the
 * API server. client-node's generated APIs build a new TLS agent per request (no connection reuse), which caps
 * throughput, and loading the package costs ~80 MB RSS; this client takes its credentials from `loadCredentials`.
 */
export class KubeApiError extends Error {
  constructor(
    readonly code: number,
    /** metav1.Status reason: NotFound, AlreadyExists, Conflict, Gone, Invalid, Forbidden, … */
    readonly reason: string,
    message: string,
    readonly details?: unknown,
  ) {
    super(message);
    this.name = 'KubeApiError';
  }
}

export const isNotFound = (err: unknown): boolean => err instanceof KubeApiError && err.code === 404;
export const isAlreadyExists = (err: unknown): boolean =>
  err instanceof KubeApiError && err.code === 409 && err.reason === 'AlreadyExists';
export const isConflict = (err: unknown): boolean =>
  err instanceof KubeApiError && err.code === 409 && err.reason !== 'AlreadyExists';
export const isGone = (err: unknown): boolean => err instanceof KubeApiError && err.code === 410;
export const isInvalid = (err: unknown): boolean =>
  err instanceof KubeApiError && (err.code === 422 || err.code === 400);

export type Query = Record<string, string | number | boolean | undefined>;

export interface RequestOptionsK {
  body?: unknown;
  contentType?: string;
  query?: Query;
  signal?: AbortSignal;
  /** Whole-request timeout. Default 30 s. */
  timeoutMs?: number;
}

export const MERGE_PATCH = 'application/merge-patch+json';

/** The parts of the client other modules depend on; tests may supply a fake. */
export interface Kube {
  request<T>(method: string, path: string, opts?: RequestOptionsK): Promise<T>;
  /** Streams newline-delimited JSON (watch); resolves when the server closes the stream, rejects on errors. */
  stream(path: string, query: Query, onLine: (value: unknown) => void, signal: AbortSignal): Promise<void>;
}

export class KubeRest implements Kube {
  private readonly server: URL;
  private readonly agent: Agent | HttpAgent;
  private headers: Record<string, string> = {};
  private headersAt = 0;

  private constructor(
    server: string,
    /** Auth headers; called at most once a minute (credentials may rotate). */
    private readonly loadHeaders: () => Promise<Record<string, string>>,
    tls: {
      ca?: Buffer | string;
      cert?: Buffer | string;
      key?: Buffer | string;
      rejectUnauthorized?: boolean;
    },
    maxSockets: number,
  ) {
    this.server = new URL(server);
    this.agent =
      this.server.protocol === 'https:'
        ? new Agent({ keepAlive: true, maxSockets, ...tls })
        : new HttpAgent({ keepAlive: true, maxSockets });
  }

  /** From `loadCredentials`: in-cluster, kubeconfig static credentials or an exec plugin's token. */
  static fromCredentials(c: KubeCredentials, opts: { maxSockets?: number } = {}): KubeRest {
    const tls = {
      ...(c.ca ? { ca: c.ca } : {}),
      ...(c.cert ? { cert: c.cert } : {}),
      ...(c.key ? { key: c.key } : {}),
      ...(c.skipTLSVerify ? { rejectUnauthorized: false } : {}),
    };
    const exec = c.exec ? new ExecTokenSource(c.exec) : undefined;
    const headers = async (): Promise<Record<string, string>> => {
      const token = exec
        ? await exec.token()
        : c.tokenFile
          ? (await readFile(c.tokenFile, 'utf8')).trim()
          : c.token;
      return token ? { Authorization: `Bearer ${token}` } : {};
    };
    return new KubeRest(c.server, headers, tls, opts.maxSockets ?? 32);
  }

  /** Credentials may rotate (in-cluster projected tokens): re-read them at most once a minute. */
  private async authHeaders(): Promise<Record<string, string>> {
    if (Date.now() - this.headersAt > 60_000) {
      this.headers = await this.loadHeaders();
      this.headersAt = Date.now();
    }
    return this.headers;
  }

  private url(path: string, query?: Query): URL {
    const url = new URL(this.server.pathname.replace(/\/$/, '') + path, this.server);
    for (const [k, v] of Object.entries(query ?? {})) if (v !== undefined) url.searchParams.set(k, String(v));
    return url;
  }

  private send(method: string, url: URL, headers: Record<string, string>, signal?: AbortSignal) {
    const fn = url.protocol === 'https:' ? httpsRequest : httpRequest;
    return fn(url, { method, headers, agent: this.agent, ...(signal ? { signal } : {}) });
  }

  async request<T>(method: string, path: string, opts: RequestOptionsK = {}): Promise<T> {
    const body = opts.body === undefined ? undefined : Buffer.from(JSON.stringify(opts.body));
    const headers: Record<string, string> = {
      ...(await this.authHeaders()),
      Accept: 'application/json',
      ...(body
        ? { 'Content-Type': opts.contentType ?? 'application/json', 'Content-Length': String(body.length) }
        : {}),
    };
    const timeout = AbortSignal.timeout(opts.timeoutMs ?? 30_000);
    const signal = opts.signal ? AbortSignal.any([opts.signal, timeout]) : timeout;
    const res = await new Promise<{ status: number; text: string }>((resolve, reject) => {
      const req = this.send(method, this.url(path, opts.query), headers, signal);
      req.on('error', reject);
      req.on('response', (r: IncomingMessage) => {
        const chunks: Buffer[] = [];
        r.on('data', (c: Buffer) => chunks.push(c));
        r.on('error', reject);
        r.on('end', () =>
          resolve({ status: r.statusCode ?? 0, text: Buffer.concat(chunks).toString('utf8') }),
        );
      });
      req.end(body);
    });
    if (res.status >= 200 && res.status < 300) return (res.text ? JSON.parse(res.text) : undefined) as T;
    throw toApiError(res.status, res.text, `${method} ${path}`);
  }

  async stream(
    path: string,
    query: Query,
    onLine: (value: unknown) => void,
    signal: AbortSignal,
  ): Promise<void> {
    const headers = { ...(await this.authHeaders()), Accept: 'application/json' };
    await new Promise<void>((resolve, reject) => {
      const req = this.send('GET', this.url(path, query), headers, signal);
      req.on('error', reject);
      req.on('response', (r: IncomingMessage) => {
        if ((r.statusCode ?? 0) !== 200) {
          const chunks: Buffer[] = [];
          r.on('data', (c: Buffer) => chunks.push(c));
          r.on('end', () =>
            reject(toApiError(r.statusCode ?? 0, Buffer.concat(chunks).toString('utf8'), `WATCH ${path}`)),
          );
          r.on('error', reject);
          return;
        }
        const lines = createInterface({ input: r, crlfDelay: Infinity });
        // readline re-emits input errors on the interface: without this listener an abort is an uncaught error.
        lines.on('error', reject);
        lines.on('line', (line) => {
          if (!line) return;
          let value: unknown;
          try {
            value = JSON.parse(line);
          } catch {
            return;
          }
          onLine(value);
        });
        r.on('error', reject);
        r.on('aborted', () => reject(new Error(`watch ${path} aborted`)));
        lines.on('close', () => resolve());
      });
      req.end();
    });
  }

  close(): void {
    this.agent.destroy();
  }
}

function toApiError(code: number, text: string, what: string): KubeApiError {
  let status: { reason?: string; message?: string; details?: unknown } = {};
  try {
    status = JSON.parse(text) as typeof status;
  } catch {
    /* not a metav1.Status */
  }
  return new KubeApiError(
    code,
    status.reason ?? String(code),
    `${what}: ${code} ${status.message ?? text.slice(0, 300)}`,
    status.details,
  );
}
