// `embedctl local run` end to end, through the CLI in a child process exactly as `npm run demo` runs it: no cloud,
// no cluster, a temp --home. The expectations are computed independently from the sample generator and the shared
// embedding-input builder, and checked against the live snapshot opened with a real Chroma server.
import { spawn } from 'node:child_process';
import {
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
import { setTimeout as sleep } from 'node:timers/promises';
import { afterAll, describe, expect, it } from 'vitest';
import { COLLECTIONS } from '../../../core/contracts/ids.js';
import { reapLocalChildren } from '../../../local/child-argv.js';
import { homePaths } from '../../../local/home.js';
import { LocalJobTable } from '../../../core/local/job-table.js';
import { generateReceipt, generateReceipts } from '../../../core/sample/index.js';
import type { RunSummary } from '../../../local/run.js';
import { expectedIds, liveIds as liveIdsOf } from '../../support/snapshot.js';

/** The live snapshot of a local home's volume. */
const liveIds = (home: string) => liveIdsOf(join(home, 'volume'));

const ROOT = join(import.meta.dirname, '..', '..', '..');
const homes: string[] = [];
/** Each test runs the whole pipeline (several times); generous for a loaded 2-core CI machine. */
const TIMEOUT = 600_000;

afterAll(() => {
  for (const h of homes) {
    reapLocalChildren(homePaths(h)); // only if a test failed midway
    rmSync(h, { recursive: true, force: true });
  }
});

function tempHome(): string {
  const h = mkdtempSync(join(tmpdir(), 'local-run-'));
  homes.push(h);
  return h;
}

interface Cli {
  pid: number;
  done: Promise<{ code: number | null; signal: NodeJS.Signals | null; stdout: string; stderr: string }>;
}

/** `tsx cli/main.ts …` (what `npm run demo` runs), as a child process. */
function cli(args: string[]): Cli {
  const child = spawn(process.execPath, ['--import', 'tsx', join(ROOT, 'cli', 'main.ts'), ...args], {
    cwd: ROOT,
    env: { ...process.env, LOG_LEVEL: 'warn', OPENAI_API_KEY: '' },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let stdout = '';
  let stderr = '';
  child.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
  child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
  return {
    pid: child.pid!,
    done: new Promise((resolve) =>
      child.once('close', (code, signal) => resolve({ code, signal, stdout, stderr })),
    ),
  };
}

async function runJson(args: string[]): Promise<RunSummary> {
  // The run gives up well before the test's own timeout, and its summary then says what it was waiting for.
  const { code, stdout, stderr } = await cli([...args, '--json', '--timeout', '240']).done;
  if (code !== 0)
    throw new Error(
      `local run exited ${code}\nstdout: ${stdout.slice(-6000)}\nstderr: ${stderr.slice(-4000)}`,
    );
  return JSON.parse(stdout) as RunSummary;
}

describe('embedctl local run', () => {
  it(
    "the README's first command finishes, its summary matches the live snapshot, a re-run duplicates nothing, and status/query/snapshot/submit work on the result",
    async () => {
      const home = tempHome();
      const n = 8;
      const summary = await runJson([
        'local',
        'run',
        '--home',
        home,
        '--receipts',
        String(n),
        '--concurrency',
        '2',
      ]);
      const want = expectedIds(generateReceipts(n, 1));
      expect(summary.complete).toBe(true);
      expect(summary.receipts).toEqual({ total: n, succeeded: n, failed: 0 });
      expect(summary.failures).toEqual([]);
      expect(summary.deadLetters).toEqual([]);
      expect(summary.merchants.resolved).toBe(n);
      const live = await liveIds(home);
      for (const c of COLLECTIONS) {
        expect(summary.vectors[c]).toEqual({ snapshot: want[c].size, expected: want[c].size });
        expect(live[c].count).toBe(want[c].size);
        expect(live[c].ids).toEqual(want[c]);
        expect(summary.snapshot[c]).toBe(live[c].version);
      }
      expect(summary.queries.map((q) => q.title)).toEqual([
        expect.stringMatching(/^receipts like /),
        "lines like 'TOTAL'",
        "words like 'milk'",
      ]);
      // "Receipts like this one" finds another receipt of the same merchant first.
      const like = summary.queries[0]!;
      expect(like.hits[0]?.similarity).toBeGreaterThan(0.9);
      for (const stage of ['submit', 'ingest', 'workers', 'embedding', 'compactWait'])
        expect(summary.stages[stage]?.wallMs).toBeGreaterThanOrEqual(0);

      // Same command again: everything is already done; nothing is created, launched or duplicated.
      const again = await runJson(['local', 'run', '--home', home, '--receipts', String(n), '--no-queries']);
      expect(again.receipts).toEqual({ total: n, succeeded: n, failed: 0 });
      expect(again.workers.launched).toBe(0);
      for (const c of COLLECTIONS) expect(again.vectors[c].snapshot).toBe(want[c].size);
      expect(readdirSync(join(home, 'pids'))).toEqual([]);

      // The user commands see the same state.
      const status = JSON.parse((await cli(['status', '--home', home, '--json']).done).stdout) as {
        counts: Record<string, number>;
      };
      expect(status.counts).toMatchObject({ Succeeded: n, Failed: 0, Pending: 0 });
      const q = await cli(['query', 'TOTAL', '-c', 'lines', '-n', '3', '--home', home, '--json']).done;
      expect(q.code).toBe(0);
      const hits = JSON.parse(q.stdout) as { version: string; hits: { id: string }[] };
      expect(hits.version).toBe(summary.snapshot.lines);
      expect(hits.hits).toHaveLength(3);
      expect((await cli(['snapshot', 'verify', '--home', home]).done).code).toBe(0);
      // An emptied volume is rebuilt from the object-store mirror.
      rmSync(join(home, 'volume', 'lines'), { recursive: true, force: true });
      const restore = await cli(['snapshot', 'restore', 'lines', '--home', home]).done;
      expect(restore.stdout).toContain(`CURRENT is now ${summary.snapshot.lines}`);
      expect((await liveIds(home)).lines.ids).toEqual(want.lines);
      // submit + the same run command picks the new receipt up.
      const extra = generateReceipts(n + 1, 1).at(-1)!;
      const folder = join(home, 'extra');
      mkdirSync(folder);
      writeFileSync(join(folder, 'lines.ndjson'), extra.linesNdjson);
      writeFileSync(join(folder, 'words.ndjson'), extra.wordsNdjson);
      expect((await cli(['submit', folder, '--home', home]).done).code).toBe(0);
      const more = await runJson(['local', 'run', '--home', home, '--receipts', '0', '--no-queries']);
      const wantMore = expectedIds(generateReceipts(n + 1, 1));
      expect(more.receipts).toEqual({ total: n + 1, succeeded: n + 1, failed: 0 });
      for (const c of COLLECTIONS) expect(more.vectors[c].snapshot).toBe(wantMore[c].size);
    },
    TIMEOUT,
  );

  it(
    'killed with SIGKILL mid-way, the same command resumes and completes with exact counts',
    async () => {
      const home = tempHome();
      const n = 16;
      const args = [
        'local',
        'run',
        '--home',
        home,
        '--receipts',
        String(n),
        '--batch-size',
        '2',
        '--concurrency',
        '2',
        '--no-queries',
      ];
      const first = cli(args);
      // Wait until the pipeline is really mid-way: some jobs finished, others not.
      const jobsDb = join(home, 'state', 'jobs.sqlite');
      let orphans: number[] = [];
      for (let i = 0; ; i++) {
        if (i > 1200)
          throw new Error(`no progress: ${(await Promise.race([first.done, sleep(1, undefined)]))?.stderr}`);
        await sleep(100);
        if (!existsSync(jobsDb)) continue;
        const jobs = LocalJobTable.open(jobsDb);
        const c = jobs.counts();
        jobs.db.close();
        if (c.Succeeded >= 2 && c.Succeeded < n) {
          orphans = readdirSync(join(home, 'pids')).map((f) =>
            Number(readFileSync(join(home, 'pids', f), 'utf8').split('\n')[0]),
          );
          break;
        }
      }
      process.kill(first.pid, 'SIGKILL');
      const killed = await first.done;
      expect(killed.signal).toBe('SIGKILL');
      expect(orphans.length).toBeGreaterThan(0); // workers/compactor were running when the runner died

      const summary = await runJson(args);
      const want = expectedIds(generateReceipts(n, 1));
      expect(summary.complete).toBe(true);
      expect(summary.receipts).toEqual({ total: n, succeeded: n, failed: 0 });
      const live = await liveIds(home);
      for (const c of COLLECTIONS) {
        expect(summary.vectors[c]).toEqual({ snapshot: want[c].size, expected: want[c].size });
        expect(live[c].ids).toEqual(want[c]);
      }
      // The orphans of the killed run were stopped, and nothing of either run is left.
      for (const pid of orphans) expect(() => process.kill(pid, 0)).toThrow();
      expect(readdirSync(join(home, 'pids'))).toEqual([]);
    },
    TIMEOUT,
  );

  it(
    'bad receipts in the input folder are reported with reasons and do not stop the rest',
    async () => {
      const home = tempHome();
      const input = join(home, 'input');
      const good = generateReceipts(3, 5);
      good.forEach((r, i) => {
        mkdirSync(join(input, `good-${i}`), { recursive: true });
        writeFileSync(join(input, `good-${i}`, 'lines.ndjson'), r.linesNdjson);
        writeFileSync(join(input, `good-${i}`, 'words.ndjson'), r.wordsNdjson);
      });
      const defects = ['malformed-json', 'missing-field', 'unknown-line'] as const;
      const bad = defects.map((d, i) => generateReceipt(900 + i, { defect: d }));
      bad.forEach((r, i) => {
        writeFileSync(join(input, `${defects[i]}.lines.ndjson`), r.linesNdjson);
        writeFileSync(join(input, `${defects[i]}.words.ndjson`), r.wordsNdjson);
      });
      writeFileSync(join(input, 'orphan.lines.ndjson'), good[0]!.linesNdjson);
      writeFileSync(join(input, 'not-a-uuid.lines.ndjson'), '{"image_id":"nope","receipt_id":1}\n');
      writeFileSync(join(input, 'not-a-uuid.words.ndjson'), '');

      const summary = await runJson(['local', 'run', '--home', home, '--input', input, '--no-queries']);
      expect(summary.complete).toBe(true);
      // 6 jobs, plus the 2 receipts rejected while the folder was read (orphan, not-a-uuid).
      expect(summary.receipts).toEqual({ total: 8, succeeded: 3, failed: 5 });
      const byName = Object.fromEntries(summary.failures.map((f) => [f.source, `${f.reason}: ${f.message}`]));
      bad.forEach((r, i) => {
        const d = r.defect!;
        const msg = byName[defects[i]!];
        expect(msg, defects[i]).toMatch(/^BadInput: /);
        expect(msg).toContain(d.file);
        if (d.row !== undefined) expect(msg).toContain(`row ${d.row}`);
        if (d.field !== undefined) expect(msg).toContain(`field ${d.field}`);
      });
      expect(byName.orphan).toBe('BadInput: words.ndjson is missing');
      expect(byName['not-a-uuid']).toMatch(/field image_id: must be a UUID/);
      const want = expectedIds(good);
      const live = await liveIds(home);
      for (const c of COLLECTIONS) {
        expect(summary.vectors[c].snapshot).toBe(want[c].size);
        expect(live[c].ids).toEqual(want[c]);
      }
    },
    TIMEOUT,
  );
});
