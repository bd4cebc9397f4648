import { describe, expect, it } from 'vitest';
import OpenAI from 'openai';
import { embedText, LocalEmbedder } from '../../../../core/embedding/local-embedder.js';
import { startEmbeddingsServer } from '../../../../core/embedding/local-server.js';

const cosine = (a: Float32Array, b: Float32Array) => a.reduce((s, x, i) => s + x * b[i]!, 0);

describe('local embedder', () => {
  it('is deterministic, unit length, and lexically meaningful', async () => {
    const e = new LocalEmbedder(256);
    const [a, b, c] = await e.embed(['GRAND TOTAL 12.99', 'TOTAL 12.99', 'Costco Wholesale #481']);
    expect(embedText('GRAND TOTAL 12.99', 256)).toEqual(a);
    expect(Math.abs(cosine(a!, a!) - 1)).toBeLessThan(1e-5);
    expect(cosine(a!, b!)).toBeGreaterThan(cosine(a!, c!));
  });
});

describe('OpenAI-compatible embeddings server (through the openai SDK)', () => {
  it('serves base64 and float encodings identically, honours dimensions', async () => {
    const server = await startEmbeddingsServer({ dimensions: 32 });
    try {
      const client = new OpenAI({ baseURL: server.url, apiKey: 'local', maxRetries: 0 });
      const b64 = await client.embeddings.create({
        model: 'text-embedding-3-small',
        input: ['TOTAL'],
        dimensions: 16,
      });
      const flt = await client.embeddings.create({
        model: 'text-embedding-3-small',
        input: 'TOTAL',
        dimensions: 16,
        encoding_format: 'float',
      });
      expect(b64.data[0]!.embedding).toHaveLength(16);
      expect(b64.data[0]!.embedding).toEqual(flt.data[0]!.embedding);
      expect(Float32Array.from(flt.data[0]!.embedding)).toEqual(embedText('TOTAL', 16));
    } finally {
      await server.close();
    }
  });

  it('answers injected 429s with Retry-After, then succeeds (SDK retries)', async () => {
    const server = await startEmbeddingsServer({
      dimensions: 8,
      faults: { next429: 2, retryAfterSeconds: 0 },
    });
    try {
      const client = new OpenAI({ baseURL: server.url, apiKey: 'local', maxRetries: 3 });
      const res = await client.embeddings.create({ model: 'm', input: ['a'] });
      expect(res.data).toHaveLength(1);
      expect(server.stats.requests).toBe(3);
    } finally {
      await server.close();
    }
  });

  it('rejects an input longer than the model context with a 400', async () => {
    const server = await startEmbeddingsServer({ dimensions: 8, maxInputChars: 10 });
    try {
      const client = new OpenAI({ baseURL: server.url, apiKey: 'local', maxRetries: 0 });
      await expect(client.embeddings.create({ model: 'm', input: ['x'.repeat(11)] })).rejects.toMatchObject({
        status: 400,
      });
    } finally {
      await server.close();
    }
  });
});
