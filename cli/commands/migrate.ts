import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Command } from 'commander';
import { awsSettingsFromEnv } from '../../core/aws/config.js';
import { S3Store } from '../../core/aws/s3-store.js';
import { ENV, processEnv } from '../../core/config/env.js';
import { COLLECTIONS, type Collection } from '../../core/contracts/ids.js';
import { ConfigError, UsageError } from '../../core/errors.js';
import { parseSourceUri, sourceUri, type LambdaSource } from '../../core/migrate/lambda-snapshot.js';
import { planCollection, runPlan, type MigrateDeps, type Plan } from '../../core/migrate/migrate.js';
import { fenceVolume } from '../../core/snapshot/fence.js';
import { DEFAULT_RESTORE_LIMITS } from '../../core/snapshot/s3-snapshot.js';
import { crashHooksFromEnv } from '../../core/testing/crash-points.js';
import { collectionArg, intArg, jsonOption } from '../options.js';
import { printJson, say } from '../print.js';
import { snapshotTarget } from '../snapshot-target.js';
import { guarded } from '../usage.js';
import {
  withWriterLease,
  withWriterOptions,
  writerLease,
  type WriterFlags,
} from './snapshot/writer-lease.js';

type MigrateFlags = WriterFlags & {
  from: string;
  dryRun?: boolean;
  replace?: boolean;
  json?: boolean;
  maxArchiveBytes?: number;
};

export function register(program: Command): void {
  withWriterOptions(
    program
      .command('migrate')
      .description(
        "take over the original Lambda system's snapshots: read its S3 pointer, verify, install each collection as a version of this project (docs/migrate.md)",
      )
      .argument('[collections...]', 'lines and/or words (default: both)')
      .requiredOption(
        '--from <s3uri>',
        "the original's vectors bucket, s3://<bucket>[/<prefix>] (AWS_* environment)",
      )
      .option('--dry-run', 'say what would be done; write nothing')
      .option('--replace', "replace a live version this project's compactor published (refused otherwise)"),
    { help: "how long to wait for the compactor's lease", seconds: 5 },
  )
    .option(
      '--max-archive-bytes <n>',
      `refuse a snapshot larger than this, compressed or unpacked (default ${DEFAULT_RESTORE_LIMITS.maxArchiveBytes})`,
      intArg(1),
    )
    .addOption(jsonOption())
    .action((collections: string[], f: MigrateFlags) => guarded(() => migrate(collections, f)));
}

async function migrate(args: string[], f: MigrateFlags): Promise<number> {
  const collections: Collection[] = args.length ? [...new Set(args.map(collectionArg))] : [...COLLECTIONS];
  const { bucket, prefix } = parseSourceUri(f.from);
  const source: LambdaSource = { store: new S3Store(awsSettingsFromEnv()), bucket, prefix };
  const { root, mirror, close } = snapshotTarget(f);
  const scratch = await mkdtemp(join(tmpdir(), 'embedctl-migrate-'));
  try {
    if (!root) throw new ConfigError(`no volume: set ${ENV.CHROMA_ROOT} or --chroma-root`);
    // Our mirror in the original's own keys would overwrite its pointer, the way back (docs/migrate.md, roll back).
    if (f.cloud && mirror && mirror.bucket === bucket && prefix === '')
      throw new UsageError(
        `--from ${sourceUri(source)} is ${ENV.VECTORS_BUCKET} itself: migrate from another bucket or a prefix, so the original's pointer stays untouched`,
      );
    const lines: string[] = [];
    const log = f.json ? undefined : (l: string) => process.stderr.write(`${l}\n`);
    const limits = f.maxArchiveBytes
      ? { ...DEFAULT_RESTORE_LIMITS, maxArchiveBytes: f.maxArchiveBytes, maxBytes: f.maxArchiveBytes }
      : DEFAULT_RESTORE_LIMITS;
    const base = {
      source,
      root,
      mirror,
      scratch,
      limits,
      replace: !!f.replace,
      hooks: crashHooksFromEnv(processEnv()),
    };
    if (f.dryRun) {
      const plans: Plan[] = [];
      for (const c of collections) plans.push(await planCollection(base, c));
      if (f.json) printJson(plans.map(describePlanJson));
      else say(plans.map((p) => `${describePlan(p)}\n`).join(''));
      return 0;
    }
    const backend = await writerLease(f);
    const results = await withWriterLease(backend, 'migrate', f.leaseWait * 1000, async (lease) => {
      const deps: MigrateDeps = {
        ...base,
        lease,
        ...(log ? { log } : {}),
        fence: (c) => fenceVolume(root, lease, { collection: c, command: 'migrate' }),
      };
      const out = [];
      for (const c of collections) {
        const result = await runPlan(deps, await planCollection(deps, c));
        out.push(result);
        lines.push(
          result.action === 'none'
            ? `${c}: nothing to migrate: ${result.reason}`
            : `${c}: ${result.action === 'migrate' ? 'migrated' : result.action === 'switch' ? 'resumed' : 'already migrated'} ${result.count ?? '?'} records from ${sourceUri(source)} version ${result.sourceVersion} → CURRENT ${result.version}${result.mirrored ? ', uploaded to the mirror' : ''}`,
        );
      }
      return out;
    });
    if (f.json) printJson(results);
    else say(lines.map((l) => `${l}\n`).join(''));
    return 0;
  } finally {
    await rm(scratch, { recursive: true, force: true });
    close();
  }
}

function describePlan(p: Plan): string {
  const c = p.collection;
  switch (p.action) {
    case 'none':
      return `${c}: nothing to migrate: ${p.reason}`;
    case 'mirror-only':
      return `${c}: already migrated from version ${p.snapshot.version} (CURRENT ${p.version}); would only check the mirror`;
    case 'switch':
      return `${c}: version ${p.version} holds the migrated ${p.snapshot.version}; would make it CURRENT`;
    case 'migrate':
      return `${c}: would migrate ${p.snapshot.layout} snapshot ${p.snapshot.version} (${p.snapshot.bytes} bytes, ${p.snapshot.keys.length} object(s)) into a new version${p.current ? `, replacing CURRENT ${p.current}` : ''}`;
  }
}

function describePlanJson(p: Plan) {
  return p.action === 'none'
    ? p
    : {
        collection: p.collection,
        action: p.action,
        sourceVersion: p.snapshot.version,
        layout: p.snapshot.layout,
        bytes: p.snapshot.bytes,
        ...(p.action === 'migrate' ? { current: p.current ?? null } : { version: p.version }),
      };
}
