/**
 * The probe on fixture host trees (test/fixtures/doctor/{good,bad,missing}), and the checks on
 * what it read: good passes every file-based check, bad fails most, missing only warns.
 */
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { runChecks } from '../../src/ops/doctor/checks.js';
import { CHECK_IDS, type CheckResult } from '../../src/ops/doctor/doctor-check.js';
import { NO_CONFIG_SIZING } from '../../src/ops/doctor/doctor-sizing.js';
import { probeHost } from '../../src/ops/doctor/probe.js';

const FIXTURES = resolve(import.meta.dirname, '../fixtures/doctor');
/** Checks that read host files; the other three read this process. */
const HOST_IDS = CHECK_IDS.filter(
  (id) => !['running_as_root', 'node_version', 'workers_vs_cores'].includes(id),
);

function probe(tree: string) {
  return probeHost({ root: join(FIXTURES, tree), live: false, env: { SSL_CERT_FILE: '/nowhere.pem' } });
}

function byId(results: CheckResult[]): Record<string, CheckResult> {
  return Object.fromEntries(results.map((r) => [r.id, r]));
}

describe('probeHost on fixture trees', () => {
  it('good: reads every fact', async () => {
    const facts = await probe('good');
    expect(facts.sysctl).toMatchObject({
      'fs.file-max': '9223372036854775807',
      'net.core.somaxconn': '65535',
      'net.ipv4.ip_local_port_range': '1024 65535',
      'fs.nr_open': '1048576',
      'net.ipv4.tcp_migrate_req': '1',
    });
    expect(facts.nofile).toEqual({ soft: 1048576, hard: 1048576 });
    expect(facts.limitsConf?.map((e) => `${e.file} ${e.domain}`)).toEqual([
      '/etc/security/limits.conf *',
      '/etc/security/limits.conf root',
      '/etc/security/limits.d/90-sluice.conf sluice',
    ]);
    expect(facts.timeSync).toEqual({ state: 'synchronised', source: '/run/systemd/timesync/synchronized' });
    // Not live: $SSL_CERT_FILE belongs to this host, not to the tree.
    expect(facts.caBundle).toEqual({
      state: 'found',
      path: '/etc/ssl/certs/ca-certificates.crt',
      certificates: 1,
    });
    expect(facts.sshd).toMatchObject({
      state: 'read',
      settings: {
        permitrootlogin: 'no',
        passwordauthentication: 'no',
        allowusers: 'deploy ops',
        kbdinteractiveauthentication: 'no',
        x11forwarding: 'no',
      },
      files: ['/etc/ssh/sshd_config', '/etc/ssh/sshd_config.d/10-users.conf'],
    });
    expect(facts.nodeVersion).toBe(process.versions.node);
  });

  it('good: every file-based check passes', async () => {
    const results = byId(runChecks(await probe('good'), NO_CONFIG_SIZING));
    for (const id of HOST_IDS) expect(results[id]?.status, id).toBe('pass');
  });

  it('bad: fails 13 of the 14 file-based checks (time sync cannot fail from files: warn)', async () => {
    const results = byId(runChecks(await probe('bad'), NO_CONFIG_SIZING));
    for (const id of HOST_IDS) expect(results[id]?.status, id).toBe(id === 'time_sync' ? 'warn' : 'fail');
    expect(results.nofile?.value).toBe('4096');
    expect(results.sshd_password_auth?.message).toContain('/etc/ssh/sshd_config.d/50-cloud-init.conf');
    expect(results.ca_bundle?.message).toContain('holds no PEM certificate');
  });

  it('missing: no files at all: every file-based check warns, none throws', async () => {
    const facts = await probe('missing');
    expect(facts.nofile).toBeNull();
    expect(facts.limitsConf).toBeNull();
    expect(facts.sshd).toEqual({ state: 'absent', path: '/etc/ssh/sshd_config' });
    const results = byId(runChecks(facts, NO_CONFIG_SIZING));
    for (const id of HOST_IDS) {
      expect(results[id]?.status, id).toBe('warn');
      expect(results[id]?.value, id).toBeNull();
    }
  });

  it('a root that does not exist is the same as an empty one', async () => {
    const facts = await probeHost({ root: join(FIXTURES, 'no-such-tree'), live: false, env: {} });
    expect(Object.values(facts.sysctl).every((v) => v === null)).toBe(true);
    expect(facts.caBundle.state).toBe('missing');
  });
});

describe('probeHost edge cases', () => {
  let dir: string;
  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), 'sluice-doctor-'));
  });
  afterAll(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  it('an sshd_config that cannot be read is "unreadable", not absent', async () => {
    const root = join(dir, 'eisdir');
    await mkdir(join(root, 'etc/ssh/sshd_config'), { recursive: true });
    const facts = await probeHost({ root, live: false, env: {} });
    expect(facts.sshd).toMatchObject({ state: 'unreadable', reason: 'EISDIR' });
  });

  it('relative Include globs resolve under /etc/ssh, sorted; dotfiles and misses are skipped', async () => {
    const root = join(dir, 'includes');
    await mkdir(join(root, 'etc/ssh/conf.d'), { recursive: true });
    await writeFile(join(root, 'etc/ssh/sshd_config'), 'Include conf.d/*.conf nothing/*.conf absent.conf\n');
    await writeFile(join(root, 'etc/ssh/conf.d/20-b.conf'), 'PermitRootLogin yes\n');
    await writeFile(join(root, 'etc/ssh/conf.d/10-a.conf'), 'PermitRootLogin no\n');
    await writeFile(join(root, 'etc/ssh/conf.d/.hidden.conf'), 'AllowUsers eve\n');
    await writeFile(join(root, 'etc/ssh/conf.d/30-c.txt'), 'AllowUsers mallory\n');
    const facts = await probeHost({ root, live: false, env: {} });
    expect(facts.sshd).toEqual({
      state: 'read',
      settings: { permitrootlogin: 'no' },
      origins: { permitrootlogin: '/etc/ssh/conf.d/10-a.conf' },
      files: ['/etc/ssh/sshd_config', '/etc/ssh/conf.d/10-a.conf', '/etc/ssh/conf.d/20-b.conf'],
    });
  });

  it('live: $SSL_CERT_FILE is looked at first', async () => {
    const root = join(dir, 'certfile');
    await mkdir(join(root, 'opt'), { recursive: true });
    await writeFile(
      join(root, 'opt/ca.pem'),
      '-----BEGIN CERTIFICATE-----\nx\n-----END CERTIFICATE-----\n'.repeat(2),
    );
    const facts = await probeHost({ root, live: true, env: { SSL_CERT_FILE: '/opt/ca.pem', PATH: '' } });
    expect(facts.caBundle).toEqual({ state: 'found', path: '/opt/ca.pem', certificates: 2 });
    // PATH is empty: no timedatectl, no chronyc, and no time sync file in this tree.
    expect(facts.timeSync).toEqual({
      state: 'unknown',
      tried: ['no /run/systemd/timesync/synchronized', 'timedatectl not installed', 'chronyc not installed'],
    });
  });
});

describe('the fixtures cover the contract', () => {
  it('each tree yields every check id once', async () => {
    for (const tree of ['good', 'bad', 'missing']) {
      const ids = runChecks(await probe(tree), NO_CONFIG_SIZING).map((r) => r.id);
      expect(ids).toEqual([...CHECK_IDS]);
    }
  });
});
