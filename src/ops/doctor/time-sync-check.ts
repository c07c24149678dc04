/**
 * `time_sync`: the clock is NTP-synchronised. A drifting clock breaks TLS validity checks,
 * token and cookie expiry, rate-limit windows shared through Redis, and the order of log lines
 * across nodes.
 */
import type { CheckResult, DoctorCheck } from './doctor-check.js';

const FIX = 'timedatectl set-ntp true (systemd-timesyncd), or install and start chrony';

/** The `time_sync` check. */
export const timeSyncCheck: DoctorCheck = (facts): CheckResult => {
  const sync = facts.timeSync;
  switch (sync.state) {
    case 'synchronised':
      return {
        id: 'time_sync',
        status: 'pass',
        value: 'synchronised',
        expected: 'synchronised',
        message: `clock synchronised (${sync.source})`,
        fix: '',
      };
    case 'unsynchronised':
      return {
        id: 'time_sync',
        status: 'fail',
        value: 'unsynchronised',
        expected: 'synchronised',
        message: `clock not synchronised (${sync.source}): TLS validity, token expiry and log times drift`,
        fix: FIX,
      };
    case 'unknown':
      return {
        id: 'time_sync',
        status: 'warn',
        value: null,
        expected: 'synchronised',
        message: `cannot tell: ${sync.tried.join('; ')}`,
        fix: FIX,
      };
  }
};
