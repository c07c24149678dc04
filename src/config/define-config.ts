/** `defineConfig` for typed `sluice.config.ts` files. */
import type { SluiceConfigInput } from './schema.js';

/** Returns `config` unchanged; it exists so editors type-check and complete a config written in TypeScript. */
export function defineConfig(config: SluiceConfigInput): SluiceConfigInput {
  return config;
}
