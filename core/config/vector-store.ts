import { z } from 'zod';
import { ENV, type Env } from './env.js';
import { envVar, parseEnv } from './parse.js';

/** Chroma's own defaults, used when CHROMA_TENANT / CHROMA_DATABASE are unset. */
export const DEFAULT_CHROMA_TENANT = 'default_tenant';
export const DEFAULT_CHROMA_DATABASE = 'default_database';

export const VECTOR_STORE_MODES = ['volume', 'remote'] as const;

/**
 * Where the collections live (docs/adr/0013-remote-vector-store.md): `volume`, snapshot versions on the shared volume
 * (CHROMA_ROOT) mirrored to S3; or `remote`, one Chroma server (or a distributed Chroma behind the same API) that the
 * compactor writes over HTTP and workers query.
 */
export type VectorStoreConfig =
  { mode: 'volume' } | { mode: 'remote'; url: string; tenant: string; database: string };

const httpUrl = z
  .string()
  .url({ error: 'must be an http(s) URL' })
  .refine((s) => /^https?:\/\//.test(s), { error: 'must be an http(s) URL' });

const VectorStoreEnv = z
  .object({
    [ENV.VECTOR_STORE]: z.enum(VECTOR_STORE_MODES, { error: 'must be volume or remote' }).default('volume'),
    [ENV.CHROMA_URL]: httpUrl.optional(),
    [ENV.CHROMA_TENANT]: envVar.orDefault(DEFAULT_CHROMA_TENANT),
    [ENV.CHROMA_DATABASE]: envVar.orDefault(DEFAULT_CHROMA_DATABASE),
  })
  .superRefine((e, ctx) => {
    if (e.VECTOR_STORE === 'remote' && !e.CHROMA_URL)
      ctx.addIssue({
        code: 'custom',
        path: [ENV.CHROMA_URL],
        message: 'is required when VECTOR_STORE=remote',
      });
  });

/** The worker's and the compactor's vector store, from VECTOR_STORE / CHROMA_URL / CHROMA_TENANT / CHROMA_DATABASE. */
export function parseVectorStoreEnv(env: Env): VectorStoreConfig {
  const e = parseEnv(VectorStoreEnv, env, 'vector store configuration');
  if (e.VECTOR_STORE === 'volume') return { mode: 'volume' };
  return {
    mode: 'remote',
    url: e.CHROMA_URL!.replace(/\/+$/, ''),
    tenant: e.CHROMA_TENANT,
    database: e.CHROMA_DATABASE,
  };
}
