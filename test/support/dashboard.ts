/**
 * The queries of a Grafana dashboard as Grafana sends them to Prometheus: every target `expr` of every panel (rows'
 * panels too) with the dashboard's variables substituted.
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';

export const DASHBOARD_FILE = join(import.meta.dirname, '..', '..', 'dashboards', 'embedctl.json');

interface Panel {
  title?: string;
  targets?: { refId?: string; expr?: string }[];
  panels?: Panel[];
}
export interface Dashboard {
  panels: Panel[];
  templating?: { list: { name: string; definition?: string }[] };
}
export interface PanelQuery {
  /** `<panel title> / <refId>` */
  name: string;
  expr: string;
}

export function readDashboard(file = DASHBOARD_FILE): Dashboard {
  return JSON.parse(readFileSync(file, 'utf8')) as Dashboard;
}

export function panelQueries(d: Dashboard): PanelQuery[] {
  const walk = (panels: Panel[]): PanelQuery[] =>
    panels.flatMap((p) => [
      ...(p.targets ?? [])
        .filter((t) => t.expr)
        .map((t) => ({ name: `${p.title ?? '?'} / ${t.refId ?? '?'}`, expr: t.expr! })),
      ...walk(p.panels ?? []),
    ]);
  return walk(d.panels);
}

/**
 * Grafana's `$__rate_interval`: max(`$__interval` + scrape interval, 4 × scrape interval), where `$__interval` is
 * the query's step (both in seconds).
 */
export const rateInterval = (stepSeconds: number, scrapeSeconds: number): string =>
  `${Math.max(stepSeconds + scrapeSeconds, 4 * scrapeSeconds)}s`;

/** `$name` and `${name}` replaced by `vars[name]`; a variable not in `vars` is an error naming it. */
export function substitute(expr: string, vars: Record<string, string>): string {
  return expr.replace(/\$\{(\w+)\}|\$(\w+)/g, (_, braced?: string, bare?: string) => {
    const name = (braced ?? bare)!;
    const value = vars[name];
    if (value === undefined) throw new Error(`dashboard query uses $${name}, which has no value: ${expr}`);
    return value;
  });
}
