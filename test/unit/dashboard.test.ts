/**
 * dashboards/embedctl.json's queries as Grafana sends them (test/support/dashboard.ts, which the real-node e2e runs
 * against Prometheus): only the variables the e2e substitutes, and every one valid PromQL for Debian's promtool.
 */
import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

import { afterAll, describe, expect, it } from 'vitest';
import { stringify } from 'yaml';

import { panelQueries, rateInterval, readDashboard, substitute } from '../support/dashboard.js';

const workDir = mkdtempSync(join(tmpdir(), 'dashboard-test-'));
afterAll(() => rmSync(workDir, { recursive: true, force: true }));
const vars = { namespace: 'receipt-embeddings', __rate_interval: rateInterval(10, 2) };

describe('dashboards/embedctl.json queries', () => {
  const dashboard = readDashboard();
  const queries = panelQueries(dashboard);

  it('are every target of every panel, and use only $namespace and $__rate_interval', () => {
    const targets = dashboard.panels.flatMap((p) => p.targets ?? []).length;
    expect(queries.length).toBe(targets);
    for (const q of queries) expect(substitute(q.expr, vars), q.name).not.toContain('$');
    expect(() => substitute('x{a="$other"}', {})).toThrow(/\$other/);
    expect(rateInterval(10, 2)).toBe('12s'); // step + scrape
    expect(rateInterval(1, 2)).toBe('8s'); // 4 × scrape
  });

  it('parse as PromQL (promtool check rules, each as a recording rule)', () => {
    const file = join(workDir, 'queries.yaml');
    const rules = queries.map((q, i) => ({ record: `panel_query_${i}`, expr: substitute(q.expr, vars) }));
    writeFileSync(file, stringify({ groups: [{ name: 'dashboard', rules }] }));
    const r = spawnSync('promtool', ['check', 'rules', file], { encoding: 'utf8' });
    expect(r.error, 'promtool on PATH (Debian package "prometheus")').toBeUndefined();
    expect(r.status, `${r.stdout}${r.stderr}`).toBe(0);
  });
});
