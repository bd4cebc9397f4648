import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { closeNow, readBody } from '../http/plain-server.js';
import { embedText, LOCAL_MODEL } from './local-embedder.js';

/**
 * An OpenAI-compatible `POST /v1/embeddings` endpoint backed by the local embedder, so tests and local mode exercise
 * the real `openai` SDK. `faults` lets tests make it answer like a rate-limited or failing API.
 */
export interface EmbeddingsServerOptions {
  host?: string;
  port?: number;
  dimensions?: number;
  /** Largest input (characters) accepted; longer inputs get OpenAI's 400 "maximum context length" error. */
  maxInputChars?: number;
  /** Largest number of inputs per request (OpenAI: 2048). */
  maxInputs?: number;
  faults?: { next429?: number; next500?: number; retryAfterSeconds?: number };
}

export interface EmbeddingsServer {
  url: string;
  close(): Promise<void>;
  readonly stats: { requests: number; inputs: number };
  faults: NonNullable<EmbeddingsServerOptions['faults']>;
}

export async function startEmbeddingsServer(opts: EmbeddingsServerOptions = {}): Promise<EmbeddingsServer> {
  const defaultDims = opts.dimensions ?? 1536;
  const maxInputChars = opts.maxInputChars ?? 8191 * 4;
  const maxInputs = opts.maxInputs ?? 2048;
  const stats = { requests: 0, inputs: 0 };
  const faults = { ...opts.faults };

  const server = createServer((req, res) => {
    handle(req, res).catch((err: unknown) => sendError(res, 500, String(err), 'server_error'));
  });

  async function handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const path = (req.url ?? '').split('?')[0];
    if (req.method === 'GET' && path === '/healthz') return sendJson(res, 200, { ok: true });
    if (req.method !== 'POST' || path !== '/v1/embeddings')
      return sendError(res, 404, 'not found', 'not_found');
    stats.requests++;
    if (faults.next429 && faults.next429 > 0) {
      faults.next429--;
      res.setHeader('retry-after', String(faults.retryAfterSeconds ?? 0));
      return sendError(res, 429, 'Rate limit reached', 'rate_limit_exceeded');
    }
    if (faults.next500 && faults.next500 > 0) {
      faults.next500--;
      return sendError(res, 500, 'The server had an error', 'server_error');
    }
    const body = JSON.parse((await readBody(req)).toString('utf8')) as {
      input?: string | string[];
      model?: string;
      dimensions?: number;
      encoding_format?: 'float' | 'base64';
    };
    const inputs = typeof body.input === 'string' ? [body.input] : body.input;
    if (
      !Array.isArray(inputs) ||
      inputs.length === 0 ||
      inputs.some((i) => typeof i !== 'string' || i === '')
    ) {
      return sendError(
        res,
        400,
        "'input' must be a non-empty string or array of non-empty strings",
        'invalid_request_error',
      );
    }
    if (inputs.length > maxInputs) {
      return sendError(
        res,
        400,
        `'input' array must have at most ${maxInputs} items`,
        'invalid_request_error',
      );
    }
    const tooLong = inputs.findIndex((i) => i.length > maxInputChars);
    if (tooLong >= 0) {
      return sendError(
        res,
        400,
        `This model's maximum context length is 8192 tokens, however input ${tooLong} is longer.`,
        'invalid_request_error',
      );
    }
    const dims = body.dimensions ?? defaultDims;
    stats.inputs += inputs.length;
    const data = inputs.map((text, index) => {
      const v = embedText(text, dims);
      const embedding =
        body.encoding_format === 'base64' ? Buffer.from(v.buffer).toString('base64') : Array.from(v);
      return { object: 'embedding', index, embedding };
    });
    const tokens = inputs.reduce((n, i) => n + Math.ceil(i.length / 4), 0);
    sendJson(res, 200, {
      object: 'list',
      data,
      model: body.model ?? LOCAL_MODEL,
      usage: { prompt_tokens: tokens, total_tokens: tokens },
    });
  }

  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(opts.port ?? 0, opts.host ?? '127.0.0.1', resolve);
  });
  const { address, port } = server.address() as AddressInfo;
  return {
    url: `http://${address}:${port}/v1`,
    stats,
    faults,
    close: () => closeNow(server),
  };
}

function sendJson(res: ServerResponse, status: number, body: unknown): void {
  const text = JSON.stringify(body);
  res.writeHead(status, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(text) });
  res.end(text);
}

function sendError(res: ServerResponse, status: number, message: string, type: string): void {
  sendJson(res, status, { error: { message, type, param: null, code: type } });
}
