import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import { ConfigError } from '../errors.js';
import type { ExecConfig } from './credentials.js';

const run = promisify(execFile);

interface ExecCredential {
  status?: { token?: string; expirationTimestamp?: string; clientCertificateData?: string };
}

/**
 * Tokens from a kubeconfig exec plugin (client.authentication.k8s.io): runs the command, non-interactively, and keeps
 * its token until a minute before its `expirationTimestamp` (without one, until the next call: the client asks at
 * most once a minute). Plugins that answer with a client certificate are refused: the connection pool's TLS
 * material is fixed when the client is built.
 */
export class ExecTokenSource {
  private cached: { token: string; until: number } | undefined;

  constructor(private readonly exec: ExecConfig) {}

  async token(now = Date.now()): Promise<string> {
    if (this.cached && now < this.cached.until) return this.cached.token;
    const { command, args = [], env = [], apiVersion } = this.exec;
    const info = { apiVersion, kind: 'ExecCredential', spec: { interactive: false } };
    const { stdout } = await run(command, args, {
      env: {
        ...process.env,
        ...Object.fromEntries(env.map((e) => [e.name, e.value])),
        KUBERNETES_EXEC_INFO: JSON.stringify(info),
      },
      timeout: 60_000,
    });
    let status: ExecCredential['status'];
    try {
      status = (JSON.parse(stdout) as ExecCredential).status;
    } catch {
      throw new ConfigError(`kubeconfig exec plugin ${command} printed no ExecCredential JSON`, {
        command,
        output: stdout.slice(0, 200),
      });
    }
    if (!status?.token) {
      throw new ConfigError(
        `kubeconfig exec plugin ${command} gave no token${status?.clientCertificateData ? ' (client certificates from exec plugins are not supported)' : ''}`,
        { command },
      );
    }
    const expires = status.expirationTimestamp ? Date.parse(status.expirationTimestamp) - 60_000 : 0;
    this.cached = { token: status.token, until: expires };
    return status.token;
  }
}
