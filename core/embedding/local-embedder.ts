import type { Embedder } from '../ports/embedder.js';

export const LOCAL_MODEL = 'local-hash-v1';

/**
 * A deterministic *lexical* embedder for offline use and tests: word tokens and character trigrams are hashed into
 * signed buckets and the vector is L2-normalised. Texts that share words and spellings land close together; it knows
 * nothing of meaning (no synonyms), which is what OpenAI's models add.
 */
export class LocalEmbedder implements Embedder {
  readonly model = LOCAL_MODEL;
  constructor(readonly dimensions = 1536) {}

  async embed(texts: string[]): Promise<Float32Array[]> {
    return texts.map((t) => embedText(t, this.dimensions));
  }
}

export function embedText(text: string, dimensions: number): Float32Array {
  const v = new Float32Array(dimensions);
  const normalized = text.toLowerCase();
  for (const token of normalized.split(/[^\p{L}\p{N}<>]+/u)) {
    if (token) addFeature(v, `w:${token}`, 2);
  }
  const padded = ` ${normalized} `;
  for (let i = 0; i + 3 <= padded.length; i++) addFeature(v, `c:${padded.slice(i, i + 3)}`, 1);
  let norm = 0;
  for (const x of v) norm += x * x;
  if (norm === 0) {
    v[0] = 1;
    return v;
  }
  const scale = 1 / Math.sqrt(norm);
  for (let i = 0; i < v.length; i++) v[i]! *= scale;
  return v;
}

function addFeature(v: Float32Array, feature: string, weight: number): void {
  const h = fnv1a(feature);
  const index = h % v.length;
  v[index]! += (h & 0x80000000) === 0 ? weight : -weight;
}

function fnv1a(s: string): number {
  let h = 0x811c9dc5;
  for (let i = 0; i < s.length; i++) {
    h ^= s.charCodeAt(i);
    h = Math.imul(h, 0x01000193);
  }
  return h >>> 0;
}
