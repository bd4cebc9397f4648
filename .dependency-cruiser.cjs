/**
 * Which folder may import which (`npm run lint:deps`, first step of `npm test` and part of `npm run lint`).
 * Layers, bottom up: core/ (contracts, ports, adapters, config) ← the programs (controller/, worker/, stream/,
 * compactor/) ← local/ (all programs on one machine) ← cli/ (the `embedctl` entry point). The deployment app (cdk8s/,
 * crds/) sits beside the programs and shares only core/ with them. Rules are by folder, so files may move inside one.
 */
const RUNTIME = '^(core|controller|worker|stream|compactor|local|cli|cdk8s|crds)/';
const PROGRAMS = '(controller|worker|stream|compactor)';

/** Node's own modules (`stream/promises`) are not this repository's stream/ folder. */
const notBuiltin = (rule) => ({ ...rule, to: { ...rule.to, dependencyTypesNot: ['core'] } });

module.exports = {
  forbidden: [
    {
      name: 'no-circular',
      severity: 'error',
      comment: 'A cycle means neither side can be read, moved or tested alone.',
      from: {},
      to: { circular: true },
    },
    {
      name: 'core-imports-only-core',
      severity: 'error',
      comment: 'core/ is the bottom layer: contracts, ports, adapters and config that every program shares.',
      from: { path: '^core/' },
      to: { path: '^(controller|worker|stream|compactor|local|cli|cdk8s|crds|bench|test)/' },
    },
    {
      name: 'programs-import-only-core',
      severity: 'error',
      comment:
        'A program (controller, worker, stream, compactor) uses core/ and its own folder, never another program, the ' +
        'deployment app, local mode or the CLI.',
      from: { path: `^${PROGRAMS}/` },
      to: {
        path: `^(${PROGRAMS.slice(1, -1)}|local|cli|cdk8s|crds|bench|test)/`,
        pathNot: ['^$1/', '^stream/'],
      },
    },
    {
      name: 'only-the-controller-hosts-the-stream-processor',
      severity: 'error',
      comment:
        'The stream processor runs inside the controller process as a leader-only runnable (controller/command.ts), ' +
        'so the controller may import stream/; no other program may.',
      from: { path: '^(worker|compactor)/' },
      to: { path: '^stream/' },
    },
    {
      name: 'stream-imports-no-program',
      severity: 'error',
      comment: 'stream/ is hosted by the controller but depends on none: it uses core/ only.',
      from: { path: '^stream/' },
      to: { path: '^(controller|worker|compactor)/' },
    },
    {
      name: 'deployment-imports-only-core',
      severity: 'error',
      comment:
        'cdk8s/ and crds/ describe the deployment; they share the contract (core/config, core/contracts) only.',
      from: { path: '^(cdk8s|crds)/' },
      to: { path: '^(controller|worker|stream|compactor|local|cli|bench|test)/' },
    },
    {
      name: 'local-imports-programs-and-core',
      severity: 'error',
      comment: 'local/ runs the programs on one machine: it may use them and core/, not the deployment app.',
      from: { path: '^local/' },
      to: { path: '^(cdk8s|crds|bench|test)/' },
    },
    {
      name: 'nothing-imports-the-cli',
      severity: 'error',
      comment:
        'cli/ is the top: it composes everything and nothing depends on it. Exception while the `local` verbs are ' +
        'registered from local/ (local/command.ts, local/user-commands.ts use cli/usage and cli/safe-text): drop it ' +
        'once they live in cli/commands/.',
      from: { path: RUNTIME, pathNot: '^(cli|local)/' },
      to: { path: '^cli/' },
    },
    {
      name: 'runtime-imports-no-tests',
      severity: 'error',
      comment: 'Tests and benches may import anything; nothing shipped imports them.',
      from: { path: RUNTIME },
      to: { path: '^(test|bench)/' },
    },
    {
      name: 'tests-import-no-bench',
      severity: 'error',
      comment: 'Benches build on the test harness, not the other way round.',
      from: { path: '^test/' },
      to: { path: '^bench/' },
    },
  ].map(notBuiltin),
  options: {
    doNotFollow: { path: 'node_modules' },
    exclude: { path: '^(node_modules|build|charts)/' },
    // Type-only imports are dependencies too: a type from the wrong layer couples it all the same.
    tsPreCompilationDeps: true,
    tsConfig: { fileName: 'tsconfig.json' },
  },
};
