/**
 * Writes schema/sluice.schema.json from the zod schema: `npx tsx scripts/gen-schema.ts`.
 * A unit test fails when the committed file and the schema drift apart.
 */
import { writeFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { buildJsonSchema } from '../src/config/json-schema.js';

const target = fileURLToPath(new URL('../schema/sluice.schema.json', import.meta.url));
writeFileSync(target, `${JSON.stringify(buildJsonSchema(), null, 2)}\n`);
console.log(`wrote ${target}`);
