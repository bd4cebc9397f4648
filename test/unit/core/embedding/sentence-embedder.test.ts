import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { SentenceEmbedder } from '../../../../core/embedding/sentence-embedder.js';
import { ConfigError } from '../../../../core/errors.js';
import { sentenceModelDir } from '../../../../local/embedder.js';

// The model that tools/model/install-minilm.sh installs (npm test's pretest runs it).
const cosine = (a: Float32Array, b: Float32Array) => a.reduce((s, x, i) => s + x * b[i]!, 0);
const TEXTS = [
  'milk',
  '<EDGE> <EDGE> ALMOND MILK 3.99',
  'TOTAL',
  'AMOUNT DUE',
  'SUBTOTAL 24.98\nTAX 1.94\nTOTAL 26.92',
  'BANANAS 1.29 F',
  'Home Depot #4512',
  '',
];

describe('sentence embedder (all-MiniLM-L6-v2, int8 ONNX)', () => {
  let e: SentenceEmbedder;
  beforeAll(async () => {
    e = await SentenceEmbedder.load(sentenceModelDir());
  });

  it('gives 384 unit-length vectors, the same ones every time', async () => {
    const a = await e.embed(TEXTS);
    const b = await e.embed(TEXTS);
    expect(a).toHaveLength(TEXTS.length);
    for (const [i, v] of a.entries()) {
      expect(v).toHaveLength(384);
      expect(Math.abs(cosine(v, v) - 1)).toBeLessThan(1e-5);
      expect(v).toEqual(b[i]);
    }
  });

  it('embeds a text alike alone or in a batch of other lengths', async () => {
    const batch = await e.embed(TEXTS);
    for (const [i, t] of TEXTS.entries()) {
      const [alone] = await e.embed([t]);
      const worst = Math.max(...alone!.map((x, k) => Math.abs(x - batch[i]![k]!)));
      expect(worst, t).toBeLessThan(1e-5);
    }
  });

  it('knows words by meaning, not spelling', async () => {
    const [milk, almondMilk, total, amountDue, , bananas, depot] = await e.embed(TEXTS);
    expect(cosine(milk!, almondMilk!)).toBeGreaterThan(cosine(milk!, bananas!) + 0.1);
    expect(cosine(milk!, almondMilk!)).toBeGreaterThan(cosine(milk!, total!) + 0.1);
    // No shared word or trigram, yet closer than an unrelated row: what the lexical embedder cannot do.
    expect(cosine(total!, amountDue!)).toBeGreaterThan(cosine(total!, depot!) + 0.1);
  });

  it("agrees with the model's float32 weights (an independent forward pass) to a cosine of 0.995", async () => {
    const ref = JSON.parse(
      readFileSync(join(import.meta.dirname, 'fixtures', 'minilm-fp32.json'), 'utf8'),
    ) as { vectors: Record<string, number[]> };
    const texts = Object.keys(ref.vectors);
    expect(texts).toHaveLength(4);
    const got = await e.embed(texts);
    for (const [i, t] of texts.entries())
      expect(cosine(got[i]!, Float32Array.from(ref.vectors[t]!)), t).toBeGreaterThan(0.995);
  });

  it('cuts a text longer than the model takes (128 tokens) instead of failing', async () => {
    const long = Array.from({ length: 400 }, (_, i) => `ITEM${i} 1.99`).join('\n');
    const [v, head] = await e.embed([long, long.slice(0, 200)]);
    expect(Math.abs(cosine(v!, v!) - 1)).toBeLessThan(1e-5);
    expect(cosine(v!, head!)).toBeGreaterThan(0.5);
  });

  it('answers an empty call with no vectors', async () => {
    await expect(e.embed([])).resolves.toEqual([]);
  });
});

describe('sentence embedder without its files', () => {
  const dir = mkdtempSync(join(tmpdir(), 'no-model-'));
  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  it('is a ConfigError naming the directory and how to install the model', async () => {
    const err = await SentenceEmbedder.load(dir).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(ConfigError);
    expect((err as Error).message).toContain(dir);
    expect((err as Error).message).toContain('install-minilm.sh');
    expect((err as Error).message).toContain('--embedder lexical');
  });
});
