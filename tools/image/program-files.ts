/**
 * What one program of the image loads: the files reachable from `embedctl <program>` and the npm packages they
 * import, from dependency-cruiser's import graph. The Dockerfile prunes each program's image to exactly these
 * (`node build/tools/image/program-files.js <program> --prune`, then `npm prune --omit=dev`), so a package a program
 * stops importing leaves its image by itself; test/unit/image-programs.test.ts checks the lists on the sources.
 *
 * cli/main is the entry of every image, but its dynamic imports are the other commands (only the one named on the
 * command line is loaded), so only its static imports count; everything under the program's command module counts,
 * dynamic imports included.
 */
import { readFileSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { join, relative } from 'node:path';
import { fileURLToPath } from 'node:url';

import { cruise } from 'dependency-cruiser';
import { IMAGE_PROGRAMS, type ImageProgram } from './programs.js';

export { IMAGE_PROGRAMS, type ImageProgram };

export interface ProgramClosure {
  /** Repository-relative source files the program loads (under `root`). */
  files: string[];
  /** npm packages the program imports directly (their own dependencies come with them). */
  packages: string[];
}

/** A program's files import something the graph cannot place (a typo, or a package missing from package.json). */
export class ProgramGraphError extends Error {
  constructor(
    message: string,
    readonly context: { program: string; file: string; module: string },
  ) {
    super(
      `${message}: ${context.file} imports ${JSON.stringify(context.module)} (program ${context.program})`,
    );
    this.name = 'ProgramGraphError';
  }
}

type Dependency = {
  resolved: string;
  module: string;
  coreModule: boolean;
  couldNotResolve: boolean;
  dynamic: boolean;
  dependencyTypes: string[];
};
type Module = { source: string; dependencies: Dependency[] };

/** `@scope/name/sub/path` → `@scope/name`; `name/sub` → `name`. */
export function packageName(specifier: string): string {
  const parts = specifier.split('/');
  return specifier.startsWith('@') ? parts.slice(0, 2).join('/') : parts[0]!;
}

/** The import graph of every program under `root` (`build` with `ext` js in the image, `.` with ts for the sources). */
export async function importGraph(opts: { root: string; ext: 'js' | 'ts' }): Promise<ImportGraph> {
  const at = (p: string): string => (opts.root === '.' ? p : `${opts.root}/${p}`);
  const entries = [`cli/main.${opts.ext}`, ...IMAGE_PROGRAMS.map((p) => `${p}/command.${opts.ext}`)].map(at);
  const result = await cruise(entries, {
    doNotFollow: { path: 'node_modules' },
    // Imports of types only are erased from the JavaScript and load nothing.
    tsPreCompilationDeps: false,
  });
  if (typeof result.output === 'string') throw new Error('dependency-cruiser returned text, not a graph');
  return { ...opts, modules: new Map((result.output.modules as Module[]).map((m) => [m.source, m])) };
}
export interface ImportGraph {
  root: string;
  ext: 'js' | 'ts';
  modules: Map<string, Module>;
}

/** The files and packages `embedctl <program>` loads. Paths are relative to the working directory. */
export function programClosure(graph: ImportGraph, program: ImageProgram): ProgramClosure {
  const at = (p: string): string => (graph.root === '.' ? p : `${graph.root}/${p}`);
  const files = new Set<string>();
  const packages = new Set<string>();
  const visit = (source: string, followDynamic: boolean): void => {
    if (files.has(source)) return;
    files.add(source);
    for (const d of graph.modules.get(source)?.dependencies ?? []) {
      if (d.coreModule) continue;
      if (d.couldNotResolve)
        throw new ProgramGraphError('unresolved import', { program, file: source, module: d.module });
      if (d.dependencyTypes.some((t) => t.startsWith('npm')) || d.resolved.includes('node_modules/')) {
        packages.add(packageName(d.module));
      } else if (followDynamic || !d.dynamic) {
        visit(d.resolved, true);
      }
    }
  };
  visit(at(`cli/main.${graph.ext}`), false);
  visit(at(`${program}/command.${graph.ext}`), true);
  return { files: [...files].sort(), packages: [...packages].sort() };
}

type PackageJson = { dependencies?: Record<string, string>; [k: string]: unknown };

/** package.json reduced to the packages the program imports; every one of them must be a declared dependency. */
export function programPackageJson(pkg: PackageJson, program: ImageProgram, packages: string[]): PackageJson {
  const declared = pkg.dependencies ?? {};
  const missing = packages.filter((p) => !Object.hasOwn(declared, p));
  if (missing.length > 0)
    throw new Error(
      `program ${program} imports ${missing.join(', ')}, which package.json "dependencies" does not declare`,
    );
  return { ...pkg, dependencies: Object.fromEntries(packages.map((p) => [p, declared[p]!])) };
}

function filesUnder(dir: string): string[] {
  return readdirSync(dir, { recursive: true, withFileTypes: true })
    .filter((e) => e.isFile())
    .map((e) => join(e.parentPath, e.name));
}

/**
 * In the image's build stage (working directory /app, compiled tree in build/): deletes every build file the
 * program does not load (a loaded file keeps its source map) and rewrites package.json to the program's packages,
 * for the `npm prune --omit=dev` that follows.
 */
async function prune(program: ImageProgram): Promise<void> {
  const { files, packages } = programClosure(await importGraph({ root: 'build', ext: 'js' }), program);
  const keep = new Set(files.flatMap((f) => [f, `${f}.map`]));
  let removed = 0;
  for (const f of filesUnder('build')) {
    if (keep.has(relative('.', f))) continue;
    rmSync(f);
    removed++;
  }
  const pkg = JSON.parse(readFileSync('package.json', 'utf8')) as PackageJson;
  writeFileSync('package.json', JSON.stringify(programPackageJson(pkg, program, packages), null, 2) + '\n');
  console.log(`${program}: ${files.length} files kept, ${removed} removed; packages: ${packages.join(' ')}`);
}

if (process.argv[1] && fileURLToPath(import.meta.url) === process.argv[1]) {
  const [program, flag] = process.argv.slice(2);
  if (!IMAGE_PROGRAMS.includes(program as ImageProgram) || (flag !== undefined && flag !== '--prune')) {
    console.error(`usage: program-files.js ${IMAGE_PROGRAMS.join('|')} [--prune]`);
    process.exit(2);
  }
  if (flag === '--prune') await prune(program as ImageProgram);
  else
    console.log(
      JSON.stringify(
        programClosure(await importGraph({ root: 'build', ext: 'js' }), program as ImageProgram),
        null,
        2,
      ),
    );
}
