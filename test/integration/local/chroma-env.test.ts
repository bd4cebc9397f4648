// The Chroma servers the project spawns get a minimal environment (issue 18, item 12): none of the parent's API key
// or AWS credentials are in /proc/<pid>/environ of a real `chroma run`.
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { startChromaServer } from '../../../core/chroma/server.js';

const dir = mkdtempSync(join(tmpdir(), 'chroma-env-'));
const secrets = {
  OPENAI_API_KEY: 'sk-test-do-not-leak',
  AWS_SECRET_ACCESS_KEY: 'aws-do-not-leak',
  AWS_SESSION_TOKEN: 'tok-do-not-leak',
};
const saved = Object.fromEntries(Object.keys(secrets).map((k) => [k, process.env[k]]));
afterAll(() => {
  for (const [k, v] of Object.entries(saved)) {
    if (v === undefined) delete process.env[k];
    else process.env[k] = v;
  }
  rmSync(dir, { recursive: true, force: true });
});

describe('a Chroma server child', () => {
  it('sees neither the OpenAI key nor AWS credentials of its parent', async () => {
    Object.assign(process.env, secrets);
    const server = await startChromaServer({ path: join(dir, 'db') });
    try {
      const environ = readFileSync(`/proc/${server.pid}/environ`, 'utf8').split('\0');
      const names = environ.map((e) => e.slice(0, e.indexOf('=')));
      for (const k of Object.keys(secrets)) expect(names).not.toContain(k);
      expect(environ.join('\n')).not.toMatch(/do-not-leak/);
      expect(names).toContain('PATH');
    } finally {
      await server.stop();
    }
  });
});
