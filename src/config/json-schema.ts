/**
 * The published JSON Schema of `sluice.yaml` (`schema/sluice.schema.json`), generated from the zod
 * schema and then told what the zod schema leaves to `normalise.ts` but JSON Schema can say: a
 * `${VAR}` where a number, boolean or fixed word goes, one action per route, one target per proxy,
 * one source per token, listen ports and health-check statuses in range.
 *
 * What it cannot say is left to `sluice check`, which an editor's schema does not replace: listen
 * addresses and CIDR blocks as such, durations above 0, cross references (upstream names, unique
 * names and addresses), files that must exist, templates and regular expressions.
 */
import { z } from 'zod';
import { sluiceConfigSchema } from './schema.js';

/** The schema's `$id`: a URN, as sluice owns no web address to publish it under. */
export const JSON_SCHEMA_ID = 'urn:sluice:config:1';

/** A JSON Schema node, as the generator writes it. */
type Node = Record<string, unknown>;

/**
 * A value that is exactly one `${NAME}`: written unquoted, it takes the type its expansion reads
 * as (`workers: ${WORKERS}` is a number), which JSON Schema, reading the file's text, cannot know.
 */
const WHOLE_REFERENCE = '^\\$\\{[A-Za-z_][A-Za-z0-9_]*\\}$';
/** A string with a `${NAME}` in it: expanded before its format or choices are checked. */
const SOME_REFERENCE = '\\$\\{[A-Za-z_][A-Za-z0-9_]*\\}';

/** Builds the JSON Schema of the config's input side (what users write). */
export function buildJsonSchema(): Record<string, unknown> {
  const generated = z.toJSONSchema(sluiceConfigSchema, { io: 'input' }) as Node;
  addMeaning(generated);
  const { $schema, title: _title, ...rest } = withReferences(generated) as Node;
  // $schema, $id and title first, so the file reads like a hand-written schema.
  return { $schema, $id: JSON_SCHEMA_ID, title: 'sluice.yaml', ...rest };
}

/** Exactly one of `keys` (zod's shapes leave the count to normalise-*.ts). */
function exactlyOneOf(keys: readonly string[]): Node[] {
  return keys.map((k) => ({ required: [k] }));
}

/** Adds, in place, the checks of `normalise.ts` that JSON Schema can express. */
function addMeaning(root: Node): void {
  const server = at(root, 'properties', 'servers', 'items');
  at(server, 'properties', 'routes', 'items').oneOf = exactlyOneOf([
    'proxy',
    'respond',
    'redirect',
    'handler',
  ]);
  at(server, 'properties', 'routes', 'items', 'properties', 'proxy').oneOf = exactlyOneOf([
    'upstream',
    'url',
  ]);
  at(root, 'properties', 'admin', 'properties', 'tokens', 'items').oneOf = exactlyOneOf([
    'token_env',
    'token_file',
    'token_sha256',
  ]);
  forEachInteger(at(server, 'properties', 'listen'), (port) =>
    Object.assign(port, { minimum: 0, maximum: 65535 }),
  );
  const expect = at(root, 'properties', 'upstreams', 'additionalProperties', 'properties', 'health_check');
  for (const branch of at(expect, 'properties', 'expect_status').anyOf as Node[]) {
    if (branch.type === 'integer') Object.assign(branch, { minimum: 100, maximum: 599 });
    // parseStatusRanges: "200", "200-399", "200, 204, 300-399"; the order within a range is not said.
    else
      branch.pattern =
        '^\\s*[1-5]\\d\\d\\s*(-\\s*[1-5]\\d\\d\\s*)?(,\\s*[1-5]\\d\\d\\s*(-\\s*[1-5]\\d\\d\\s*)?)*$';
  }
}

/** The node at `keys` below `node`; throws when the zod schema no longer has that shape. */
function at(node: Node, ...keys: string[]): Node {
  let here: unknown = node;
  for (const key of keys) {
    here = (here as Node | undefined)?.[key];
    if (typeof here !== 'object' || here === null) {
      throw new Error(`the generated JSON Schema has no ${keys.join('.')}; update json-schema.ts`);
    }
  }
  return here as Node;
}

function forEachInteger(node: Node, visit: (n: Node) => void): void {
  if (node.type === 'integer') visit(node);
  for (const key of ['anyOf', 'items'] as const) {
    const child = node[key];
    if (Array.isArray(child)) for (const c of child as Node[]) forEachInteger(c, visit);
    else if (typeof child === 'object' && child !== null) forEachInteger(child as Node, visit);
  }
}

/**
 * A copy of `node` where every value of a fixed type or form (a number, a boolean, one of a set
 * of words, a pattern) also takes a `${NAME}` reference, as `load.ts` expands them first.
 */
function withReferences(node: Node): Node {
  const out: Node = { ...node };
  if (isObjectNode(out.properties)) {
    out.properties = Object.fromEntries(
      Object.entries(out.properties).map(([k, v]) => [k, withReferences(v as Node)]),
    );
  }
  if (isObjectNode(out.additionalProperties))
    out.additionalProperties = withReferences(out.additionalProperties);
  if (isObjectNode(out.items)) out.items = withReferences(out.items);
  if (Array.isArray(out.anyOf)) {
    // One reference beside the branches, not one per branch.
    const branches = (out.anyOf as Node[]).map((b) => (isLeaf(b) ? b : withReferences(b)));
    const reference = referenceFor(branches.filter(isLeaf));
    out.anyOf = reference === null ? branches : [...branches, reference];
    return out;
  }
  const reference = isLeaf(out) ? referenceFor([out]) : null;
  if (reference === null) return out;
  const { description, ...value } = out;
  return { ...(description === undefined ? {} : { description }), anyOf: [value, reference] };
}

/**
 * The reference a value of one of `leaves` may be instead: none where any string goes, a string
 * holding one where a string of some form goes, else (a number, a boolean) exactly one.
 */
function referenceFor(leaves: readonly Node[]): Node | null {
  if (leaves.length === 0 || leaves.some(isAnyString)) return null;
  const text = leaves.some((l) => l.type === 'string');
  return { type: 'string', pattern: text ? SOME_REFERENCE : WHOLE_REFERENCE };
}

function isObjectNode(value: unknown): value is Node {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

/** A scalar's node: no properties, items or branches. */
function isLeaf(node: Node): boolean {
  return ['string', 'number', 'integer', 'boolean'].includes(node.type as string) && node.anyOf === undefined;
}

/** A string with no format or choices. */
function isAnyString(node: Node): boolean {
  return (
    node.type === 'string' &&
    node.pattern === undefined &&
    node.enum === undefined &&
    node.const === undefined
  );
}
