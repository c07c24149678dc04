/**
 * `npm run soak`: a million requests through the built CLI with keep-alive churn and WebSocket
 * cycles (test/helpers/soak.ts), the worker's RSS and descriptors sampled every second. Writes
 * bench/results/soak-<date>.json, regenerates RELIABILITY.md, and exits 1 when a request failed
 * or RSS or descriptors grew 5 % or more after warm-up.
 *
 * SOAK_REQUESTS, SOAK_CONNECTIONS, SOAK_PER_CONNECTION and SOAK_WS_LANES change the shape.
 */
import { mkdirSync, writeFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { runSoak } from '../test/helpers/soak.js';
import { RESULTS_DIR, writeReliability } from './reliability-report.js';

const ROOT = resolve(fileURLToPath(import.meta.url), '../..');
/** Growth after warm-up the soak allows, per cent. */
const BOUND_PCT = 5;

const int = (name: string, fallback: number) => {
  const v = process.env[name];
  return v === undefined || v === '' ? fallback : Number.parseInt(v, 10);
};

const options = {
  requests: int('SOAK_REQUESTS', 1_000_000),
  connections: int('SOAK_CONNECTIONS', 16),
  perConnection: int('SOAK_PER_CONNECTION', 100),
  wsLanes: int('SOAK_WS_LANES', 1),
  warmupShare: 0.1,
};
console.log(
  `soak: ${options.requests.toLocaleString('en')} requests over ${options.connections} connections, ` +
    `a new connection every ${options.perConnection} requests, ${options.wsLanes} WebSocket lane(s)`,
);
const report = await runSoak({
  ...options,
  progress: (done, total, last) => {
    const sample = last ? `, worker ${(last.rssKb / 1024).toFixed(1)} MB RSS, ${last.fds} fds` : '';
    process.stdout.write(`\r  ${done.toLocaleString('en')} / ${total.toLocaleString('en')}${sample}   `);
  },
});
process.stdout.write('\n');
mkdirSync(join(ROOT, RESULTS_DIR), { recursive: true });
const file = join(RESULTS_DIR, `soak-${report.date.replaceAll(':', '-').replace('.', '-')}.json`);
writeFileSync(join(ROOT, file), `${JSON.stringify(report, null, 2)}\n`);
const page = writeReliability(ROOT);
const { samples: _samples, ...figures } = report;
console.log(JSON.stringify(figures, null, 2));
console.log(`wrote ${file} and ${page}`);
const ok = report.failed === 0 && report.rss_mb.growth_pct < BOUND_PCT && report.fds.growth_pct < BOUND_PCT;
if (!ok) {
  console.error(`soak: failures or growth of ${BOUND_PCT} % or more after warm-up`);
  process.exit(1);
}
