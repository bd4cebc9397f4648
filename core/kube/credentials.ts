import { existsSync, readFileSync } from 'node:fs';
import { homedir } from 'node:os';
import { dirname, isAbsolute, join } from 'node:path';
import { parse } from 'yaml';
import { ENV, processEnv, type Env } from '../config/env.js';

/**
 * What `KubeRest` needs to reach an API server, read without `@kubernetes/client-node`: importing that package loads
 * every generated API (~80 MB RSS, ~32 MB of V8 heap, mostly module source text), which is most of the controller's
 * memory. Covers in-cluster credentials and kubeconfig files with static credentials (token, token file, client
 * certificate); anything else (exec plugins, auth providers, proxies, basic auth, several files in $KUBECONFIG) is
 * left to client-node (`loadCredentials` returns `undefined`).
 */
export interface KubeCredentials {
  server: string;
  ca?: Buffer;
  cert?: Buffer;
  key?: Buffer;
  skipTLSVerify?: boolean;
  token?: string;
  /** Re-read at most once a minute (in-cluster projected tokens rotate). */
  tokenFile?: string;
}

const SA_DIR = '/var/run/secrets/kubernetes.io/serviceaccount';

export function loadCredentials(
  opts: { kubeconfig?: string } = {},
  env: Env = processEnv(),
): KubeCredentials | undefined {
  if (opts.kubeconfig) return fromKubeconfig(opts.kubeconfig);
  if (env[ENV.KUBERNETES_SERVICE_HOST]) return inCluster(env);
  const list = env[ENV.KUBECONFIG]?.split(':').filter(Boolean) ?? [];
  const path = list.length === 1 ? list[0]! : join(homedir(), '.kube', 'config');
  // Several files to merge, or none (client-node then tries localhost:8080): client-node's business.
  if (list.length > 1 || !existsSync(path)) return undefined;
  return fromKubeconfig(path);
}

function inCluster(env: Env): KubeCredentials {
  const host = env[ENV.KUBERNETES_SERVICE_HOST]!;
  const port = env[ENV.KUBERNETES_SERVICE_PORT] ?? '443';
  return {
    server: `https://${host.includes(':') ? `[${host}]` : host}:${port}`,
    ca: readFileSync(join(SA_DIR, 'ca.crt')),
    tokenFile: join(SA_DIR, 'token'),
  };
}

interface KubeconfigFile {
  'current-context'?: string;
  contexts?: { name: string; context?: { cluster?: string; user?: string } }[];
  clusters?: { name: string; cluster?: Record<string, unknown> }[];
  users?: { name: string; user?: Record<string, unknown> }[];
}

const CLUSTER_KEYS = new Set([
  'server',
  'certificate-authority',
  'certificate-authority-data',
  'insecure-skip-tls-verify',
]);
const USER_KEYS = new Set([
  'token',
  'tokenFile',
  'client-certificate',
  'client-certificate-data',
  'client-key',
  'client-key-data',
]);

/** Static credentials of the current context, or `undefined` when the file needs client-node's auth machinery. */
export function fromKubeconfig(path: string): KubeCredentials | undefined {
  const doc = parse(readFileSync(path, 'utf8')) as KubeconfigFile;
  const ctx = doc.contexts?.find((c) => c.name === doc['current-context'])?.context;
  const cluster = doc.clusters?.find((c) => c.name === ctx?.cluster)?.cluster;
  const user = doc.users?.find((u) => u.name === ctx?.user)?.user ?? {};
  if (!cluster || typeof cluster.server !== 'string') return undefined;
  if (Object.keys(cluster).some((k) => !CLUSTER_KEYS.has(k))) return undefined;
  if (Object.keys(user).some((k) => !USER_KEYS.has(k))) return undefined;
  const dir = dirname(path);
  const file = (v: unknown) => readFileSync(isAbsolute(String(v)) ? String(v) : join(dir, String(v)));
  const material = (data: unknown, ref: unknown): Buffer | undefined =>
    typeof data === 'string' ? Buffer.from(data, 'base64') : ref ? file(ref) : undefined;
  const ca = material(cluster['certificate-authority-data'], cluster['certificate-authority']);
  const cert = material(user['client-certificate-data'], user['client-certificate']);
  const key = material(user['client-key-data'], user['client-key']);
  return {
    server: cluster.server,
    ...(ca ? { ca } : {}),
    ...(cert ? { cert } : {}),
    ...(key ? { key } : {}),
    ...(cluster['insecure-skip-tls-verify'] === true ? { skipTLSVerify: true } : {}),
    ...(typeof user.token === 'string' ? { token: user.token } : {}),
    ...(typeof user.tokenFile === 'string'
      ? { tokenFile: isAbsolute(user.tokenFile) ? user.tokenFile : join(dir, user.tokenFile) }
      : {}),
  };
}
