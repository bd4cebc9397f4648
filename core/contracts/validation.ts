import type { z } from 'zod';
import { InputError } from '../errors.js';

export const UUID_PATTERN = '^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$';

/** The first zod issue as "field: message", the field as a dotted path (e.g. `bounding_box.x`). */
export function describeIssue(error: z.ZodError): { field: string; message: string } {
  const issue = error.issues[0];
  if (!issue) return { field: '', message: 'invalid' };
  return { field: issue.path.map(String).join('.'), message: issue.message };
}

/** Parse or throw an InputError naming the field (and the file/row when given). */
export function parseOrThrow<S extends z.ZodType>(
  schema: S,
  value: unknown,
  where: { file?: string; row?: number } = {},
): z.output<S> {
  const result = schema.safeParse(value);
  if (result.success) return result.data;
  const { field, message } = describeIssue(result.error);
  throw new InputError(message, { ...where, field: field || undefined });
}
