#!/usr/bin/env node
import { parseArgs } from 'node:util';
import { exitWithParent } from './parent-pipe.js';

/**
 * Entry point of the child processes `embedctl local run` starts: `worker` (one local "worker Job") and
 * `compactor` (the local singleton). Not the CLI: loading only what a child needs saves seconds per worker process
 * (cli/main.ts loads the Kubernetes and AWS clients of every program). Orphan reaping kills a process only when its
 * command line is exactly one of these (local/child-argv.ts isLocalChild): keep the two in step.
 */
// Dies with the runner: a SIGKILLed `local run` leaves no worker, compactor or Chroma server behind.
exitWithParent();

const [program, ...rest] = process.argv.slice(2);
const { values } = parseArgs({
  args: rest,
  options: {
    home: { type: 'string' },
    'worker-job': { type: 'string' },
    jobs: { type: 'string' },
    'no-places': { type: 'boolean', default: false },
    once: { type: 'boolean', default: false },
  },
  strict: true,
});

if (program === 'worker') {
  const { runWorkerChild } = await import('./worker-child.js');
  if (!values['worker-job'] || !values.jobs) {
    process.stderr.write(
      'usage: child-main worker --home DIR --worker-job NAME --jobs a,b,c [--no-places]\n',
    );
    process.exitCode = 2;
  } else {
    process.exitCode = await runWorkerChild({
      home: values.home,
      workerJob: values['worker-job'],
      jobs: values.jobs.split(',').filter(Boolean),
      places: !values['no-places'],
    });
  }
} else if (program === 'compactor') {
  const { runCompactorChild } = await import('./compactor-child.js');
  const { printStats } = await import('./log.js');
  const { code, stats } = await runCompactorChild({ home: values.home, once: values.once });
  printStats(stats);
  process.exitCode = code;
} else {
  process.stderr.write(`unknown child program ${program ?? ''}: worker or compactor\n`);
  process.exitCode = 2;
}
