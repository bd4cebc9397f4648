// How the CLI fails when it is used wrongly (issue 12, items 6, 8 and 9): exit 2 with one line naming the flag, no
// stack trace, no home created by a command that only reads one, JSON errors with --json, a closed stdout pipe is not
// a crash, and bytes that are not UTF-8 are named with their file, row and field. Each case is a real `embedctl`
// process; none of them runs the pipeline.
import { spawn } from 'node:child_process';
import { existsSync, mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { openLocal } from '../../../local/home.js';
import { generateReceipt, generateReceipts } from '../../../core/sample/index.js';
import { artifactKeys } from '../../../core/sample/generator.js';
import { cli, homeFactory, ROOT, type CliResult } from './cli.js';

const { tempHome, removeHomes } = homeFactory('local-usage-');
afterAll(removeHomes);

/** The usage error contract: exit 2, exactly one line on stderr that contains `mentions`, no stack trace. */
function expectUsageError(r: CliResult, ...mentions: (string | RegExp)[]): void {
  const context = `stdout: ${r.stdout}\nstderr: ${r.stderr}`;
  expect(r.code, context).toBe(2);
  const lines = r.stderr.trim().split('\n');
  expect(lines, context).toHaveLength(1);
  expect(r.stderr, context).not.toMatch(/^\s+at /m);
  for (const m of mentions) expect(lines[0], context).toMatch(m);
}

/** Runs the cases a few at a time (each one is a node process on a 2-core machine). */
async function all<T>(items: T[], fn: (item: T) => Promise<void>, width = 3): Promise<void> {
  let next = 0;
  await Promise.all(
    Array.from({ length: width }, async () => {
      for (let i = next++; i < items.length; i = next++) await fn(items[i]!);
    }),
  );
}

describe('bad usage exits 2 with one line naming the flag and its range (item 8)', () => {
  it('bad numbers, unknown options and commands, an empty query; no home is created', async () => {
    const cases: { args: string[]; mentions: (string | RegExp)[] }[] = [
      ...['0', '-2', 'abc', '1.5'].map((v) => ({
        args: ['local', 'run', '--concurrency', v],
        mentions: ['--concurrency', /integer ≥ 1/, v],
      })),
      { args: ['local', 'run', '--batch-size', '0'], mentions: ['--batch-size', /integer ≥ 1/] },
      { args: ['local', 'run', '--receipts', '-5'], mentions: ['--receipts', /integer ≥ 0/] },
      { args: ['local', 'run', '--max-attempts', '0'], mentions: ['--max-attempts', /integer ≥ 1/] },
      { args: ['local', 'run', '--timeout', '0'], mentions: ['--timeout', /integer ≥ 1/] },
      { args: ['local', 'run', '--seed', 'x'], mentions: ['--seed', /integer ≥ 0/] },
      { args: ['local', 'run', '--bogus'], mentions: ['--bogus'] },
      { args: ['local', 'frobnicate'], mentions: ['frobnicate'] },
      { args: ['frobnicate'], mentions: ['frobnicate'] },
      { args: ['query', 'TOTAL', '-n', 'abc'], mentions: ['--results', /integer from 1 to 1000/] },
      { args: ['query', 'TOTAL', '-n', '-3'], mentions: ['--results', /integer from 1 to 1000/] },
      { args: ['query', 'TOTAL', '-c', 'receipts'], mentions: ['--collection', /lines, words/] },
      { args: ['query', ''], mentions: ['text-or-id', /empty/] },
      { args: ['query', '   '], mentions: ['text-or-id', /empty/] },
      { args: ['status', '--bogus'], mentions: ['--bogus'] },
      { args: ['get', 'pods'], mentions: ['kind', /jobs, runs, snapshots or deadletters/] },
      { args: ['get', 'jobs', '-o', 'xml'], mentions: ['--output', /table, wide, json, yaml/] },
      { args: ['get', 'runs', '--watch'], mentions: ['--watch', /jobs only/] },
      { args: ['get', 'jobs', '--watch', '--interval', 'soon'], mentions: ['--interval', /duration/] },
      { args: ['describe', 'deadletters', 'x'], mentions: ['describe', /job, run or snapshot/] },
      { args: ['describe', 'job'], mentions: [/missing required argument/] },
      { args: ['wait', '--for', 'condition=Ready'], mentions: ['--for', /condition=Compacted/] },
      { args: ['wait', '--for', 'condition=Compacted', '--timeout', '1d'], mentions: ['--timeout'] },
      { args: ['get', 'jobs'], mentions: ['--home', /does not exist/] },
    ];
    await all(cases, async ({ args, mentions }) => {
      const home = join(tempHome(), 'home');
      const r = await cli([...args, '--home', home]).done;
      expectUsageError(r, ...mentions);
      expect(existsSync(home), `${args.join(' ')} created its home`).toBe(false);
    });
  });

  it('--input that does not exist, and --input with --receipts: exit 2 and no home', async () => {
    const base = tempHome();
    const input = join(base, 'in');
    mkdirSync(input);
    const cases = [
      { args: ['--input', join(base, 'nonexistent')], mentions: ['--input', /does not exist/] },
      { args: ['--input', input, '--receipts', '5'], mentions: ['--receipts', '--input'] },
    ];
    await all(cases, async ({ args, mentions }) => {
      const home = join(tempHome(), 'home');
      const r = await cli(['local', 'run', '--home', home, ...args]).done;
      expectUsageError(r, ...mentions);
      expect(existsSync(home)).toBe(false);
    });
  });

  it('status, query, snapshot list and compact do not create a missing --home', async () => {
    const cases = [['status'], ['status', '--json'], ['query', 'TOTAL'], ['snapshot', 'list'], ['compact']];
    await all(cases, async (args) => {
      const home = join(tempHome(), 'missing');
      const r = await cli([...args, '--home', home]).done;
      if (args.includes('--json')) {
        expect(r.code).toBe(2);
        expect(JSON.parse(r.stderr)).toEqual({
          error: { reason: 'BadUsage', message: expect.stringContaining('does not exist') },
        });
      } else expectUsageError(r, /does not exist/, home);
      expect(existsSync(home), `${args.join(' ')} created ${home}`).toBe(false);
    });
  });

  it('submit of something that is not a receipt folder fails', async () => {
    const base = tempHome();
    const empty = join(base, 'empty');
    mkdirSync(empty);
    const notes = join(base, 'notes.txt');
    writeFileSync(notes, 'not a receipt\n');
    const cases = [[join(ROOT, 'README.md')], [notes], [empty]];
    await all(cases, async (paths) => {
      const home = join(tempHome(), 'home');
      const r = await cli(['submit', ...paths, '--home', home]).done;
      expectUsageError(r, /receipt/);
      expect(existsSync(home)).toBe(false);
    });
  });
});

describe('--json and pipes (item 9)', () => {
  it('status --json | head exits quietly; errors under --json are JSON on stderr', async () => {
    const home = tempHome();
    // Enough jobs that the JSON is far larger than a pipe's buffer.
    const ports = openLocal(home);
    for (const r of generateReceipts(300, 7)) {
      const { linesKey, wordsKey } = artifactKeys(r.imageId, r.receiptId);
      ports.jobs.createFromMessage({
        image_id: r.imageId,
        receipt_id: r.receiptId,
        artifacts_bucket: 'receipts',
        lines_key: linesKey,
        words_key: wordsKey,
      });
    }
    ports.close();
    const piped = await new Promise<CliResult>((resolve) => {
      const child = spawn(
        'bash',
        [
          '-o',
          'pipefail',
          '-c',
          `"${process.execPath}" --import tsx cli/main.ts status --json --home "${home}" | head -n 2`,
        ],
        { cwd: ROOT, env: { ...process.env, LOG_LEVEL: 'warn' }, stdio: ['ignore', 'pipe', 'pipe'] },
      );
      let stdout = '';
      let stderr = '';
      child.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
      child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
      const timer = setTimeout(() => child.kill('SIGKILL'), 60_000);
      child.once('close', (code, signal) => {
        clearTimeout(timer);
        resolve({ code, signal, stdout, stderr });
      });
    });
    expect(piped.stdout).toBe('{\n  "counts": {\n');
    expect(piped.stderr).toBe('');
    expect(piped.code).toBe(0);

    const bad = await cli(['local', 'run', '--home', join(home, 'x'), '--json', '--concurrency', '0']).done;
    expect(bad.code).toBe(2);
    expect(JSON.parse(bad.stderr)).toEqual({
      error: { reason: 'BadUsage', message: expect.stringMatching(/--concurrency.*integer ≥ 1/) },
    });
    const missing = await cli(['query', 'x', '--json', '--home', home, '-c', 'lines']).done;
    expect(missing.code).toBe(2);
    expect(JSON.parse(missing.stderr)).toEqual({
      error: { reason: 'InvalidConfig', message: expect.stringContaining('no published lines snapshot') },
    });
  });
});

describe('bytes that are not UTF-8 (item 6)', () => {
  it('are rejected with file, row and field when the folder is read; a BOM is shown as U+FEFF', async () => {
    const home = tempHome();
    const input = join(home, 'input');
    const good = generateReceipt(4100);
    const latin1 = generateReceipt(4101);
    const bom = generateReceipt(4102);
    for (const [name, r] of [
      ['good', good],
      ['latin1', latin1],
      ['bom', bom],
    ] as const) {
      mkdirSync(join(input, name), { recursive: true });
      writeFileSync(join(input, name, 'lines.ndjson'), r.linesNdjson);
      writeFileSync(join(input, name, 'words.ndjson'), r.wordsNdjson);
    }
    // Row 3 of latin1's words.ndjson: "O\xff\xfeks" in its text, the issue's example.
    const rows = latin1.wordsNdjson.split('\n');
    const row3 = JSON.parse(rows[2]!) as { text: string };
    const [before, after] = JSON.stringify({ ...row3, text: 'O@@ks' }).split('@@') as [string, string];
    const bytes = Buffer.concat([
      Buffer.from(rows.slice(0, 2).join('\n') + '\n' + before),
      Buffer.from([0xff, 0xfe]),
      Buffer.from(after + '\n' + rows.slice(3).join('\n')),
    ]);
    writeFileSync(join(input, 'latin1', 'words.ndjson'), bytes);
    writeFileSync(join(input, 'bom', 'lines.ndjson'), `\ufeff${bom.linesNdjson}`);

    const r = await cli(['submit', input, '--home', home, '--json']).done;
    expect(r.code, r.stderr).toBe(0);
    const out = JSON.parse(r.stdout) as {
      submitted: { image_id: string }[];
      rejected: { source: string; reason: string }[];
    };
    expect(out.submitted.map((m) => m.image_id)).toEqual([good.imageId]);
    const reasons = Object.fromEntries(out.rejected.map((x) => [x.source, x.reason]));
    expect(reasons.latin1).toMatch(/words\.ndjson, row 3, field text: not valid UTF-8/);
    expect(reasons.latin1).toContain('0xFF');
    expect(reasons.bom).toMatch(/lines\.ndjson, row 1: .*U\+FEFF/);
    expect(reasons.bom).not.toContain('\ufeff');
  });
});
