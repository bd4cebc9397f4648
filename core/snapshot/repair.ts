import { rm } from 'node:fs/promises';
import { join } from 'node:path';
import type { Collection } from '../contracts/ids.js';
import { errorMessage, PipelineError } from '../errors.js';
import type { Logger } from '../log.js';
import type { ObjectStore } from '../ports/object-store.js';
import { listArchivedVersions, restoreSnapshot } from './s3-snapshot.js';
import { InvalidVersionIdError } from './version-id.js';
import {
  checkVersion,
  installVersion,
  listVersions,
  moveAside,
  readCurrent,
  readCurrentText,
  switchCurrent,
  versionDir,
} from './volume.js';

/**
 * Repair of a collection's live version (docs/adr/0001-snapshot-repair.md). A live version is damaged when CURRENT
 * names a version whose files do not match the SHA-256 digests its publisher recorded (bit rot, a torn write, a
 * file edited or removed by hand), or a version that is not on the volume; it is missing when there is no CURRENT
 * at all. Either way the newest intact copy is installed and CURRENT switched to it:
 *
 *   candidates = older versions on the volume (every file re-hashed) and the mirror's archives up to the damaged
 *                version itself (archive SHA-256, then the recorded file digests of what it holds),
 *   newest version id first; on equal ids the volume's copy first (nothing to download).
 *
 * The mirror's archive of the damaged version itself is the best outcome (nothing is lost); an older version loses
 * what was merged after it, which the result says (`behind`).
 */
export interface Mirror {
  store: ObjectStore;
  bucket: string;
}

export interface RejectedCopy {
  version: string;
  from: 'volume' | 'mirror';
  problem: string;
}

export type LiveState =
  | { kind: 'intact'; version: string }
  /** No CURRENT and no version on the volume or in the mirror: an empty collection. */
  | { kind: 'empty' }
  | {
      kind: 'repaired';
      version: string;
      from: 'volume' | 'mirror';
      /** What was wrong: the damaged version (absent when CURRENT itself was missing) and the problem. */
      was: { version?: string; problem: string };
      /** Newer copies that were tried and refused, newest first. */
      rejected: RejectedCopy[];
      /** The installed version is older than the damaged one: what was merged after it is not in it. */
      behind: boolean;
    };

/** Nothing intact to install: every candidate was refused (each with its reason), or there was none. */
export class SnapshotUnrecoverableError extends PipelineError {
  constructor(
    readonly collection: Collection,
    readonly was: { version?: string; problem: string },
    readonly rejected: RejectedCopy[],
  ) {
    super(
      'SnapshotDamaged',
      `${collection}: ${was.version ? `CURRENT ${was.version} is damaged (${was.problem})` : was.problem} and no intact copy was found: ${
        rejected.length
          ? rejected
              .map((r) => `${r.version} on the ${r.from === 'volume' ? 'volume' : 'mirror'}: ${r.problem}`)
              .join('; ')
          : 'no other version on the volume and no archive in the object-store mirror'
      }`,
      { collection, was, rejected },
    );
  }
}

export interface RepairOptions {
  root: string;
  collection: Collection;
  mirror?: Mirror;
  /** Local scratch for mirror downloads (never the shared volume). */
  workDir: string;
  /** Right before CURRENT moves: the fence of the compactor or of `snapshot restore` (fenceVolume, fence.ts). */
  beforeSwitch?: () => Promise<unknown>;
  /** The caller already found CURRENT damaged (a reader copy failed): skip re-checking it. */
  known?: { version: string; problem: string };
  log?: Logger;
}

/**
 * Makes sure CURRENT names an intact version, repairing it when it is damaged or missing (see above). Throws
 * SnapshotUnrecoverableError when nothing intact exists; versions found damaged on the volume are moved aside to
 * hidden `.damaged-*` directories (removed later with other leftovers), so nothing uses or lists them again.
 */
export async function ensureLiveIntact(o: RepairOptions): Promise<LiveState> {
  const { root, collection: c, mirror } = o;
  // A CURRENT naming no valid id (`x/../../../words`) is repaired like a missing one: never used as a path.
  let invalidCurrent: string | undefined;
  /** CURRENT's raw text when it names no valid id (the switch below compares against it). */
  let expectedText: string | undefined;
  const current =
    o.known?.version ??
    (await readCurrent(root, c).catch(async (err: unknown) => {
      if (!(err instanceof InvalidVersionIdError)) throw err;
      invalidCurrent = err.message;
      expectedText = await readCurrentText(root, c);
      return undefined;
    }));
  let problem = o.known?.problem;
  if (current && problem === undefined) {
    problem = await checkVersion(versionDir(root, c, current));
    if (problem === undefined) return { kind: 'intact', version: current };
  }
  const was = current
    ? { version: current, problem: problem! }
    : { problem: invalidCurrent ?? 'CURRENT is missing' };

  const rejected: RejectedCopy[] = [];
  // Candidates are versions up to the damaged one (a restore to an older version stays restored), unless CURRENT
  // names a version that is not on the volume at all: then it marks no point in time and the newest intact one wins.
  const volume = await listVersions(root, c);
  const bound = current && volume.includes(current) ? current : undefined;
  const onVolume = volume.filter((v) => v !== current && (!bound || v < bound));
  let archived: string[] = [];
  if (mirror) {
    try {
      archived = (await listArchivedVersions(mirror.store, mirror.bucket, c)).filter(
        (v) => !bound || v <= bound,
      );
    } catch (err) {
      rejected.push({ version: '(any)', from: 'mirror', problem: `listing failed: ${errorMessage(err)}` });
    }
  }
  const candidates = [
    ...onVolume.map((version) => ({ version, from: 'volume' as const })),
    ...archived.map((version) => ({ version, from: 'mirror' as const })),
  ].sort((a, b) =>
    a.version !== b.version ? (a.version < b.version ? 1 : -1) : a.from === 'volume' ? -1 : 1,
  );
  if (!current && candidates.length === 0 && rejected.length === 0) return { kind: 'empty' };

  const damagedOnVolume: string[] = current ? [current] : [];
  let chosen: { version: string; from: 'volume' | 'mirror' } | undefined;
  for (const cand of candidates) {
    const why =
      cand.from === 'volume'
        ? await checkVersion(versionDir(root, c, cand.version))
        : await installFromMirror(o, mirror!, cand.version);
    if (why === undefined) {
      chosen = cand;
      break;
    }
    rejected.push({ ...cand, problem: why });
    if (cand.from === 'volume') damagedOnVolume.push(cand.version);
    o.log?.warn({ collection: c, ...cand, problem: why }, 'snapshot copy refused');
  }
  if (!chosen) throw new SnapshotUnrecoverableError(c, was, rejected);

  await o.beforeSwitch?.();
  // A compare-and-swap on what CURRENT held when the repair began (its raw text when it named no valid id): a writer
  // that moved it meanwhile is not overwritten (CurrentMovedError).
  await switchCurrent(root, c, chosen.version, { expected: current ?? expectedText });
  // The damaged copies are no versions any more (the mirror install already replaced a damaged copy of its own id).
  for (const v of damagedOnVolume) if (v !== chosen.version) await moveAside(root, c, v);
  const state: LiveState = {
    kind: 'repaired',
    version: chosen.version,
    from: chosen.from,
    was,
    rejected,
    behind: current !== undefined && chosen.version < current,
  };
  o.log?.warn({ collection: c, ...state }, 'live version repaired');
  return state;
}

/**
 * Makes a named version installable: its copy on the volume when intact, else the mirror's archive of it (replacing
 * a damaged copy). Throws SnapshotUnrecoverableError with both reasons when neither is intact. Does not move CURRENT.
 */
export async function intactVersion(
  o: Omit<RepairOptions, 'known' | 'beforeSwitch'>,
  version: string,
): Promise<{ from: 'volume' | 'mirror'; rejected: RejectedCopy[] }> {
  const rejected: RejectedCopy[] = [];
  const problem = await checkVersion(versionDir(o.root, o.collection, version));
  if (problem === undefined) return { from: 'volume', rejected };
  rejected.push({ version, from: 'volume', problem });
  if (o.mirror) {
    const why = await installFromMirror(o, o.mirror, version);
    if (why === undefined) return { from: 'mirror', rejected };
    rejected.push({ version, from: 'mirror', problem: why });
  } else rejected.push({ version, from: 'mirror', problem: 'no object-store mirror configured' });
  throw new SnapshotUnrecoverableError(
    o.collection,
    { problem: `version ${version} is not intact` },
    rejected,
  );
}

/** Downloads, checks (archive SHA-256, then the recorded file digests) and installs one archive; else why not. */
async function installFromMirror(
  o: Pick<RepairOptions, 'root' | 'collection' | 'workDir'>,
  mirror: Mirror,
  version: string,
): Promise<string | undefined> {
  const tmp = join(o.workDir, `restore-${o.collection}-${version}`);
  await rm(tmp, { recursive: true, force: true });
  try {
    await restoreSnapshot(mirror.store, mirror.bucket, o.collection, tmp, version);
    await installVersion(o.root, o.collection, version, tmp);
    return undefined;
  } catch (err) {
    if (err instanceof PipelineError) return err.message;
    throw err;
  } finally {
    await rm(tmp, { recursive: true, force: true });
  }
}

/** One line for a user: what was wrong, what was installed from where, or that nothing needed doing. */
export function describeLiveState(c: Collection, s: LiveState): string {
  switch (s.kind) {
    case 'intact':
      return `${c}: CURRENT ${s.version} is intact (every file matches its recorded SHA-256); nothing to repair`;
    case 'empty':
      return `${c}: no version on the volume and none in the object-store mirror; nothing to restore`;
    case 'repaired': {
      const was = s.was.version ? `CURRENT ${s.was.version} was damaged (${s.was.problem})` : s.was.problem;
      const from =
        s.from === 'volume'
          ? 'from the volume (its files match their recorded SHA-256)'
          : 'from the object-store mirror (its archive SHA-256 and files match)';
      const skipped = s.rejected.length
        ? `; refused first: ${s.rejected.map((r) => `${r.version} (${r.from}: ${r.problem})`).join(', ')}`
        : '';
      const behind = s.behind
        ? `. It is older than ${s.was.version}: what was merged after it is missing (docs/local.md, "A damaged snapshot")`
        : '';
      return `${c}: ${was}; installed ${s.version} ${from}${skipped} — CURRENT is now ${s.version}${behind}`;
    }
  }
}
