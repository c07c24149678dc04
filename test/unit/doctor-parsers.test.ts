/**
 * The doctor's file parsers: sshd_config (as sshd reads it), /proc/self/limits, limits.conf.
 */
import { describe, expect, it } from 'vitest';
import { parseLimitsConf } from '../../src/ops/doctor/limits-conf.js';
import { parseProcLimits } from '../../src/ops/doctor/proc-limits.js';
import { parseSshdConfig, type SshdConfigFile } from '../../src/ops/doctor/sshd-config.js';

const none = () => [];

function parse(text: string, includes: Record<string, SshdConfigFile[]> = {}) {
  return parseSshdConfig({ path: '/etc/ssh/sshd_config', text }, (pattern) => includes[pattern] ?? []);
}

describe('parseSshdConfig', () => {
  it('reads keywords case-insensitively, in both `Key value` and `Key=value` forms', () => {
    const { settings } = parse(
      'permitrootlogin no\nPASSWORDAUTHENTICATION=no\nUsePAM = yes\n  AllowUsers\talice  bob\n',
    );
    expect(settings).toEqual({
      permitrootlogin: 'no',
      passwordauthentication: 'no',
      usepam: 'yes',
      allowusers: 'alice bob',
    });
  });

  it('keeps the first value of a keyword, as sshd does', () => {
    expect(parse('PermitRootLogin yes\nPermitRootLogin no\n').settings.permitrootlogin).toBe('yes');
  });

  it('adds AllowUsers/AllowGroups/DenyUsers/DenyGroups lines up instead', () => {
    const { settings } = parse('AllowUsers alice\nAllowUsers bob carol\nDenyUsers eve\nDenyUsers mallory\n');
    expect(settings.allowusers).toBe('alice bob carol');
    expect(settings.denyusers).toBe('eve mallory');
  });

  it('ignores comment lines, words from an unquoted # on, and blank lines', () => {
    const { settings } = parse(
      '# PermitRootLogin yes\n\n   #PasswordAuthentication yes\nPermitRootLogin no # not yes\n',
    );
    expect(settings).toEqual({ permitrootlogin: 'no' });
  });

  it('keeps spaces inside double quotes', () => {
    expect(parse('Banner "/etc/my banner"\n').settings.banner).toBe('/etc/my banner');
  });

  it('does not take settings from Match blocks; `Match all` ends the block', () => {
    const { settings } = parse(
      [
        'Match User backup',
        '  PermitRootLogin yes',
        '  PasswordAuthentication yes',
        'Match all',
        'PasswordAuthentication no',
      ].join('\n'),
    );
    expect(settings).toEqual({ passwordauthentication: 'no' });
  });

  it('reads Includes in place, so a drop-in before a line wins over it; the origin names the file', () => {
    const parsed = parse(
      'Include /etc/ssh/sshd_config.d/*.conf\nPasswordAuthentication no\nPermitRootLogin no\n',
      {
        '/etc/ssh/sshd_config.d/*.conf': [
          { path: '/etc/ssh/sshd_config.d/50-cloud-init.conf', text: 'PasswordAuthentication yes\n' },
          { path: '/etc/ssh/sshd_config.d/60-users.conf', text: 'AllowUsers deploy\n' },
        ],
      },
    );
    expect(parsed.settings).toEqual({
      passwordauthentication: 'yes',
      allowusers: 'deploy',
      permitrootlogin: 'no',
    });
    expect(parsed.origins.passwordauthentication).toBe('/etc/ssh/sshd_config.d/50-cloud-init.conf');
    expect(parsed.origins.permitrootlogin).toBe('/etc/ssh/sshd_config');
    expect(parsed.files).toEqual([
      '/etc/ssh/sshd_config',
      '/etc/ssh/sshd_config.d/50-cloud-init.conf',
      '/etc/ssh/sshd_config.d/60-users.conf',
    ]);
  });

  it('a Match block in an included file ends with that file; Includes inside Match are skipped', () => {
    const parsed = parse('Include a.conf\nPermitRootLogin no\nMatch User x\nInclude b.conf\n', {
      'a.conf': [{ path: '/etc/ssh/a.conf', text: 'Match User y\nPermitRootLogin yes\n' }],
      'b.conf': [{ path: '/etc/ssh/b.conf', text: 'AllowUsers x\n' }],
    });
    expect(parsed.settings).toEqual({ permitrootlogin: 'no' });
    expect(parsed.files).toEqual(['/etc/ssh/sshd_config', '/etc/ssh/a.conf']);
  });

  it('stops an Include loop at 16 levels, like sshd', () => {
    const loop: SshdConfigFile = { path: '/etc/ssh/loop.conf', text: 'Include loop.conf\nAllowUsers a\n' };
    const parsed = parseSshdConfig({ path: '/etc/ssh/sshd_config', text: 'Include loop.conf\n' }, () => [
      loop,
    ]);
    expect(parsed.files).toHaveLength(17);
  });

  it('an empty file has no settings', () => {
    expect(parseSshdConfig({ path: 'x', text: '' }, none).settings).toEqual({});
  });
});

const PROC_LIMITS = `Limit                     Soft Limit           Hard Limit           Units
Max cpu time              unlimited            unlimited            seconds
Max processes             63704                63704                processes
Max open files            1024                 524288               files
Max locked memory         8388608              8388608              bytes
`;

describe('parseProcLimits', () => {
  it('reads the soft and hard open-files limits', () => {
    expect(parseProcLimits(PROC_LIMITS)).toEqual({ soft: 1024, hard: 524288 });
  });

  it('reads unlimited as Infinity', () => {
    expect(
      parseProcLimits('Max open files            unlimited            unlimited            files\n'),
    ).toEqual({
      soft: Number.POSITIVE_INFINITY,
      hard: Number.POSITIVE_INFINITY,
    });
  });

  it('null without the line, or with garbage in it', () => {
    expect(parseProcLimits('Max processes 1 1 processes\n')).toBeNull();
    expect(parseProcLimits('Max open files lots more files\n')).toBeNull();
    expect(parseProcLimits('')).toBeNull();
  });
});

describe('parseLimitsConf', () => {
  it('keeps nofile lines with their domain, type and value; skips comments and other items', () => {
    const text = [
      '# <domain> <type> <item> <value>',
      '*       soft    core      0',
      '*       soft    nofile    65536   # for logins',
      '@web    -       NOFILE    unlimited',
      'broken line',
      '#*      hard    nofile    1',
    ].join('\n');
    expect(parseLimitsConf(text, '/etc/security/limits.conf')).toEqual([
      { file: '/etc/security/limits.conf', domain: '*', type: 'soft', value: '65536' },
      { file: '/etc/security/limits.conf', domain: '@web', type: '-', value: 'unlimited' },
    ]);
  });
});
