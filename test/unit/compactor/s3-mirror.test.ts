import { mkdirSync, mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

import { pino } from 'pino';
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';

import { CompactorMetrics } from '../../../compactor/metrics.js';
import { S3Mirror } from '../../../compactor/s3-mirror.js';
import { DirectoryObjectStore } from '../../../core/local/dir-store.js';
import { versionDir } from '../../../core/snapshot/volume.js';

const log = pino({ level: 'silent' });
const [V1, V2, V3] = [
  '20260101T000000000Z-aaaaaa',
  '20260101T000005000Z-bbbbbb',
  '20260101T000009000Z-cccccc',
];

/** A directory store whose writes fail while `down` is set (S3 unreachable). */
class FlakyStore extends DirectoryObjectStore {
  down = false;
  override async put(...args: Parameters<DirectoryObjectStore['put']>): Promise<void> {
    if (this.down) throw new Error('S3 unreachable');
    return super.put(...args);
  }
}

function setup(): {
  mirror: S3Mirror;
  store: FlakyStore;
  unmirroredSince: () => Promise<number | undefined>;
} {
  const root = mkdtempSync(join(tmpdir(), 'mirror-volume-'));
  for (const v of [V1, V2, V3]) {
    mkdirSync(versionDir(root, 'lines', v), { recursive: true });
    writeFileSync(join(versionDir(root, 'lines', v), 'chroma.sqlite3'), v);
  }
  const storeRoot = mkdtempSync(join(tmpdir(), 'mirror-store-'));
  mkdirSync(join(storeRoot, 'vectors'));
  const store = new FlakyStore(storeRoot);
  const metrics = new CompactorMetrics();
  const mirror = new S3Mirror(
    'lines',
    { objects: store, bucket: 'vectors', root, log, metrics, assertHeld: async () => undefined },
    { everyPublishes: 1, everySeconds: 3600, keep: 3 },
  );
  const unmirroredSince = async (): Promise<number | undefined> =>
    (await metrics.s3UnmirroredSince.get()).values.find((v) => v.labels.collection === 'lines')?.value;
  return { mirror, store, unmirroredSince };
}

describe('S3Mirror unmirrored-since gauge (the S3-mirror-stale alert reads it)', () => {
  beforeEach(() => vi.useFakeTimers({ toFake: ['Date'] }));
  afterEach(() => vi.useRealTimers());

  it('holds the time of the oldest publish not yet in S3, and 0 once S3 has the live version', async () => {
    const { mirror, unmirroredSince } = setup();
    vi.setSystemTime(1_000_000);
    mirror.published(V1);
    vi.setSystemTime(1_005_000);
    mirror.published(V2);
    expect(await unmirroredSince()).toBe(1000);
    await mirror.flush(true);
    expect(await unmirroredSince()).toBe(0);
  });

  it('keeps counting while uploads fail, from the first unmirrored publish', async () => {
    const { mirror, store, unmirroredSince } = setup();
    store.down = true;
    vi.setSystemTime(2_000_000);
    mirror.published(V1);
    await mirror.flush(true);
    vi.setSystemTime(2_060_000);
    mirror.published(V2);
    await mirror.flush(true);
    expect(await unmirroredSince()).toBe(2000);
    store.down = false;
    await mirror.flush(true);
    expect(await unmirroredSince()).toBe(0);
  });

  it('counts a publish made during an upload from that upload’s start', async () => {
    const { mirror, unmirroredSince } = setup();
    vi.setSystemTime(3_000_000);
    mirror.published(V1);
    vi.setSystemTime(3_010_000);
    const upload = mirror.flush(true);
    mirror.published(V2); // lands while V1 uploads
    await upload;
    expect(await unmirroredSince()).toBe(3010);
  });
});

describe('S3Mirror segment archives', () => {
  beforeEach(() => vi.useFakeTimers({ toFake: ['Date'] }));
  afterEach(() => vi.useRealTimers());

  const id = (c: string) => c.repeat(32);
  const manifest = (ids: string[]) =>
    JSON.stringify({ segments: ids.map((i) => ({ id: i, count: 1, files: {} })), tombstones: {} });

  it('deletes an archive no kept snapshot lists once unlisted for the grace period, never a listed one', async () => {
    const { store } = setup();
    const storeMirror = new S3Mirror(
      'lines',
      {
        objects: store,
        bucket: 'vectors',
        root: '/nonexistent',
        log,
        metrics: new CompactorMetrics(),
        assertHeld: async () => undefined,
      },
      { everyPublishes: 1, everySeconds: 3600, keep: 1, graceMs: 60_000 },
    );
    // Segment ids are the digest of their files: an id with an empty file list is that digest.
    const { segmentId } = await import('../../../core/segments/manifest.js');
    const listed = segmentId(new Map());
    await store.put('vectors', `lines/snapshot/timestamped/${V2}/embedctl-version.json`, manifest([listed]));
    for (const s of [listed, id('b')]) {
      await store.put('vectors', `lines/snapshot/segments/${s}.tar.gz`, 'x');
      await store.put('vectors', `lines/snapshot/segments/${s}.tar.gz.sha256`, 'x');
    }
    const collect = (
      storeMirror as unknown as { collectSegments: (k: string[]) => Promise<void> }
    ).collectSegments.bind(storeMirror);
    const keys = async () =>
      (await store.list('vectors', 'lines/snapshot/segments/')).map((o) => o.key).sort();
    vi.setSystemTime(1_000_000);
    await collect([V2]);
    expect(await keys()).toHaveLength(4); // unlisted since now: within the grace period
    vi.setSystemTime(1_059_000);
    await collect([V2]);
    expect(await keys()).toHaveLength(4);
    vi.setSystemTime(1_060_000);
    await collect([V2]);
    expect(await keys()).toEqual([
      `lines/snapshot/segments/${listed}.tar.gz`,
      `lines/snapshot/segments/${listed}.tar.gz.sha256`,
    ]);
  });
});
