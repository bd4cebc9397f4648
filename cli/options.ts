import { InvalidArgumentError, Option, type Command } from 'commander';
import { COLLECTIONS, type Collection } from '../core/contracts/ids.js';
import { ENV, processEnv } from '../core/config/env.js';
import { ConfigError } from '../core/errors.js';
import { EMBEDDER_KINDS } from '../local/embedder.js';
import { DEFAULT_HOME } from '../local/home.js';

/**
 * The options and argument parsers the user commands share: every number flag (counts, and durations in whole
 * seconds) goes through intArg, so a bad value is a usage error naming the flag and its range (exit 2, cli/usage.ts).
 */

/** A parser for an integer option value ≥ `min` (and ≤ `max`): "0", "-2", "abc", "1.5" and "1e3" are refused. */
export function intArg(min: number, max?: number): (value: string) => number {
  const range = max === undefined ? `an integer ≥ ${min}` : `an integer from ${min} to ${max}`;
  return (value: string) => {
    const n = /^[+-]?\d+$/.test(value.trim()) ? Number(value) : NaN;
    if (!Number.isSafeInteger(n) || n < min || (max !== undefined && n > max))
      throw new InvalidArgumentError(`Expected ${range}.`);
    return n;
  };
}

/** A parser for a duration as kubectl writes it (`90s`, `5m`, `1h`; a bare number is seconds), in milliseconds. */
export function durationArg(value: string): number {
  const m = /^(\d+)(s|m|h)?$/.exec(value.trim());
  if (!m) throw new InvalidArgumentError('Expected a duration such as 60s, 5m or 1h.');
  return Number(m[1]) * { s: 1000, m: 60_000, h: 3_600_000 }[(m[2] ?? 's') as 's' | 'm' | 'h'];
}

/** A parser for an argument that must hold something besides spaces. */
export function nonEmptyArg(value: string): string {
  if (value.trim() === '') throw new InvalidArgumentError('It must not be empty.');
  return value;
}

/** A `<collection>` argument: lines or words. */
export function collectionArg(value: string): Collection {
  if (!COLLECTIONS.includes(value as Collection))
    throw new ConfigError(`collection must be lines or words, not "${value}"`);
  return value as Collection;
}

export const homeOption = () =>
  new Option('--home <dir>', 'local state directory (queues, ledger, objects, snapshots)').default(
    processEnv()[ENV.EMBEDCTL_HOME] ?? DEFAULT_HOME,
  );

/** Local mode's embedder (local/embedder.ts chooseEmbedder). */
export const embedderOption = () =>
  new Option(
    '--embedder <kind>',
    `sentence (all-MiniLM-L6-v2 in-process), lexical (hashed words, for tests) or openai (OPENAI_API_KEY); default: $${ENV.EMBEDCTL_EMBEDDER}, else what the home was embedded with, else openai when OPENAI_API_KEY is set, else sentence`,
  ).choices(EMBEDDER_KINDS);

export const jsonOption = () => new Option('--json', 'machine-readable output');

export const chromaRootOption = () =>
  new Option('--chroma-root <dir>', 'root of the snapshot volume (cloud; default $CHROMA_ROOT)');

export const kubeconfigOption = () =>
  new Option('--kubeconfig <path>', 'kubeconfig (cloud; default $KUBECONFIG, ~/.kube/config or in-cluster)');

/** The flags of a command that reads the snapshot volume: the home's, or (--cloud) the deployed one. */
export interface VolumeFlags {
  home: string;
  cloud?: boolean;
  chromaRoot?: string;
}

/**
 * The flags of a command that reads the pipeline's resources (get, describe, wait): the home, or (--cloud) the
 * namespace's EmbeddingJobs and the deployed ledger, volume and queues (cli/resources/sources.ts).
 */
export function withResourceOptions(cmd: Command): Command {
  return cmd
    .addOption(homeOption())
    .option('--cloud', 'read the deployed pipeline (Kubernetes API, DynamoDB, the volume or S3, SQS)')
    .option('-n, --namespace <ns>', 'namespace of the EmbeddingJobs (cloud; default $NAMESPACE or "default")')
    .addOption(kubeconfigOption())
    .addOption(chromaRootOption());
}
