import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { compactorFromEnv } from '../../../../compactor/command.js';
import { parseVectorStoreEnv } from '../../../../core/config/vector-store.js';
import { parseWorkerEnv } from '../../../../core/config/worker.js';
import { ConfigError } from '../../../../core/errors.js';
import { createLogger } from '../../../../core/log.js';

const base = {
  LINES_QUEUE_URL: 'http://127.0.0.1:1/123456789012/lines',
  WORDS_QUEUE_URL: 'http://127.0.0.1:1/123456789012/words',
  COMPACTION_DLQ_URL: 'http://127.0.0.1:1/123456789012/dlq',
  LEDGER_TABLE: 't',
  VECTORS_BUCKET: 'v',
  AWS_REGION: 'us-east-1',
  LEASE_FILE: '/nonexistent/lease',
  COMPACTOR_WORK_DIR: '/scratch/compactor',
};

describe('vector store configuration (VECTOR_STORE, CHROMA_URL, CHROMA_TENANT, CHROMA_DATABASE)', () => {
  it('defaults to the volume; remote needs an http(s) CHROMA_URL, and each error names its variable', () => {
    expect(parseVectorStoreEnv({})).toEqual({ mode: 'volume' });
    expect(parseVectorStoreEnv({ VECTOR_STORE: '' })).toEqual({ mode: 'volume' });
    expect(() => parseVectorStoreEnv({ VECTOR_STORE: 'remote' })).toThrow(
      /CHROMA_URL: is required when VECTOR_STORE=remote \(not set\)/,
    );
    expect(() => parseVectorStoreEnv({ VECTOR_STORE: 'remote', CHROMA_URL: 'chroma:8000' })).toThrow(
      /CHROMA_URL: must be an http\(s\) URL \(got "chroma:8000"\)/,
    );
    expect(() => parseVectorStoreEnv({ VECTOR_STORE: 's3' })).toThrow(ConfigError);
    expect(() => parseVectorStoreEnv({ VECTOR_STORE: 's3' })).toThrow(
      /VECTOR_STORE: must be volume or remote/,
    );
  });

  it('remote: URL without a trailing slash, Chroma default tenant and database unless set', () => {
    expect(
      parseVectorStoreEnv({ VECTOR_STORE: 'remote', CHROMA_URL: 'https://chroma.example:8443/' }),
    ).toEqual({
      mode: 'remote',
      url: 'https://chroma.example:8443',
      tenant: 'default_tenant',
      database: 'default_database',
    });
    expect(
      parseVectorStoreEnv({
        VECTOR_STORE: 'remote',
        CHROMA_URL: 'http://c:8000',
        CHROMA_TENANT: 't1',
        CHROMA_DATABASE: 'receipts-prod',
      }),
    ).toMatchObject({ tenant: 't1', database: 'receipts-prod' });
  });

  it('the worker and the compactor read it: remote mode keeps the crash record in scratch, never CHROMA_ROOT', () => {
    const worker = { VECTORS_BUCKET: 'v', ARTIFACTS_BUCKET: 'a', LEDGER_TABLE: 't' };
    expect(parseWorkerEnv(worker).vectorStore).toEqual({ mode: 'volume' });
    expect(
      parseWorkerEnv({ ...worker, VECTOR_STORE: 'remote', CHROMA_URL: 'http://c:8000' }).vectorStore,
    ).toMatchObject({ mode: 'remote', url: 'http://c:8000' });

    const log = createLogger('test', 'silent');
    const volume = compactorFromEnv({ ...base, CHROMA_ROOT: '/mnt/chroma' }, log);
    expect(volume.remote).toBeUndefined();
    expect(volume.deps.root).toBe('/mnt/chroma');
    const remote = compactorFromEnv(
      { ...base, VECTOR_STORE: 'remote', CHROMA_URL: 'http://c:8000', CHROMA_DATABASE: 'd', LEASE_NAME: 'l' },
      log,
    );
    expect(remote.deps.remote).toEqual({
      url: 'http://c:8000',
      tenant: 'default_tenant',
      database: 'd',
      leaseName: 'l',
    });
    expect(remote.deps.root).toBe(join('/scratch/compactor', 'state'));
    expect(() => compactorFromEnv({ ...base, VECTOR_STORE: 'remote' }, log)).toThrow(/CHROMA_URL/);
  });
});
