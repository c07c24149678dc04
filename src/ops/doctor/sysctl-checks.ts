/**
 * The kernel settings of SYSCTL_SETTINGS, one check each, read from `/proc/sys`. A value short of
 * the recommendation (or of what the config needs, when it needs more) fails; an unreadable one
 * is "cannot tell" (warn). How each compares is stated here, once per setting.
 */
import { procSysPath, SYSCTL_SETTINGS, type SysctlSetting } from '../host-tuning.js';
import { type CheckId, type CheckResult, type DoctorCheck, isCheckId } from './doctor-check.js';
import { type DoctorSizing, openFilesNeeded } from './doctor-sizing.js';

/** How a host value meets the recommendation. */
export type Comparison = 'at-least' | 'at-most' | 'equal' | 'range';

/** The sysctl check ids: the ones SYSCTL_SETTINGS carries. */
type SysctlCheckId = Extract<
  CheckId,
  | 'file_max'
  | 'somaxconn'
  | 'tcp_max_syn_backlog'
  | 'ip_local_port_range'
  | 'tcp_tw_reuse'
  | 'tcp_fin_timeout'
  | 'rmem_default'
  | 'wmem_default'
>;

const COMPARISONS = {
  file_max: 'at-least',
  somaxconn: 'at-least',
  tcp_max_syn_backlog: 'at-least',
  ip_local_port_range: 'range',
  tcp_tw_reuse: 'equal',
  tcp_fin_timeout: 'at-most',
  rmem_default: 'at-least',
  wmem_default: 'at-least',
} as const satisfies Record<SysctlCheckId, Comparison>;

/** The eight sysctl checks, in SYSCTL_SETTINGS order; a setting the doctor has no rule for is skipped. */
export const sysctlChecks: DoctorCheck = (facts, sizing) => {
  const results: CheckResult[] = [];
  for (const setting of SYSCTL_SETTINGS) {
    if (!isCheckId(setting.id) || !(setting.id in COMPARISONS)) continue;
    const id = setting.id as SysctlCheckId;
    const { expected, note } = expectation(id, setting, facts.cores, sizing);
    results.push(judge(id, setting, COMPARISONS[id], expected, note, facts.sysctl[setting.key] ?? null));
  }
  return results;
};

/** How a host value of `setting` meets what is expected: `at-least` for one the doctor has no rule for. */
export function sysctlComparison(setting: SysctlSetting): Comparison {
  return setting.id in COMPARISONS ? COMPARISONS[setting.id as SysctlCheckId] : 'at-least';
}

/**
 * What the doctor expects of `setting` for `sizing` on a host with `cores` cores, and why (a note
 * that starts with `; ` when the config raises it). `sluice init sysctl -c` writes the same values.
 */
export function sysctlExpectation(
  setting: SysctlSetting,
  cores: number,
  sizing: DoctorSizing,
): { expected: string; note: string } {
  return expectation(setting.id as SysctlCheckId, setting, cores, sizing);
}

/** The recommended value, raised to what the config needs where it needs more. */
function expectation(
  id: SysctlCheckId,
  setting: SysctlSetting,
  cores: number,
  sizing: DoctorSizing,
): { expected: string; note: string } {
  const recommended = Number(setting.value);
  if (id === 'file_max') {
    const need = openFilesNeeded(sizing, cores);
    if (need === null) return { expected: setting.value, note: '' };
    return {
      expected: String(Math.max(recommended, need.files)),
      note: `; ${sizing.file} needs ${need.files} open files (${need.sum})`,
    };
  }
  if ((id === 'somaxconn' || id === 'tcp_max_syn_backlog') && sizing.backlog !== null) {
    return {
      expected: String(Math.max(recommended, sizing.backlog)),
      note: `; ${sizing.file} asks for a backlog of ${sizing.backlog}${id === 'somaxconn' ? ', which the kernel cuts to this value' : ''}`,
    };
  }
  return { expected: setting.value, note: '' };
}

function judge(
  id: SysctlCheckId,
  setting: SysctlSetting,
  comparison: Comparison,
  expected: string,
  note: string,
  value: string | null,
): CheckResult {
  const shownExpected = describeExpected(comparison, expected);
  const fix = `sysctl -w ${setting.key}=${expected.includes(' ') ? `"${expected}"` : expected} (persist: sluice init sysctl)`;
  const cannotTell = (why: string): CheckResult => ({
    id,
    status: 'warn',
    value,
    expected: shownExpected,
    message: `cannot tell: ${why}${note}`,
    fix: `check with: sysctl ${setting.key}`,
  });
  if (value === null) return cannotTell(`/${procSysPath(setting.key)} is missing or unreadable`);

  let status: 'pass' | 'warn' | 'fail';
  let detail = '';
  switch (comparison) {
    case 'at-least':
    case 'at-most': {
      const n = integer(value);
      if (n === null) return cannotTell(`${JSON.stringify(value)} is not a number`);
      const ok = comparison === 'at-least' ? n >= Number(expected) : n <= Number(expected);
      status = ok ? 'pass' : 'fail';
      break;
    }
    case 'equal': {
      // Malformed is "cannot tell", as for the other comparisons: not a value short of the one expected.
      const n = integer(value);
      if (n === null) return cannotTell(`${JSON.stringify(value)} is not a number`);
      status = n === Number(expected) ? 'pass' : 'fail';
      // tcp_tw_reuse 2, the default since Linux 4.19, reuses TIME_WAIT for loopback only.
      if (id === 'tcp_tw_reuse' && n === 2) {
        status = 'warn';
        detail = '2 = loopback connections only; ';
      }
      break;
    }
    case 'range': {
      const [low, high] = value.split(' ').map(integer);
      const [wantLow, wantHigh] = expected.split(' ').map(Number);
      if (low == null || high == null || wantLow === undefined || wantHigh === undefined) {
        return cannotTell(`${JSON.stringify(value)} is not a port range`);
      }
      status = low <= wantLow && high >= wantHigh ? 'pass' : 'fail';
      detail = `${Math.max(0, high - low + 1)} ports; `;
      break;
    }
  }
  return {
    id,
    status,
    value,
    expected: shownExpected,
    message: `${detail}${setting.why}${note}`,
    fix: status === 'pass' ? '' : fix,
  };
}

function describeExpected(comparison: Comparison, expected: string): string {
  switch (comparison) {
    case 'at-least':
      return `>= ${expected}`;
    case 'at-most':
      return `<= ${expected}`;
    case 'equal':
      return expected;
    case 'range':
      return `${expected} or wider`;
  }
}

function integer(text: string | undefined): number | null {
  return text !== undefined && /^\d+$/.test(text) ? Number(text) : null;
}
