/**
 * `node_version`: sluice needs Node 20.18+. From 22.12 (and 23.1) each worker can bind its own
 * socket with SO_REUSEPORT so the kernel spreads connections; before, the primary hands them out
 * round-robin. That is a note, not a warning: both serve.
 */
import type { CheckResult, DoctorCheck } from './doctor-check.js';

/** The oldest Node sluice runs on (package.json `engines`). */
const MINIMUM: readonly [number, number] = [20, 18];

/** The `node_version` check. */
export const nodeVersionCheck: DoctorCheck = (facts): CheckResult => {
  const [major = 0, minor = 0] = facts.nodeVersion.split('.').map((p) => Number.parseInt(p, 10) || 0);
  const expected = `>= ${MINIMUM.join('.')}`;
  const value = facts.nodeVersion;
  if (major < MINIMUM[0] || (major === MINIMUM[0] && minor < MINIMUM[1])) {
    return {
      id: 'node_version',
      status: 'fail',
      value,
      expected,
      message: `sluice needs Node ${MINIMUM.join('.')} or newer`,
      fix: 'install Node 22 LTS (22.12+ lets workers bind with SO_REUSEPORT)',
    };
  }
  const reusePort = major > 23 || (major === 23 && minor >= 1) || (major === 22 && minor >= 12);
  if (!reusePort) {
    return {
      id: 'node_version',
      status: 'pass',
      value,
      expected,
      message: 'supported; the primary hands connections to workers round-robin (22.12+: SO_REUSEPORT)',
      fix: '',
    };
  }
  const migrate = facts.sysctl['net.ipv4.tcp_migrate_req'];
  return {
    id: 'node_version',
    status: 'pass',
    value,
    expected,
    message:
      migrate === '1'
        ? 'supported; workers bind with SO_REUSEPORT (tcp_migrate_req = 1)'
        : 'supported; SO_REUSEPORT needs net.ipv4.tcp_migrate_req = 1 (Linux 5.14+), else round-robin',
    fix: '',
  };
};
