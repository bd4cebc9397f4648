// One image per program (docs/adr/0016): what each image keeps is the program's import graph, computed by
// tools/image/program-files.ts; here on the sources, in the image on the compiled tree.
import { readFileSync } from 'node:fs';
import { join } from 'node:path';

import { beforeAll, describe, expect, it } from 'vitest';

import {
  IMAGE_PROGRAMS,
  type ImportGraph,
  importGraph,
  packageName,
  programClosure,
  programPackageJson,
} from '../../tools/image/program-files.js';

const ROOT = join(import.meta.dirname, '..', '..');
const read = (p: string) => readFileSync(join(ROOT, p), 'utf8');
const pkg = JSON.parse(read('package.json')) as { dependencies: Record<string, string> };

let graph: ImportGraph;
beforeAll(async () => {
  graph = await importGraph({ root: '.', ext: 'ts' });
}, 120_000);

const closure = (p: (typeof IMAGE_PROGRAMS)[number]) => programClosure(graph, p);

describe('per-program images', () => {
  it('the controller image carries neither Chroma, SQLite, OpenAI nor Arrow, and hosts the stream processor', () => {
    const { files, packages } = closure('controller');
    for (const p of ['chromadb', 'better-sqlite3', 'openai', 'apache-arrow'])
      expect(packages).not.toContain(p);
    expect(packages).toEqual(
      expect.arrayContaining(['@aws-sdk/client-sqs', '@aws-sdk/client-dynamodb-streams']),
    );
    expect(files).toContain('stream/runnable.ts');
    expect(
      files.some((f) => f.startsWith('worker/') || f.startsWith('compactor/') || f.startsWith('local/')),
    ).toBe(false);
  });

  it("the worker carries OpenAI and Chroma, the compactor Chroma and SQLite (the original system's Chroma-directory deltas); no local mode", () => {
    expect(closure('worker').packages).toEqual(
      expect.arrayContaining(['openai', 'chromadb', 'apache-arrow']),
    );
    expect(closure('worker').packages).not.toContain('better-sqlite3');
    expect(closure('compactor').packages).toEqual(
      expect.arrayContaining(['chromadb', 'apache-arrow', 'better-sqlite3']),
    );
    expect(closure('compactor').packages).not.toContain('openai');
    for (const p of IMAGE_PROGRAMS) {
      expect(
        closure(p).files.filter((f) => f.startsWith('local/')),
        p,
      ).toEqual([]);
      // cli/main's dynamic imports are the other commands: only the program's own command module is kept.
      const commands = closure(p).files.filter((f) => /^(controller|worker|compactor)\/command\.ts$/.test(f));
      expect(commands, p).toEqual([`${p}/command.ts`]);
    }
  });

  it('every package a program imports is a declared dependency, and the narrowed package.json keeps only those', () => {
    for (const p of IMAGE_PROGRAMS) {
      const { packages } = closure(p);
      const narrowed = programPackageJson(pkg, p, packages);
      expect(Object.keys(narrowed.dependencies ?? {}).sort(), p).toEqual(packages);
    }
    expect(() => programPackageJson(pkg, 'worker', ['left-pad'])).toThrow(
      /program worker imports left-pad, which package.json "dependencies" does not declare/,
    );
  });

  it('names packages by their scope and name, not the subpath', () => {
    expect(packageName('@aws-sdk/client-s3/dist/x.js')).toBe('@aws-sdk/client-s3');
    expect(packageName('yaml/util')).toBe('yaml');
  });

  it('the Dockerfile has one target per program, each built from its own pruned tree, and ships the pruner', () => {
    const dockerfile = read('Dockerfile');
    for (const p of IMAGE_PROGRAMS) {
      expect(dockerfile).toMatch(new RegExp(`^FROM runtime AS ${p}$`, 'm'));
      expect(dockerfile).toMatch(new RegExp(`^FROM build AS ${p}-files$`, 'm'));
      expect(dockerfile).toContain(`program-files.js ${p} --prune && npm prune --omit=dev`);
      for (const what of ['node_modules', 'build', 'package.json'])
        expect(dockerfile).toContain(`COPY --from=${p}-files --chown=root:root /app/${what}`);
    }
    expect(read('.dockerignore')).toMatch(/^!tools\/image\/program-files\.ts$/m);
    expect(read('tools/image/build.sh')).toMatch(/^PROGRAMS=\(controller worker compactor\)$/m);
  });
});
