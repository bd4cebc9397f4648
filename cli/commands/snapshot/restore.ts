import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Command } from 'commander';
import { ENV } from '../../../core/config/env.js';
import { ConfigError } from '../../../core/errors.js';
import { fenceVolume } from '../../../core/snapshot/fence.js';
import { describeLiveState, ensureLiveIntact, intactVersion } from '../../../core/snapshot/repair.js';
import { readCurrentText, switchCurrent } from '../../../core/snapshot/volume.js';
import { collectionArg } from '../../options.js';
import { say } from '../../print.js';
import { snapshotTarget } from '../../snapshot-target.js';
import { guarded } from '../../usage.js';
import { withWriterLease, withWriterOptions, writerLease, type WriterFlags } from './writer-lease.js';

/** `snapshot restore` waits this long by default for the compactor's lease while someone else holds it. */
const DEFAULT_LEASE_WAIT_SECONDS = 5;

type RestoreFlags = WriterFlags;

export function register(snapshot: Command): void {
  withWriterOptions(
    snapshot
      .command('restore')
      .description(
        'repair the live version (default) or make a named version live: an intact copy on the volume, else the object-store archive',
      )
      .argument('<collection>', 'lines or words')
      .argument(
        '[version]',
        'version id (default: keep CURRENT when intact; when it is damaged or missing, install the newest intact copy)',
      ),
    {
      help: "how long to wait for the compactor's lease while someone holds it (0: one attempt)",
      seconds: DEFAULT_LEASE_WAIT_SECONDS,
    },
  ).action((collection: string, version: string | undefined, f: RestoreFlags) =>
    guarded(() => restore(collection, version, f)),
  );
}

async function restore(collection: string, version: string | undefined, f: RestoreFlags): Promise<number> {
  const c = collectionArg(collection);
  const { root, mirror, close } = snapshotTarget(f);
  const work = await mkdtemp(join(tmpdir(), 'restore-'));
  try {
    if (!root) throw new ConfigError(`no volume: set ${ENV.CHROMA_ROOT} or --chroma-root`);
    const backend = await writerLease(f);
    return await withWriterLease(backend, 'restore', f.leaseWait * 1000, async (lease) => {
      const opts = { root, collection: c, workDir: work, ...(mirror ? { mirror } : {}) };
      // The fence before CURRENT moves: the lease is still ours, and FENCE records our token, so a compactor
      // deposed by this restore fails its next fence instead of publishing over it.
      const fence = () => fenceVolume(root, lease, { collection: c, command: 'snapshot restore' });
      if (!version) {
        // Repair: the live version is checked file by file; a damaged or missing one is replaced by the
        // newest intact copy (core/snapshot/repair.ts), or refused with the reason of every copy tried.
        const state = await ensureLiveIntact({ ...opts, beforeSwitch: fence });
        say(`${describeLiveState(c, state)}\n`);
        return state.kind === 'empty' ? 1 : 0;
      }
      // What CURRENT was when we took the lease: the switch is a compare-and-swap on it.
      const expected = await readCurrentText(root, c);
      const got = await intactVersion(opts, version);
      await fence();
      await switchCurrent(root, c, version, { expected });
      say(
        `${c}: ${
          got.from === 'volume'
            ? `${version} on the volume is intact`
            : `installed ${version} from the object-store mirror${got.rejected.length ? ` (the volume's copy: ${got.rejected[0]!.problem})` : ''}`
        } — CURRENT is now ${version}\n`,
      );
      return 0;
    });
  } finally {
    await rm(work, { recursive: true, force: true });
    close();
  }
}
