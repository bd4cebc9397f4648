import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { stringify } from 'yaml';
import { fromKubeconfig, loadCredentials } from '../../../../core/kube/credentials.js';

function kubeconfig(cluster: Record<string, unknown>, user: Record<string, unknown>): string {
  const dir = mkdtempSync(join(tmpdir(), 'creds-'));
  const path = join(dir, 'config');
  writeFileSync(join(dir, 'ca.pem'), 'CA-FROM-FILE');
  writeFileSync(
    path,
    stringify({
      apiVersion: 'v1',
      kind: 'Config',
      'current-context': 'b',
      contexts: [
        { name: 'a', context: { cluster: 'other', user: 'other' } },
        { name: 'b', context: { cluster: 'c', user: 'u' } },
      ],
      clusters: [
        { name: 'other', cluster: { server: 'https://127.0.0.1:1' } },
        { name: 'c', cluster },
      ],
      users: [
        { name: 'other', user: { token: 'wrong' } },
        { name: 'u', user },
      ],
    }),
  );
  return path;
}

describe('kube credentials without client-node', () => {
  it('reads the current context: server, CA data, token', () => {
    const path = kubeconfig(
      {
        server: 'https://127.0.0.1:6443',
        'certificate-authority-data': Buffer.from('CA').toString('base64'),
      },
      { token: 'secret' },
    );
    const c = fromKubeconfig(path)!;
    expect(c.server).toBe('https://127.0.0.1:6443');
    expect(c.ca?.toString()).toBe('CA');
    expect(c.token).toBe('secret');
  });

  it('reads files relative to the kubeconfig, client certificates and skip-verify', () => {
    const path = kubeconfig(
      {
        server: 'https://127.0.0.1:6443',
        'certificate-authority': 'ca.pem',
        'insecure-skip-tls-verify': true,
      },
      {
        'client-certificate-data': Buffer.from('CERT').toString('base64'),
        'client-key-data': Buffer.from('KEY').toString('base64'),
      },
    );
    const c = fromKubeconfig(path)!;
    expect(c.ca?.toString()).toBe('CA-FROM-FILE');
    expect(c.cert?.toString()).toBe('CERT');
    expect(c.key?.toString()).toBe('KEY');
    expect(c.skipTLSVerify).toBe(true);
  });

  it('leaves exec plugins, auth providers and proxies to client-node', () => {
    const exec = kubeconfig({ server: 'https://127.0.0.1:6443' }, { exec: { command: 'aws' } });
    const proxy = kubeconfig({ server: 'https://127.0.0.1:6443', 'proxy-url': 'http://127.0.0.1:3128' }, {});
    expect(fromKubeconfig(exec)).toBeUndefined();
    expect(fromKubeconfig(proxy)).toBeUndefined();
    expect(loadCredentials({}, { KUBECONFIG: `${exec}:${proxy}` })).toBeUndefined();
  });

  it('uses $KUBECONFIG when not in a cluster', () => {
    const path = kubeconfig({ server: 'https://127.0.0.1:6443' }, { token: 't' });
    expect(loadCredentials({}, { KUBECONFIG: path })?.token).toBe('t');
  });
});
