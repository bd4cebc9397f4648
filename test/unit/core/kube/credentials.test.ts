import { chmodSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { stringify } from 'yaml';
import { ConfigError } from '../../../../core/errors.js';
import { fromKubeconfig, loadCredentials } from '../../../../core/kube/credentials.js';
import { ExecTokenSource } from '../../../../core/kube/exec-credential.js';

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

describe('kube credentials (credentials.ts, exec-credential.ts)', () => {
  it('reads the current context: server, CA data, token', () => {
    const path = kubeconfig(
      {
        server: 'https://127.0.0.1:6443',
        'certificate-authority-data': Buffer.from('CA').toString('base64'),
      },
      { token: 'secret' },
    );
    const c = fromKubeconfig(path);
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
    const c = fromKubeconfig(path);
    expect(c.ca?.toString()).toBe('CA-FROM-FILE');
    expect(c.cert?.toString()).toBe('CERT');
    expect(c.key?.toString()).toBe('KEY');
    expect(c.skipTLSVerify).toBe(true);
  });

  it('reads exec plugins (command with a slash relative to the kubeconfig); refuses proxies and auth providers', () => {
    const exec = kubeconfig(
      { server: 'https://127.0.0.1:6443' },
      { exec: { apiVersion: 'client.authentication.k8s.io/v1', command: 'aws', args: ['eks', 'get-token'] } },
    );
    expect(fromKubeconfig(exec).exec).toEqual({
      apiVersion: 'client.authentication.k8s.io/v1',
      command: 'aws',
      args: ['eks', 'get-token'],
    });
    const local = kubeconfig({ server: 'https://127.0.0.1:6443' }, { exec: { command: './bin/token' } });
    expect(fromKubeconfig(local).exec?.command).toBe(join(dirname(local), 'bin/token'));
    const proxy = kubeconfig({ server: 'https://127.0.0.1:6443', 'proxy-url': 'http://127.0.0.1:3128' }, {});
    expect(() => fromKubeconfig(proxy)).toThrow(ConfigError);
    expect(() => fromKubeconfig(proxy)).toThrow(/proxy-url/);
    const provider = kubeconfig({ server: 'https://127.0.0.1:6443' }, { 'auth-provider': { name: 'oidc' } });
    expect(() => fromKubeconfig(provider)).toThrow(/auth-provider/);
  });

  it('merges several $KUBECONFIG files as kubectl does: the first definition of a name wins', () => {
    const first = kubeconfig({ server: 'https://first:6443' }, { token: 'first' });
    const second = kubeconfig({ server: 'https://second:6443' }, { token: 'second' });
    expect(loadCredentials({}, { KUBECONFIG: `${first}:${second}` })).toMatchObject({
      server: 'https://first:6443',
      token: 'first',
    });
    expect(() => loadCredentials({}, { KUBECONFIG: join(tmpdir(), 'no-such-kubeconfig') })).toThrow(
      ConfigError,
    );
  });

  it('runs an exec plugin for its token, and keeps it until a minute before it expires', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'exec-'));
    const plugin = join(dir, 'plugin.sh');
    const count = join(dir, 'count');
    writeFileSync(
      plugin,
      `#!/bin/sh\necho run >> ${count}\necho '{"apiVersion":"client.authentication.k8s.io/v1","kind":"ExecCredential","status":{"token":"tok-'$TOKEN_SUFFIX'","expirationTimestamp":"2099-01-01T00:00:00Z"}}'\n`,
    );
    chmodSync(plugin, 0o755);
    const source = new ExecTokenSource({
      apiVersion: 'client.authentication.k8s.io/v1',
      command: plugin,
      env: [{ name: 'TOKEN_SUFFIX', value: 'x' }],
    });
    expect(await source.token()).toBe('tok-x');
    expect(await source.token()).toBe('tok-x');
    expect(readFileSync(count, 'utf8').trim().split('\n')).toHaveLength(1);
    expect(await source.token(Date.parse('2099-01-01T00:00:00Z'))).toBe('tok-x');
    expect(readFileSync(count, 'utf8').trim().split('\n')).toHaveLength(2);
  });

  it('uses $KUBECONFIG when not in a cluster', () => {
    const path = kubeconfig({ server: 'https://127.0.0.1:6443' }, { token: 't' });
    expect(loadCredentials({}, { KUBECONFIG: path })?.token).toBe('t');
  });
});
