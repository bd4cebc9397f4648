import { createHash } from 'node:crypto';
import { existsSync } from 'node:fs';
import { mkdir, readdir, rename, rm, stat, writeFile } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { Logger } from '../core/log.js';
import { ENV, processEnv } from '../core/config/env.js';

export interface ChildCommand {
  command: string;
  args: string[];
}

const ROOT = fileURLToPath(new URL('..', import.meta.url));
/** Where the bundles live (local/child-argv.ts recognises a child started from one). */
export const CACHE = join(ROOT, 'node_modules', '.cache', 'embedctl-local');

/**
 * How children start when `local run` itself runs from source (tsx): tsx's loader transpiles every module a child
 * imports, at each start, which costs a worker process 1–2 s of CPU before it does anything (measured on the 2-core
 * VM; the children compete for those cores with Chroma). So the run bundles local/child-main.ts once with esbuild
 * (the transpiler tsx itself uses), with every npm package left external, split at its dynamic imports, into node_modules/.cache/ (so those
 * packages resolve as usual), and starts the children with plain node on the bundle. The bundle is named by its
 * content hash: concurrent runs write the same bytes, and a source change gives a new file.
 *
 * Any other `self` (the built .js entry) is returned unchanged, and so is the tsx entry when esbuild is not
 * installed or the cache cannot be written: the children then start through tsx as before.
 */
export async function fastChildEntry(self: ChildCommand, log?: Logger): Promise<ChildCommand> {
  const entry = self.args.find((a) => a.endsWith('child-main.ts'));
  if (!entry || processEnv()[ENV.EMBEDCTL_CHILD_TSX] === '1') return self;
  try {
    const esbuild = await import('esbuild');
    // Split at the dynamic imports of child-main.ts: a worker loads only the worker's modules and packages, the
    // compactor only the compactor's (one bundle made every child load every package: ~0.35 s per start).
    const out = await esbuild.build({
      entryPoints: [entry],
      bundle: true,
      splitting: true,
      platform: 'node',
      format: 'esm',
      target: `node${process.versions.node.split('.')[0]}`,
      packages: 'external',
      outdir: '/',
      outExtension: { '.js': '.mjs' },
      write: false,
      logLevel: 'silent',
    });
    const hash = createHash('sha256');
    for (const f of out.outputFiles) hash.update(f.path).update(f.contents);
    const dir = join(CACHE, `child-${hash.digest('hex').slice(0, 16)}`);
    const main = join(dir, 'child-main.mjs');
    if (!existsSync(main)) {
      // Written beside and renamed into place whole: concurrent runs write the same bytes.
      const tmp = `${dir}.${process.pid}.tmp`;
      await rm(tmp, { recursive: true, force: true });
      for (const f of out.outputFiles) {
        await mkdir(dirname(join(tmp, f.path)), { recursive: true });
        await writeFile(join(tmp, f.path), f.contents);
      }
      await rename(tmp, dir).catch(async (err: NodeJS.ErrnoException) => {
        await rm(tmp, { recursive: true, force: true });
        if (!existsSync(main)) throw err;
      });
      void pruneBundles(dir);
    }
    return { command: process.execPath, args: [main] };
  } catch (err) {
    log?.info({ err }, 'children start through tsx (no bundle)');
    return self;
  }
}

/** Bundles of older sources, unused for a day. */
async function pruneBundles(keep: string): Promise<void> {
  try {
    const dir = dirname(keep);
    for (const name of await readdir(dir)) {
      const path = join(dir, name);
      if (path === keep || !name.startsWith('child-')) continue;
      if (Date.now() - (await stat(path)).mtimeMs > 24 * 3600_000)
        await rm(path, { recursive: true, force: true });
    }
  } catch {
    // a concurrent prune, or nothing to prune
  }
}
