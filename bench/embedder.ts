/**
 * Local mode's embedders (issue 16, part 5): how fast the sentence embedder (all-MiniLM-L6-v2 int8, ONNX Runtime,
 * one thread per process) embeds the inputs local mode gives it, with the lexical embedder as the same-run baseline.
 *
 * Inputs: those the worker builds (core/receipt/embedding-inputs.ts) from the bench receipts (BENCH_SEED), one call
 * per receipt and collection as the worker makes them: words are `L2 L1 WORD R1 R2` windows, lines three rows.
 *
 * - embedder.sentence_inputs_per_s: two processes at once, each with its own session and half the receipts, as
 *   `local run` runs two worker processes on two cores; inputs over the wall time from both ready to both done.
 * - embedder.sentence_inputs_per_s_1proc: one process alone.
 * - embedder.sentence_cpu_ms_per_input (and per word / line input): CPU time of that one process per input. The
 *   machine is shared: wall-time figures fall with its load, CPU time much less; the load average is recorded.
 * - embedder.lexical_*: the same for the lexical embedder; embedder.sentence_vs_lexical_cpu is the ratio.
 *
 * `npx tsx bench/embedder.ts` runs it alone (BENCH_EMBEDDER_RECEIPTS, default 60); `npm run bench embedder` too.
 */
import { spawn } from 'node:child_process';
import { loadavg } from 'node:os';
import { fileURLToPath } from 'node:url';
import { LocalEmbedder } from '../core/embedding/local-embedder.js';
import type { Embedder } from '../core/ports/embedder.js';
import { buildReceiptItems } from '../core/receipt/embedding-inputs.js';
import { generateReceipts } from '../core/sample/index.js';
import { makeEmbedder, type EmbedderKind } from '../local/embedder.js';
import { BENCH_SEED } from './local.js';
import type { Figures } from './run.js';

interface Pass {
  inputs: number;
  words: number;
  lines: number;
  wallMs: number;
  cpuMs: number;
  wordCpuMs: number;
  lineCpuMs: number;
}

/** The worker's calls for receipts [from, to) of `n`: per receipt, its lines, then its words. */
function calls(n: number, from = 0, to = n): { lines: string[]; words: string[] }[] {
  return generateReceipts(n, BENCH_SEED)
    .slice(from, to)
    .map((r) => {
      const items = buildReceiptItems({
        imageId: r.imageId,
        receiptId: r.receiptId,
        lines: r.lines,
        words: r.words,
      });
      return { lines: items.lines.map((i) => i.input), words: items.words.map((i) => i.input) };
    });
}

const cpuNow = () => {
  const u = process.cpuUsage();
  return (u.user + u.system) / 1000;
};

async function pass(embedder: Embedder, work: { lines: string[]; words: string[] }[]): Promise<Pass> {
  await embedder.embed(work[0]!.words.slice(0, 8)); // warm-up: first inference allocates
  const p: Pass = { inputs: 0, words: 0, lines: 0, wallMs: 0, cpuMs: 0, wordCpuMs: 0, lineCpuMs: 0 };
  const t0 = performance.now();
  const c0 = cpuNow();
  for (const r of work) {
    let c = cpuNow();
    await embedder.embed(r.lines);
    p.lineCpuMs += cpuNow() - c;
    c = cpuNow();
    await embedder.embed(r.words);
    p.wordCpuMs += cpuNow() - c;
    p.lines += r.lines.length;
    p.words += r.words.length;
  }
  p.wallMs = performance.now() - t0;
  p.cpuMs = cpuNow() - c0;
  p.inputs = p.lines + p.words;
  return p;
}

/** A child process: loads the embedder, says `ready`, waits for a line on stdin, embeds its share, prints its Pass. */
async function child(kind: EmbedderKind, n: number, from: number, to: number): Promise<void> {
  const embedder = await makeEmbedder(kind);
  const work = calls(n, from, to);
  await embedder.embed(work[0]!.words.slice(0, 8));
  process.stdout.write('ready\n');
  await new Promise((resolve) => process.stdin.once('data', resolve));
  process.stdout.write(`${JSON.stringify(await pass(embedder, work))}\n`);
  process.stdin.destroy();
}

/** Two children at once, each with half the receipts; inputs over the wall time from both ready to both done. */
async function twoProcesses(kind: EmbedderKind, n: number): Promise<{ inputsPerS: number; cpuMs: number }> {
  const self = fileURLToPath(import.meta.url);
  const halves = [
    [0, Math.floor(n / 2)],
    [Math.floor(n / 2), n],
  ] as const;
  const kids = halves.map(([from, to]) =>
    spawn(process.execPath, ['--import', 'tsx', self, 'child', kind, String(n), String(from), String(to)], {
      stdio: ['pipe', 'pipe', 'inherit'],
    }),
  );
  const lines = kids.map((k) => {
    let buf = '';
    const waiters: ((l: string) => void)[] = [];
    k.stdout.on('data', (d: Buffer) => {
      buf += d.toString();
      let i: number;
      while ((i = buf.indexOf('\n')) >= 0) {
        const line = buf.slice(0, i);
        buf = buf.slice(i + 1);
        waiters.shift()?.(line);
      }
    });
    return () => new Promise<string>((resolve) => waiters.push(resolve));
  });
  const deadline = <T>(p: Promise<T>, what: string) =>
    Promise.race([
      p,
      new Promise<never>((_, reject) =>
        setTimeout(() => reject(new Error(`bench embedder: ${what} took over 15 min`)), 15 * 60_000).unref(),
      ),
    ]);
  try {
    const ready = lines.map((next) => next());
    await deadline(Promise.all(ready), 'loading the children');
    const done = lines.map((next) => next());
    const t0 = performance.now();
    for (const k of kids) k.stdin.write('go\n');
    const passes = (await deadline(Promise.all(done), 'embedding')).map((l) => JSON.parse(l) as Pass);
    const wallMs = performance.now() - t0;
    const inputs = passes.reduce((s, p) => s + p.inputs, 0);
    return { inputsPerS: inputs / (wallMs / 1000), cpuMs: passes.reduce((s, p) => s + p.cpuMs, 0) };
  } finally {
    for (const k of kids) if (k.exitCode === null) k.kill('SIGKILL');
  }
}

export async function benchEmbedder(
  receipts = Number(process.env.BENCH_EMBEDDER_RECEIPTS ?? 60),
): Promise<Figures> {
  const work = calls(receipts);
  const load = loadavg()[0]!;
  const t = performance.now();
  const sentence = await makeEmbedder('sentence');
  const loadMs = performance.now() - t;
  const s = await pass(sentence, work);
  const l = await pass(new LocalEmbedder(), work);
  const two = await twoProcesses('sentence', receipts);
  const perS = (p: Pass) => p.inputs / (p.wallMs / 1000);
  return {
    'embedder.sentence_inputs_per_s': { value: two.inputsPerS, unit: 'inputs/s' },
    'embedder.sentence_inputs_per_s_1proc': { value: perS(s), unit: 'inputs/s' },
    'embedder.sentence_cpu_ms_per_input': { value: s.cpuMs / s.inputs, unit: 'ms' },
    'embedder.sentence_cpu_ms_per_word_input': { value: s.wordCpuMs / s.words, unit: 'ms' },
    'embedder.sentence_cpu_ms_per_line_input': { value: s.lineCpuMs / s.lines, unit: 'ms' },
    'embedder.sentence_load_ms': { value: loadMs, unit: 'ms' },
    'embedder.lexical_inputs_per_s': { value: perS(l), unit: 'inputs/s' },
    'embedder.lexical_cpu_ms_per_input': { value: l.cpuMs / l.inputs, unit: 'ms' },
    'embedder.sentence_vs_lexical_cpu': { value: s.cpuMs / s.inputs / (l.cpuMs / l.inputs), unit: 'x' },
    'embedder.inputs': { value: s.inputs, unit: 'inputs' },
    'embedder.word_share': { value: s.words / s.inputs, unit: 'share' },
    'embedder.load_average': { value: load, unit: 'runnable' },
  };
}

if (process.argv[1] === fileURLToPath(import.meta.url)) {
  const [mode, kind, n, from, to] = process.argv.slice(2);
  if (mode === 'child') await child(kind as EmbedderKind, Number(n), Number(from), Number(to));
  else console.log(JSON.stringify(await benchEmbedder(), null, 2));
}
