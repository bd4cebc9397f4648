import { createHash } from 'node:crypto';
import { z } from 'zod';
import { PipelineError } from '../errors.js';

/**
 * A collection version is a manifest of segments (docs/adr/0012-immutable-segments.md):
 *
 *   versions/{v}/                  the hot segment: an ordinary Chroma persistent directory (as every version was)
 *   versions/{v}/sealed/{id}/      a sealed segment: an ordinary Chroma directory, never changed after it was written,
 *                                  hard-linked into every later version that lists it (the bytes exist once)
 *   versions/{v}/embedctl-version.json   provenance + the manifest: the hot files' digests, the sealed segments
 *                                  (id, vector count, every file's SHA-256) and the tombstones
 *
 * A record is live in the hot segment, or in a sealed segment unless that segment's tombstones name its id. The
 * writer keeps every id live in at most one segment: replacing or re-stamping a sealed record tombstones it there and
 * adds the new record to the hot segment; deleting one tombstones it.
 */
export const SEALED_DIR = 'sealed';

/** A sealed segment's id: the first 32 hex digits of the SHA-256 over its files' digests (content-addressed). */
export const SEGMENT_ID_PATTERN = /^[0-9a-f]{32}$/;

const Digest = z.string().regex(/^[0-9a-f]{64}$/);
const SealedSegmentSchema = z.object({
  id: z.string().regex(SEGMENT_ID_PATTERN),
  count: z.number().int().nonnegative(),
  files: z.record(z.string().regex(/^[A-Za-z0-9._-]+(\/[A-Za-z0-9._-]+)*$/), Digest),
});
const ManifestSchema = z.object({
  segments: z.array(SealedSegmentSchema).default([]),
  tombstones: z.record(z.string().regex(SEGMENT_ID_PATTERN), z.array(z.string())).default({}),
});

export type SealedSegment = z.infer<typeof SealedSegmentSchema>;
export interface Manifest {
  /** Oldest first. */
  segments: SealedSegment[];
  /** Per sealed segment id: ids of its records that are no longer live (deleted, or replaced in a newer segment). */
  tombstones: Record<string, string[]>;
}

export const emptyManifest = (): Manifest => ({ segments: [], tombstones: {} });

/** A version's recorded manifest does not parse: which version file, and what is wrong. */
export class ManifestInvalidError extends PipelineError {
  constructor(
    readonly source: string,
    readonly problem: string,
  ) {
    super('SnapshotDamaged', `${source}: invalid segment manifest: ${problem}`, { source, problem });
  }
}

/**
 * The manifest part of a parsed `embedctl-version.json` (a version written before segments has none: everything is
 * in its hot segment). Tombstones must name listed segments, and segment ids must match their files.
 */
export function parseManifest(info: unknown, source: string): Manifest {
  const got = ManifestSchema.safeParse(info ?? {});
  if (!got.success) throw new ManifestInvalidError(source, got.error.issues[0]?.message ?? 'invalid');
  const m = got.data;
  const ids = new Set<string>();
  for (const s of m.segments) {
    if (ids.has(s.id)) throw new ManifestInvalidError(source, `segment ${s.id} listed twice`);
    ids.add(s.id);
    const want = segmentId(new Map(Object.entries(s.files)));
    if (want !== s.id) throw new ManifestInvalidError(source, `segment ${s.id} does not match its files`);
  }
  for (const id of Object.keys(m.tombstones))
    if (!ids.has(id)) throw new ManifestInvalidError(source, `tombstones for unlisted segment ${id}`);
  return m;
}

/** Content address of a segment: its relative file paths and their SHA-256, sorted. */
export function segmentId(files: Map<string, string>): string {
  const h = createHash('sha256');
  for (const f of [...files.keys()].sort()) h.update(`${f}\0${files.get(f)}\n`);
  return h.digest('hex').slice(0, 32);
}

/** Every sealed file's recorded digest, by its path inside the version (`sealed/{id}/{file}`). */
export function sealedDigests(m: Manifest): Map<string, string> {
  const out = new Map<string, string>();
  for (const s of m.segments)
    for (const [f, h] of Object.entries(s.files)) out.set(`${SEALED_DIR}/${s.id}/${f}`, h);
  return out;
}

/** The manifest as written into `embedctl-version.json` (tombstones sorted, empty lists left out). */
export function manifestJson(m: Manifest): Manifest {
  const tombstones: Record<string, string[]> = {};
  for (const s of m.segments) {
    const t = m.tombstones[s.id];
    if (t?.length) tombstones[s.id] = [...t].sort();
  }
  return { segments: m.segments, tombstones };
}

/** Tombstoned ids as sets, per segment id. */
export function tombstoneSets(m: Manifest): Map<string, Set<string>> {
  return new Map(m.segments.map((s) => [s.id, new Set(m.tombstones[s.id] ?? [])]));
}
