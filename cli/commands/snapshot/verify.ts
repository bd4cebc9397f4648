import { createHash } from 'node:crypto';
import type { Command } from 'commander';
import { ENV } from '../../../core/config/env.js';
import { COLLECTIONS, type Collection } from '../../../core/contracts/ids.js';
import type { ObjectStore } from '../../../core/ports/object-store.js';
import { parseManifest } from '../../../core/segments/manifest.js';
import { archiveKey, manifestKey, readPointer, segmentKey } from '../../../core/snapshot/s3-snapshot.js';
import { listVersions, readCurrent } from '../../../core/snapshot/volume.js';
import { chromaRootOption, homeOption, jsonOption, type VolumeFlags } from '../../options.js';
import { printJson, say } from '../../print.js';
import { openView, snapshotTarget } from '../../snapshot-target.js';
import { guarded } from '../../usage.js';

type VerifyFlags = VolumeFlags & { json?: boolean };

interface Verdict {
  collection: Collection;
  version?: string;
  count?: number;
  ok: boolean;
  problems: string[];
}

export function register(snapshot: Command): void {
  snapshot
    .command('verify')
    .description(
      'open each live version with Chroma: count, a self-query, and the archive checksum of the mirror',
    )
    .addOption(homeOption())
    .option('--cloud', `the volume at ${ENV.CHROMA_ROOT} and the S3 mirror in ${ENV.VECTORS_BUCKET}`)
    .addOption(chromaRootOption())
    .addOption(jsonOption())
    .action((f: VerifyFlags) => guarded(() => verify(f)));
}

async function verify(f: VerifyFlags): Promise<number> {
  const { view, cleanup } = await openView(f, { partial: true });
  const { root, mirror, close } = snapshotTarget(f);
  const results: Verdict[] = [];
  try {
    for (const c of COLLECTIONS) {
      const store = view.store(c);
      const failure = view.failures[c];
      const version = view.versions[c] ?? failure?.version;
      const problems: string[] = [];
      let count: number | undefined;
      if (failure) problems.push(failure.detail);
      else if (!store) problems.push('no published version');
      if (root && !(await readCurrent(root, c))) {
        // Opened from the mirror, or versions on the volume: the volume lost its CURRENT (or never got one).
        const onVolume = await listVersions(root, c);
        if (store || onVolume.length)
          problems.push(
            `the volume has no CURRENT (${onVolume.length} version(s) on it); repair it with: embedctl snapshot restore ${c}`,
          );
      }
      if (store && !failure) {
        count = await store.count(c);
        const sample = await store.get(c, { limit: 1, include: ['embeddings'] });
        if (count > 0 && !sample.embeddings?.[0]) problems.push('count > 0 but no vector could be read');
        if (sample.embeddings?.[0]) {
          // Identical texts give identical vectors, so the nearest hit may be another id: check the distance.
          const [hit] = await store.query(c, sample.embeddings[0], 1);
          if (!hit || !(hit.distance <= 1e-4)) {
            problems.push(
              `self-query of ${sample.ids[0]} returned ${hit ? `distance ${hit.distance}` : 'nothing'}`,
            );
          }
        }
        if (mirror && version) {
          const pointer = await readPointer(mirror.store, mirror.bucket, c).catch(() => undefined);
          if (pointer && pointer !== version)
            problems.push(`object-store pointer is ${pointer}, the volume's CURRENT is ${version}`);
          problems.push(...(await checkArchive(mirror, c, version)));
        }
      }
      results.push({ collection: c, version, count, ok: problems.length === 0, problems });
    }
  } finally {
    await view.close();
    await cleanup();
    close();
  }
  if (f.json) printJson(results);
  else
    for (const r of results) {
      say(
        `${r.ok ? 'ok  ' : 'FAIL'} ${r.collection} ${r.version ?? ''}${r.count === undefined ? '' : ` ${r.count} vectors`}${r.problems.length ? `: ${r.problems.join('; ')}` : ''}\n`,
      );
    }
  return results.every((r) => r.ok) ? 0 : 1;
}

/**
 * The mirror's archive of `version` exists and matches its recorded sha256 (when one is recorded), and so does the
 * archive of every sealed segment its manifest (stored beside it) lists: uploaded once, shared by every snapshot.
 */
export async function checkArchive(
  mirror: { store: ObjectStore; bucket: string },
  c: Collection,
  version: string,
): Promise<string[]> {
  const key = archiveKey(c, version);
  if (!(await mirror.store.head(mirror.bucket, key))) return [`no archive ${key} in the object store`];
  const problems = await checkObject(mirror, key, 'archive');
  const mKey = manifestKey(c, version);
  if (!(await mirror.store.head(mirror.bucket, mKey))) return problems; // a snapshot older than segments
  let segments: string[];
  try {
    const info: unknown = JSON.parse((await mirror.store.getBuffer(mirror.bucket, mKey)).toString('utf8'));
    segments = parseManifest(info, mKey).segments.map((s) => s.id);
  } catch (err) {
    return [...problems, `manifest ${mKey}: ${(err as Error).message}`];
  }
  for (const id of segments) {
    const sKey = segmentKey(c, id);
    if (!(await mirror.store.head(mirror.bucket, sKey)))
      problems.push(`no archive ${sKey} of sealed segment ${id} in the object store`);
    else problems.push(...(await checkObject(mirror, sKey, `segment ${id} archive`)));
  }
  return problems;
}

/** An object matches its recorded `{key}.sha256` (when one is recorded), hashed as it streams. */
async function checkObject(
  mirror: { store: ObjectStore; bucket: string },
  key: string,
  what: string,
): Promise<string[]> {
  const hashKey = `${key}.sha256`;
  if (!(await mirror.store.head(mirror.bucket, hashKey))) return [];
  const expected = (await mirror.store.getBuffer(mirror.bucket, hashKey)).toString('utf8').trim();
  const hash = createHash('sha256');
  for await (const chunk of await mirror.store.getStream(mirror.bucket, key)) hash.update(chunk as Buffer);
  const actual = hash.digest('hex');
  return actual === expected ? [] : [`${what} sha256 ${actual} does not match the recorded ${expected}`];
}
