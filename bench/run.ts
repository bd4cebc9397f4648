import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { startEnvironment } from '../test/harness/environment.js';
import type { TestEnv } from '../test/harness/env.js';

/**
 * `npm run bench`: starts the same real environment as the tests, runs every benchmark against it, prints one table
 * and writes every figure to bench/results.json as {"name": {"value": n, "unit": "…"}}. Each benchmark reports ratios
 * against a baseline measured in the same run, so figures compare across machines.
 */
export type Figures = Record<string, { value: number; unit: string }>;

interface Bench {
  name: string;
  /** Module path relative to this file and the exported function. */
  module: string;
  fn: string;
  /** Needs the shared environment (local mode brings its own). */
  needsEnv: boolean;
}

const BENCHES: Bench[] = [
  { name: 'controller', module: './controller.js', fn: 'benchController', needsEnv: true },
  { name: 'worker', module: './worker.js', fn: 'benchWorker', needsEnv: true },
  { name: 'compactor', module: './compactor.js', fn: 'benchCompactor', needsEnv: true },
  { name: 'local', module: './local.js', fn: 'benchLocal', needsEnv: false },
  // The per-program images tools/image/build.sh made (`npm run prebench`).
  { name: 'image', module: './images.js', fn: 'benchImages', needsEnv: false },
  // docs/scale.md: N hash shards merging at once (own Chroma servers) against one.
  { name: 'sharded', module: './sharded.js', fn: 'benchSharded', needsEnv: false },
  { name: 'embedder', module: './embedder.js', fn: 'benchEmbedder', needsEnv: false },
  // Brings up its own real node (root; test/harness/node) on the bridge address, beside the loopback servers.
  { name: 'cluster', module: './cluster.js', fn: 'benchCluster', needsEnv: false },
];

async function main(): Promise<void> {
  const only = process.argv.slice(2);
  const selected = BENCHES.filter((b) => only.length === 0 || only.includes(b.name));
  const environment = selected.some((b) => b.needsEnv) ? await startEnvironment() : undefined;
  const figures: Figures = {};
  try {
    for (const b of selected) {
      const mod = (await import(b.module)) as Record<string, (env?: TestEnv) => Promise<Figures>>;
      const run = mod[b.fn];
      if (!run) throw new Error(`${b.module} does not export ${b.fn}`);
      const started = Date.now();
      console.error(`[bench] ${b.name} …`);
      Object.assign(figures, await (b.needsEnv ? run(environment?.env) : run()));
      console.error(`[bench] ${b.name} done in ${((Date.now() - started) / 1000).toFixed(1)} s`);
    }
  } finally {
    await environment?.stop();
  }
  printTable(figures);
  const out = fileURLToPath(new URL('./results.json', import.meta.url));
  writeFileSync(out, JSON.stringify(mergeWithPrevious(out, figures, selected), null, 2) + '\n');
  console.log(`\nwrote ${out}`);
}

/** Running a subset (`npm run bench local`) replaces only that subset's figures in results.json. */
function mergeWithPrevious(path: string, figures: Figures, selected: Bench[]): Figures {
  if (!existsSync(path) || selected.length === BENCHES.length) return figures;
  const previous = JSON.parse(readFileSync(path, 'utf8')) as Figures;
  const rerun = (name: string) => selected.some((b) => name.startsWith(`${b.name}.`));
  return { ...Object.fromEntries(Object.entries(previous).filter(([name]) => !rerun(name))), ...figures };
}

function printTable(figures: Figures): void {
  const rows = Object.entries(figures).map(([name, { value, unit }]) => [name, format(value), unit]);
  const widths = [0, 1, 2].map((i) =>
    Math.max(...rows.map((r) => r[i]!.length), ['figure', 'value', 'unit'][i]!.length),
  );
  const line = (r: string[]) =>
    r.map((c, i) => (i === 1 ? c.padStart(widths[i]!) : c.padEnd(widths[i]!))).join('  ');
  console.log(line(['figure', 'value', 'unit']));
  console.log(widths.map((w) => '-'.repeat(w)).join('  '));
  for (const r of rows) console.log(line(r));
}

function format(v: number): string {
  if (!Number.isFinite(v)) return String(v);
  return Math.abs(v) >= 100 ? v.toFixed(0) : Math.abs(v) >= 1 ? v.toFixed(2) : v.toFixed(3);
}

await main();
