import { childEnv } from '../core/child-env.js';
import { ENV, processEnv, type Env } from '../core/config/env.js';

/**
 * What a `local run` child may see of the runner's environment, per program. Both get the log level and the
 * project's own knobs (EMBEDCTL_*: fault injection, the tsx fallback). Only a worker embeds, so only a worker gets the
 * OpenAI settings (and the proxy and CA settings an HTTPS call to it may need). No child gets AWS credentials: local
 * mode talks to no AWS service.
 */
export function localChildEnv(
  program: 'worker' | 'compactor',
  env: Env = processEnv(),
): Record<string, string> {
  const common = [ENV.LOG_LEVEL, ENV.EMBEDDING_DIMENSIONS];
  if (program === 'compactor') return childEnv(env, { names: common, prefixes: ['EMBEDCTL_'] });
  return childEnv(env, {
    names: [
      ...common,
      ENV.OPENAI_API_KEY,
      ENV.OPENAI_BASE_URL,
      ENV.EMBEDDING_MODEL,
      'HTTPS_PROXY',
      'https_proxy',
      'NO_PROXY',
      'no_proxy',
      'NODE_EXTRA_CA_CERTS',
    ],
    prefixes: ['EMBEDCTL_'],
  });
}
