import { existsSync, mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';

import type { Component, ComponentContext } from '../component.js';
import { waitUntilReady } from '../processes.js';
import { sh, shAsync } from './host.js';

export interface Containerd extends Component {
  socket: string;
  /** `ctr -a <socket> -n k8s.io <args>` */
  ctr(args: string[], timeoutMs?: number): string;
  importImage(tarPath: string): Promise<void>;
  /** Kills and removes every container the CRI made (before the kubelet and containerd stop). */
  removeAllContainers(): void;
}

export const CNI_BIN_DIR = '/usr/lib/cni'; // Debian's containernetworking-plugins

/**
 * containerd 1.6 (Debian) with private root, state and socket; CRI with `restrict_oom_score_adj` (no
 * CAP_SYS_RESOURCE here), cgroupfs, the local pause image, and a CNI bridge on `bridge` with no masquerade and no
 * default route: pods reach each other and the node address, nothing else.
 */
export async function startContainerd(
  ctx: ComponentContext,
  opts: { bridge: string; subnet: string; pauseImage: string },
): Promise<Containerd> {
  const dir = join(ctx.runDir, 'containerd');
  const cniConf = join(dir, 'net.d');
  const ipamDir = join(dir, 'ipam');
  mkdirSync(cniConf, { recursive: true });
  const socket = join(dir, 'containerd.sock');
  writeFileSync(
    join(cniConf, '10-node.conflist'),
    JSON.stringify({
      cniVersion: '0.4.0',
      name: 'embedctl-node',
      plugins: [
        {
          type: 'bridge',
          bridge: opts.bridge,
          isGateway: true,
          ipMasq: false,
          hairpinMode: true,
          ipam: {
            type: 'host-local',
            dataDir: ipamDir,
            ranges: [[{ subnet: opts.subnet }]],
            routes: [{ dst: opts.subnet }],
          },
        },
        { type: 'loopback' },
      ],
    }),
  );
  const config = join(dir, 'config.toml');
  writeFileSync(
    config,
    `version = 2
root = "${join(dir, 'root')}"
state = "${join(dir, 'state')}"
[grpc]
  address = "${socket}"
[plugins."io.containerd.grpc.v1.cri"]
  restrict_oom_score_adj = true
  sandbox_image = "${opts.pauseImage}"
  [plugins."io.containerd.grpc.v1.cri".containerd]
    snapshotter = "overlayfs"
    [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc]
      runtime_type = "io.containerd.runc.v2"
      [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc.options]
        SystemdCgroup = false
        Root = "${join(dir, 'runc')}"
  [plugins."io.containerd.grpc.v1.cri".cni]
    bin_dir = "${CNI_BIN_DIR}"
    conf_dir = "${cniConf}"
`,
  );
  const proc = ctx.registry.spawn({ name: 'containerd', command: 'containerd', args: ['--config', config] });
  const ctr = (args: string[], timeoutMs = 120_000): string =>
    sh('ctr', ['-a', socket, '-n', 'k8s.io', ...args], { timeoutMs });
  await waitUntilReady(
    proc,
    async () => existsSync(socket) && /Server:/.test(sh('ctr', ['-a', socket, 'version'])),
    30_000,
    200,
  );
  const removeAllContainers = (): void => {
    for (const id of ctr(['tasks', 'ls', '-q']).split('\n').filter(Boolean)) {
      try {
        ctr(['tasks', 'kill', '-s', 'SIGKILL', id]);
      } catch {
        // already stopped
      }
    }
    for (let i = 0; i < 20; i++) {
      const left = ctr(['tasks', 'ls', '-q']).split('\n').filter(Boolean);
      for (const id of left) {
        try {
          ctr(['tasks', 'rm', '-f', id]);
        } catch {
          // retry next round
        }
      }
      if (left.length === 0) break;
    }
    for (const id of ctr(['containers', 'ls', '-q']).split('\n').filter(Boolean)) {
      try {
        ctr(['containers', 'rm', id]);
      } catch {
        // removed with its sandbox
      }
    }
  };
  return {
    name: 'containerd',
    socket,
    ctr,
    importImage: async (tarPath) =>
      void (await shAsync('ctr', ['-a', socket, '-n', 'k8s.io', 'images', 'import', tarPath], {
        timeoutMs: 300_000,
      })),
    removeAllContainers,
    stop: () => proc.stop(),
  };
}
