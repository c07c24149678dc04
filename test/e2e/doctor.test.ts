/**
 * `sluice doctor`, run as the built CLI: on this machine (whatever it is tuned like, the report
 * must be well-formed and the exit code must follow it) and on the fixture host trees.
 */
import { join } from 'node:path';
import { afterEach, beforeAll, describe, expect, it } from 'vitest';
import { killAll, ROOT, requireBuilt, runCli } from '../helpers/cli.js';

const FIXTURES = join(ROOT, 'test/fixtures/doctor');
const SIZED = join(FIXTURES, 'configs/sized.yaml');

const CHECK_IDS = [
  'nofile',
  'file_max',
  'somaxconn',
  'tcp_max_syn_backlog',
  'ip_local_port_range',
  'tcp_tw_reuse',
  'tcp_fin_timeout',
  'rmem_default',
  'wmem_default',
  'time_sync',
  'ca_bundle',
  'sshd_root_login',
  'sshd_password_auth',
  'sshd_allow_users',
  'running_as_root',
  'node_version',
  'workers_vs_cores',
];
/** The checks that read this process, not the tree: the same under any --root. */
const PROCESS_IDS = ['running_as_root', 'node_version', 'workers_vs_cores'];
const HOST_IDS = CHECK_IDS.filter((id) => !PROCESS_IDS.includes(id));

interface Check {
  id: string;
  status: 'pass' | 'warn' | 'fail';
  value: string | null;
  expected: string;
  message: string;
  fix: string;
}

/** Parses --json output and checks the contract's shape; returns the checks by id. */
function report(stdout: string): Record<string, Check> {
  const parsed = JSON.parse(stdout) as { checks: Check[] };
  expect(Object.keys(parsed)).toEqual(['checks']);
  expect(parsed.checks.map((c) => c.id)).toEqual(CHECK_IDS);
  for (const c of parsed.checks) {
    expect(Object.keys(c), c.id).toEqual(['id', 'status', 'value', 'expected', 'message', 'fix']);
    expect(['pass', 'warn', 'fail'], c.id).toContain(c.status);
    expect(c.value === null || typeof c.value === 'string', c.id).toBe(true);
    for (const key of ['expected', 'message', 'fix'] as const)
      expect(typeof c[key], `${c.id}.${key}`).toBe('string');
    expect(c.message, c.id).not.toBe('');
    expect(c.message.includes('\n') || c.fix.includes('\n'), c.id).toBe(false);
    // A check that does not pass says what to do, unless there is nothing to do here (no sshd).
    if (c.status === 'fail') expect(c.fix, c.id).not.toBe('');
  }
  return Object.fromEntries(parsed.checks.map((c) => [c.id, c]));
}

function anyFail(checks: Record<string, Check>): boolean {
  return Object.values(checks).some((c) => c.status === 'fail');
}

describe('sluice doctor (built CLI)', () => {
  beforeAll(() => {
    requireBuilt();
  });
  afterEach(killAll);

  it('--json on this machine: every check once, exit 1 iff one fails', async () => {
    const r = await runCli(['doctor', '--json']);
    expect(r.stderr).toBe('');
    const checks = report(r.stdout);
    expect(r.code).toBe(anyFail(checks) ? 1 : 0);
    expect(checks.node_version?.value).toBe(process.versions.node);
    expect(checks.node_version?.status).toBe('pass');
  });

  it('the table on this machine: a row per check, no colour when piped, same exit code', async () => {
    const json = report((await runCli(['doctor', '--json'])).stdout);
    // The helper sets NO_COLOR; without it, stdout is still a pipe: no colour either way.
    const r = await runCli(['doctor'], { env: { NO_COLOR: '' } });
    expect(r.stdout).not.toMatch(/\u001b\[/);
    const lines = r.stdout.split('\n');
    expect(lines[0]).toMatch(/^STATUS\s+CHECK\s+VALUE\s+EXPECTED\s+MESSAGE$/);
    for (const id of CHECK_IDS) {
      const rows = lines.filter((l) => new RegExp(`^(PASS|WARN|FAIL)\\s+${id}\\s`).test(l));
      expect(rows, id).toHaveLength(1);
    }
    expect(r.stdout).toMatch(/\n17 checks: \d+ pass, \d+ warn, \d+ fail\n$/);
    expect(r.code).toBe(anyFail(json) ? 1 : 0);
  });

  it('--root good: every file-based check passes', async () => {
    const r = await runCli(['doctor', '--json', '--root', join(FIXTURES, 'good')]);
    const checks = report(r.stdout);
    for (const id of HOST_IDS) expect(checks[id]?.status, id).toBe('pass');
    expect(checks.somaxconn?.value).toBe('65535');
    expect(checks.nofile?.value).toBe('1048576');
    expect(checks.sshd_allow_users?.value).toBe('deploy ops');
    expect(r.code).toBe(anyFail(checks) ? 1 : 0);
    expect(r.code).toBe(0);
  });

  it('--root bad: the tuning, CA and sshd checks fail, exit 1', async () => {
    const r = await runCli(['doctor', '--json', '--root', join(FIXTURES, 'bad')]);
    const checks = report(r.stdout);
    for (const id of HOST_IDS) expect(checks[id]?.status, id).toBe(id === 'time_sync' ? 'warn' : 'fail');
    expect(checks.nofile).toMatchObject({ value: '4096', expected: '>= 65536' });
    expect(checks.somaxconn).toMatchObject({
      value: '128',
      fix: 'sysctl -w net.core.somaxconn=65535 (persist: sluice init sysctl)',
    });
    expect(checks.ip_local_port_range?.value).toBe('32768 60999');
    expect(checks.sshd_root_login?.fix).toMatch(/^PermitRootLogin no in /);
    expect(r.code).toBe(1);
  });

  it('--root missing: nothing to read, everything file-based warns, no crash', async () => {
    const r = await runCli(['doctor', '--json', '--root', join(FIXTURES, 'missing')]);
    expect(r.stderr).toBe('');
    const checks = report(r.stdout);
    for (const id of HOST_IDS) {
      expect(checks[id]?.status, id).toBe('warn');
      expect(checks[id]?.value, id).toBeNull();
    }
    expect(checks.time_sync?.message).toMatch(/^cannot tell/);
    expect(checks.sshd_root_login?.message).toContain('sshd not installed');
    expect(r.code).toBe(anyFail(checks) ? 1 : 0);
  });

  it('-c sizes nofile: workers 4 × max_connections 20000 expects 161024', async () => {
    const good = await runCli(['doctor', '--json', '--root', join(FIXTURES, 'good'), '-c', SIZED]);
    const g = report(good.stdout);
    expect(g.nofile).toMatchObject({ status: 'pass', expected: '>= 161024' });
    expect(g.nofile?.message).toContain('4 workers × 20000 connections × 2 + 1024');
    expect(g.workers_vs_cores?.value).toBe('4');

    const bad = await runCli(['doctor', '--json', '--root', join(FIXTURES, 'bad'), '-c', SIZED]);
    const b = report(bad.stdout);
    expect(b.nofile).toMatchObject({ status: 'fail', expected: '>= 161024' });
    expect(b.nofile?.fix).toContain('LimitNOFILE=161024');
    expect(bad.code).toBe(1);

    // And on this machine: the expectation moves with the config, whatever the limit is.
    const here = report((await runCli(['doctor', '--json', '-c', SIZED])).stdout);
    expect(here.nofile?.expected).toBe('>= 161024');
  });

  it('-c with an invalid config: the problems as sluice check prints them, exit 2', async () => {
    const file = join(FIXTURES, 'configs/invalid.yaml');
    const r = await runCli(['doctor', '-c', file]);
    expect(r.code).toBe(2);
    expect(r.stdout).toMatch(
      new RegExp(`^${file.replace(/[.*+?^${}()|[\]\\/]/g, '\\$&')}:2:10: SLUICE_E_\\w+ `),
    );
    expect(r.stderr).toBe(`${file}: 1 problem\n`);
    const check = await runCli(['check', '-c', file]);
    expect(r.stdout).toBe(check.stdout);
  });

  it('usage errors exit 2: a --root that is not a directory, an unknown option', async () => {
    const notDir = await runCli(['doctor', '--root', join(FIXTURES, 'no-such-tree')]);
    expect(notDir.code).toBe(2);
    expect(notDir.stderr).toContain('not a directory');
    expect((await runCli(['doctor', '--frobnicate'])).code).toBe(2);
  });

  it('is listed in --help', async () => {
    const r = await runCli(['--help']);
    expect(r.stdout).toMatch(/doctor \[options\]\s+audit the host/);
  });
});
