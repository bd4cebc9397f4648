// Install scripts (issue 18 item 4): every package of the lockfile that has one is reviewed in package.json
// "allowScripts"; the image and CI install with --ignore-scripts and build the one native module from source; and
// the better-sqlite3 installed here was compiled by node-gyp, not fetched as a prebuilt binary no hash covers.
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';

const ROOT = join(import.meta.dirname, '..', '..');
const read = (p: string) => readFileSync(join(ROOT, p), 'utf8');

describe('install scripts', () => {
  const pkg = JSON.parse(read('package.json')) as { allowScripts?: Record<string, boolean> };
  const lock = JSON.parse(read('package-lock.json')) as {
    packages: Record<string, { version?: string; hasInstallScript?: boolean }>;
  };
  const withScripts = Object.entries(lock.packages)
    .filter(([, p]) => p.hasInstallScript)
    .map(([path]) => path.slice(path.lastIndexOf('node_modules/') + 'node_modules/'.length));

  it('every package with an install script is approved or denied by name in allowScripts', () => {
    expect(withScripts.length).toBeGreaterThan(0);
    for (const name of withScripts) expect(pkg.allowScripts, name).toHaveProperty([name]);
    expect(read('.npmrc')).toMatch(/^strict-allow-scripts=true$/m);
  });

  it('only better-sqlite3 may run one in the image and in CI, built from source', () => {
    const approved = Object.entries(pkg.allowScripts ?? {}).filter(([, ok]) => ok);
    expect(approved.map(([n]) => n)).toContain('better-sqlite3');
    for (const file of ['Dockerfile', '.ci/run']) {
      const code = read(file)
        .split('\n')
        .filter((l) => !/^\s*#/.test(l));
      const installs = code.filter((l) => /\bnpm ci\b(?!")/.test(l));
      expect(installs.length, file).toBeGreaterThan(0);
      for (const l of installs) expect(l, file).toContain('--ignore-scripts');
      expect(code.join('\n'), file).toMatch(/npm_config_build_from_source=true npm rebuild better-sqlite3/);
    }
  });

  it('the installed better-sqlite3 binary was compiled here by node-gyp', () => {
    const build = join(ROOT, 'node_modules', 'better-sqlite3', 'build');
    expect(existsSync(join(build, 'Release', 'better_sqlite3.node'))).toBe(true);
    // node-gyp leaves its configuration and objects; prebuild-install unpacks only the .node file.
    expect(existsSync(join(build, 'config.gypi'))).toBe(true);
    expect(existsSync(join(build, 'Release', 'obj.target'))).toBe(true);
  });
});
