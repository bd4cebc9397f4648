/**
 * `npm run synth [-- --env dev|prod|kind] [--values overrides.json] [--out dir]`
 *
 * Writes one YAML file per chart into `--out` (default `charts/`, which is committed and must equal a fresh synth
 * of the default environment `dev`; test/unit/charts.test.ts checks that).
 */
import { parseArgs } from 'node:util';

import { ENV, processEnv } from '../core/config/env.js';
import { DEFAULT_ENV, DEFAULT_OUT, synthToDir } from './app.js';
import { loadEnvironment, readOverrides } from './config.js';

const { values } = parseArgs({
  options: {
    env: { type: 'string', default: processEnv()[ENV.EMBEDCTL_ENV] ?? DEFAULT_ENV },
    values: { type: 'string' },
    out: { type: 'string', default: DEFAULT_OUT },
  },
});

const started = process.hrtime.bigint();
const cfg = loadEnvironment(values.env as string, values.values ? readOverrides(values.values) : undefined);
const files = synthToDir(cfg, values.out as string);
const ms = Number(process.hrtime.bigint() - started) / 1e6;
console.log(
  `synthesized environment "${cfg.name}" into ${values.out}/ in ${ms.toFixed(0)} ms: ${files.join(', ')}`,
);
