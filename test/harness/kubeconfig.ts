import { writeFileSync } from 'node:fs';

import { stringify } from 'yaml';

export interface KubeAccess {
  /** `https://127.0.0.1:<port>` */
  server: string;
  /** Bearer token of a `system:masters` user. */
  token: string;
  /** PEM of the CA that signed the serving certificate (base64-encode it for `certificate-authority-data`). */
  caPem: string;
}

/**
 * Writes a kubeconfig with one cluster, user and context named `testenv`. Loadable by
 * `KubeConfig.loadFromFile` (client-node) and by kubectl, kube-controller-manager and friends.
 */
export function writeKubeconfig(path: string, access: KubeAccess): void {
  const config = {
    apiVersion: 'v1',
    kind: 'Config',
    clusters: [
      {
        name: 'testenv',
        cluster: {
          server: access.server,
          'certificate-authority-data': Buffer.from(access.caPem).toString('base64'),
        },
      },
    ],
    users: [{ name: 'testenv-admin', user: { token: access.token } }],
    contexts: [
      { name: 'testenv', context: { cluster: 'testenv', user: 'testenv-admin', namespace: 'default' } },
    ],
    'current-context': 'testenv',
    preferences: {},
  };
  writeFileSync(path, stringify(config), { mode: 0o600 });
}
