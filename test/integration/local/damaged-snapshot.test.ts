// Fault injection on a finished local home (issue 12, items 1-3 and 12): a byte flipped in a live version, a lost
// CURRENT, stale staging directories, a corrupted mirror archive. Through the CLI in child processes, as a user runs
// it; every command has a deadline, and afterwards no Chroma server or scratch directory of it may be left.
import {
  cpSync,
  existsSync,
  mkdirSync,
  mkdtempSync,
  readdirSync,
  readFileSync,
  rmSync,
  writeFileSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { COLLECTIONS, type Collection } from '../../../core/contracts/ids.js';
import { reapLocalChildren } from '../../../local/child-argv.js';
import { homePaths } from '../../../local/home.js';
import { generateReceipts } from '../../../core/sample/index.js';
import { archiveKey } from '../../../core/snapshot/s3-snapshot.js';
import type { RunSummary } from '../../../local/run.js';
import { cli, processesUsing, type CliResult } from '../../support/local-cli.js';
import { expectedIds, liveIds as liveIdsOf } from '../../support/snapshot.js';

const TIMEOUT = 600_000;
/** A reader (query, verify) must be done within this; a hang is killed there and fails the test. */
const READER_DEADLINE_MS = 30_000;
const dirs: string[] = [];
let seed: string;
const SEED_RECEIPTS = 8;
const other = (c: Collection): Collection => (c === 'words' ? 'lines' : 'words');

afterAll(() => {
  for (const d of dirs) {
    // Only when a test failed midway: children of a run (pid files) and anything still using the directory.
    reapLocalChildren(homePaths(d));
    for (const pid of processesUsing(d)) process.kill(pid, 'SIGKILL');
    rmSync(d, { recursive: true, force: true });
  }
});

/** A copy of the seed home, with its own TMPDIR so every scratch directory a command makes can be seen. */
function homeFromSeed(): { home: string; tmp: string } {
  const base = mkdtempSync(join(tmpdir(), 'damaged-'));
  dirs.push(base);
  const home = join(base, 'home');
  cpSync(seed, home, { recursive: true });
  const tmp = join(base, 'tmp');
  mkdirSync(tmp);
  return { home, tmp };
}

async function embedctl(tmp: string, args: string[], deadlineMs = READER_DEADLINE_MS): Promise<CliResult> {
  const res = await cli(args, { env: { TMPDIR: tmp }, deadlineMs }).done;
  expect(res.timedOut, `embedctl ${args.join(' ')} did not exit within ${deadlineMs} ms`).toBe(false);
  return res;
}

async function run(
  tmp: string,
  home: string,
  receipts: number,
): Promise<{ res: CliResult; summary?: RunSummary }> {
  const res = await embedctl(
    tmp,
    [
      'local',
      'run',
      '--home',
      home,
      '--receipts',
      String(receipts),
      '--no-queries',
      '--json',
      '--timeout',
      '240',
    ],
    300_000,
  );
  return {
    res,
    ...(res.code === 0 || res.stdout.startsWith('{')
      ? { summary: JSON.parse(res.stdout) as RunSummary }
      : {}),
  };
}

const current = (home: string, c: Collection) =>
  readFileSync(join(home, 'volume', c, 'CURRENT'), 'utf8').trim();
const versionsOf = (home: string, c: Collection) =>
  readdirSync(join(home, 'volume', c, 'versions'))
    .filter((v) => !v.startsWith('.'))
    .sort();

/** Flips one byte of the HNSW data of a version (bit rot): the file keeps its size and name. */
function corrupt(home: string, c: Collection, version = current(home, c)): void {
  const dir = join(home, 'volume', c, 'versions', version);
  const seg = readdirSync(dir, { withFileTypes: true }).find((e) => e.isDirectory())!;
  const file = join(dir, seg.name, 'data_level0.bin');
  const bytes = readFileSync(file);
  bytes[100] = bytes[100]! ^ 0xff;
  writeFileSync(file, bytes);
}

/** Nothing of a finished command is left: no process using the home or TMPDIR, no scratch directory. */
function nothingLeft(home: string, tmp: string): void {
  expect(processesUsing(home)).toEqual([]);
  expect(processesUsing(tmp)).toEqual([]);
  expect(readdirSync(tmp).filter((n) => !n.startsWith('tsx-'))).toEqual([]); // tsx keeps its cache there
  expect(existsSync(join(home, 'scratch')) ? readdirSync(join(home, 'scratch')) : []).toEqual([]);
}

async function exact(home: string, summary: RunSummary | undefined, receipts: number): Promise<void> {
  const want = expectedIds(generateReceipts(receipts, 1));
  const live = await liveIdsOf(join(home, 'volume'));
  for (const c of COLLECTIONS) {
    expect(summary?.vectors[c]).toEqual({ snapshot: want[c].size, expected: want[c].size });
    expect(live[c].ids).toEqual(want[c]);
  }
}

beforeAll(async () => {
  // Two runs, so that each collection has an older version on the volume and archives in the mirror.
  const base = mkdtempSync(join(tmpdir(), 'damaged-seed-'));
  dirs.push(base);
  seed = join(base, 'home');
  const tmp = join(base, 'tmp');
  mkdirSync(tmp);
  for (const n of [SEED_RECEIPTS - 2, SEED_RECEIPTS]) {
    const { res } = await run(tmp, seed, n);
    expect(res.code, res.stderr.slice(-3000)).toBe(0);
  }
}, TIMEOUT);

describe('a damaged or lost live snapshot', () => {
  it(
    'fault injection: each collection in turn corrupted — readers fail fast and leave nothing, the intact one answers, the next run repairs with exact counts',
    async () => {
      for (const c of COLLECTIONS) {
        const { home, tmp } = homeFromSeed();
        const damaged = current(home, c);
        corrupt(home, c);

        const q = await embedctl(tmp, [
          'query',
          c === 'words' ? 'MILK' : 'TOTAL PAID',
          '-c',
          c,
          '--home',
          home,
        ]);
        expect(q.code).toBe(1);
        expect(q.stderr.trim()).toMatch(
          new RegExp(
            `^error: ${c} ${damaged} is damaged: .*data_level0\\.bin differs; repair it with: embedctl snapshot restore ${c}$`,
          ),
        );
        nothingLeft(home, tmp);

        const ok = await embedctl(tmp, [
          'query',
          'TOTAL',
          '-c',
          other(c),
          '-n',
          '3',
          '--home',
          home,
          '--json',
        ]);
        expect(ok.code, ok.stderr).toBe(0);
        expect((JSON.parse(ok.stdout) as { hits: unknown[] }).hits).toHaveLength(3);
        nothingLeft(home, tmp);

        const verify = await embedctl(tmp, ['snapshot', 'verify', '--home', home]);
        expect(verify.code).toBe(1);
        expect(verify.stdout).toMatch(
          new RegExp(`^FAIL ${c} ${damaged}: damaged: .*data_level0\\.bin differs`, 'm'),
        );
        expect(verify.stdout).toMatch(new RegExp(`^ok {3}${other(c)} \\S+ \\d+ vectors$`, 'm'));
        nothingLeft(home, tmp);
        console.log(`${c} damaged: query ${q.ms} ms, other query ${ok.ms} ms, verify ${verify.ms} ms`);

        // The next run (with new receipts) repairs the live version on start, merges on top of it, exact counts.
        const { res, summary } = await run(tmp, home, SEED_RECEIPTS + 2);
        expect(res.code, res.stderr.slice(-3000)).toBe(0);
        await exact(home, summary, SEED_RECEIPTS + 2);
        expect((await embedctl(tmp, ['snapshot', 'verify', '--home', home])).code).toBe(0);
        nothingLeft(home, tmp);
      }
    },
    TIMEOUT,
  );

  it(
    'snapshot restore repairs from the mirror (same version), else from an older version on the volume, else refuses with the reasons',
    async () => {
      const { home, tmp } = homeFromSeed();
      const live = current(home, 'words');
      corrupt(home, 'words');
      const mirror = await embedctl(tmp, ['snapshot', 'restore', 'words', '--home', home]);
      expect(mirror.code, mirror.stderr).toBe(0);
      expect(mirror.stdout.trim()).toBe(
        `words: CURRENT ${live} was damaged (${mirror.stdout.match(/\(([^)]*data_level0\.bin differs)\)/)?.[1]}); installed ${live} from the object-store mirror (its archive SHA-256 and files match) — CURRENT is now ${live}`,
      );
      expect((await embedctl(tmp, ['snapshot', 'verify', '--home', home])).code).toBe(0);
      const again = await embedctl(tmp, ['snapshot', 'restore', 'words', '--home', home]);
      expect(again.stdout).toMatch(/CURRENT \S+ is intact .*nothing to repair/);

      // The mirror's archive of the live version is bad too: the older version on the volume is installed.
      const older = versionsOf(home, 'words')
        .filter((v) => v < live)
        .at(-1)!;
      expect(older).toBeDefined();
      corrupt(home, 'words');
      writeFileSync(join(home, 'objects', 'vectors', ...archiveKey('words', live).split('/')), 'garbage');
      const archives = join(home, 'objects', 'vectors', 'words', 'snapshot', 'timestamped');
      for (const v of readdirSync(archives)) if (v !== live) rmSync(join(archives, v), { recursive: true });
      const volume = await embedctl(tmp, ['snapshot', 'restore', 'words', '--home', home]);
      expect(volume.code, volume.stderr).toBe(0);
      expect(volume.stdout).toContain(
        `installed ${older} from the volume (its files match their recorded SHA-256)`,
      );
      expect(volume.stdout).toContain(
        `refused first: ${live} (mirror: snapshot words/${live} sha256 mismatch`,
      );
      expect(volume.stdout).toContain(`CURRENT is now ${older}. It is older than ${live}`);
      expect(current(home, 'words')).toBe(older);
      expect(versionsOf(home, 'words')).not.toContain(live); // the damaged copy is no version any more
      nothingLeft(home, tmp);

      // Item 3: a run whose published counts disagree with the job results exits non-zero and says why.
      const { res, summary } = await run(tmp, home, SEED_RECEIPTS);
      expect(res.code).toBe(1);
      expect(summary!.vectors.words.snapshot).toBeLessThan(summary!.vectors.words.expected);
      expect(res.stderr).toMatch(
        /the live snapshot disagrees with the job results \(words: \d+ vectors, job results say \d+\)/,
      );

      // Nothing intact: refused with every copy's reason; the live version is not touched; readers still fail fast.
      for (const v of versionsOf(home, 'words')) corrupt(home, 'words', v);
      rmSync(archives, { recursive: true });
      const refused = await embedctl(tmp, ['snapshot', 'restore', 'words', '--home', home]);
      expect(refused.code).toBe(1);
      expect(refused.stderr.trim()).toMatch(
        new RegExp(
          `^error: words: CURRENT ${older} is damaged \\(.*differs\\) and no intact copy was found: `,
        ),
      );
      expect(current(home, 'words')).toBe(older);
      const failing = await run(tmp, home, SEED_RECEIPTS);
      expect(failing.res.code).toBe(1);
      expect(failing.res.ms).toBeLessThan(60_000);
      console.log(`nothing intact: local run exited ${failing.res.code} after ${failing.res.ms} ms`);
      nothingLeft(home, tmp);
      expect(readdirSync(join(home, 'pids'))).toEqual([]);

      // A named version: intact on the volume → made live; a bad name is refused.
      const { home: h2, tmp: t2 } = homeFromSeed();
      const prev = versionsOf(h2, 'lines')
        .filter((v) => v < current(h2, 'lines'))
        .at(-1)!;
      const named = await embedctl(t2, ['snapshot', 'restore', 'lines', prev, '--home', h2]);
      expect(named.stdout.trim()).toBe(`lines: ${prev} on the volume is intact — CURRENT is now ${prev}`);
      const bad = await embedctl(t2, [
        'snapshot',
        'restore',
        'lines',
        '20200101T000000000Z-000000',
        '--home',
        h2,
      ]);
      expect(bad.code).toBe(1);
      expect(bad.stderr).toMatch(
        /version 20200101T000000000Z-000000 is not intact.*the version directory is missing/,
      );
    },
    TIMEOUT,
  );

  it(
    'a lost CURRENT and stale staging directories: verify says so, the next run recovers the newest version and goes on with exact counts',
    async () => {
      const { home, tmp } = homeFromSeed();
      const live = Object.fromEntries(COLLECTIONS.map((c) => [c, current(home, c)]));
      for (const c of COLLECTIONS) {
        rmSync(join(home, 'volume', c, 'CURRENT'));
        mkdirSync(join(home, 'volume', c, 'versions', `.staging-${live[c]}`, 'seg'), { recursive: true });
        writeFileSync(join(home, 'volume', c, 'versions', `.staging-${live[c]}`, 'seg', 'half'), 'x');
      }
      const verify = await embedctl(tmp, ['snapshot', 'verify', '--home', home]);
      expect(verify.code).toBe(1);
      for (const c of COLLECTIONS)
        expect(verify.stdout).toMatch(
          new RegExp(`^FAIL ${c} .*the volume has no CURRENT \\(\\d+ version\\(s\\) on it\\)`, 'm'),
        );

      const { res, summary } = await run(tmp, home, SEED_RECEIPTS + 1);
      expect(res.code, res.stderr.slice(-3000)).toBe(0);
      await exact(home, summary, SEED_RECEIPTS + 1);
      for (const c of COLLECTIONS) {
        expect(readdirSync(join(home, 'volume', c, 'versions')).filter((n) => n.startsWith('.'))).toEqual([]);
        expect(current(home, c) > live[c]!).toBe(true); // recovered, then published on top
      }
      nothingLeft(home, tmp);
    },
    TIMEOUT,
  );

  it(
    'disk: a run leaves no scratch and at most a few versions; snapshot prune keeps N plus CURRENT and validates --keep',
    async () => {
      const { home, tmp } = homeFromSeed();
      expect(existsSync(join(seed, 'scratch'))).toBe(false);
      const counts = COLLECTIONS.map((c) => versionsOf(seed, c).length);
      console.log(
        `versions after the seed runs: ${COLLECTIONS.map((c, i) => `${c} ${counts[i]}`).join(', ')}`,
      );
      for (const n of counts) expect(n).toBeLessThanOrEqual(3);

      const live = Object.fromEntries(COLLECTIONS.map((c) => [c, current(home, c)]));
      const pruned = await embedctl(tmp, ['snapshot', 'prune', '--keep', '0', '--home', home, '--json']);
      expect(pruned.code, pruned.stderr).toBe(0);
      const out = JSON.parse(pruned.stdout) as {
        collection: Collection;
        kept: string[];
        freedBytes: number;
      }[];
      for (const r of out) {
        expect(r.kept).toEqual([live[r.collection]]);
        expect(versionsOf(home, r.collection)).toEqual([live[r.collection]]);
      }
      console.log(
        `prune --keep 0 freed ${out.map((r) => `${r.collection} ${(r.freedBytes / 1e6).toFixed(1)} MB`).join(', ')}`,
      );
      expect((await embedctl(tmp, ['snapshot', 'verify', '--home', home])).code).toBe(0);

      for (const bad of ['-1', 'abc', '1.5', '']) {
        const res = await embedctl(tmp, ['snapshot', 'prune', '--keep', bad, '--home', home]);
        expect(res.code, `--keep ${bad}`).toBe(2);
        expect(res.stderr.trim().split('\n')).toEqual([
          `error: option '--keep <n>' argument '${bad}' is invalid. Expected an integer ≥ 0.`,
        ]);
      }
      const col = await embedctl(tmp, ['snapshot', 'prune', 'nope', '--home', home]);
      expect(col.code).toBe(2);
      expect(col.stderr.trim()).toBe('error: collection must be lines or words, not "nope"');
      nothingLeft(home, tmp);
    },
    TIMEOUT,
  );
});
