/**
 * `running_as_root`: who sluice would run as. Started as root it binds its ports, then the workers
 * drop to `user:` — so root is fine with `user:` set to another account; without it (or with
 * `user: root`) every worker, and every handler module, keeps root.
 */
import type { CheckResult, DoctorCheck } from './doctor-check.js';

/** The `running_as_root` check. */
export const runningAsRootCheck: DoctorCheck = (facts, sizing): CheckResult => {
  const expected = 'not root, or user: set';
  if (facts.uid === null) {
    return {
      id: 'running_as_root',
      status: 'warn',
      value: null,
      expected,
      message: 'cannot tell: this platform has no process.getuid()',
      fix: '',
    };
  }
  if (facts.uid !== 0) {
    return {
      id: 'running_as_root',
      status: 'pass',
      value: `uid ${facts.uid}`,
      expected,
      message: 'not root: ports below 1024 need root (then user:) or CAP_NET_BIND_SERVICE',
      fix: '',
    };
  }
  if (sizing.user !== null && sizing.userUid === null) {
    return {
      id: 'running_as_root',
      status: 'fail',
      value: 'root (uid 0)',
      expected,
      message: `${sizing.file} sets user: ${sizing.user}, which is not in /etc/passwd: the workers cannot switch to it`,
      fix: `useradd --system ${sizing.user} (sluice reads /etc/passwd, not NSS or LDAP), or a numeric uid`,
    };
  }
  if (sizing.user !== null && sizing.userUid !== 0) {
    return {
      id: 'running_as_root',
      status: 'pass',
      value: 'root (uid 0)',
      expected,
      message: `root binds the ports, then the workers drop to user ${sizing.user} (${sizing.file})`,
      fix: '',
    };
  }
  return {
    id: 'running_as_root',
    status: 'warn',
    value: 'root (uid 0)',
    expected,
    message:
      sizing.file === null
        ? 'root: without user: in the config, every worker keeps root'
        : sizing.user !== null
          ? `root, and ${sizing.file} sets user: ${sizing.user}, which is uid 0: every worker keeps root`
          : `root, and ${sizing.file} sets no user:, so every worker keeps root`,
    fix: 'user: sluice in the config (useradd --system sluice), or run sluice as an unprivileged user',
  };
};
