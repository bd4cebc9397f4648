// `kubectl embedctl …` (issue 16 part 3): kubectl runs any `kubectl-<name>` executable on PATH as a plugin, so the
// package installs the CLI a second time under that name. The plugin dispatch itself is exercised against the real
// kubectl in test/integration/core/crd.test.ts.
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';

const pkg = JSON.parse(readFileSync(join(import.meta.dirname, '..', '..', '..', 'package.json'), 'utf8')) as {
  bin: Record<string, string>;
};

describe('the kubectl plugin bin', () => {
  it('kubectl-embedctl is the same built CLI as embedctl', () => {
    expect(pkg.bin['kubectl-embedctl']).toBe(pkg.bin.embedctl);
  });

  it('the CLI starts with a shebang, so the bin runs as an executable', () => {
    const source = readFileSync(join(import.meta.dirname, '..', '..', '..', 'cli', 'main.ts'), 'utf8');
    expect(source.startsWith('#!/usr/bin/env node\n')).toBe(true);
  });
});
