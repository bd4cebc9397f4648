// A refused OpenAI key (issue 18, item 12): the SDK's message quotes a masked form of the key, and the error's text
// reaches the EmbeddingJob's status, its Events and the local summary, so it is replaced by a fixed message. A real
// HTTP server answers 401 the way the OpenAI API does.
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { describe, expect, it } from 'vitest';
import { authMessage, OpenAIEmbedder } from '../../../../core/embedding/openai-embedder.js';
import { ConfigError } from '../../../../core/errors.js';

const KEY = 'sk-proj-abcdEFGHijklMNOPqrstUVWX1234';

describe('an OpenAI authentication error', () => {
  for (const status of [401, 403]) {
    it(`(HTTP ${status}) becomes a fixed message without any of the key or the API's text`, async () => {
      const api = createServer((req, res) => {
        req.resume();
        req.on('end', () => {
          res.writeHead(status, { 'content-type': 'application/json' });
          res.end(
            JSON.stringify({
              error: {
                message: `Incorrect API key provided: sk-proj-****************************1234. You can find your API key at https://platform.openai.com/account/api-keys.`,
                type: 'invalid_request_error',
                param: null,
                code: 'invalid_api_key',
              },
            }),
          );
        });
      });
      await new Promise<void>((r) => api.listen(0, '127.0.0.1', r));
      try {
        const e = new OpenAIEmbedder({
          apiKey: KEY,
          baseURL: `http://127.0.0.1:${(api.address() as AddressInfo).port}/v1`,
          dimensions: 8,
          backoffBaseMs: 1,
          maxBackoffMs: 5,
        });
        const err = await e.embed(['TOTAL 12.99']).catch((x: unknown) => x);
        expect(err).toBeInstanceOf(ConfigError);
        const message = (err as Error).message;
        expect(message).toBe(authMessage(status));
        expect(message).not.toMatch(/sk-|1234|Incorrect API key/);
      } finally {
        await new Promise<void>((r) => api.close(() => r()));
      }
    });
  }
});
