import { join } from 'node:path';
import { startChromaServer, type ChromaServer } from '../chroma/server.js';
import { ChromaVectorStore, type ChromaStoreOptions } from '../chroma/store.js';
import { readManifest } from '../snapshot/volume.js';
import { SEALED_DIR, tombstoneSets, type Manifest } from './manifest.js';
import { SegmentedStore, type ReadSegment } from './segmented-store.js';

/** A version's segments served read-only: one Chroma server per segment, all read through one SegmentedStore. */
export interface OpenSegments {
  readonly store: SegmentedStore;
  readonly manifest: Manifest;
  /** Every server's process (hot first). */
  readonly servers: readonly ChromaServer[];
  close(): Promise<void>;
}

/**
 * Starts a Chroma server on the hot segment (`dir` itself) and on each sealed segment (`dir/sealed/{id}`) of a
 * version copied to local scratch (never a directory on the shared volume), in parallel. Every reader goes through
 * here: worker merchant resolution, `embedctl query`, `snapshot verify`, the test dumps. A server that fails to start
 * stops the others.
 */
export async function openSegments(
  dir: string,
  opts: ChromaStoreOptions & { start?: (path: string) => Promise<ChromaServer> } = {},
): Promise<OpenSegments> {
  const manifest = await readManifest(dir);
  const start = opts.start ?? ((path: string) => startChromaServer({ path }));
  const paths = [dir, ...manifest.segments.map((s) => join(dir, SEALED_DIR, s.id))];
  const started = await Promise.allSettled(paths.map((p) => start(p)));
  const servers = started.flatMap((r) => (r.status === 'fulfilled' ? [r.value] : []));
  const close = async () => {
    await Promise.all(servers.map((s) => s.stop()));
  };
  const failed = started.find((r) => r.status === 'rejected');
  if (failed) {
    await close();
    throw failed.reason;
  }
  const tombstones = tombstoneSets(manifest);
  const store = (s: ChromaServer) => new ChromaVectorStore(s.url, opts);
  const segments: ReadSegment[] = [
    ...manifest.segments.map((s, i) => ({
      id: s.id,
      store: store(servers[i + 1]!),
      tombstones: tombstones.get(s.id)!,
    })),
    { id: 'hot', store: store(servers[0]!), tombstones: new Set<string>() },
  ];
  return { store: new SegmentedStore(segments), manifest, servers, close };
}
