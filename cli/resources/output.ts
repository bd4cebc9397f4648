import { Option } from 'commander';
import { stringify } from 'yaml';
import { formatTable } from '../print.js';
import type { Row } from './views.js';

/** kubectl's `-o`: table (the default), wide (adds the priority-1 columns), json, yaml. */
export const OUTPUTS = ['table', 'wide', 'json', 'yaml'] as const;
export type Output = (typeof OUTPUTS)[number];

export const outputOption = () =>
  new Option('-o, --output <format>', 'output format').choices(OUTPUTS).default('table');

/**
 * The text `embedctl get` prints for `items`: a table of their rows, or the objects themselves. Like kubectl, one
 * named object is printed bare and several as a `List`; an empty table says `empty` (kubectl's "No resources found").
 */
export function render<T>(
  items: readonly T[],
  output: Output,
  row: (item: T) => Row,
  opts: { empty: string; single?: boolean },
): string {
  if (output === 'json' || output === 'yaml') {
    const value = opts.single && items.length === 1 ? items[0] : { apiVersion: 'v1', kind: 'List', items };
    return output === 'json' ? `${JSON.stringify(value, null, 2)}\n` : stringify(value);
  }
  if (items.length === 0) return `${opts.empty}\n`;
  return formatTable(items.map((i) => tableCells(row(i), output)));
}

export function tableCells(r: Row, output: Output): Record<string, string> {
  return output === 'wide' ? { ...r.cells, ...r.wide } : r.cells;
}
