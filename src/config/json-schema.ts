/** The published JSON Schema of `sluice.yaml` (`schema/sluice.schema.json`), generated from the zod schema. */
import { z } from 'zod';
import { sluiceConfigSchema } from './schema.js';

/** The schema's `$id`: a URN, as sluice owns no web address to publish it under. */
export const JSON_SCHEMA_ID = 'urn:sluice:config:1';

/** Builds the JSON Schema of the config's input side (what users write). */
export function buildJsonSchema(): Record<string, unknown> {
  const generated = z.toJSONSchema(sluiceConfigSchema, { io: 'input' }) as Record<string, unknown>;
  const { $schema, title: _title, ...rest } = generated;
  // $schema, $id and title first, so the file reads like a hand-written schema.
  return { $schema, $id: JSON_SCHEMA_ID, title: 'sluice.yaml', ...rest };
}
