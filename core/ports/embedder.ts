/** Turns texts into vectors: OpenAI (or any compatible server) in the cloud, a deterministic local model offline. */
export interface Embedder {
  readonly model: string;
  readonly dimensions: number;
  /** One vector per input, in order. */
  embed(texts: string[], options?: { signal?: AbortSignal }): Promise<Float32Array[]>;
}
