/**
 * The doctor's pure checks: facts and sizing in, one result per check id out. Each test starts from
 * a host that passes everything and changes one fact.
 */
import { describe, expect, it } from 'vitest';
import { loadConfigText } from '../../src/config/load.js';
import { countByStatus, exitCodeFor, runChecks } from '../../src/ops/doctor/checks.js';
import { CHECK_IDS, type CheckId, type CheckResult } from '../../src/ops/doctor/doctor-check.js';
import {
  type DoctorSizing,
  NO_CONFIG_SIZING,
  openFilesNeeded,
  sizingFromConfig,
} from '../../src/ops/doctor/doctor-sizing.js';
import type { HostFacts } from '../../src/ops/doctor/host-facts.js';
import { nofileNeeded, RECOMMENDED_NOFILE, SYSCTL_SETTINGS } from '../../src/ops/host-tuning.js';

const TUNED: HostFacts = {
  root: '/',
  sysctl: {
    ...Object.fromEntries(SYSCTL_SETTINGS.map((s) => [s.key, s.value])),
    'fs.nr_open': '1048576',
    'net.ipv4.tcp_migrate_req': '1',
  },
  nofile: { soft: 1048576, hard: 1048576 },
  limitsConf: [],
  timeSync: { state: 'synchronised', source: '/run/systemd/timesync/synchronized' },
  caBundle: { state: 'found', path: '/etc/ssl/certs/ca-certificates.crt', certificates: 140 },
  sshd: {
    state: 'read',
    settings: { permitrootlogin: 'no', passwordauthentication: 'no', allowusers: 'deploy' },
    origins: {
      permitrootlogin: '/etc/ssh/sshd_config',
      passwordauthentication: '/etc/ssh/sshd_config',
      allowusers: '/etc/ssh/sshd_config',
    },
    files: ['/etc/ssh/sshd_config'],
  },
  uid: 1000,
  nodeVersion: '22.12.0',
  cores: 8,
};

function facts(over: Partial<HostFacts> = {}): HostFacts {
  return { ...TUNED, ...over };
}

function sysctl(over: Record<string, string | null>): HostFacts {
  return facts({ sysctl: { ...TUNED.sysctl, ...over } });
}

function check(id: CheckId, f: HostFacts, sizing: DoctorSizing = NO_CONFIG_SIZING): CheckResult {
  const found = runChecks(f, sizing).filter((r) => r.id === id);
  expect(found).toHaveLength(1);
  return found[0]!;
}

function sizingOf(yaml: string): DoctorSizing {
  const result = loadConfigText(yaml, 'sluice.yaml', {});
  if (!result.ok) throw new Error(JSON.stringify(result.problems));
  // Users are looked up in a fixture host's /etc/passwd (it has sluice), not this one's.
  return sizingFromConfig(result.config, 'sluice.yaml', 'test/fixtures/hosts/basic/');
}

const SIZED = `version: 1
workers: 4
servers:
  - listen: "127.0.0.1:18480"
    limits: { max_connections: 20000 }
    routes: [{ respond: { body: "ok" } }]
`;

describe('runChecks', () => {
  it('returns every contract id exactly once, in contract order', () => {
    const results = runChecks(TUNED, NO_CONFIG_SIZING);
    expect(results.map((r) => r.id)).toEqual([...CHECK_IDS]);
    expect(CHECK_IDS).toHaveLength(17);
  });

  it('a tuned host passes everything; fix is empty on a pass', () => {
    const results = runChecks(TUNED, NO_CONFIG_SIZING);
    expect(results.filter((r) => r.status !== 'pass')).toEqual([]);
    expect(results.every((r) => r.fix === '' && r.message !== '' && r.expected !== '')).toBe(true);
    expect(exitCodeFor(results)).toBe(0);
  });

  it('exit code 1 iff a check fails; warns alone keep 0', () => {
    expect(exitCodeFor(runChecks(facts({ uid: 0 }), NO_CONFIG_SIZING))).toBe(0);
    expect(exitCodeFor(runChecks(sysctl({ 'net.core.somaxconn': '128' }), NO_CONFIG_SIZING))).toBe(1);
  });

  it('no fact at all: every host check is a warn (cannot tell), never a throw', () => {
    const empty: HostFacts = {
      ...TUNED,
      sysctl: {},
      nofile: null,
      limitsConf: null,
      timeSync: { state: 'unknown', tried: ['no /run/systemd/timesync/synchronized'] },
      caBundle: { state: 'missing', tried: ['/etc/ssl/certs/ca-certificates.crt'] },
      sshd: { state: 'absent', path: '/etc/ssh/sshd_config' },
    };
    const results = runChecks(empty, NO_CONFIG_SIZING);
    const host = results.filter(
      (r) => !['running_as_root', 'node_version', 'workers_vs_cores'].includes(r.id),
    );
    expect(host).toHaveLength(14);
    for (const r of host) {
      expect(r.status, r.id).toBe('warn');
      expect(r.value, r.id).toBeNull();
    }
    expect(countByStatus(results)).toEqual({ pass: 3, warn: 14, fail: 0 });
  });
});

describe('sysctl checks', () => {
  it('at-least settings fail below the recommendation, with the sysctl fix', () => {
    const r = check('somaxconn', sysctl({ 'net.core.somaxconn': '4096' }));
    expect(r).toMatchObject({ status: 'fail', value: '4096', expected: '>= 65535' });
    expect(r.fix).toBe('sysctl -w net.core.somaxconn=65535 (persist: sluice init sysctl)');
    expect(check('rmem_default', sysctl({ 'net.core.rmem_default': '212992' })).status).toBe('fail');
    expect(check('wmem_default', sysctl({ 'net.core.wmem_default': '1048576' })).status).toBe('pass');
  });

  it('file-max as large as systemd sets it (2^63-1) passes', () => {
    expect(check('file_max', sysctl({ 'fs.file-max': '9223372036854775807' })).status).toBe('pass');
  });

  it('tcp_fin_timeout: at most 30 s', () => {
    expect(check('tcp_fin_timeout', sysctl({ 'net.ipv4.tcp_fin_timeout': '15' })).status).toBe('pass');
    expect(check('tcp_fin_timeout', sysctl({ 'net.ipv4.tcp_fin_timeout': '60' }))).toMatchObject({
      status: 'fail',
      expected: '<= 30',
    });
  });

  it('tcp_tw_reuse: 1 passes, 2 (loopback only) warns, 0 fails', () => {
    expect(check('tcp_tw_reuse', sysctl({ 'net.ipv4.tcp_tw_reuse': '2' })).status).toBe('warn');
    expect(check('tcp_tw_reuse', sysctl({ 'net.ipv4.tcp_tw_reuse': '0' })).status).toBe('fail');
  });

  it('ip_local_port_range: must cover 1024-65535; the fix quotes the range', () => {
    const narrow = check('ip_local_port_range', sysctl({ 'net.ipv4.ip_local_port_range': '32768 60999' }));
    expect(narrow.status).toBe('fail');
    expect(narrow.message).toContain('28232 ports');
    expect(narrow.fix).toContain('sysctl -w net.ipv4.ip_local_port_range="1024 65535"');
    expect(
      check('ip_local_port_range', sysctl({ 'net.ipv4.ip_local_port_range': '1024 65535' })).status,
    ).toBe('pass');
    expect(
      check('ip_local_port_range', sysctl({ 'net.ipv4.ip_local_port_range': '1025 65535' })).status,
    ).toBe('fail');
  });

  it('unreadable or malformed values are "cannot tell" warns', () => {
    const missing = check('tcp_max_syn_backlog', sysctl({ 'net.ipv4.tcp_max_syn_backlog': null }));
    expect(missing).toMatchObject({ status: 'warn', value: null });
    expect(missing.message).toMatch(/^cannot tell: \/proc\/sys\/net\/ipv4\/tcp_max_syn_backlog/);
    expect(check('somaxconn', sysctl({ 'net.core.somaxconn': 'lots' })).status).toBe('warn');
    expect(check('ip_local_port_range', sysctl({ 'net.ipv4.ip_local_port_range': '1024' })).status).toBe(
      'warn',
    );
    // tcp_tw_reuse, compared for equality, failed on these as if they were a wrong value.
    for (const value of ['abc', '1 x', '']) {
      expect(check('tcp_tw_reuse', sysctl({ 'net.ipv4.tcp_tw_reuse': value }))).toMatchObject({
        status: 'warn',
        value,
        message: `cannot tell: ${JSON.stringify(value)} is not a number`,
        fix: 'check with: sysctl net.ipv4.tcp_tw_reuse',
      });
    }
    expect(check('tcp_tw_reuse', sysctl({ 'net.ipv4.tcp_tw_reuse': '1' })).status).toBe('pass');
  });
});

describe('sizing from -c', () => {
  it('workers: 4 × max_connections 20000 raises the expected nofile to nofileNeeded(4, 20000)', () => {
    const sizing = sizingOf(SIZED);
    expect(sizing).toMatchObject({ workers: 4, connectionsPerWorker: 20000, backlog: 4096, user: null });
    const needed = nofileNeeded(4, 20000);
    expect(needed).toBe(161024);
    const r = check('nofile', facts({ nofile: { soft: 65536, hard: 65536 } }), sizing);
    expect(r).toMatchObject({ status: 'fail', value: '65536', expected: `>= ${needed}` });
    expect(r.message).toContain('sluice.yaml needs 161024 (4 workers × 20000 connections × 2 + 1024)');
    expect(r.fix).toContain('LimitNOFILE=161024');
    // The same host without -c passes.
    expect(check('nofile', facts({ nofile: { soft: 65536, hard: 65536 } })).status).toBe('pass');
  });

  it('never expects less than the recommendation', () => {
    const small = sizingOf(
      'servers: [{ listen: 8080, limits: { max_connections: 10 }, routes: [{ respond: { body: "x" } }] }]',
    );
    expect(check('nofile', TUNED, small).expected).toBe(`>= ${RECOMMENDED_NOFILE}`);
  });

  it('workers: auto counts the cores of the facts', () => {
    const auto = sizingOf('servers: [{ listen: 8080, routes: [{ respond: { body: "x" } }] }]');
    expect(openFilesNeeded(auto, 8)?.files).toBe(nofileNeeded(8, 10000));
  });

  // The default server's limit is the one enforced on an address (the first listed here), and the
  // one init limits/systemd size LimitNOFILE by: the doctor sized it by the largest (3000).
  it("max_connections: the default server's per address, summed over addresses, as init sizes it", () => {
    const sizing = sizingOf(`servers:
  - name: a
    listen: "127.0.0.1:18480"
    limits: { max_connections: 500 }
    routes: [{ respond: { body: "x" } }]
  - name: b
    server_name: b.example
    listen: "127.0.0.1:18480"
    limits: { max_connections: 3000, backlog: 8192 }
    routes: [{ respond: { body: "x" } }]
  - name: c
    listen: ["127.0.0.1:18481", "127.0.0.1:18482"]
    limits: { max_connections: 1000 }
    routes: [{ respond: { body: "x" } }]
`);
    expect(sizing.connectionsPerWorker).toBe(500 + 1000 + 1000);
    expect(sizing.backlog).toBe(8192);
  });

  it('file_max is raised to what the config needs when that is more than 1000000', () => {
    const big = sizingOf(`workers: 32
servers:
  - listen: 8080
    limits: { max_connections: 100000 }
    routes: [{ respond: { body: "x" } }]
`);
    const r = check('file_max', sysctl({ 'fs.file-max': '2000000' }), big);
    expect(r).toMatchObject({ status: 'fail', expected: `>= ${nofileNeeded(32, 100000)}` });
    expect(r.fix).toBe(`sysctl -w fs.file-max=${nofileNeeded(32, 100000)} (persist: sluice init sysctl)`);
  });

  it('somaxconn and tcp_max_syn_backlog are raised to a configured backlog above 65535', () => {
    const sizing: DoctorSizing = {
      ...NO_CONFIG_SIZING,
      file: 'x.yaml',
      connectionsPerWorker: 1,
      backlog: 100000,
    };
    expect(check('somaxconn', TUNED, sizing)).toMatchObject({ status: 'fail', expected: '>= 100000' });
    expect(check('tcp_max_syn_backlog', TUNED, sizing).expected).toBe('>= 100000');
  });
});

describe('nofile', () => {
  it('judges the hard limit: Node raises its soft limit to it', () => {
    const r = check('nofile', facts({ nofile: { soft: 1024, hard: 65536 } }));
    expect(r).toMatchObject({ status: 'pass', value: '65536' });
    expect(r.message).toContain('soft 1024');
  });

  it('fails below 65536 and names fs.nr_open when it caps the fix', () => {
    const r = check(
      'nofile',
      facts({ nofile: { soft: 4096, hard: 4096 }, sysctl: { ...TUNED.sysctl, 'fs.nr_open': '32768' } }),
    );
    expect(r.status).toBe('fail');
    expect(r.message).toContain('fs.nr_open 32768');
  });

  it('unlimited passes', () => {
    const inf = Number.POSITIVE_INFINITY;
    expect(check('nofile', facts({ nofile: { soft: inf, hard: inf } }))).toMatchObject({
      status: 'pass',
      value: 'unlimited',
    });
  });

  it('reports what limits.conf sets', () => {
    const r = check(
      'nofile',
      facts({
        limitsConf: [{ file: '/etc/security/limits.conf', domain: '*', type: 'soft', value: '1024' }],
      }),
    );
    expect(r.message).toContain('limits.conf nofile: * soft 1024');
  });
});

describe('time_sync and ca_bundle', () => {
  it('time_sync: synchronised passes, unsynchronised fails, unknown warns', () => {
    expect(check('time_sync', TUNED).status).toBe('pass');
    const off = check('time_sync', facts({ timeSync: { state: 'unsynchronised', source: 'timedatectl' } }));
    expect(off).toMatchObject({ status: 'fail', value: 'unsynchronised' });
    const unknown = check(
      'time_sync',
      facts({ timeSync: { state: 'unknown', tried: ['chronyc not installed'] } }),
    );
    expect(unknown).toMatchObject({ status: 'warn', value: null });
    expect(unknown.message).toBe('cannot tell: chronyc not installed');
  });

  it('ca_bundle: found with certificates passes, empty fails, none found warns', () => {
    expect(check('ca_bundle', TUNED)).toMatchObject({
      status: 'pass',
      value: '/etc/ssl/certs/ca-certificates.crt',
    });
    expect(
      check('ca_bundle', facts({ caBundle: { state: 'found', path: '/etc/ssl/cert.pem', certificates: 0 } }))
        .status,
    ).toBe('fail');
    expect(
      check('ca_bundle', facts({ caBundle: { state: 'missing', tried: ['/etc/ssl/cert.pem'] } })).status,
    ).toBe('warn');
  });
});

describe('sshd checks', () => {
  function sshd(settings: Record<string, string>, origins: Record<string, string> = {}): HostFacts {
    return facts({ sshd: { state: 'read', settings, origins, files: ['/etc/ssh/sshd_config'] } });
  }

  it("unset keywords take OpenSSH's defaults: root by key (warn), passwords on (fail), everyone (fail)", () => {
    const f = sshd({});
    expect(check('sshd_root_login', f)).toMatchObject({
      status: 'warn',
      value: 'prohibit-password (default)',
    });
    expect(check('sshd_password_auth', f)).toMatchObject({ status: 'fail', value: 'yes (default)' });
    expect(check('sshd_allow_users', f)).toMatchObject({ status: 'fail', value: null });
  });

  it('PermitRootLogin yes fails; the fix is an sshd_config line', () => {
    const r = check(
      'sshd_root_login',
      sshd({ permitrootlogin: 'yes' }, { permitrootlogin: '/etc/ssh/sshd_config' }),
    );
    expect(r.status).toBe('fail');
    expect(r.fix).toMatch(/^PermitRootLogin no in \/etc\/ssh\/sshd_config;/);
  });

  it('a drop-in that turns passwords on is named, and the fix goes there', () => {
    const dropIn = '/etc/ssh/sshd_config.d/50-cloud-init.conf';
    const r = check(
      'sshd_password_auth',
      sshd({ passwordauthentication: 'yes' }, { passwordauthentication: dropIn }),
    );
    expect(r.message).toContain(`set in ${dropIn}`);
    expect(r.fix).toContain(`PasswordAuthentication no in ${dropIn}`);
  });

  it('passwords off but PAM keyboard-interactive on still asks for passwords: warn', () => {
    const r = check('sshd_password_auth', sshd({ passwordauthentication: 'no', usepam: 'yes' }));
    expect(r.status).toBe('warn');
    expect(r.fix).toContain('KbdInteractiveAuthentication no');
    expect(
      check(
        'sshd_password_auth',
        sshd({ passwordauthentication: 'no', usepam: 'yes', kbdinteractiveauthentication: 'no' }),
      ).status,
    ).toBe('pass');
  });

  it('AllowGroups restricts logins as AllowUsers does', () => {
    expect(check('sshd_allow_users', sshd({ allowgroups: 'ops' }))).toMatchObject({
      status: 'pass',
      value: 'AllowGroups ops',
    });
  });

  it('no sshd_config: "sshd not installed" warns; an unreadable one is "cannot tell"', () => {
    const absent = facts({ sshd: { state: 'absent', path: '/etc/ssh/sshd_config' } });
    for (const id of ['sshd_root_login', 'sshd_password_auth', 'sshd_allow_users'] as const) {
      const r = check(id, absent);
      expect(r.status).toBe('warn');
      expect(r.message).toContain('sshd not installed');
    }
    const locked = facts({ sshd: { state: 'unreadable', path: '/etc/ssh/sshd_config', reason: 'EACCES' } });
    expect(check('sshd_root_login', locked).message).toBe('cannot tell: /etc/ssh/sshd_config: EACCES');
  });
});

describe('process checks', () => {
  it('running_as_root: a user passes; root warns without user:, passes with it', () => {
    expect(check('running_as_root', TUNED)).toMatchObject({ status: 'pass', value: 'uid 1000' });
    expect(check('running_as_root', facts({ uid: 0 }))).toMatchObject({
      status: 'warn',
      value: 'root (uid 0)',
    });
    const withUser = sizingOf(
      'user: sluice\nservers: [{ listen: 8080, routes: [{ respond: { body: "x" } }] }]',
    );
    const r = check('running_as_root', facts({ uid: 0 }), withUser);
    expect(r.status).toBe('pass');
    expect(r.message).toContain('drop to user sluice');
    expect(check('running_as_root', facts({ uid: null })).status).toBe('warn');
  });

  // What counts is the uid the user has in the host's /etc/passwd (under --root in tests).
  it('running_as_root: user: root or 0 warns as no user: does; a user not in /etc/passwd fails', () => {
    const hostRoot = 'test/fixtures/hosts/basic/';
    const sizingFor = (user: string) => {
      const result = loadConfigText(
        `user: "${user}"\nservers: [{ listen: 8080, routes: [{ respond: { body: "x" } }] }]`,
        'sluice.yaml',
        {},
      );
      if (!result.ok) throw new Error(JSON.stringify(result.problems));
      return sizingFromConfig(result.config, 'sluice.yaml', hostRoot);
    };
    for (const user of ['root', '0']) {
      const r = check('running_as_root', facts({ uid: 0 }), sizingFor(user));
      expect(r.status).toBe('warn');
      expect(r.message).toBe(
        `root, and sluice.yaml sets user: ${user}, which is uid 0: every worker keeps root`,
      );
    }
    expect(check('running_as_root', facts({ uid: 0 }), sizingFor('sluice')).status).toBe('pass');
    expect(check('running_as_root', facts({ uid: 0 }), sizingFor('1000')).status).toBe('pass');
    const missing = check('running_as_root', facts({ uid: 0 }), sizingFor('nosuchuser'));
    expect(missing.status).toBe('fail');
    expect(missing.message).toContain('user: nosuchuser, which is not in /etc/passwd');
  });

  it('node_version: 20.18 is the floor; 22.12+ mentions SO_REUSEPORT and tcp_migrate_req', () => {
    expect(check('node_version', facts({ nodeVersion: '20.17.0' })).status).toBe('fail');
    expect(check('node_version', facts({ nodeVersion: '18.20.4' })).status).toBe('fail');
    const lts20 = check('node_version', facts({ nodeVersion: '20.18.0' }));
    expect(lts20.status).toBe('pass');
    expect(lts20.message).toContain('round-robin');
    expect(check('node_version', TUNED).message).toContain('workers bind with SO_REUSEPORT');
    const noMigrate = check('node_version', sysctl({ 'net.ipv4.tcp_migrate_req': '0' }));
    expect(noMigrate.message).toContain('tcp_migrate_req = 1');
  });

  it('workers_vs_cores: auto passes, more workers than cores warns', () => {
    expect(check('workers_vs_cores', TUNED)).toMatchObject({
      status: 'pass',
      value: 'auto (8)',
      expected: '<= 8',
    });
    const sizing = sizingOf(SIZED);
    expect(check('workers_vs_cores', facts({ cores: 8 }), sizing)).toMatchObject({
      status: 'pass',
      value: '4',
    });
    const over = check('workers_vs_cores', facts({ cores: 2 }), sizing);
    expect(over).toMatchObject({ status: 'warn', value: '4', expected: '<= 2' });
    expect(over.fix).toContain('workers: auto');
  });
});
