import { randomBytes } from 'node:crypto';
import { readFileSync, renameSync, writeFileSync } from 'node:fs';
import { homedir } from 'node:os';
import { join } from 'node:path';
import { ENV, processEnv, type Env } from '../core/config/env.js';
import { parseEmbedderEnv } from '../core/config/worker.js';
import { LocalEmbedder } from '../core/embedding/local-embedder.js';
import { SENTENCE_DIMENSIONS, SENTENCE_MODEL_KEY } from '../core/embedding/sentence-embedder.js';
import { ConfigError } from '../core/errors.js';
import type { Embedder } from '../core/ports/embedder.js';
import type { HomePaths } from './home.js';

/**
 * Local mode's embedders: `sentence` (all-MiniLM-L6-v2 in-process, the default), `lexical` (hashed words and
 * trigrams: fast, deterministic, knows no meaning; for tests), `openai` (any OpenAI-compatible API).
 */
export const EMBEDDER_KINDS = ['sentence', 'lexical', 'openai'] as const;
export type EmbedderKind = (typeof EMBEDDER_KINDS)[number];

/** What a home's vectors were made with (`state/embedder.json`): one vector space per home. */
export interface HomeEmbedder {
  kind: EmbedderKind;
  model: string;
  dimensions: number;
}

const isKind = (s: unknown): s is EmbedderKind => EMBEDDER_KINDS.includes(s as EmbedderKind);

/** `--embedder`, else EMBEDCTL_EMBEDDER; a bad value is a usage error naming where it came from. */
export function askedEmbedder(flag: string | undefined, env: Env = processEnv()): EmbedderKind | undefined {
  const [value, source] =
    flag !== undefined ? [flag, '--embedder'] : [env[ENV.EMBEDCTL_EMBEDDER], ENV.EMBEDCTL_EMBEDDER];
  if (value === undefined || value === '') return undefined;
  if (!isKind(value))
    throw new ConfigError(
      `${source} must be one of ${EMBEDDER_KINDS.join(', ')}, not ${JSON.stringify(value)}`,
    );
  return value;
}

/**
 * The embedder for a home: the one asked for, else the one its vectors were made with, else OpenAI when
 * OPENAI_API_KEY is set, else `sentence`. Asking for another one than the home's is refused (exit 2): its vectors
 * would not be comparable with those already there.
 */
export function chooseEmbedder(
  paths: HomePaths,
  asked: EmbedderKind | undefined,
  env: Env = processEnv(),
): EmbedderKind {
  const recorded = homeEmbedder(paths);
  if (asked && recorded && asked !== recorded.kind)
    throw new ConfigError(
      `${paths.root} holds vectors of the ${recorded.kind} embedder (${recorded.model}, ${recorded.dimensions} dims); ` +
        `--embedder ${asked} would mix two vector spaces: pass --embedder ${recorded.kind}, or use another --home`,
      { home: paths.root, recorded: recorded.kind, asked },
    );
  return asked ?? recorded?.kind ?? (env[ENV.OPENAI_API_KEY] ? 'openai' : 'sentence');
}

/** Makes the embedder of that kind. Throws ConfigError for settings that cannot work (a missing model, a key). */
export async function makeEmbedder(kind: EmbedderKind, env: Env = processEnv()): Promise<Embedder> {
  const { apiKey, baseUrl, model, dimensions } = parseEmbedderEnv(env);
  if (kind === 'lexical') return new LocalEmbedder(dimensions);
  if (kind === 'sentence') {
    if (dimensions !== undefined && dimensions !== SENTENCE_DIMENSIONS)
      throw new ConfigError(
        `${ENV.EMBEDDING_DIMENSIONS}=${dimensions} does not fit the sentence embedder (${SENTENCE_DIMENSIONS} dims): unset it, or use --embedder lexical`,
      );
    // Loaded only when used: ONNX Runtime is a large native module the lexical path never needs.
    const { SentenceEmbedder } = await import('../core/embedding/sentence-embedder.js');
    return SentenceEmbedder.load(sentenceModelDir(env));
  }
  if (!apiKey)
    throw new ConfigError(
      `--embedder openai needs ${ENV.OPENAI_API_KEY} (and ${ENV.OPENAI_BASE_URL} for another server)`,
    );
  // Loaded only when used: the OpenAI SDK is a fifth of a local worker process's start-up.
  const { OpenAIEmbedder } = await import('../core/embedding/openai-embedder.js');
  return new OpenAIEmbedder({
    apiKey,
    ...(baseUrl ? { baseURL: baseUrl } : {}),
    ...(model ? { model } : {}),
    ...(dimensions !== undefined ? { dimensions } : {}),
  });
}

/** Where tools/model/install-minilm.sh puts the model: $EMBEDCTL_MODELS (default ~/.cache/embedctl/models)/<key>. */
export function sentenceModelDir(env: Env = processEnv()): string {
  return join(
    env[ENV.EMBEDCTL_MODELS] || join(homedir(), '.cache', 'embedctl', 'models'),
    SENTENCE_MODEL_KEY,
  );
}

/**
 * The home's embedder: `state/embedder.json`, else (a home from before that file) the one its last summary names.
 * Undefined for a home that has embedded nothing yet.
 */
export function homeEmbedder(paths: HomePaths): HomeEmbedder | undefined {
  const read = (file: string): unknown => {
    try {
      return JSON.parse(readFileSync(file, 'utf8'));
    } catch {
      return undefined;
    }
  };
  const rec = read(embedderFile(paths)) as Partial<HomeEmbedder> | undefined;
  if (rec && isKind(rec.kind) && typeof rec.model === 'string' && typeof rec.dimensions === 'number')
    return { kind: rec.kind, model: rec.model, dimensions: rec.dimensions };
  const last = read(join(paths.root, 'last-run.json')) as
    { embedder?: { kind?: string; model?: string; dimensions?: number } } | undefined;
  const e = last?.embedder;
  if (!e || typeof e.model !== 'string' || typeof e.dimensions !== 'number') return undefined;
  const kind = e.kind === 'local-lexical' ? 'lexical' : e.kind;
  return isKind(kind) ? { kind, model: e.model, dimensions: e.dimensions } : undefined;
}

/** Records the home's embedder before its first vector is made (written beside and renamed: never half a file). */
export function recordHomeEmbedder(paths: HomePaths, kind: EmbedderKind, embedder: Embedder): void {
  if (homeEmbedder(paths)) return;
  const file = embedderFile(paths);
  const tmp = `${file}.${process.pid}.${randomBytes(4).toString('hex')}`;
  const rec: HomeEmbedder = { kind, model: embedder.model, dimensions: embedder.dimensions };
  writeFileSync(tmp, `${JSON.stringify(rec)}\n`, { mode: 0o600, flag: 'wx' });
  renameSync(tmp, file);
}

function embedderFile(paths: HomePaths): string {
  return join(paths.root, 'state', 'embedder.json');
}
