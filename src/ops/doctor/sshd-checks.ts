/**
 * `sshd_root_login`, `sshd_password_auth`, `sshd_allow_users`: the SSH daemon of an edge host,
 * which faces the same internet as sluice, takes keys only, no root, and named users only.
 *
 * Unset keywords take OpenSSH's defaults (PermitRootLogin prohibit-password since 7.0,
 * PasswordAuthentication yes). No sshd_config is a warn, not a pass: in a container the host's
 * sshd is out of sight, and a warn leaves the exit code alone.
 */
import type { CheckId, CheckResult, DoctorCheck } from './doctor-check.js';
import type { HostFacts } from './host-facts.js';

type SshdCheckId = Extract<CheckId, 'sshd_root_login' | 'sshd_password_auth' | 'sshd_allow_users'>;

const RELOAD = 'then reload sshd (systemctl reload ssh, or sshd)';

/** The three sshd checks. */
export const sshdChecks: DoctorCheck = (facts) => [rootLogin(facts), passwordAuth(facts), allowUsers(facts)];

/** A warn for every sshd check when sshd_config cannot be read, else null. */
function unreadable(id: SshdCheckId, facts: HostFacts, expected: string): CheckResult | null {
  const sshd = facts.sshd;
  if (sshd.state === 'absent') {
    return {
      id,
      status: 'warn',
      value: null,
      expected,
      message: `sshd not installed (no ${sshd.path}); in a container, check the host's sshd`,
      fix: '',
    };
  }
  if (sshd.state === 'unreadable') {
    return {
      id,
      status: 'warn',
      value: null,
      expected,
      message: `cannot tell: ${sshd.path}: ${sshd.reason}`,
      fix: 'run sluice doctor as root to read it',
    };
  }
  return null;
}

/** Where to write the line: the file that set the keyword (first value wins), else sshd_config. */
function writeIn(facts: HostFacts, keyword: string): string {
  const sshd = facts.sshd;
  const origin = sshd.state === 'read' ? sshd.origins[keyword] : undefined;
  return origin ?? '/etc/ssh/sshd_config, before any Match block';
}

/** " (set in FILE)" when a keyword came from an included file: that is where to change it. */
function originNote(facts: HostFacts, keyword: string): string {
  const sshd = facts.sshd;
  if (sshd.state !== 'read') return '';
  const origin = sshd.origins[keyword];
  return origin !== undefined && origin !== sshd.files[0] ? ` (set in ${origin})` : '';
}

function setting(facts: HostFacts, keyword: string): string | null {
  return facts.sshd.state === 'read' ? (facts.sshd.settings[keyword] ?? null) : null;
}

function rootLogin(facts: HostFacts): CheckResult {
  const expected = 'no';
  const early = unreadable('sshd_root_login', facts, expected);
  if (early) return early;
  const written = setting(facts, 'permitrootlogin');
  const value = (written ?? 'prohibit-password').toLowerCase();
  const shown = written ?? 'prohibit-password (default)';
  const fix = `PermitRootLogin no in ${writeIn(facts, 'permitrootlogin')}; ${RELOAD}`;
  const note = originNote(facts, 'permitrootlogin');
  if (value === 'no') {
    return {
      id: 'sshd_root_login',
      status: 'pass',
      value: shown,
      expected,
      message: `root cannot log in${note}`,
      fix: '',
    };
  }
  if (value === 'yes') {
    return {
      id: 'sshd_root_login',
      status: 'fail',
      value: shown,
      expected,
      message: `root can log in, with a password too if passwords are on${note}`,
      fix,
    };
  }
  return {
    id: 'sshd_root_login',
    status: 'warn',
    value: shown,
    expected,
    message: `root can log in with a key${note}; log in as a user and use sudo`,
    fix,
  };
}

function passwordAuth(facts: HostFacts): CheckResult {
  const expected = 'no';
  const early = unreadable('sshd_password_auth', facts, expected);
  if (early) return early;
  const written = setting(facts, 'passwordauthentication');
  const value = (written ?? 'yes').toLowerCase();
  const shown = written ?? 'yes (default)';
  const note = originNote(facts, 'passwordauthentication');
  if (value !== 'no') {
    return {
      id: 'sshd_password_auth',
      status: 'fail',
      value: shown,
      expected,
      message: `passwords are accepted: open to guessing from the internet${note}`,
      fix: `PasswordAuthentication no in ${writeIn(facts, 'passwordauthentication')}; ${RELOAD}`,
    };
  }
  // With UsePAM, keyboard-interactive asks PAM, which asks for the password anyway.
  const kbd = (
    setting(facts, 'kbdinteractiveauthentication') ??
    setting(facts, 'challengeresponseauthentication') ??
    'yes'
  ).toLowerCase();
  const pam = (setting(facts, 'usepam') ?? 'no').toLowerCase();
  if (kbd === 'yes' && pam === 'yes') {
    return {
      id: 'sshd_password_auth',
      status: 'warn',
      value: shown,
      expected,
      message: `PasswordAuthentication no, but UsePAM yes with KbdInteractiveAuthentication yes still asks for passwords${note}`,
      fix: `KbdInteractiveAuthentication no in ${writeIn(facts, 'kbdinteractiveauthentication')}; ${RELOAD}`,
    };
  }
  return {
    id: 'sshd_password_auth',
    status: 'pass',
    value: shown,
    expected,
    message: `keys only${note}`,
    fix: '',
  };
}

function allowUsers(facts: HostFacts): CheckResult {
  const expected = 'set';
  const early = unreadable('sshd_allow_users', facts, expected);
  if (early) return early;
  const users = setting(facts, 'allowusers');
  if (users !== null) {
    return {
      id: 'sshd_allow_users',
      status: 'pass',
      value: users,
      expected,
      message: `only these users may log in${originNote(facts, 'allowusers')}`,
      fix: '',
    };
  }
  // AllowGroups restricts logins the same way; sshd requires both to match when both are set.
  const groups = setting(facts, 'allowgroups');
  if (groups !== null) {
    return {
      id: 'sshd_allow_users',
      status: 'pass',
      value: `AllowGroups ${groups}`,
      expected,
      message: `only members of these groups may log in${originNote(facts, 'allowgroups')}`,
      fix: '',
    };
  }
  return {
    id: 'sshd_allow_users',
    status: 'fail',
    value: null,
    expected,
    message: 'every account with a key or password may log in',
    fix: `AllowUsers <the admin users> in /etc/ssh/sshd_config, before any Match block; ${RELOAD}`,
  };
}
