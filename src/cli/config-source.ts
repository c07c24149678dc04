/** Where `sluice start` finds its config when no `-c` is given. */
import { existsSync } from 'node:fs';
import { resolve } from 'node:path';

/** The config `sluice start` uses without `-c`: ./sluice.yaml (or .yml, sluice.config.ts/.js) when present, else none (the demo). */
export function defaultConfigFile(cwd = process.cwd()): string | null {
  for (const name of ['sluice.yaml', 'sluice.yml', 'sluice.config.ts', 'sluice.config.js']) {
    if (existsSync(resolve(cwd, name))) return name;
  }
  return null;
}
