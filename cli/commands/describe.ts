import type { Command } from 'commander';
import { UsageError } from '../../core/errors.js';
import { withResourceOptions } from '../options.js';
import { KINDS, kindArg, type KindName } from '../resources/kinds.js';
import { outputOption, render, type Output } from '../resources/output.js';
import { openResources, type ResourceFlags } from '../resources/sources.js';
import { guarded } from '../usage.js';
import { listNamed, write } from './get.js';

/** `embedctl describe <job|run|snapshot> <name>`: one object in full, or (-o json|yaml) the object itself. */
export function register(program: Command): void {
  withResourceOptions(
    program
      .command('describe')
      .description('one job, run or snapshot in full (like kubectl describe)')
      .argument('<kind>', 'job (ej), run or snapshot (a collection: lines or words)', kindArg)
      .argument('<name>', 'its name'),
  )
    .addOption(outputOption())
    .action((kind: KindName, name: string, f: ResourceFlags & { output: Output }) =>
      guarded(() => describe(kind, name, f)),
    );
}

async function describe(kindName: KindName, name: string, f: ResourceFlags & { output: Output }) {
  const kind = KINDS[kindName];
  if (!kind.describe) throw new UsageError(`describe takes job, run or snapshot, not ${kindName}`);
  const res = openResources(f);
  try {
    const [item] = await listNamed(kind, res, name);
    if (f.output === 'json' || f.output === 'yaml')
      write(
        render([item], f.output, (i) => kind.row(i, Date.now()), { empty: '', single: true }),
        f,
      );
    else write(kind.describe(item), f);
    return 0;
  } finally {
    res.close();
  }
}
