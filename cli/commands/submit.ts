import { copyFile, mkdtemp, rm, stat } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { basename, join } from 'node:path';
import type { Command } from 'commander';
import { ENV } from '../../core/config/env.js';
import { embeddingJobName } from '../../core/contracts/embedding-job.js';
import type { EmbedMessage } from '../../core/contracts/embed-message.js';
import { UsageError } from '../../core/errors.js';
import type { ObjectStore } from '../../core/ports/object-store.js';
import type { Queue } from '../../core/ports/queue.js';
import { ARTIFACTS_BUCKET, openLocal } from '../../local/home.js';
import { readInputFolder, submitReceipts } from '../../local/input.js';
import { cloudSubmitTarget } from '../cloud.js';
import { homeOption, jsonOption } from '../options.js';
import { printJson, say } from '../print.js';
import { guarded } from '../usage.js';

interface SubmitFlags {
  home: string;
  cloud?: boolean;
  bucket?: string;
  json?: boolean;
}

/** `embedctl submit`: receipts into the home's EMBED queue, or (--cloud) into SQS with their files in S3. */
export function register(program: Command): void {
  program
    .command('submit')
    .description(
      'upload NDJSON pairs and send one EMBED message per receipt (a folder, or lines.ndjson words.ndjson)',
    )
    .argument('<paths...>', 'a folder of NDJSON pairs (any depth), or the two files of one receipt')
    .addOption(homeOption())
    .option('--cloud', `send to SQS ${ENV.EMBED_QUEUE_URL} with the files in S3 ${ENV.ARTIFACTS_BUCKET}`)
    .option('--bucket <name>', 'artifacts bucket (cloud: default $ARTIFACTS_BUCKET)')
    .addOption(jsonOption())
    .action((paths: string[], f: SubmitFlags) => guarded(() => submit(paths, f)));
}

async function submit(paths: string[], f: SubmitFlags): Promise<number> {
  const receipts = [];
  const rejected = [];
  const { folders, cleanup } = await asFolders(paths);
  try {
    for (const p of folders) {
      const r = await readInputFolder(p);
      receipts.push(...r.receipts);
      rejected.push(...r.rejected);
    }
  } finally {
    await cleanup();
  }
  if (receipts.length === 0 && rejected.length === 0)
    throw new UsageError(
      `no receipt in ${paths.join(' ')}: a receipt is a folder with lines.ndjson + words.ndjson, or a <name>.lines.ndjson + <name>.words.ndjson pair`,
    );
  const target = submitTarget(f);
  try {
    const { sent, unchanged } = receipts.length
      ? await submitReceipts(target.store, target.queue, target.bucket, receipts, {
          ...(target.known ? { known: target.known } : {}),
        })
      : { sent: [], unchanged: [] };
    if (f.json) printJson({ submitted: sent, unchanged, rejected });
    else {
      say(
        `submitted ${sent.length} receipt(s) to ${target.queue.name}${unchanged.length ? `; ${unchanged.length} unchanged, already submitted` : ''}\n`,
      );
      for (const r of rejected) say(`  ✗ ${r.source}: ${r.reason}\n`);
      if (!f.cloud && sent.length) say(`next: embedctl local run --home ${f.home} --receipts 0\n`);
    }
    return rejected.length && !sent.length ? 1 : 0;
  } finally {
    target.close();
  }
}

function submitTarget(f: SubmitFlags): {
  store: ObjectStore;
  queue: Queue;
  bucket: string;
  known?: (m: EmbedMessage) => boolean;
  close(): void;
} {
  if (f.cloud) return { ...cloudSubmitTarget(f.bucket), close: () => {} };
  const ports = openLocal(f.home);
  return {
    store: ports.store,
    queue: ports.queues.embed,
    bucket: f.bucket ?? ARTIFACTS_BUCKET,
    // A receipt with a job and the same content is not uploaded or queued again.
    known: (m) => ports.jobs.get(embeddingJobName(m)) !== undefined,
    close: ports.close,
  };
}

/** `submit a.lines.ndjson a.words.ndjson` and `submit folder/` both become folders. */
async function asFolders(paths: string[]): Promise<{ folders: string[]; cleanup: () => Promise<void> }> {
  const folders: string[] = [];
  const files: string[] = [];
  for (const p of paths) {
    const s = await stat(p).catch(() => undefined);
    if (!s) throw new UsageError(`${p} does not exist`);
    if (!s.isDirectory() && !p.endsWith('.ndjson'))
      throw new UsageError(
        `${p} is not a receipt folder or an NDJSON file (lines.ndjson, words.ndjson or <name>.lines.ndjson, <name>.words.ndjson)`,
      );
    (s.isDirectory() ? folders : files).push(p);
  }
  if (files.length === 0) return { folders, cleanup: async () => {} };
  const dir = await mkdtemp(join(tmpdir(), 'submit-'));
  for (const f of files) await copyFile(f, join(dir, basename(f)));
  return { folders: [...folders, dir], cleanup: () => rm(dir, { recursive: true, force: true }) };
}
