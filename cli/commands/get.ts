import type { Command } from 'commander';
import { NotFoundError, UsageError } from '../../core/errors.js';
import { durationArg, withResourceOptions } from '../options.js';
import { say } from '../print.js';
import { KINDS, kindArg, type Kind, type KindName } from '../resources/kinds.js';
import { outputOption, render, tableCells, type Output } from '../resources/output.js';
import { openResources, type ResourceFlags, type Resources } from '../resources/sources.js';
import { formatTable } from '../print.js';
import { guarded } from '../usage.js';

interface GetFlags extends ResourceFlags {
  output: Output;
  watch?: boolean;
  interval: number;
}

/**
 * `embedctl get <jobs|runs|snapshots|deadletters> [name]`: like `kubectl get`, it exits 0 whatever the objects
 * say (a Failed job is something to show, not an error); `embedctl wait` is the verb that fails for scripts.
 */
export function register(program: Command): void {
  withResourceOptions(
    program
      .command('get')
      .description('list jobs, runs, snapshots or dead letters (like kubectl get; exits 0 when jobs failed)')
      .argument('<kind>', 'jobs (ej), runs, snapshots or deadletters (dlq)', kindArg)
      .argument('[name]', 'only this object'),
  )
    .addOption(outputOption())
    .option('-w, --watch', 'jobs: after the list, print each job again whenever it changes (until Ctrl-C)')
    .option('--interval <duration>', 'how often --watch polls', durationArg, 2000)
    .action((kind: KindName, name: string | undefined, f: GetFlags) => guarded(() => get(kind, name, f)));
}

async function get(kindName: KindName, name: string | undefined, f: GetFlags): Promise<number> {
  if (f.watch && kindName !== 'jobs') throw new UsageError('--watch applies to jobs only');
  const kind = KINDS[kindName];
  const res = openResources(f);
  try {
    const items = await listNamed(kind, res, name);
    write(
      render(items, f.output, (i) => kind.row(i, Date.now()), { empty: kind.empty, single: !!name }),
      f,
    );
    if (f.watch) await watch(kind, res, name, f, items);
    return 0;
  } finally {
    res.close();
  }
}

/** Every object of the kind, or the one named (NotFound, exit 1, when it does not exist). */
export async function listNamed(kind: Kind, res: Resources, name: string | undefined): Promise<unknown[]> {
  const all = await kind.list(res);
  if (name === undefined) return all;
  const one = all.filter((i) => kind.name(i) === name);
  if (one.length === 0) throw new NotFoundError(kind.singular, name);
  return one;
}

/**
 * kubectl get -w by polling (the same read in both modes: the SQLite table has no watch): every `interval`, the
 * objects that changed since the last look are printed again, rows without a header or one document each.
 */
async function watch(
  kind: Kind,
  res: Resources,
  name: string | undefined,
  f: GetFlags,
  first: unknown[],
): Promise<never> {
  const seen = new Map(first.map((i) => [kind.name(i), JSON.stringify(i)]));
  // An empty first listing printed no header ("No jobs found."): the first change prints it.
  let header = first.length > 0;
  for (;;) {
    await new Promise((r) => setTimeout(r, f.interval));
    const changed = (await kind.list(res)).filter((i) => {
      if (name !== undefined && kind.name(i) !== name) return false;
      const text = JSON.stringify(i);
      if (seen.get(kind.name(i)) === text) return false;
      seen.set(kind.name(i), text);
      return true;
    });
    if (changed.length === 0) continue;
    if (f.output === 'json' || f.output === 'yaml')
      for (const i of changed)
        write(
          render([i], f.output, (x) => kind.row(x, Date.now()), { empty: '', single: true }),
          f,
        );
    else {
      // Laid out with the first listing's rows, so the new lines stay under its header (as kubectl's do).
      const cells = (items: unknown[]) => items.map((i) => tableCells(kind.row(i, Date.now()), f.output));
      const lines = formatTable([...cells(first), ...cells(changed)]).split('\n');
      write(lines.slice(header ? 1 + first.length : 0).join('\n'), f);
      header = true;
    }
  }
}

/** Tables go through say (control characters escaped); JSON and YAML are written as they are. */
export function write(text: string, f: { output: Output }): void {
  if (f.output === 'json' || f.output === 'yaml') process.stdout.write(text);
  else say(text);
}
