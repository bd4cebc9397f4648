import { generateKeyPair, randomBytes } from 'node:crypto';
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { promisify } from 'node:util';

import type { Component, ComponentContext } from './component.js';
import { httpOk } from './http.js';
import { writeKubeconfig } from './kubeconfig.js';
import { waitUntilReady } from './processes.js';

export const SERVICE_CLUSTER_IP_RANGE = '10.0.0.0/24';

export interface ApiServer extends Component {
  /** `https://127.0.0.1:<port>` */
  server: string;
  port: number;
  /** Bearer token of user `admin` in group `system:masters`. */
  token: string;
  /** Bearer token of `system:node:<nodeName>` (only with `nodeName`). */
  nodeToken: string;
  /** PEM bundle from `<cert-dir>/apiserver.crt` (self-signed serving cert and its CA). */
  caPem: string;
  caFile: string;
  /** Service-account signing key pair (the controller-manager signs tokens with the private key). */
  saPrivateKeyFile: string;
  saPublicKeyFile: string;
  kubeconfigPath: string;
}

export interface ApiServerOptions {
  etcdUrl: string;
  /** Address to bind and advertise. Default 127.0.0.1; a real node's pods need the node's bridge address. */
  host?: string;
  /**
   * A real node joins: Node + RBAC authorization, NodeRestriction, a token for `system:node:<name>`, and the
   * apiserver reaches the kubelet by its hostname (the node is named `localhost`, its kubelet listens on loopback).
   */
  nodeName?: string;
  /** Default: a free port (from the context). */
  port?: number;
  /** Admission plugins to disable (for example `ServiceAccount` when no controller-manager runs). */
  disableAdmissionPlugins?: string[];
  timeoutMs?: number;
}

/**
 * kube-apiserver on a free loopback port: token auth (`tokens.csv`), RBAC, a service-account key pair made with
 * node:crypto, and a serving certificate the apiserver self-signs into `--cert-dir`. Writes `<runDir>/kubeconfig`.
 */
export async function startApiServer(ctx: ComponentContext, opts: ApiServerOptions): Promise<ApiServer> {
  const dir = join(ctx.runDir, 'apiserver');
  const certDir = join(dir, 'certs');
  mkdirSync(certDir, { recursive: true });

  const token = randomBytes(24).toString('hex');
  const nodeToken = randomBytes(24).toString('hex');
  const tokensFile = join(dir, 'tokens.csv');
  let tokens = `${token},admin,admin-uid,"system:masters"\n`;
  if (opts.nodeName) tokens += `${nodeToken},system:node:${opts.nodeName},node-uid,"system:nodes"\n`;
  writeFileSync(tokensFile, tokens, { mode: 0o600 });
  const host = opts.host ?? '127.0.0.1';

  const { publicKey, privateKey } = await promisify(generateKeyPair)('rsa', {
    modulusLength: 2048,
    publicKeyEncoding: { type: 'spki', format: 'pem' },
    privateKeyEncoding: { type: 'pkcs1', format: 'pem' },
  });
  const saPublicKeyFile = join(dir, 'sa.pub');
  const saPrivateKeyFile = join(dir, 'sa.key');
  writeFileSync(saPublicKeyFile, publicKey);
  writeFileSync(saPrivateKeyFile, privateKey, { mode: 0o600 });

  const port = opts.port ?? (await ctx.port());
  const server = `https://${host}:${port}`;
  const args = [
    `--etcd-servers=${opts.etcdUrl}`,
    `--cert-dir=${certDir}`,
    `--secure-port=${port}`,
    `--bind-address=${host}`,
    `--advertise-address=${host}`,
    `--service-cluster-ip-range=${SERVICE_CLUSTER_IP_RANGE}`,
    '--allow-privileged=true',
    `--authorization-mode=${opts.nodeName ? 'Node,RBAC' : 'RBAC'}`,
    `--token-auth-file=${tokensFile}`,
    `--service-account-issuer=${server}`,
    `--service-account-key-file=${saPublicKeyFile}`,
    `--service-account-signing-key-file=${saPrivateKeyFile}`,
    // Endpoints may not point at 127.0.0.0/8, so the `kubernetes` Service gets no endpoints (nothing runs in-cluster).
    '--endpoint-reconciler-type=none',
    '--profiling=false',
  ];
  if (opts.nodeName) {
    args.push('--enable-admission-plugins=NodeRestriction', '--kubelet-preferred-address-types=Hostname');
  }
  if (opts.disableAdmissionPlugins?.length) {
    args.push(`--disable-admission-plugins=${opts.disableAdmissionPlugins.join(',')}`);
  }
  const proc = ctx.registry.spawn({
    name: 'kube-apiserver',
    command: join(ctx.binDir, 'kube-apiserver'),
    args,
  });

  const caFile = join(certDir, 'apiserver.crt');
  const readCa = (): string | undefined => (existsSync(caFile) ? readFileSync(caFile, 'utf8') : undefined);
  await waitUntilReady(
    proc,
    httpOk(`${server}/readyz`, { ca: readCa, token }),
    opts.timeoutMs ?? 90_000,
    200,
  );
  const caPem = readCa() as string;

  const kubeconfigPath = join(ctx.runDir, 'kubeconfig');
  writeKubeconfig(kubeconfigPath, { server, token, caPem });
  return {
    name: 'kube-apiserver',
    server,
    port,
    token,
    nodeToken,
    caPem,
    caFile,
    saPrivateKeyFile,
    saPublicKeyFile,
    kubeconfigPath,
    stop: () => proc.stop(),
  };
}
