/**
 * `workers_vs_cores`: one worker per core is the most a host can run in parallel; more workers
 * than cores take turns on the CPU, which adds latency under load and gains no throughput.
 */
import type { CheckResult, DoctorCheck } from './doctor-check.js';
import { resolvedWorkers } from './doctor-sizing.js';

/** The `workers_vs_cores` check. */
export const workersCheck: DoctorCheck = (facts, sizing): CheckResult => {
  const workers = resolvedWorkers(sizing, facts.cores);
  const cores = `${facts.cores} core${facts.cores === 1 ? '' : 's'}`;
  const expected = `<= ${facts.cores}`;
  if (sizing.workers === 'auto') {
    return {
      id: 'workers_vs_cores',
      status: 'pass',
      value: `auto (${workers})`,
      expected,
      message: `workers: auto starts one per core: ${workers} on ${cores}`,
      fix: '',
    };
  }
  if (workers > facts.cores) {
    return {
      id: 'workers_vs_cores',
      status: 'warn',
      value: String(workers),
      expected,
      message: `${workers} workers on ${cores} (${sizing.file}): they take turns on the CPU, adding latency`,
      fix: `workers: auto (or at most ${facts.cores}) in ${sizing.file}`,
    };
  }
  return {
    id: 'workers_vs_cores',
    status: 'pass',
    value: String(workers),
    expected,
    message: `${workers} worker${workers === 1 ? '' : 's'} on ${cores} (${sizing.file})`,
    fix: '',
  };
};
