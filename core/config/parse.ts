import { z } from 'zod';
import { ConfigError } from '../errors.js';
import type { Env } from './env.js';

/**
 * Parses `raw` with `schema`; on failure throws one ConfigError listing every problem as
 * `<name>: <message> (got "<value>")` or `(not set)`, where `nameOf` turns a field path into what the operator set
 * (a variable, a flag, a ConfigMap key).
 */
export function parseWithNames<S extends z.ZodType>(
  schema: S,
  raw: unknown,
  nameOf: (path: string) => string,
  what: string,
): z.output<S> {
  const result = schema.safeParse(raw);
  if (result.success) return result.data;
  const problems = result.error.issues.map((i) => {
    const path = i.path.map(String).join('.');
    const value = path
      .split('.')
      .reduce<unknown>((o, k) => (o as Record<string, unknown> | undefined)?.[k], raw);
    return `${nameOf(path)}: ${i.message}${value === undefined ? ' (not set)' : ` (got ${JSON.stringify(value)})`}`;
  });
  throw new ConfigError(`invalid ${what}: ${problems.join('; ')}`, { problems });
}

/** `T` with its possibly-undefined fields made optional and never undefined. */
export type DefinedOnly<T> = { [K in keyof T as undefined extends T[K] ? never : K]: T[K] } & {
  [K in keyof T as undefined extends T[K] ? K : never]?: Exclude<T[K], undefined>;
};

/** Drops the undefined fields of `o` (this level only), so an unset variable leaves its field absent. */
export function definedOnly<T extends object>(o: T): DefinedOnly<T> {
  return Object.fromEntries(Object.entries(o).filter(([, v]) => v !== undefined)) as DefinedOnly<T>;
}

/** Drops undefined fields at every depth, so that schema defaults apply to them. */
export function stripUndefined<T>(value: T): T {
  if (Array.isArray(value) || typeof value !== 'object' || value === null) return value;
  return Object.fromEntries(Object.entries(definedOnly(value)).map(([k, v]) => [k, stripUndefined(v)])) as T;
}

/**
 * Parses the variables of an environment with a schema keyed by the variable names themselves, so an error names the
 * variable and its value. Only the schema's keys are read; an empty value counts as unset.
 */
export function parseEnv<S extends z.ZodObject>(schema: S, env: Env, what: string): z.output<S> {
  const raw = Object.fromEntries(
    Object.keys(schema.shape).map((name) => [name, env[name] === '' ? undefined : env[name]]),
  );
  return parseWithNames(schema, stripUndefined(raw), (path) => path, what);
}

/** Field types for environment schemas (values are strings; unset is undefined). */
export const envVar = {
  required: z.string({ error: 'is required' }).min(1),
  optional: z.string().min(1).optional(),
  /** A non-empty string, `value` when unset. */
  orDefault: (value: string) => z.string().min(1).default(value),
  /** A non-negative number, e.g. milliseconds or seconds. */
  number: z.coerce.number<string>().min(0, { error: 'must be a non-negative number' }),
  /** A non-negative integer. */
  count: z.coerce.number<string>().int().min(0, { error: 'must be a non-negative integer' }),
  /** A positive integer. */
  positive: z.coerce.number<string>().int().min(1, { error: 'must be a positive integer' }),
  port: z.coerce.number<string>().int().min(0).max(65535),
};
