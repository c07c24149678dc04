/** The package version, read once from package.json (works from src/ under tsx and from dist/). */
import { readFileSync } from 'node:fs';

/** sluice's version, e.g. `0.1.0`. */
export const VERSION: string = (
  JSON.parse(readFileSync(new URL('../../package.json', import.meta.url), 'utf8')) as { version: string }
).version;
