/**
 * Terminal-safe text: what a receipt, a file name or an error message brings along is shown, never obeyed. Control
 * characters (C0 except the line breaks between lines, DEL, C1) and the bidirectional overrides that reorder a line
 * on screen are written as `\u001b`-style escapes, so a hostile --input file cannot move the cursor, recolour, clear
 * or retitle the terminal through the summary, status or an error line. JSON output needs none of this:
 * JSON.stringify escapes control characters itself.
 */
const UNSAFE = /[\u0000-\u0009\u000b-\u001f\u007f-\u009f\u200e\u200f\u202a-\u202e\u2066-\u2069]/g;

const escape = (c: string) => `\\u${c.charCodeAt(0).toString(16).padStart(4, '0')}`;

/** `text` with every unsafe character escaped; line breaks (`\n`) are kept. */
export function safeText(text: string): string {
  return text.replace(UNSAFE, escape);
}

/** One value of a line: its line breaks escaped too (a table cell, a name). */
export function safeField(text: string): string {
  return safeText(text).replaceAll('\n', '\\n');
}
