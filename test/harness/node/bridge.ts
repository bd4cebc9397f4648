import { sh } from './host.js';

export interface Bridge {
  name: string;
  /** The node's address on the bridge (its `--node-ip`; every outside server binds here too). */
  ip: string;
  subnet: string;
  remove(): void;
}

/**
 * The pod bridge, made before the kubelet starts: the kubelet refuses a loopback node IP, and the CNI bridge plugin
 * reuses an existing bridge. Refuses to start when the bridge already exists (another node of this harness runs).
 */
export function createBridge(name: string, ip: string, prefix = 24): Bridge {
  const existing = sh('ip', ['-o', 'link', 'show']);
  if (new RegExp(`^\\d+: ${name}[:@]`, 'm').test(existing)) {
    throw new Error(
      `bridge ${name} already exists: another real node of the test environment is running (or was killed; \`ip link del ${name}\`)`,
    );
  }
  sh('ip', ['link', 'add', name, 'type', 'bridge']);
  sh('ip', ['addr', 'add', `${ip}/${prefix}`, 'dev', name]);
  sh('ip', ['link', 'set', name, 'up']);
  const subnet = `${ip.split('.').slice(0, 3).join('.')}.0/${prefix}`;
  let removed = false;
  return {
    name,
    ip,
    subnet,
    remove: () => {
      if (removed) return;
      removed = true;
      try {
        sh('ip', ['link', 'del', name]);
      } catch {
        // already gone
      }
    },
  };
}
