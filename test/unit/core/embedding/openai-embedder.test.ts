import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterEach, describe, expect, it, vi } from 'vitest';
import { OpenAIEmbedder, splitText } from '../../../../core/embedding/openai-embedder.js';
import { embedText } from '../../../../core/embedding/local-embedder.js';
import { startEmbeddingsServer, type EmbeddingsServer } from '../../../../core/embedding/local-server.js';
import { ConfigError, TransientError } from '../../../../core/errors.js';

let server: EmbeddingsServer | undefined;
afterEach(async () => {
  await server?.close();
  server = undefined;
});

const fast = { backoffBaseMs: 1, maxBackoffMs: 5 };
const norm = (v: Float32Array) => Math.sqrt(v.reduce((s, x) => s + x * x, 0));

describe('OpenAIEmbedder', () => {
  it('packs inputs of concurrent callers into few requests, in order, with the requested dimensions', async () => {
    server = await startEmbeddingsServer({ dimensions: 1536, maxInputs: 100 });
    const e = new OpenAIEmbedder({
      apiKey: 'k',
      baseURL: server.url,
      model: 'm',
      dimensions: 64,
      maxInputsPerRequest: 100,
    });
    const a = Array.from({ length: 150 }, (_, i) => `alpha ${i}`);
    const b = Array.from({ length: 130 }, (_, i) => `beta ${i}`);
    const [va, vb] = await Promise.all([e.embed(a), e.embed(b)]);
    expect(va).toHaveLength(150);
    expect(vb).toHaveLength(130);
    expect(Array.from(vb[7]!)).toEqual(Array.from(embedText('beta 7', 64)));
    expect(server.stats.requests).toBe(3);
    expect(e.stats.inputs).toBe(280);
  });

  it('a slot that frees while others are busy takes a share of the outstanding work, not the whole backlog', async () => {
    // An endpoint that records each request's size and answers only when the test releases it, so the order of
    // events does not depend on timers (the test once failed under load when a 20 ms sleep was not enough).
    const sizes: number[] = [];
    const held: (() => void)[] = [];
    let holding = true;
    const slow = createServer((req, res) => {
      const chunks: Buffer[] = [];
      req.on('data', (c: Buffer) => chunks.push(c));
      req.on('end', () => {
        const body = JSON.parse(Buffer.concat(chunks).toString()) as { input: string[] };
        sizes.push(body.input.length);
        const data = body.input.map((t, index) => ({
          object: 'embedding',
          index,
          embedding: Buffer.from(embedText(t, 8).buffer).toString('base64'),
        }));
        const answer = () => {
          res.writeHead(200, { 'content-type': 'application/json' });
          res.end(
            JSON.stringify({
              object: 'list',
              data,
              model: 'm',
              usage: { prompt_tokens: 0, total_tokens: 0 },
            }),
          );
        };
        if (holding) held.push(answer);
        else answer();
      });
    });
    await new Promise<void>((r) => slow.listen(0, '127.0.0.1', r));
    const requests = (n: number) => vi.waitFor(() => expect(sizes).toHaveLength(n), { timeout: 10_000 });
    try {
      const e = new OpenAIEmbedder({
        apiKey: 'k',
        baseURL: `http://127.0.0.1:${(slow.address() as AddressInfo).port}/v1`,
        dimensions: 8,
        concurrency: 2,
        minInputsPerRequest: 1,
      });
      const first = e.embed(Array.from({ length: 40 }, (_, i) => `first ${i}`));
      await requests(2); // both slots busy with 20 each
      const backlog = e.embed(Array.from({ length: 400 }, (_, i) => `later ${i}`));
      held.shift()!(); // one slot frees while the other still holds 20
      await requests(3);
      holding = false;
      for (const answer of held.splice(0)) answer();
      const [va, vb] = await Promise.all([first, backlog]);
      expect(va).toHaveLength(40);
      expect(Array.from(vb[399]!)).toEqual(Array.from(embedText('later 399', 8)));
      // The first slot to free takes (400 queued + 20 in flight) / 2 = 210, the next one the remaining 190, instead
      // of one request of 400 while the other slot idles.
      expect(sizes).toEqual([20, 20, 210, 190]);
    } finally {
      slow.closeAllConnections();
      await new Promise((r) => slow.close(r));
    }
  });

  it('waits out 429s (Retry-After) and succeeds', async () => {
    server = await startEmbeddingsServer({ faults: { next429: 2, retryAfterSeconds: 0 } });
    const e = new OpenAIEmbedder({ apiKey: 'k', baseURL: server.url, dimensions: 32, ...fast });
    const [v] = await e.embed(['hello']);
    expect(norm(v!)).toBeCloseTo(1, 5);
    expect(e.stats.rateLimited).toBe(2);
    expect(server.stats.requests).toBe(3);
  });

  it('retries 5xx with backoff, then fails retryably', async () => {
    server = await startEmbeddingsServer({ faults: { next500: 2 } });
    const ok = new OpenAIEmbedder({
      apiKey: 'k',
      baseURL: server.url,
      dimensions: 32,
      maxRetries: 3,
      ...fast,
    });
    await expect(ok.embed(['x'])).resolves.toHaveLength(1);
    server.faults.next500 = 100;
    const failing = new OpenAIEmbedder({
      apiKey: 'k',
      baseURL: server.url,
      dimensions: 32,
      maxRetries: 3,
      ...fast,
    });
    const err = await failing.embed(['x', 'y']).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(TransientError);
    expect((err as TransientError).retryable).toBe(true);
    expect(failing.stats.retries).toBe(3);
  });

  it('splits an input the API rejects as too long, and only that one', async () => {
    server = await startEmbeddingsServer({ maxInputChars: 100 });
    const e = new OpenAIEmbedder({ apiKey: 'k', baseURL: server.url, dimensions: 32 });
    const long = Array.from({ length: 40 }, (_, i) => `word${i}`).join(' ');
    expect(long.length).toBeGreaterThan(100);
    const out = await e.embed(['short one', long, 'short two']);
    expect(Array.from(out[0]!)).toEqual(Array.from(embedText('short one', 32)));
    expect(Array.from(out[2]!)).toEqual(Array.from(embedText('short two', 32)));
    expect(norm(out[1]!)).toBeCloseTo(1, 5);
    expect(e.stats.splits).toBeGreaterThanOrEqual(1);
  });

  it('splits an input over the token limit before sending it', async () => {
    server = await startEmbeddingsServer();
    const e = new OpenAIEmbedder({ apiKey: 'k', baseURL: server.url, dimensions: 16, maxInputTokens: 10 });
    const [v] = await e.embed(['a fairly long line of receipt text that exceeds ten tokens']);
    expect(norm(v!)).toBeCloseTo(1, 5);
    expect(e.stats.splits).toBeGreaterThan(0);
    expect(splitText('aaaa bbbb')).toEqual(['aaaa', 'bbbb']);
  });

  it('refuses to start without an API key', () => {
    expect(() => new OpenAIEmbedder({ apiKey: '' })).toThrow(ConfigError);
  });
});
