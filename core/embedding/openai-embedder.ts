import OpenAI, { APIConnectionError, APIError } from 'openai';
import { backoffMs } from '../backoff.js';
import { ConfigError, PipelineError, TransientError } from '../errors.js';
import type { Embedder } from '../ports/embedder.js';

/**
 * Embedder over the `openai` SDK (any OpenAI-compatible server via `baseURL`).
 *
 * - Coalescing: every `embed()` call enqueues its inputs; a dispatcher packs queued inputs of all callers into
 *   requests of at most `maxInputsPerRequest` inputs and `maxTokensPerRequest` (estimated) tokens, with up to
 *   `concurrency` requests in flight. Many receipts embedded at once therefore share few, full requests.
 * - Retries: 429 waits for Retry-After (or exponential backoff) and does not count against `maxRetries` until
 *   `maxRateLimitRetries`; 5xx, timeouts and connection errors back off and retry up to `maxRetries`, then fail with a
 *   TransientError (retryable). Other 4xx fail at once (401/403 as ConfigError).
 * - Too long: an input over `maxInputTokens` (estimated) is split before sending; an input the API still rejects as
 *   too long is found by bisecting the request and split in halves at a space. A split input's vector is the
 *   length-weighted mean of its parts, re-normalised (OpenAI's recommended way to embed long texts).
 */
export interface OpenAIEmbedderOptions {
  apiKey: string;
  baseURL?: string;
  model?: string;
  dimensions?: number;
  /** Send `dimensions` in requests (default: for text-embedding-3-* models and unknown models, not for ada-002). */
  sendDimensions?: boolean;
  maxInputsPerRequest?: number;
  /**
   * Each request takes an equal share of the outstanding inputs (queued + in flight) over `concurrency` slots, but
   * not fewer than this. Default 256.
   */
  minInputsPerRequest?: number;
  maxTokensPerRequest?: number;
  maxInputTokens?: number;
  concurrency?: number;
  maxRetries?: number;
  maxRateLimitRetries?: number;
  backoffBaseMs?: number;
  maxBackoffMs?: number;
  timeoutMs?: number;
  /** How long the dispatcher waits for more inputs before sending a partly filled request. */
  lingerMs?: number;
  /** For tests: how to wait (default setTimeout). */
  sleep?: (ms: number) => Promise<void>;
}

export interface EmbedderStats {
  requests: number;
  inputs: number;
  retries: number;
  rateLimited: number;
  splits: number;
  /** Wall-clock milliseconds with at least one request in flight. */
  busyMs: number;
}

interface Pending {
  text: string;
  tokens: number;
  resolve(v: Float32Array): void;
  reject(e: unknown): void;
}

export const DEFAULT_MODEL = 'text-embedding-3-small';
export const DEFAULT_DIMENSIONS = 1536;

/** Conservative token estimate (OpenAI's tokenizer averages ~4 characters per token on English text). */
export function estimateTokens(text: string): number {
  return Math.ceil(text.length / 3);
}

export class OpenAIEmbedder implements Embedder {
  readonly model: string;
  readonly dimensions: number;
  readonly stats: EmbedderStats = {
    requests: 0,
    inputs: 0,
    retries: 0,
    rateLimited: 0,
    splits: 0,
    busyMs: 0,
  };
  private readonly client: OpenAI;
  private readonly o: Required<
    Omit<OpenAIEmbedderOptions, 'apiKey' | 'baseURL' | 'model' | 'dimensions' | 'sendDimensions'>
  >;
  private readonly sendDimensions: boolean;
  private queue: Pending[] = [];
  private inFlight = 0;
  private inFlightInputs = 0;
  private scheduled = false;
  private busySince = 0;

  constructor(opts: OpenAIEmbedderOptions) {
    if (!opts.apiKey)
      throw new ConfigError('OPENAI_API_KEY is not set (select the local embedder to run without one)');
    this.model = opts.model ?? DEFAULT_MODEL;
    this.dimensions = opts.dimensions ?? DEFAULT_DIMENSIONS;
    this.sendDimensions = opts.sendDimensions ?? !/ada-002/.test(this.model);
    this.o = {
      maxInputsPerRequest: opts.maxInputsPerRequest ?? 2048,
      minInputsPerRequest: opts.minInputsPerRequest ?? 256,
      maxTokensPerRequest: opts.maxTokensPerRequest ?? 300_000,
      maxInputTokens: opts.maxInputTokens ?? 8191,
      concurrency: opts.concurrency ?? 4,
      maxRetries: opts.maxRetries ?? 6,
      maxRateLimitRetries: opts.maxRateLimitRetries ?? 30,
      backoffBaseMs: opts.backoffBaseMs ?? 500,
      maxBackoffMs: opts.maxBackoffMs ?? 30_000,
      timeoutMs: opts.timeoutMs ?? 60_000,
      lingerMs: opts.lingerMs ?? 2,
      sleep: opts.sleep ?? ((ms) => new Promise((r) => setTimeout(r, ms))),
    };
    this.client = new OpenAI({
      apiKey: opts.apiKey,
      ...(opts.baseURL ? { baseURL: opts.baseURL } : {}),
      maxRetries: 0,
      timeout: this.o.timeoutMs,
    });
  }

  embed(texts: string[]): Promise<Float32Array[]> {
    return Promise.all(texts.map((t) => this.embedOne(t)));
  }

  private embedOne(text: string): Promise<Float32Array> {
    // The API rejects empty input; a blank text still gets a (well-defined) vector.
    const t = text.trim() === '' ? '<EMPTY>' : text;
    const tokens = estimateTokens(t);
    if (tokens > this.o.maxInputTokens) return this.embedSplit(t);
    return new Promise((resolve, reject) => {
      this.queue.push({ text: t, tokens, resolve, reject });
      this.schedule();
    });
  }

  private async embedSplit(text: string): Promise<Float32Array> {
    this.stats.splits++;
    const parts = splitText(text);
    const vectors = await Promise.all(parts.map((p) => this.embedOne(p)));
    return weightedMean(
      vectors,
      parts.map((p) => p.length),
    );
  }

  private schedule(): void {
    if (this.scheduled) return;
    this.scheduled = true;
    setTimeout(() => {
      this.scheduled = false;
      this.pump();
    }, this.o.lingerMs);
  }

  private pump(): void {
    while (this.inFlight < this.o.concurrency && this.queue.length > 0) {
      // Each request takes an equal share of the outstanding work (queued + in flight) over all slots, never below
      // minInputsPerRequest: with every slot free the queue is spread over them; when one slot frees while the others
      // are busy it does not take the whole backlog into one long request (the rest goes to the slots that free next).
      const share = Math.ceil((this.queue.length + this.inFlightInputs) / this.o.concurrency);
      const target = Math.min(this.o.maxInputsPerRequest, Math.max(this.o.minInputsPerRequest, share));
      const batch: Pending[] = [];
      let tokens = 0;
      while (
        this.queue.length > 0 &&
        batch.length < target &&
        (batch.length === 0 || tokens + this.queue[0]!.tokens <= this.o.maxTokensPerRequest)
      ) {
        const p = this.queue.shift()!;
        tokens += p.tokens;
        batch.push(p);
      }
      if (this.inFlight === 0) this.busySince = performance.now();
      this.inFlight++;
      this.inFlightInputs += batch.length;
      void this.send(batch).finally(() => {
        this.inFlight--;
        this.inFlightInputs -= batch.length;
        if (this.inFlight === 0) this.stats.busyMs += performance.now() - this.busySince;
        this.pump();
      });
    }
  }

  /** Sends one request (with retries); settles every pending input of it. Never throws. */
  private async send(batch: Pending[]): Promise<void> {
    let retries = 0;
    let rateLimits = 0;
    for (;;) {
      try {
        this.stats.requests++;
        const res = await this.client.embeddings.create({
          model: this.model,
          input: batch.map((p) => p.text),
          encoding_format: 'base64',
          ...(this.sendDimensions ? { dimensions: this.dimensions } : {}),
        });
        const data = [...res.data].sort((a, b) => a.index - b.index);
        if (data.length !== batch.length) {
          throw new TransientError(
            `embeddings API returned ${data.length} vectors for ${batch.length} inputs`,
          );
        }
        this.stats.inputs += batch.length;
        data.forEach((d, i) => {
          const v = decodeVector(d.embedding as unknown as string | number[]);
          if (v.length !== this.dimensions) {
            batch[i]!.reject(
              new ConfigError(
                `model ${this.model} returned ${v.length} dimensions, expected ${this.dimensions}`,
              ),
            );
          } else batch[i]!.resolve(v);
        });
        return;
      } catch (err) {
        if (err instanceof APIError && err.status === 400 && isTooLong(err)) {
          await this.splitRejected(batch);
          return;
        }
        const kind = classify(err);
        if (kind === 'rate-limit' && rateLimits < this.o.maxRateLimitRetries) {
          rateLimits++;
          this.stats.rateLimited++;
          await this.o.sleep(retryAfterMs(err) ?? this.backoff(rateLimits));
          continue;
        }
        if ((kind === 'transient' || kind === 'rate-limit') && retries < this.o.maxRetries) {
          retries++;
          this.stats.retries++;
          await this.o.sleep(retryAfterMs(err) ?? this.backoff(retries));
          continue;
        }
        const failure = toPipelineError(err, kind, retries);
        for (const p of batch) p.reject(failure);
        return;
      }
    }
  }

  /** The API said an input is too long: bisect the request until the culprit stands alone, then split its text. */
  private async splitRejected(batch: Pending[]): Promise<void> {
    if (batch.length > 1) {
      const mid = Math.ceil(batch.length / 2);
      await this.send(batch.slice(0, mid));
      await this.send(batch.slice(mid));
      return;
    }
    const p = batch[0]!;
    if (p.text.length < 2) {
      p.reject(new PipelineError('BadInput', 'embeddings API rejects a one-character input as too long'));
      return;
    }
    this.embedSplit(p.text).then(p.resolve, p.reject);
  }

  /** Equal jitter (half the delay random): many workers hitting the same 429 must not retry in step. */
  private backoff(attempt: number): number {
    return backoffMs(attempt - 1, { baseMs: this.o.backoffBaseMs, maxMs: this.o.maxBackoffMs, jitter: 0.5 });
  }
}

type Kind = 'rate-limit' | 'transient' | 'auth' | 'client';

function classify(err: unknown): Kind {
  if (err instanceof APIConnectionError) return 'transient'; // includes timeouts
  if (err instanceof APIError) {
    const s = err.status ?? 0;
    if (s === 429) return 'rate-limit';
    if (s >= 500 || s === 408 || s === 409) return 'transient';
    if (s === 401 || s === 403) return 'auth';
    return 'client';
  }
  if (err instanceof PipelineError) return err.retryable ? 'transient' : 'client';
  return 'transient';
}

function toPipelineError(err: unknown, kind: Kind, retries: number): PipelineError {
  const msg = err instanceof Error ? err.message : String(err);
  if (kind === 'transient' || kind === 'rate-limit') {
    return new TransientError(`embeddings API failed after ${retries} retries: ${msg}`, {}, { cause: err });
  }
  // A fixed text, never the API's: OpenAI's 401 message quotes a masked form of the key, and this message reaches the
  // EmbeddingJob's status, its Events and the local summary.
  if (kind === 'auth')
    return new ConfigError(authMessage((err as APIError).status), { status: (err as APIError).status });
  if (err instanceof PipelineError) return err;
  return new PipelineError('BadInput', `embeddings API rejected the request: ${msg}`, {}, { cause: err });
}

/** What a refused key says, wherever it is shown. */
export function authMessage(status: number | undefined): string {
  return `embeddings API refused the credentials (HTTP ${status ?? '?'}): check OPENAI_API_KEY (the openai Secret's api-key); the API's own message is not shown, as it can quote part of the key`;
}

function isTooLong(err: APIError): boolean {
  return /maximum context length|too long|too many tokens|max(imum)?[_ ]?tokens/i.test(err.message);
}

function retryAfterMs(err: unknown): number | undefined {
  if (!(err instanceof APIError) || !err.headers) return undefined;
  const ms = err.headers.get('retry-after-ms');
  if (ms && Number.isFinite(Number(ms))) return Number(ms);
  const s = err.headers.get('retry-after');
  if (!s) return undefined;
  if (Number.isFinite(Number(s))) return Number(s) * 1000;
  const at = Date.parse(s);
  return Number.isNaN(at) ? undefined : Math.max(0, at - Date.now());
}

export function decodeVector(e: string | number[]): Float32Array {
  if (typeof e !== 'string') return Float32Array.from(e);
  const buf = Buffer.from(e, 'base64');
  // One copy into an aligned buffer (little-endian hosts, as every Node platform we run on).
  return new Float32Array(Uint8Array.from(buf).buffer, 0, buf.length >> 2);
}

/** Two halves, cut at the space nearest the middle (or the middle itself). */
export function splitText(text: string): [string, string] {
  const mid = Math.floor(text.length / 2);
  const window = Math.floor(text.length / 4);
  let cut = mid;
  for (let d = 0; d <= window; d++) {
    if (text[mid - d] === ' ') {
      cut = mid - d;
      break;
    }
    if (text[mid + d] === ' ') {
      cut = mid + d;
      break;
    }
  }
  const a = text.slice(0, cut).trim();
  const b = text.slice(cut).trim();
  if (!a || !b) return [text.slice(0, mid), text.slice(mid)];
  return [a, b];
}

export function weightedMean(vectors: Float32Array[], weights: number[]): Float32Array {
  const out = new Float32Array(vectors[0]!.length);
  vectors.forEach((v, k) => {
    for (let i = 0; i < out.length; i++) out[i]! += v[i]! * weights[k]!;
  });
  let norm = 0;
  for (const x of out) norm += x * x;
  const scale = norm > 0 ? 1 / Math.sqrt(norm) : 0;
  for (let i = 0; i < out.length; i++) out[i]! *= scale;
  return out;
}
