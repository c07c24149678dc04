/**
 * The most worker processes `workers:` and `--workers` take. Each is a Node process of 60 MB or
 * more that takes a fraction of a second to start, so 1,000 of them need some 60 GB and minutes.
 * In a module of its own so that the CLI can check its flag without loading the config schema.
 */
export const MAX_WORKERS = 1024;
