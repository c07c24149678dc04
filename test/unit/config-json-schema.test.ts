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
