import { childEnv } from '../core/child-env.js';

/**
 * What a `local run` child may see of the runner's environment, per program. Both get the log level and the
 * project's own knobs (EMBEDCTL_*: fault injection, the tsx fallback). Only a worker embeds, so only a worker gets the
 * OpenAI settings (and the proxy and CA settings an HTTPS call to it may need). No child gets AWS credentials: local
 * mode talks to no AWS service.
 */
export function localChildEnv(
  program: 'worker' | 'compactor',
  env: NodeJS.ProcessEnv = process.env,
): Record<string, string> {
  const common = ['LOG_LEVEL', 'EMBEDDING_DIMENSIONS'];
  if (program === 'compactor') return childEnv(env, { names: common, prefixes: ['EMBEDCTL_'] });
  return childEnv(env, {
    names: [
      ...common,
      'OPENAI_API_KEY',
      'OPENAI_BASE_URL',
      'EMBEDDING_MODEL',
      'HTTPS_PROXY',
      'https_proxy',
      'NO_PROXY',
      'no_proxy',
      'NODE_EXTRA_CA_CERTS',
    ],
    prefixes: ['EMBEDCTL_'],
  });
}
