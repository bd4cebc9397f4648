import { LOCAL_MODEL } from '../../core/embedding/local-embedder.js';
import { startEmbeddingsServer } from '../../core/embedding/local-server.js';
import type { Component } from './component.js';

export interface Embeddings extends Component {
  /** Base URL ending in `/v1`, for `new OpenAI({ baseURL })`. */
  baseUrl: string;
  /** The model name the server reports (`local-hash-v1`; it accepts any). */
  model: string;
}

/** The project's own OpenAI-compatible embeddings server (core/embedding/local-server.ts), in this process. */
export async function startEmbeddings(opts: {
  port: number;
  dimensions: number;
  host?: string;
}): Promise<Embeddings> {
  const server = await startEmbeddingsServer({
    host: opts.host ?? '127.0.0.1',
    port: opts.port,
    dimensions: opts.dimensions,
  });
  let closed: Promise<void> | undefined;
  return {
    name: 'embeddings',
    baseUrl: server.url,
    model: LOCAL_MODEL,
    stop: () => (closed ??= server.close()),
  };
}
