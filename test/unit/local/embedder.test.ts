import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { LocalEmbedder } from '../../../core/embedding/local-embedder.js';
import { ConfigError } from '../../../core/errors.js';
import {
  askedEmbedder,
  chooseEmbedder,
  homeEmbedder,
  makeEmbedder,
  recordHomeEmbedder,
} from '../../../local/embedder.js';
import { homePaths } from '../../../local/home.js';

const dirs: string[] = [];
afterAll(() => dirs.forEach((d) => rmSync(d, { recursive: true, force: true })));
function home() {
  const d = mkdtempSync(join(tmpdir(), 'embedder-choice-'));
  dirs.push(d);
  mkdirSync(join(d, 'state'));
  return homePaths(d);
}

describe('local mode picks its embedder', () => {
  it('takes --embedder over EMBEDCTL_EMBEDDER, and refuses an unknown one naming where it came from', () => {
    expect(askedEmbedder('sentence', { EMBEDCTL_EMBEDDER: 'lexical' })).toBe('sentence');
    expect(askedEmbedder(undefined, { EMBEDCTL_EMBEDDER: 'lexical' })).toBe('lexical');
    expect(askedEmbedder(undefined, {})).toBeUndefined();
    expect(() => askedEmbedder(undefined, { EMBEDCTL_EMBEDDER: 'bert' })).toThrow(
      /EMBEDCTL_EMBEDDER must be one of sentence, lexical, openai, not "bert"/,
    );
  });

  it('defaults a new home to sentence, or to openai when OPENAI_API_KEY is set', () => {
    const p = home();
    expect(chooseEmbedder(p, undefined, {})).toBe('sentence');
    expect(chooseEmbedder(p, undefined, { OPENAI_API_KEY: 'sk-x' })).toBe('openai');
    expect(chooseEmbedder(p, 'lexical', { OPENAI_API_KEY: 'sk-x' })).toBe('lexical');
  });

  it("keeps a home's vectors in one space: its recorded embedder is the default, another one is refused", () => {
    const p = home();
    recordHomeEmbedder(p, 'lexical', new LocalEmbedder());
    expect(JSON.parse(readFileSync(join(p.root, 'state', 'embedder.json'), 'utf8'))).toEqual({
      kind: 'lexical',
      model: 'local-hash-v1',
      dimensions: 1536,
    });
    expect(chooseEmbedder(p, undefined, { OPENAI_API_KEY: 'sk-x' })).toBe('lexical');
    expect(chooseEmbedder(p, 'lexical', {})).toBe('lexical');
    const err = (() => {
      try {
        chooseEmbedder(p, 'sentence', {});
      } catch (e) {
        return e;
      }
    })();
    expect(err).toBeInstanceOf(ConfigError);
    expect((err as Error).message).toBe(
      `${p.root} holds vectors of the lexical embedder (local-hash-v1, 1536 dims); --embedder sentence would mix two vector spaces: pass --embedder lexical, or use another --home`,
    );
    // Recorded once: a later record does not change it.
    recordHomeEmbedder(p, 'sentence', new LocalEmbedder(384));
    expect(homeEmbedder(p)?.kind).toBe('lexical');
  });

  it('reads the embedder of a home from before state/embedder.json from its last summary', () => {
    const p = home();
    writeFileSync(
      join(p.root, 'last-run.json'),
      JSON.stringify({ embedder: { model: 'local-hash-v1', dimensions: 1536, kind: 'local-lexical' } }),
    );
    expect(homeEmbedder(p)).toEqual({ kind: 'lexical', model: 'local-hash-v1', dimensions: 1536 });
    expect(chooseEmbedder(p, undefined, {})).toBe('lexical');
  });

  it('refuses settings that cannot work: a dimension the model does not have, openai without a key', async () => {
    await expect(makeEmbedder('sentence', { EMBEDDING_DIMENSIONS: '1536' })).rejects.toThrow(
      'EMBEDDING_DIMENSIONS=1536 does not fit the sentence embedder (384 dims)',
    );
    await expect(makeEmbedder('openai', {})).rejects.toThrow('--embedder openai needs OPENAI_API_KEY');
    const lexical = await makeEmbedder('lexical', { EMBEDDING_DIMENSIONS: '64' });
    expect([lexical.model, lexical.dimensions]).toEqual(['local-hash-v1', 64]);
  });

  it('looks for the model under EMBEDCTL_MODELS', async () => {
    const models = mkdtempSync(join(tmpdir(), 'models-'));
    dirs.push(models);
    await expect(makeEmbedder('sentence', { EMBEDCTL_MODELS: models })).rejects.toThrow(
      `the sentence embedder's model.onnx is not in ${join(models, 'all-MiniLM-L6-v2-int8-1.0.0')}`,
    );
  });
});
