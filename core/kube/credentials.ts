import { existsSync, readFileSync } from 'node:fs';
import { homedir } from 'node:os';
import { dirname, isAbsolute, join } from 'node:path';
import { parse } from 'yaml';
import { ConfigError } from '../errors.js';
import { ENV, processEnv, type Env } from '../config/env.js';

/**
 * What `KubeRest` needs to reach an API server, read here rather than through `@kubernetes/client-node`: importing
 * that package loads every generated API (~80 MB RSS, ~32 MB of V8 heap, mostly module source text), which is most
 * of the controller's memory. Covers in-cluster credentials and kubeconfig files (one, or several in $KUBECONFIG,
 * merged as kubectl does: the first definition of a name wins) with static credentials (token, token file, client
 * certificate) or an exec plugin that prints a token (`aws eks get-token`, `gke-gcloud-auth-plugin`, kubelogin).
 * Auth providers, proxies and basic auth are refused with a ConfigError naming the field.
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
  /** client.authentication.k8s.io exec plugin that prints an ExecCredential with a token (exec-credential.ts). */
  exec?: ExecConfig;
}

export interface ExecConfig {
  apiVersion: string;
  command: string;
  args?: string[];
  env?: { name: string; value: string }[];
}

const SA_DIR = '/var/run/secrets/kubernetes.io/serviceaccount';

export function loadCredentials(
  opts: { kubeconfig?: string } = {},
  env: Env = processEnv(),
): KubeCredentials {
  if (opts.kubeconfig) return fromKubeconfig(opts.kubeconfig);
  if (env[ENV.KUBERNETES_SERVICE_HOST]) return inCluster(env);
  const list = env[ENV.KUBECONFIG]?.split(':').filter(Boolean) ?? [];
  const paths = (list.length ? list : [join(homedir(), '.kube', 'config')]).filter((p) => existsSync(p));
  if (!paths.length) {
    throw new ConfigError('no Kubernetes credentials: not in a cluster, and no kubeconfig file found', {
      KUBECONFIG: env[ENV.KUBECONFIG] ?? null,
    });
  }
  return fromKubeconfig(...paths);
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

type Named<K extends string> = { name: string } & { [k in K]?: Record<string, unknown> };

interface KubeconfigFile {
  'current-context'?: string;
  contexts?: Named<'context'>[];
  clusters?: Named<'cluster'>[];
  users?: Named<'user'>[];
}

const CLUSTER_KEYS = new Set([
  'server',
  'certificate-authority',
  'certificate-authority-data',
  'insecure-skip-tls-verify',
  'extensions',
]);
const USER_KEYS = new Set([
  'token',
  'tokenFile',
  'client-certificate',
  'client-certificate-data',
  'client-key',
  'client-key-data',
  'exec',
]);

/** An entry of a kubeconfig, with the directory its relative paths are resolved against. */
interface Found {
  value: Record<string, unknown>;
  dir: string;
}

/**
 * Credentials of the current context of `paths` merged as kubectl merges $KUBECONFIG: `current-context` from the
 * first file that sets it, and each context, cluster and user from the first file that defines its name.
 */
export function fromKubeconfig(...paths: string[]): KubeCredentials {
  const docs = paths.map((path) => ({
    dir: dirname(path),
    doc: parse(readFileSync(path, 'utf8')) as KubeconfigFile,
  }));
  const find = <K extends 'contexts' | 'clusters' | 'users'>(
    list: K,
    key: 'context' | 'cluster' | 'user',
    name: unknown,
  ): Found | undefined => {
    for (const { dir, doc } of docs) {
      const entry = (doc[list] as Named<typeof key>[] | undefined)?.find((e) => e.name === name);
      if (entry) return { value: entry[key] ?? {}, dir };
    }
    return undefined;
  };
  const current = docs.find((d) => d.doc['current-context'])?.doc['current-context'];
  const ctx = find('contexts', 'context', current)?.value;
  const cluster = find('clusters', 'cluster', ctx?.cluster);
  const user = find('users', 'user', ctx?.user) ?? { value: {}, dir: '' };
  const where = { kubeconfig: paths.join(':'), context: current ?? null };
  if (!cluster || typeof cluster.value.server !== 'string') {
    throw new ConfigError(`kubeconfig context ${current ?? '(none)'} names no cluster with a server`, where);
  }
  const unsupported = [
    ...Object.keys(cluster.value).filter((k) => !CLUSTER_KEYS.has(k)),
    ...Object.keys(user.value).filter((k) => !USER_KEYS.has(k)),
  ];
  if (unsupported.length) {
    throw new ConfigError(
      `kubeconfig uses ${unsupported.join(', ')}, which embedctl does not support`,
      where,
    );
  }
  const c = cluster.value;
  const u = user.value;
  const path = (dir: string, v: unknown) => (isAbsolute(String(v)) ? String(v) : join(dir, String(v)));
  const material = (data: unknown, ref: unknown, dir: string): Buffer | undefined =>
    typeof data === 'string' ? Buffer.from(data, 'base64') : ref ? readFileSync(path(dir, ref)) : undefined;
  const ca = material(c['certificate-authority-data'], c['certificate-authority'], cluster.dir);
  const cert = material(u['client-certificate-data'], u['client-certificate'], user.dir);
  const key = material(u['client-key-data'], u['client-key'], user.dir);
  const exec = u.exec as ExecConfig | undefined;
  return {
    server: c.server as string,
    ...(ca ? { ca } : {}),
    ...(cert ? { cert } : {}),
    ...(key ? { key } : {}),
    ...(c['insecure-skip-tls-verify'] === true ? { skipTLSVerify: true } : {}),
    ...(typeof u.token === 'string' ? { token: u.token } : {}),
    ...(typeof u.tokenFile === 'string' ? { tokenFile: path(user.dir, u.tokenFile) } : {}),
    // kubectl resolves a command with a slash against the kubeconfig's directory, a bare name through $PATH.
    ...(exec
      ? {
          exec: {
            ...exec,
            command: exec.command.includes('/') ? path(user.dir, exec.command) : exec.command,
          },
        }
      : {}),
  };
}
