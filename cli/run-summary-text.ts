import { safeField } from './safe-text.js';
import type { RunSummary } from '../local/run.js';

const EMBEDDER_TEXT: Record<RunSummary['embedder']['kind'], string> = {
  sentence: 'sentence embeddings, in-process',
  lexical: 'deterministic lexical, not semantic',
  openai: 'OpenAI-compatible API',
};

const secs = (ms: number | undefined) => (ms === undefined ? '-' : `${(ms / 1000).toFixed(2)} s`);

/**
 * The stages as a user thinks of the pipeline, in its order; `--json` keeps the internal names (the keys). A stage
 * not listed here is shown under its internal name, after these.
 */
export const STAGE_LABELS: Record<string, string> = {
  childBuild: 'preparing the worker and compactor code',
  submit: 'reading and uploading receipts',
  ingest: 'turning queued receipts into jobs',
  workers: 'embedding receipts (worker processes)',
  embedding: '  of which waiting for embeddings',
  stream: 'handing results to the compactor',
  chromaWrites: 'writing vectors into the index',
  publish: 'publishing snapshot versions',
  compactor: 'compactor running',
  compactWait: 'waiting for the index to catch up',
  summary: 'counting and querying the result',
};

/** The human-readable summary of `embedctl local run`, control characters escaped (cli/safe-text.ts). */
export function formatSummary(s: RunSummary): string {
  const out: string[] = [];
  const ok = s.complete ? 'complete' : 'INCOMPLETE (timed out waiting for compaction)';
  out.push(`Local run ${ok} in ${secs(s.totalMs)} — home ${s.home}`);
  out.push(
    `Embedder: ${s.embedder.model} (${s.embedder.dimensions} dims, ${EMBEDDER_TEXT[s.embedder.kind]})`,
  );
  out.push('');
  const skipped = s.skipped ?? { done: 0, queued: 0 };
  out.push(
    `Receipts: ${s.receipts.total} (${s.receipts.succeeded} embedded, ${s.receipts.failed} failed; ` +
      `${s.submitted} new, ${skipped.done} already done${skipped.queued ? `, ${skipped.queued} already queued` : ''})`,
  );
  for (const c of ['lines', 'words'] as const) {
    const v = s.vectors[c];
    const check = v.snapshot === v.expected ? 'matches the job results' : `job results say ${v.expected}`;
    out.push(
      `Vectors in ${c.padEnd(5)}: ${String(v.snapshot).padStart(6)} in snapshot ${s.snapshot[c] ?? '(none)'} — ${check}`,
    );
  }
  const names = Object.entries(s.merchants.byName).sort((a, b) => b[1] - a[1]);
  out.push(
    `Merchants resolved: ${s.merchants.resolved} of ${s.merchants.resolved + s.merchants.unresolved}` +
      (names.length ? ` (${names.map(([n, k]) => `${n} ×${k}`).join(', ')})` : ''),
  );
  out.push('');
  if (s.failures.length || s.deadLetters.length) {
    out.push(`Failures (${s.failures.length + s.deadLetters.length}):`);
    for (const f of s.failures) out.push(`  ✗ ${f.source}: ${f.reason}: ${f.message}`);
    for (const d of s.deadLetters) out.push(`  ✗ dead letter on ${d.queue}: ${d.reason}`);
  } else {
    out.push('Failures: none');
  }
  if (s.stalled) {
    out.push('');
    out.push(`Still outstanding after --timeout (${s.stalled.jobs.length} shown):`);
    for (const j of s.stalled.jobs) out.push(`  … ${j}`);
    out.push(
      `  queues: ${Object.entries(s.stalled.queues)
        .map(([k, v]) => `${k} ${v.visible} visible/${v.inFlight} in flight`)
        .join(', ')}`,
    );
    out.push('  last compactor log lines:');
    for (const l of s.stalled.compactorLog) out.push(`    ${l}`);
    out.push('  Run the same command again to resume; `embedctl status` shows every job.');
  }
  out.push('');
  if (s.compactor?.restarts)
    out.push(
      `Compactor: restarted ${s.compactor.restarts} time(s); last exit: ${s.compactor.lastExit ?? '?'}`,
    );
  out.push('Time per stage (stages overlap: workers, stream and compactor run together):');
  const order = Object.keys(STAGE_LABELS);
  const stages = Object.entries(s.stages).sort(
    ([a], [b]) => (order.indexOf(a) + 1 || order.length + 1) - (order.indexOf(b) + 1 || order.length + 1),
  );
  const width = Math.max(12, ...stages.map(([name]) => (STAGE_LABELS[name] ?? name).length));
  for (const [name, t] of stages) {
    out.push(
      `  ${(STAGE_LABELS[name] ?? name).padEnd(width)} ${secs(t.wallMs).padStart(9)}${t.busyMs !== undefined ? `   (busy ${secs(t.busyMs)})` : ''}`,
    );
  }
  out.push(`  worker processes: ${s.workers.launched} launched, ${s.workers.failed} did not exit cleanly`);
  out.push(
    `  embedding or Chroma writes in progress: ${secs(s.overhead.workMs)}; overhead (anything else): ${Math.round(s.overhead.share * 100)}% of the run`,
  );
  const b = s.overhead.breakdown;
  if (b)
    out.push(
      `  overhead: ${secs(b.beforeFirstMs)} before the first, ${secs(b.afterLastMs)} after the last; ` +
        `${secs(b.gapsMs)} in between (${secs(b.gapsPublishingMs)} of it publishing)`,
    );
  if (s.queries.length) {
    out.push('');
    for (const q of s.queries) {
      out.push(`Query: ${q.title}`);
      for (const h of q.hits) {
        out.push(
          `  ${h.similarity.toFixed(3)}  ${JSON.stringify(h.text ?? '')}${h.merchant ? `  [${h.merchant}]` : ''}  ${h.id}`,
        );
      }
    }
  }
  out.push('');
  // Names, messages and log lines come from the input and the children: shown, never obeyed by the terminal.
  return out.map(safeField).join('\n');
}
