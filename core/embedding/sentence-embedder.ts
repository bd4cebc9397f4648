import { readFile, stat } from 'node:fs/promises';
import { join } from 'node:path';
import type * as Ort from 'onnxruntime-node';
import type { Tokenizer } from '@huggingface/tokenizers';
import { ConfigError } from '../errors.js';
import type { Embedder } from '../ports/embedder.js';

/** The model local mode embeds with by default: all-MiniLM-L6-v2 as int8 ONNX (tools/model/install-minilm.sh). */
export const SENTENCE_MODEL = 'all-MiniLM-L6-v2-int8';
/** The directory install-minilm.sh fills, under the models directory; versioned so an upgrade never mixes files. */
export const SENTENCE_MODEL_KEY = 'all-MiniLM-L6-v2-int8-1.0.0';
export const SENTENCE_DIMENSIONS = 384;
/** The sequence length the model was trained at (sentence-transformers' tokenizer truncates there too). */
const MAX_TOKENS = 128;
/** Inputs per inference: sorted by length first, so a batch pads little; larger batches gained nothing measured. */
const BATCH = 32;

const INSTALL_HINT =
  'install it with tools/model/install-minilm.sh (npm run model), or use --embedder lexical';

/**
 * A sentence-embedding model run in-process with ONNX Runtime: WordPiece tokens → 6-layer MiniLM → mean pooling over
 * the real tokens → L2 normalisation, which is what sentence-transformers does for all-MiniLM-L6-v2. "milk" lands near
 * "ORGANIC MILK 3.49" and "TOTAL" near "AMOUNT DUE", which the lexical embedder cannot do.
 *
 * One intra-op thread per session: local mode's parallelism is its worker processes (one per core), and a second
 * thread per session only fought them for the same cores. `session.run` blocks the event loop while it computes,
 * which the worker process tolerates (its other work waits for these vectors anyway).
 *
 * The same text gives the same vector whatever it is batched with (masked padding; checked in the unit test).
 */
export class SentenceEmbedder implements Embedder {
  readonly model = SENTENCE_MODEL;
  readonly dimensions = SENTENCE_DIMENSIONS;
  /** Inferences run one at a time: ONNX Runtime sessions are not re-entrant from one thread. */
  private queue: Promise<unknown> = Promise.resolve();

  private constructor(
    private readonly ort: typeof Ort,
    private readonly session: Ort.InferenceSession,
    private readonly tokenizer: Tokenizer,
  ) {}

  /**
   * Loads the model from `dir` (model.onnx + tokenizer.json). Throws ConfigError (exit 2) naming the directory when
   * the files or the runtime are missing. Nothing is fetched from anywhere.
   */
  static async load(dir: string): Promise<SentenceEmbedder> {
    for (const file of ['model.onnx', 'tokenizer.json']) {
      if (!(await stat(join(dir, file)).catch(() => undefined))?.isFile())
        throw new ConfigError(`the sentence embedder's ${file} is not in ${dir}: ${INSTALL_HINT}`, {
          dir,
          file,
        });
    }
    let ort: typeof Ort;
    let Tok: typeof Tokenizer;
    try {
      // Loaded only when used: the cloud images leave these out (devDependencies), and the lexical path needs neither.
      ort = await import('onnxruntime-node');
      ({ Tokenizer: Tok } = await import('@huggingface/tokenizers'));
    } catch (err) {
      throw new ConfigError(
        `the sentence embedder's runtime (onnxruntime-node, @huggingface/tokenizers) is not installed: run npm ci, or use --embedder lexical`,
        { cause: String(err) },
      );
    }
    const tokenizerJson: unknown = JSON.parse(await readFile(join(dir, 'tokenizer.json'), 'utf8'));
    const tokenizer = new Tok(tokenizerJson as object, {});
    const session = await ort.InferenceSession.create(join(dir, 'model.onnx'), {
      intraOpNumThreads: 1,
      interOpNumThreads: 1,
      executionMode: 'sequential',
      graphOptimizationLevel: 'all',
    });
    return new SentenceEmbedder(ort, session, tokenizer);
  }

  async embed(texts: string[]): Promise<Float32Array[]> {
    const ids = texts.map((t) => this.tokens(t));
    const order = ids.map((_, i) => i).sort((a, b) => ids[a]!.length - ids[b]!.length || a - b);
    const out = new Array<Float32Array>(texts.length);
    for (let start = 0; start < order.length; start += BATCH) {
      const chunk = order.slice(start, start + BATCH);
      const vectors = await this.serial(() => this.infer(chunk.map((i) => ids[i]!)));
      chunk.forEach((i, k) => (out[i] = vectors[k]!));
    }
    return out;
  }

  /** [CLS] … [SEP], cut to MAX_TOKENS with the [SEP] kept (as the model's own tokenizer truncates). */
  private tokens(text: string): number[] {
    const ids = this.tokenizer.encode(text).ids;
    if (ids.length <= MAX_TOKENS) return ids;
    return [...ids.slice(0, MAX_TOKENS - 1), ids[ids.length - 1]!];
  }

  private serial<T>(f: () => Promise<T>): Promise<T> {
    const next = this.queue.then(f, f);
    this.queue = next.catch(() => undefined);
    return next;
  }

  private async infer(batch: number[][]): Promise<Float32Array[]> {
    const rows = batch.length;
    const width = Math.max(...batch.map((b) => b.length));
    const ids = new BigInt64Array(rows * width);
    const mask = new BigInt64Array(rows * width);
    batch.forEach((b, r) =>
      b.forEach((id, j) => {
        ids[r * width + j] = BigInt(id);
        mask[r * width + j] = 1n;
      }),
    );
    const shape = [rows, width];
    const tensor = (data: BigInt64Array): Ort.Tensor => new this.ort.Tensor('int64', data, shape);
    const result = await this.session.run({
      input_ids: tensor(ids),
      attention_mask: tensor(mask),
      token_type_ids: tensor(new BigInt64Array(rows * width)),
    });
    const hidden = result.last_hidden_state!.data as Float32Array;
    const d = this.dimensions;
    return batch.map((b, r) => {
      // Mean over the real tokens, then unit length.
      const v = new Float32Array(d);
      for (let j = 0; j < b.length; j++) {
        const base = (r * width + j) * d;
        for (let k = 0; k < d; k++) v[k]! += hidden[base + k]!;
      }
      let norm = 0;
      for (let k = 0; k < d; k++) norm += v[k]! * v[k]!;
      const scale = norm > 0 ? 1 / Math.sqrt(norm) : 0;
      for (let k = 0; k < d; k++) v[k]! *= scale;
      return v;
    });
  }
}
