// Issue 17 item 6: a server that accepts connections and never answers fails AWS SDK calls and Chroma requests
// within their timeouts instead of hanging the caller (the compactor) forever.
import { createServer, type Server, type Socket } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { awsTimeoutsFromEnv, clientConfig, DEFAULT_AWS_TIMEOUTS } from '../../../core/aws/config.js';
import { S3Store } from '../../../core/aws/s3-store.js';
import {
  ChromaTimeoutError,
  ChromaVectorStore,
  DEFAULT_CHROMA_TIMEOUT_MS,
} from '../../../core/chroma/store.js';
import { ConfigError } from '../../../core/errors.js';

/** Accepts every connection and reads what is sent; answers nothing, or (`headersOnly`) headers and no body. */
async function silentServer(
  headersOnly = false,
): Promise<{ url: string; server: Server; sockets: Set<Socket> }> {
  const sockets = new Set<Socket>();
  const server = createServer((socket) => {
    sockets.add(socket);
    socket.on('close', () => sockets.delete(socket));
    socket.on('error', () => {});
    let answered = false;
    socket.on('data', () => {
      if (!headersOnly || answered) return;
      answered = true;
      socket.write('HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 1000\r\n\r\n{"id":');
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as { port: number };
  return { url: `http://127.0.0.1:${port}`, server, sockets };
}

let silent: Awaited<ReturnType<typeof silentServer>>;
let halfAnswer: Awaited<ReturnType<typeof silentServer>>;
beforeAll(async () => {
  silent = await silentServer();
  halfAnswer = await silentServer(true);
});
afterAll(async () => {
  for (const s of [silent, halfAnswer]) {
    for (const socket of s.sockets) socket.destroy();
    await new Promise((resolve) => s.server.close(resolve));
  }
});

async function timed<T>(p: Promise<T>): Promise<{ err: unknown; ms: number }> {
  const t0 = performance.now();
  const err = await p.then(
    () => undefined,
    (e: unknown) => e,
  );
  return { err, ms: performance.now() - t0 };
}

describe('AWS SDK clients have connection and request timeouts', () => {
  it('defaults (5 s to connect, 60 s to an answer) are overridable from the environment', () => {
    expect(DEFAULT_AWS_TIMEOUTS).toEqual({ connectMs: 5_000, requestMs: 60_000 });
    expect(awsTimeoutsFromEnv({})).toEqual(DEFAULT_AWS_TIMEOUTS);
    expect(awsTimeoutsFromEnv({ AWS_CONNECT_TIMEOUT_MS: '700', AWS_REQUEST_TIMEOUT_MS: '900000' })).toEqual({
      connectMs: 700,
      requestMs: 900_000,
    });
    expect(() => awsTimeoutsFromEnv({ AWS_REQUEST_TIMEOUT_MS: '0' })).toThrow(ConfigError);
    expect(() => awsTimeoutsFromEnv({ AWS_REQUEST_TIMEOUT_MS: '5s' })).toThrow(/AWS_REQUEST_TIMEOUT_MS/);
    expect(clientConfig({ region: 'us-east-1' }).requestHandler).toBeDefined();
  });

  it('an S3 call to a server that never answers fails with TimeoutError within its attempts × requestTimeout', async () => {
    const store = new S3Store({
      region: 'us-east-1',
      endpoint: silent.url,
      credentials: { accessKeyId: 'x', secretAccessKey: 'y' },
      timeouts: { connectMs: 1_000, requestMs: 300 },
    });
    const { err, ms } = await timed(store.head('bucket', 'key'));
    store.client.destroy();
    expect(err).toMatchObject({ name: 'TimeoutError' });
    expect((err as Error).message).toMatch(/exceeded the configured 300 ms requestTimeout/);
    // 5 attempts of 300 ms plus the SDK's backoff between them (well under a second in all); without the timeout
    // this never returns.
    expect(ms).toBeGreaterThanOrEqual(300);
    expect(ms).toBeLessThan(8_000);
  });
});

describe('Chroma requests have a deadline', () => {
  it('default 60 s, set through the constructor', () => {
    expect(DEFAULT_CHROMA_TIMEOUT_MS).toBe(60_000);
    expect(new ChromaVectorStore('http://127.0.0.1:1').timeoutMs).toBe(60_000);
    expect(new ChromaVectorStore('http://127.0.0.1:1', { timeoutMs: 5 }).timeoutMs).toBe(5);
  });

  it('a server that never answers: ChromaTimeoutError (Transient) naming the operation and the server', async () => {
    const store = new ChromaVectorStore(silent.url, { timeoutMs: 300 });
    const { err, ms } = await timed(store.count('lines'));
    expect(err).toBeInstanceOf(ChromaTimeoutError);
    expect(err).toMatchObject({
      reason: 'Transient',
      retryable: true,
      operation: 'getOrCreateCollection lines',
      url: silent.url,
      timeoutMs: 300,
    });
    expect((err as Error).message).toBe(
      `Chroma getOrCreateCollection lines at ${silent.url} did not answer within 300 ms`,
    );
    expect(ms).toBeGreaterThanOrEqual(250);
    expect(ms).toBeLessThan(3_000);
    // Every request gets its own deadline (not one signal for the client's lifetime): a second call waits again.
    const again = await timed(store.count('words'));
    expect(again.err).toMatchObject({ operation: 'getOrCreateCollection words' });
    expect(again.ms).toBeGreaterThanOrEqual(250);
  });

  it('a server that sends headers and then stalls in the body fails the same way', async () => {
    const store = new ChromaVectorStore(halfAnswer.url, { timeoutMs: 300 });
    const { err, ms } = await timed(store.count('lines'));
    expect(err).toBeInstanceOf(ChromaTimeoutError);
    expect(ms).toBeLessThan(3_000);
  });
});
