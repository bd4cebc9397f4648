// Child processes get a minimal environment (issue 18, item 12): a local run's children never see AWS credentials,
// the compactor never sees the OpenAI key, and a launched child inherits nothing it was not given. Real processes.
import { afterEach, describe, expect, it } from 'vitest';
import { ProcessLauncher } from '../../../core/local/launcher.js';
import { localChildEnv } from '../../../local/child-env.js';

const SECRETS = {
  OPENAI_API_KEY: 'sk-test-do-not-leak',
  AWS_ACCESS_KEY_ID: 'AKIATESTDONOTLEAK',
  AWS_SECRET_ACCESS_KEY: 'aws-secret-do-not-leak',
  AWS_SESSION_TOKEN: 'aws-token-do-not-leak',
  AWS_WEB_IDENTITY_TOKEN_FILE: '/var/run/secrets/eks.amazonaws.com/serviceaccount/token',
};
const saved = Object.fromEntries(Object.keys(SECRETS).map((k) => [k, process.env[k]]));
afterEach(() => {
  for (const [k, v] of Object.entries(saved)) {
    if (v === undefined) delete process.env[k];
    else process.env[k] = v;
  }
});

describe('child environments', () => {
  it('a launched child sees only the minimal environment and what its spec adds', async () => {
    Object.assign(process.env, SECRETS);
    const l = new ProcessLauncher({ concurrency: 1 });
    const res = await l.launch({
      name: 'env-probe',
      command: process.execPath,
      args: ['-e', 'process.stdout.write(JSON.stringify(process.env))'],
      env: { LOG_LEVEL: 'debug' },
    });
    await l.stop(1000);
    const seen = JSON.parse(res.stdout) as Record<string, string>;
    for (const k of Object.keys(SECRETS)) expect(seen).not.toHaveProperty(k);
    expect(JSON.stringify(seen)).not.toMatch(/do-not-leak/);
    expect(seen.PATH).toBe(process.env.PATH);
    expect(seen.LOG_LEVEL).toBe('debug');
    expect(seen.EMBEDCTL_PARENT_PIPE).toBe('stdin');
  });

  it('a local worker gets the OpenAI settings but no AWS credentials; the compactor gets neither', () => {
    const env = {
      ...SECRETS,
      PATH: '/usr/bin',
      LOG_LEVEL: 'info',
      EMBEDCTL_CRASH_AT: 'x',
      OPENAI_BASE_URL: 'http://o',
    };
    const worker = localChildEnv('worker', env);
    expect(worker).toMatchObject({
      OPENAI_API_KEY: SECRETS.OPENAI_API_KEY,
      OPENAI_BASE_URL: 'http://o',
      LOG_LEVEL: 'info',
    });
    const compactor = localChildEnv('compactor', env);
    expect(compactor).toEqual({ PATH: '/usr/bin', LOG_LEVEL: 'info', EMBEDCTL_CRASH_AT: 'x' });
    for (const k of Object.keys(SECRETS).filter((k) => k.startsWith('AWS_')))
      expect(worker).not.toHaveProperty(k);
  });
});
