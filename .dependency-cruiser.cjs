/**
 * Which folder may import which (`npm run lint:deps`, first step of `npm test` and part of `npm run lint`).
 * Layers, bottom up: core/ (contracts, ports, adapters, config) ← the programs (controller/, worker/, stream/,
 * compactor/) ← local/ (all programs on one machine) ← cli/ (the `embedctl` entry point). The deployment app (cdk8s/,
 * crds/) sits beside the programs and shares only core/ with them. Rules are by folder, so files may move inside one.
 */
const PROGRAMS = ['controller', 'worker', 'stream', 'compactor'];
const DEPLOYMENT = ['cdk8s', 'crds'];
const TESTS = ['bench', 'test'];
const RUNTIME = ['core', ...PROGRAMS, 'local', 'cli', ...DEPLOYMENT];

/** The path pattern of files under any of these folders (group 1 is the folder). */
const under = (folders) => (folders.length === 1 ? `^${folders[0]}/` : `^(${folders.join('|')})/`);

/**
 * Files under `from` may not import files under `to`. Node's own modules (`stream/promises`) are not this
 * repository's stream/ folder, hence `dependencyTypesNot`.
 */
const forbid = (name, comment, from, to) => ({
  name,
  severity: 'error',
  comment,
  from: { path: under(from.folders), ...(from.not ? { pathNot: from.not } : {}) },
  to: { path: under(to.folders), ...(to.not ? { pathNot: to.not } : {}), dependencyTypesNot: ['core'] },
});

module.exports = {
  forbidden: [
    {
      name: 'no-circular',
      severity: 'error',
      comment: 'A cycle means neither side can be read, moved or tested alone.',
      from: {},
      to: { circular: true, dependencyTypesNot: ['core'] },
    },
    forbid(
      'core-imports-only-core',
      'core/ is the bottom layer: contracts, ports, adapters and config that every program shares.',
      { folders: ['core'] },
      { folders: [...RUNTIME.filter((f) => f !== 'core'), ...TESTS] },
    ),
    forbid(
      'programs-import-only-core',
      'A program (controller, worker, stream, compactor) uses core/ and its own folder, never another program, the ' +
        'deployment app, local mode or the CLI.',
      { folders: PROGRAMS },
      // `$1` is the importing program's own folder; stream/ is governed by the two rules below.
      { folders: [...PROGRAMS, 'local', 'cli', ...DEPLOYMENT, ...TESTS], not: ['^$1/', '^stream/'] },
    ),
    forbid(
      'only-the-controller-hosts-the-stream-processor',
      'The stream processor runs inside the controller process as a leader-only runnable (controller/command.ts), ' +
        'so the controller may import stream/; no other program may.',
      { folders: ['worker', 'compactor'] },
      { folders: ['stream'] },
    ),
    forbid(
      'stream-imports-no-program',
      'stream/ is hosted by the controller but depends on none: it uses core/ only.',
      { folders: ['stream'] },
      { folders: PROGRAMS.filter((f) => f !== 'stream') },
    ),
    forbid(
      'deployment-imports-only-core',
      'cdk8s/ and crds/ describe the deployment; they share the contract (core/config, core/contracts) only.',
      { folders: DEPLOYMENT },
      { folders: [...PROGRAMS, 'local', 'cli', ...TESTS] },
    ),
    forbid(
      'local-imports-programs-and-core',
      'local/ runs the programs on one machine: it may use them and core/, not the deployment app.',
      { folders: ['local'] },
      { folders: [...DEPLOYMENT, ...TESTS] },
    ),
    forbid(
      'nothing-imports-the-cli',
      'cli/ is the top: it composes everything and nothing depends on it. Exception while the `local` verbs are ' +
        'registered from local/ (local/command.ts, local/user-commands.ts use cli/usage and cli/safe-text): drop it ' +
        'once they live in cli/commands/.',
      { folders: RUNTIME, not: '^(cli|local)/' },
      { folders: ['cli'] },
    ),
    forbid(
      'runtime-imports-no-tests',
      'Tests and benches may import anything; nothing shipped imports them.',
      { folders: RUNTIME },
      { folders: ['test', 'bench'] },
    ),
    forbid(
      'tests-import-no-bench',
      'Benches build on the test harness, not the other way round.',
      { folders: ['test'] },
      { folders: ['bench'] },
    ),
  ],
  options: {
    doNotFollow: { path: 'node_modules' },
    exclude: { path: '^(node_modules|build|charts)/' },
    // Type-only imports are dependencies too: a type from the wrong layer couples it all the same.
    tsPreCompilationDeps: true,
    tsConfig: { fileName: 'tsconfig.json' },
  },
};
