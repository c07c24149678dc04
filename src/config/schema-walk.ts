/**
 * Walking the zod schema alongside the data: which schema applies at a key path, which keys an
 * object allows (for "did you mean"), and salvaging the well-formed parts of a malformed config
 * so meaning checks can still run on them.
 */
import { z } from 'zod';
import { isMapping, type KeyPath } from './key-path.js';

/** Strips the wrappers that do not change what a value looks like (optional, nullable, default). */
export function unwrapSchema(schema: z.ZodType): z.ZodType {
  let s = schema;
  for (;;) {
    if (s instanceof z.ZodOptional || s instanceof z.ZodNullable || s instanceof z.ZodDefault) {
      s = s.unwrap() as z.ZodType;
    } else return s;
  }
}

/** The schema that checks the value at `path`, or `undefined` when the path leaves the schema. */
export function schemaAt(root: z.ZodType, path: KeyPath): z.ZodType | undefined {
  let s: z.ZodType | undefined = root;
  for (let i = 0; i < path.length && s !== undefined; i++) {
    const seg = path[i]!;
    const u = unwrapSchema(s);
    if (u instanceof z.ZodObject) s = (u.shape as Record<string, z.ZodType>)[String(seg)];
    else if (u instanceof z.ZodArray) s = typeof seg === 'number' ? (u.element as z.ZodType) : undefined;
    else if (u instanceof z.ZodRecord) s = u.valueType as z.ZodType;
    else if (u instanceof z.ZodUnion) {
      // The first option the rest of the path fits: `[":80", ":81"]` walks into the list option.
      const rest = path.slice(i);
      return (u.options as readonly z.ZodType[]).map((o) => schemaAt(o, rest)).find((o) => o !== undefined);
    } else s = undefined;
  }
  return s;
}

/**
 * The keys an object schema allows, in schema order; for a union, those of its object options
 * (`access: { alow: [...] }` is told `allow, deny`, not nothing); `[]` for anything else.
 */
export function allowedKeys(schema: z.ZodType | undefined): string[] {
  const u = schema === undefined ? undefined : unwrapSchema(schema);
  if (u instanceof z.ZodObject) return Object.keys(u.shape);
  if (u instanceof z.ZodUnion)
    return [...new Set((u.options as readonly z.ZodType[]).flatMap((o) => allowedKeys(o)))];
  return [];
}

/**
 * The parts of `value` that `schema` accepts: the parsed value when all of it does, otherwise
 * objects keep the keys whose values pass (recursively), lists keep their length with `undefined`
 * in place of entries that fail, unions take the first option that salvages something, and any
 * other value that fails is `undefined`. Unknown keys are
 * dropped; required keys may be missing. List indices are kept so problems keep their paths.
 */
export function salvage(schema: z.ZodType, value: unknown): unknown {
  const whole = schema.safeParse(value);
  if (whole.success) return whole.data;
  const u = unwrapSchema(schema);
  if (u instanceof z.ZodObject && isMapping(value)) {
    const out: Record<string, unknown> = {};
    for (const [key, field] of Object.entries(u.shape as Record<string, z.ZodType>)) {
      if (!Object.hasOwn(value, key)) continue;
      const part = salvage(field, value[key]);
      if (part !== undefined) out[key] = part;
    }
    return out;
  }
  if (u instanceof z.ZodArray && Array.isArray(value)) {
    return value.map((item) => salvage(u.element as z.ZodType, item));
  }
  if (u instanceof z.ZodRecord && isMapping(value)) {
    const out: Record<string, unknown> = {};
    for (const [key, item] of Object.entries(value)) {
      const part = salvage(u.valueType as z.ZodType, item);
      if (part !== undefined)
        Object.defineProperty(out, key, { value: part, enumerable: true, writable: true });
    }
    return out;
  }
  if (u instanceof z.ZodUnion) {
    // `listen: [":80", true]`: the list option keeps ":80".
    for (const option of u.options as readonly z.ZodType[]) {
      const part = salvage(option, value);
      if (part !== undefined) return part;
    }
  }
  return undefined;
}
