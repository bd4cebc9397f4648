// Local mode with its default embedder, all-MiniLM-L6-v2 in-process (issue 16, part 5): the demo's queries return
// what a person would call right, `query` embeds with the home's embedder, and another embedder is refused.
// The other local-mode tests run the lexical embedder (vitest.config.ts); these ask for the sentence one.
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import type { RunSummary } from '../../../local/run.js';
import { cli, homeFactory } from './cli.js';

const { tempHome, removeHomes } = homeFactory('local-sentence-');
afterAll(removeHomes);

interface QueryOut {
  collection: string;
  hits: { similarity: number; document: string | null; id: string }[];
}

describe('local run with the sentence embedder', () => {
  it('without the model installed: exit 2 naming the directory and the install command, and no home', async () => {
    const models = tempHome();
    const home = join(models, 'home');
    const r = await cli(['local', 'run', '--home', home, '--embedder', 'sentence'], {
      env: { EMBEDCTL_MODELS: models },
    }).done;
    expect(r.code).toBe(2);
    expect(r.stderr.trim()).toBe(
      `error: the sentence embedder's model.onnx is not in ${join(models, 'all-MiniLM-L6-v2-int8-1.0.0')}: install it with tools/model/install-minilm.sh (npm run model), or use --embedder lexical`,
    );
    expect(existsSync(home)).toBe(false);
  });

  it("finds MILK for 'milk' and a TOTAL row for 'TOTAL'; query uses the home's embedder and refuses another", async () => {
    const home = tempHome();
    const run = await cli(
      [
        'local',
        'run',
        '--home',
        home,
        '--receipts',
        '20',
        '--embedder',
        'sentence',
        '--json',
        '--timeout',
        '400',
      ],
      { timeoutMs: 450_000 },
    ).done;
    expect(run.code, run.stderr.slice(-3000)).toBe(0);
    const s = JSON.parse(run.stdout) as RunSummary;
    expect(s.embedder).toEqual({ kind: 'sentence', model: 'all-MiniLM-L6-v2-int8', dimensions: 384 });
    for (const c of ['lines', 'words'] as const) expect(s.vectors[c].snapshot).toBe(s.vectors[c].expected);

    const demo = (title: string) => s.queries.find((q) => q.title === title)?.hits.map((h) => h.text) ?? [];
    expect(demo(`words like 'milk'`)).toContain('MILK');
    expect(demo(`lines like 'TOTAL'`).some((t) => /^TOTAL\b/.test(t ?? ''))).toBe(true);

    // No --embedder and no EMBEDCTL_EMBEDDER: the home's own (state/embedder.json).
    const query = async (...args: string[]) => {
      const r = await cli(['query', ...args, '--home', home, '--json'], { env: { EMBEDCTL_EMBEDDER: '' } })
        .done;
      expect(r.code, r.stderr).toBe(0);
      return JSON.parse(r.stdout) as QueryOut;
    };
    const milk = await query('milk', '-n', '3');
    expect(milk.collection).toBe('words');
    expect(milk.hits.map((h) => h.document)).toContain('MILK');
    const total = await query('TOTAL', '-c', 'lines', '-n', '3');
    expect(total.hits.map((h) => h.document).some((t) => /^TOTAL\b/.test(t ?? ''))).toBe(true);

    const other = await cli(['query', 'milk', '--home', home, '--embedder', 'lexical']).done;
    expect(other.code).toBe(2);
    expect(other.stderr).toContain(
      'holds vectors of the sentence embedder (all-MiniLM-L6-v2-int8, 384 dims); --embedder lexical would mix two vector spaces',
    );
    const rerun = await cli(['local', 'run', '--home', home, '--receipts', '20', '--no-queries']).done;
    expect(rerun.code, 'EMBEDCTL_EMBEDDER=lexical of the test environment against a sentence home').toBe(2);
  }, 600_000);
});
