/**
 * `npm run reliability`: runs the fault, hostile-input and property tests with
 * SLUICE_RELIABILITY_OUT set, so each writes its counts into bench/results/reliability/, then
 * regenerates RELIABILITY.md (with the latest soak, see scripts/soak.ts). Exits with vitest's code.
 */
import { spawnSync } from 'node:child_process';
import { mkdirSync, rmSync, writeFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { RELIABILITY_DIR, writeReliability } from './reliability-report.js';

const ROOT = resolve(fileURLToPath(import.meta.url), '../..');
/** The tests that write figures. */
const SUITES = [
  'test/e2e/faults.test.ts',
  'test/e2e/runtime.test.ts',
  'test/e2e/runtime-reload.test.ts',
  'test/e2e/hostile.test.ts',
  'test/unit/fuzz-router.test.ts',
  'test/unit/fuzz-headers.test.ts',
  'test/unit/fuzz-config.test.ts',
];

const out = join(ROOT, RELIABILITY_DIR);
// Figures from an earlier run must not mix with this one's.
rmSync(out, { recursive: true, force: true });
mkdirSync(out, { recursive: true });
writeFileSync(join(out, '.date'), `${new Date().toISOString()}\n`);
const run = spawnSync('npx', ['vitest', 'run', ...SUITES], {
  cwd: ROOT,
  stdio: 'inherit',
  env: { ...process.env, SLUICE_RELIABILITY_OUT: out },
});
console.log(`wrote ${writeReliability(ROOT)}`);
process.exit(run.status ?? 1);
