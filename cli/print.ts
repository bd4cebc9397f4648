import { safeField, safeText } from './safe-text.js';

/**
 * What the user commands print on stdout: text for a person (control characters escaped, cli/safe-text.ts), JSON for
 * a machine (--json; JSON.stringify escapes control characters itself), and a column-padded table.
 */

/** Text for a person. */
export function say(text: string): void {
  process.stdout.write(safeText(text));
}

/** A value as indented JSON. */
export function printJson(value: unknown): void {
  process.stdout.write(`${JSON.stringify(value, null, 2)}\n`);
}

/** Rows as a table: the header from the first row's keys, columns three spaces apart; `empty` when there is none. */
export function printTable(rows: Record<string, string>[], empty: string): void {
  say(rows.length === 0 ? `${empty}\n` : formatTable(rows));
}

/** The text of printTable for at least one row (fields made printable, cli/safe-text.ts). */
export function formatTable(rows: Record<string, string>[]): string {
  rows = rows.map((r) => Object.fromEntries(Object.entries(r).map(([k, v]) => [k, safeField(v)])));
  const cols = Object.keys(rows[0]!);
  const width = cols.map((c) => Math.max(c.length, ...rows.map((r) => (r[c] ?? '').length)));
  const line = (r: Record<string, string>) =>
    cols
      .map((c, i) => (r[c] ?? '').padEnd(width[i]!))
      .join('   ')
      .trimEnd();
  return [Object.fromEntries(cols.map((c) => [c, c])), ...rows].map((r) => `${line(r)}\n`).join('');
}
