// biome-ignore-all lint/suspicious/noTemplateCurlyInString: these tests are about the literal ${NAME} syntax.
import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { buildJsonSchema } from '../../src/config/json-schema.js';

describe('schema/sluice.schema.json', () => {
  it('is what scripts/gen-schema.ts writes from the zod schema (run it after changing schema.ts)', () => {
    const committed = readFileSync('schema/sluice.schema.json', 'utf8');
    expect(committed).toBe(`${JSON.stringify(buildJsonSchema(), null, 2)}\n`);
  });

  it('describes the input side: optional keys with defaults, unknown keys refused, ids set', () => {
    const schema = buildJsonSchema() as {
      $id: string;
      title: string;
      required: string[];
      additionalProperties: boolean;
      properties: Record<string, unknown>;
    };
    expect(schema.$id).toBe('urn:sluice:config:1');
    expect(schema.title).toBe('sluice.yaml');
    expect(schema.required).toEqual(['servers']);
    expect(schema.additionalProperties).toBe(false);
    expect(Object.keys(schema.properties)).toEqual([
      '$schema',
      'version',
      'workers',
      'user',
      'group',
      'pid_file',
      'allow_root_handlers',
      'shutdown_timeout',
      'log',
      'tracing',
      'admin',
      'egress',
      'state',
      'servers',
      'upstreams',
    ]);
  });
});

/** The schema node at `keys`. */
function at(node: unknown, ...keys: (string | number)[]): Record<string, unknown> {
  let here = node;
  for (const key of keys) here = (here as Record<string | number, unknown>)[key];
  return here as Record<string, unknown>;
}

/** Every node of the schema with its path, depth first. */
function* nodes(node: unknown, path = ''): Generator<[string, Record<string, unknown>]> {
  if (typeof node !== 'object' || node === null) return;
  if (Array.isArray(node)) {
    for (const [i, n] of node.entries()) yield* nodes(n, `${path}/${i}`);
    return;
  }
  yield [path, node as Record<string, unknown>];
  for (const [k, v] of Object.entries(node)) yield* nodes(v, `${path}/${k}`);
}

// It refused the documented `workers: ${WORKERS}` and took files sluice refuses: listen: -1, a
// route with two actions or none, a token with no source, expect_status: "abc".
describe('schema/sluice.schema.json says what sluice check says where JSON Schema can', () => {
  const schema = buildJsonSchema();
  const server = at(schema, 'properties', 'servers', 'items', 'properties');
  const exactlyOne = (keys: string[]) => keys.map((k) => ({ required: [k] }));

  it('takes a ${NAME} reference wherever a number, a boolean or a word of a set goes', () => {
    const takesReference = (node: Record<string, unknown>) =>
      ((node.anyOf as Record<string, unknown>[] | undefined) ?? []).some(
        (b) => b.type === 'string' && (b.pattern === undefined || new RegExp(String(b.pattern)).test('${X}')),
      );
    const fixed = (node: Record<string, unknown>) =>
      ((node.anyOf as Record<string, unknown>[] | undefined) ?? [node]).some(
        (b) => ['number', 'integer', 'boolean'].includes(String(b.type)) || b.enum !== undefined,
      );
    // A branch of an anyOf is covered by the reference beside it.
    const checked = [...nodes(schema)].filter(([path, node]) => !/\/anyOf\/\d+$/.test(path) && fixed(node));
    expect(checked.length).toBeGreaterThan(30);
    for (const [path, node] of checked) expect(takesReference(node), `${path} takes \${NAME}`).toBe(true);
    expect(at(server, 'http2', 'anyOf')).toEqual([
      { type: 'boolean' },
      { type: 'string', pattern: '^\\$\\{[A-Za-z_][A-Za-z0-9_]*\\}$' },
    ]);
    const whole = new RegExp(String(at(server, 'http2', 'anyOf', 1).pattern));
    expect(['${H2}', '${A_1}', 'true', '${H2}x', '${1}'].map((t) => whole.test(t))).toEqual([
      true,
      true,
      false,
      false,
      false,
    ]);
  });

  it('takes one action per route, one target per proxy and one source per token', () => {
    expect(at(server, 'routes', 'items').oneOf).toEqual(
      exactlyOne(['proxy', 'respond', 'redirect', 'handler']),
    );
    expect(at(server, 'routes', 'items', 'properties', 'proxy').oneOf).toEqual(
      exactlyOne(['upstream', 'url']),
    );
    expect(at(schema, 'properties', 'admin', 'properties', 'tokens', 'items').oneOf).toEqual(
      exactlyOne(['token_env', 'token_file', 'token_sha256']),
    );
  });

  it('takes listen ports 0-65535 and health-check statuses as sluice reads them', () => {
    expect(at(server, 'listen', 'anyOf', 0, 'anyOf', 1)).toMatchObject({
      type: 'integer',
      minimum: 0,
      maximum: 65535,
    });
    const statuses = at(
      schema,
      'properties',
      'upstreams',
      'additionalProperties',
      'properties',
      'health_check',
      'properties',
      'expect_status',
    ).anyOf as Record<string, unknown>[];
    expect(statuses[1]).toMatchObject({ type: 'integer', minimum: 100, maximum: 599 });
    const pattern = new RegExp(String(statuses[0]?.pattern));
    expect(['200', '200-399', '200, 204,300-399', ' 204 '].every((t) => pattern.test(t))).toBe(true);
    expect(['abc', '', '99', '200-', '600', '200;204'].some((t) => pattern.test(t))).toBe(false);
  });
});
