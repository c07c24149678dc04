/**
 * `nofile`: open files per process. Every client connection is one file descriptor, every
 * upstream connection another; past the limit `accept()` fails with EMFILE and new clients hang
 * in the listen queue.
 *
 * The value is the hard limit of `/proc/self/limits`: Node raises its soft limit to the hard one
 * at start, so that is what a sluice started the same way (same shell, same unit) gets.
 */
import { RECOMMENDED_NOFILE } from '../host-tuning.js';
import type { CheckResult, DoctorCheck } from './doctor-check.js';
import { openFilesNeeded } from './doctor-sizing.js';
import type { LimitsConfEntry } from './host-facts.js';

/** The `nofile` check. */
export const nofileCheck: DoctorCheck = (facts, sizing): CheckResult => {
  const need = openFilesNeeded(sizing, facts.cores);
  const expected = Math.max(RECOMMENDED_NOFILE, need?.files ?? 0);
  const fix = `LimitNOFILE=${expected} in the systemd unit, or "* - nofile ${expected}" in /etc/security/limits.conf (sluice init limits); ulimit -n ${expected} in this shell`;
  const needNote = need === null ? '' : `; ${sizing.file} needs ${need.files} (${need.sum})`;
  const confNote = limitsConfNote(facts.limitsConf);
  const limit = facts.nofile;
  if (limit === null) {
    return {
      id: 'nofile',
      status: 'warn',
      value: null,
      expected: `>= ${expected}`,
      message: `cannot tell: /proc/self/limits is missing or has no "Max open files" line${needNote}${confNote}`,
      fix: `check with: ulimit -Hn`,
    };
  }
  const value = formatLimit(limit.hard);
  const softNote =
    limit.soft === limit.hard ? '' : ` (soft ${formatLimit(limit.soft)}: Node raises it to the hard limit)`;
  if (limit.hard >= expected) {
    return {
      id: 'nofile',
      status: 'pass',
      value,
      expected: `>= ${expected}`,
      message: `open files per process${softNote}${needNote}${confNote}`,
      fix: '',
    };
  }
  const nrOpen = Number(facts.sysctl['fs.nr_open'] ?? Number.NaN);
  const nrOpenNote =
    Number.isFinite(nrOpen) && nrOpen < expected
      ? `; fs.nr_open ${nrOpen} caps every limit: raise it first`
      : '';
  return {
    id: 'nofile',
    status: 'fail',
    value,
    expected: `>= ${expected}`,
    message: `${value} open files per process${softNote}: past it accept() fails with EMFILE${needNote}${nrOpenNote}${confNote}`,
    fix,
  };
};

/** `unlimited` for Infinity, else the number. */
function formatLimit(n: number): string {
  return Number.isFinite(n) ? String(n) : 'unlimited';
}

/** What limits.conf says about nofile, for the message: it covers PAM logins, not systemd services. */
function limitsConfNote(entries: readonly LimitsConfEntry[] | null): string {
  if (entries === null || entries.length === 0) return '';
  const shown = entries
    .slice(0, 3)
    .map((e) => `${e.domain} ${e.type} ${e.value}`)
    .join(', ');
  const more = entries.length > 3 ? ` and ${entries.length - 3} more` : '';
  return `; limits.conf nofile: ${shown}${more} (login sessions only)`;
}
