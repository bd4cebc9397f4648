/**
 * `npm run synth [-- --env dev|prod|kind|node] [--values overrides.json] [--out dir]`
 *
 * Writes one YAML file per chart into `--out` (default `charts/`, which is committed and must equal a fresh synth
 * of the default environment `dev`; test/unit/charts.test.ts checks that). Without `--env` and `--values` it also
 * writes the Kustomize layout (`<out>/base`, `<out>/overlays/{dev,prod,node}`; cdk8s/kustomize.ts).
 */
import { parseArgs } from 'node:util';

import { ENV, processEnv } from '../core/config/env.js';
import { DEFAULT_ENV, DEFAULT_OUT, synthToDir } from './app.js';
import { loadEnvironment, readOverrides } from './config.js';
import { KUSTOMIZE_BASE_ENV, KUSTOMIZE_OVERLAYS, writeKustomize } from './kustomize.js';

const { values } = parseArgs({
  options: {
    env: { type: 'string', default: processEnv()[ENV.EMBEDCTL_ENV] },
    values: { type: 'string' },
    out: { type: 'string', default: DEFAULT_OUT },
  },
});

const started = process.hrtime.bigint();
const cfg = loadEnvironment(
  values.env ?? DEFAULT_ENV,
  values.values ? readOverrides(values.values) : undefined,
);
const files = synthToDir(cfg, values.out as string);
// The committed layout: the plain manifests of the default environment and the Kustomize base and overlays.
const layout =
  values.env === undefined && values.values === undefined
    ? writeKustomize(
        values.out as string,
        loadEnvironment(KUSTOMIZE_BASE_ENV),
        KUSTOMIZE_OVERLAYS.map((n) => loadEnvironment(n)),
      )
    : [];
const ms = Number(process.hrtime.bigint() - started) / 1e6;
console.log(
  `synthesized environment "${cfg.name}" into ${values.out}/ in ${ms.toFixed(0)} ms: ${files.join(', ')}` +
    (layout.length
      ? `; Kustomize base and overlays (${KUSTOMIZE_OVERLAYS.join(', ')}): ${layout.length} files`
      : ''),
);
