/**
 * The doctor's checks, registered in one place, and `runChecks`: facts and sizing in, one result
 * per check id out, in CHECK_IDS order. Pure: the same facts give the same report.
 */
import { caBundleCheck } from './ca-bundle-check.js';
import { CHECK_IDS, type CheckResult, type CheckStatus, type DoctorCheck } from './doctor-check.js';
import type { DoctorSizing } from './doctor-sizing.js';
import type { HostFacts } from './host-facts.js';
import { nodeVersionCheck } from './node-version-check.js';
import { nofileCheck } from './nofile-check.js';
import { runningAsRootCheck } from './running-as-root-check.js';
import { sshdChecks } from './sshd-checks.js';
import { sysctlChecks } from './sysctl-checks.js';
import { timeSyncCheck } from './time-sync-check.js';
import { workersCheck } from './workers-check.js';

/** Every check, in report order. */
export const DOCTOR_CHECKS: readonly DoctorCheck[] = [
  nofileCheck,
  sysctlChecks,
  timeSyncCheck,
  caBundleCheck,
  sshdChecks,
  runningAsRootCheck,
  nodeVersionCheck,
  workersCheck,
];

/** Runs every check; the result holds each of CHECK_IDS exactly once, in that order. */
export function runChecks(facts: HostFacts, sizing: DoctorSizing): CheckResult[] {
  const results = DOCTOR_CHECKS.flatMap((check) => check(facts, sizing));
  const order = (r: CheckResult) => CHECK_IDS.indexOf(r.id);
  return results.sort((a, b) => order(a) - order(b));
}

/** The exit code a report asks for: 1 when any check fails, else 0. */
export function exitCodeFor(results: readonly CheckResult[]): 0 | 1 {
  return results.some((r) => r.status === 'fail') ? 1 : 0;
}

/** How many checks have each status. */
export function countByStatus(results: readonly CheckResult[]): Record<CheckStatus, number> {
  const counts: Record<CheckStatus, number> = { pass: 0, warn: 0, fail: 0 };
  for (const r of results) counts[r.status]++;
  return counts;
}
