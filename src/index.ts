/** sluice's public API: create and run a server from a config object, and type configs. */
export { defineConfig } from './config/define-config.js';
export type { SluiceConfigInput } from './config/schema.js';
export type { ResolvedConfig } from './config/types.js';
export type { ErrorCode } from './errors/catalogue.js';
export { SluiceError } from './errors/sluice-error.js';
export { createSluice, type Sluice } from './runtime/create-sluice.js';
export type { BoundAddress, SluiceAddresses } from './runtime/instance.js';
