/**
 * `sluice init` generators: golden files for one fixed config (UPDATE_GOLDEN=1 rewrites them),
 * structural checks of each output, the config values that must flow in, and the unit checked
 * by `systemd-analyze verify`.
 */
import { spawnSync } from 'node:child_process';
import {
  chmodSync,
  copyFileSync,
  existsSync,
  mkdirSync,
  mkdtempSync,
  readFileSync,
  rmSync,
  writeFileSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { parseAllDocuments } from 'yaml';
import { loadConfigFile, loadConfigText } from '../../src/config/load.js';
import { RECOMMENDED_NOFILE, SYSCTL_SETTINGS } from '../../src/ops/host-tuning.js';
import { DEFAULT_CONFIG_PATH, DEFAULT_CONFIG_TEXT } from '../../src/ops/init/default-config.js';
import { IMAGE_USERS } from '../../src/ops/init/dockerfile.js';
import { type InitFile, type InitInput, nofileLimit } from '../../src/ops/init/init-input.js';
import { INIT_TARGETS, type InitTargetName, isInitTarget } from '../../src/ops/init/init-targets.js';
import { serviceAccount } from '../../src/ops/init/service-account.js';
import { quoteArg } from '../../src/ops/init/systemd-unit.js';
import { deniedStep } from '../../src/ops/init/unit-file-access.js';
import { makePki } from '../helpers/tls-pki.js';

const FIXTURES = 'test/fixtures/init';
const CONFIG_FILE = join(FIXTURES, 'sluice.yaml');
/** `UPDATE_GOLDEN=1 npx vitest run test/unit/init.test.ts` rewrites the golden files from the generators. */
const UPDATE = process.env.UPDATE_GOLDEN === '1';
const TEST_FILE = 'test/unit/init.test.ts';

/** The fixed input of the golden files: the fixture config, as if installed in /etc/sluice, on 4 CPUs. */
async function fixtureInput(): Promise<InitInput> {
  const result = await loadConfigFile(CONFIG_FILE, {});
  if (!result.ok) throw new Error(result.problems.map((p) => p.message).join('\n'));
  return {
    config: result.config,
    configText: readFileSync(CONFIG_FILE, 'utf8'),
    configPath: '/etc/sluice/sluice.yaml',
    cpus: 4,
    sluiceBin: '/usr/local/bin/sluice',
  };
}

/** An input from config text (resolved as if it were `path`). */
function inputOf(text: string, overrides: Partial<InitInput> = {}, path = DEFAULT_CONFIG_PATH): InitInput {
  const result = loadConfigText(text, path, {});
  if (!result.ok) throw new Error(result.problems.map((p) => p.message).join('\n'));
  return {
    config: result.config,
    configText: text,
    configPath: path,
    cpus: 4,
    sluiceBin: '/usr/local/bin/sluice',
    ...overrides,
  };
}

function render(target: InitTargetName, input: InitInput): InitFile[] {
  return INIT_TARGETS[target].render(input);
}

function only(files: readonly InitFile[], path: string): string {
  const file = files.find((f) => f.path === path);
  if (file === undefined) throw new Error(`no ${path} among ${files.map((f) => f.path).join(', ')}`);
  return file.content;
}

/** The directive lines (`Key=value`) of a unit or conf text, comments left out. */
function directives(text: string): string[] {
  return text.split('\n').filter((l) => /^[A-Za-z]\w*=/.test(l));
}

function directive(text: string, key: string): string[] {
  return directives(text)
    .filter((l) => l.startsWith(`${key}=`))
    .map((l) => l.slice(key.length + 1));
}

const GOLDEN: readonly { target: InitTargetName; path: string; golden: string }[] = [
  { target: 'systemd', path: 'etc/systemd/system/sluice.service', golden: 'systemd.golden' },
  { target: 'docker', path: 'Dockerfile', golden: 'dockerfile.golden' },
  { target: 'docker', path: '.dockerignore', golden: 'dockerignore.golden' },
  { target: 'sysctl', path: 'etc/sysctl.d/60-sluice.conf', golden: 'sysctl.golden' },
  { target: 'limits', path: 'etc/security/limits.d/sluice.conf', golden: 'limits.golden' },
  { target: 'k8s', path: 'k8s/sluice.yaml', golden: 'k8s.golden.yaml' },
];

describe('sluice init: golden files', () => {
  for (const g of GOLDEN) {
    it(`${g.target}: ${g.path} matches ${g.golden}`, async () => {
      const content = only(render(g.target, await fixtureInput()), g.path);
      const file = join(FIXTURES, g.golden);
      if (UPDATE) writeFileSync(file, content);
      else if (!existsSync(file))
        throw new Error(`${file} is missing: run UPDATE_GOLDEN=1 npx vitest run ${TEST_FILE}`);
      expect(content).toBe(readFileSync(file, 'utf8'));
    });
  }

  it('every target has a golden file, and renders the same files twice (pure)', async () => {
    const input = await fixtureInput();
    for (const target of Object.keys(INIT_TARGETS) as InitTargetName[]) {
      const files = render(target, input);
      expect(files.map((f) => f.path).sort()).toEqual(
        GOLDEN.filter((g) => g.target === target)
          .map((g) => g.path)
          .sort(),
      );
      expect(render(target, input)).toEqual(files);
    }
  });

  it('knows exactly its five targets', () => {
    expect(Object.keys(INIT_TARGETS)).toEqual(['systemd', 'docker', 'sysctl', 'limits', 'k8s']);
    expect(isInitTarget('k8s')).toBe(true);
    expect(isInitTarget('toString')).toBe(false);
  });
});

describe('sluice init systemd', () => {
  it('takes user, group, open files, stop timeout and writable directories from the config', async () => {
    const unit = only(render('systemd', await fixtureInput()), 'etc/systemd/system/sluice.service');
    expect(directive(unit, 'User')).toEqual(['sluice-svc']);
    expect(directive(unit, 'Group')).toEqual(['sluice-svc']);
    expect(directive(unit, 'ExecStart')).toEqual(['/usr/local/bin/sluice start -c /etc/sluice/sluice.yaml']);
    // 4 workers x (20000 + 20000 + 10000) connections x 2 + 1024.
    expect(directive(unit, 'LimitNOFILE')).toEqual(['401024']);
    // shutdown_timeout 20 s + 10 s.
    expect(directive(unit, 'TimeoutStopSec')).toEqual(['30']);
    expect(directive(unit, 'RuntimeDirectory')).toEqual(['sluice']);
    expect(directive(unit, 'LogsDirectory')).toEqual(['sluice']);
    expect(unit).toContain('`user:` in the config is\n# unnecessary');
  });

  it('has the required directives, and never MemoryDenyWriteExecute (V8 needs W+X memory)', () => {
    const unit = only(render('systemd', inputOf(DEFAULT_CONFIG_TEXT)), 'etc/systemd/system/sluice.service');
    const expected: Record<string, string> = {
      User: 'sluice',
      Restart: 'on-failure',
      AmbientCapabilities: 'CAP_NET_BIND_SERVICE',
      CapabilityBoundingSet: 'CAP_NET_BIND_SERVICE',
      ExecReload: '/bin/kill -HUP $MAINPID',
      KillSignal: 'SIGTERM',
      TimeoutStopSec: '40',
      NoNewPrivileges: 'yes',
      ProtectSystem: 'strict',
      ProtectHome: 'yes',
      PrivateTmp: 'yes',
      PrivateDevices: 'yes',
      ProtectKernelTunables: 'yes',
      ProtectKernelModules: 'yes',
      ProtectControlGroups: 'yes',
      RestrictAddressFamilies: 'AF_INET AF_INET6 AF_UNIX',
      LockPersonality: 'yes',
      StandardOutput: 'journal',
      SyslogIdentifier: 'sluice',
    };
    for (const [key, value] of Object.entries(expected)) expect(directive(unit, key), key).toEqual([value]);
    expect(directive(unit, 'MemoryDenyWriteExecute')).toEqual([]);
    expect(unit).toMatch(/^# MemoryDenyWriteExecute= is deliberately not set: V8/m);
    expect(directive(unit, 'Group')).toEqual([]);
    expect(unit).toContain('useradd --system');
    // Nothing written: no writable paths.
    for (const key of ['ReadWritePaths', 'RuntimeDirectory', 'LogsDirectory'])
      expect(directive(unit, key)).toEqual([]);
  });

  // Restart=on-failure with RestartSec=2s and systemd's defaults (5 starts in 10 s) never stopped:
  // starts 2 s apart plus the second a failing start takes put no 6 inside 10 s, so a port that can
  // never be bound was retried for ever while the docs said systemd gives up.
  it('gives up restarting a service that keeps failing: the start limit holds the restarts it counts', () => {
    const unit = only(render('systemd', inputOf(DEFAULT_CONFIG_TEXT)), 'etc/systemd/system/sluice.service');
    const section = (name: string) => unit.split(/^\[/m).find((s) => s.startsWith(`${name}]`)) ?? '';
    const interval = Number(directive(section('Unit'), 'StartLimitIntervalSec')[0]);
    const burst = Number(directive(section('Unit'), 'StartLimitBurst')[0]);
    const restartSec = Number.parseFloat(directive(unit, 'RestartSec')[0] ?? '');
    expect(interval).toBeGreaterThan(0);
    expect(burst).toBeGreaterThan(0);
    // The start past the burst comes burst x (RestartSec + a failing start, a few seconds at most)
    // after the first: inside the interval, so systemd counts it and stops.
    expect(burst * (restartSec + 5)).toBeLessThan(interval);
    expect(directive(section('Service'), 'StartLimitIntervalSec')).toEqual([]);
  });

  it('LimitNOFILE: 65536 at least; workers: auto counts the CPUs given', () => {
    const unit = (cpus: number) =>
      only(render('systemd', inputOf(DEFAULT_CONFIG_TEXT, { cpus })), 'etc/systemd/system/sluice.service');
    expect(directive(unit(1), 'LimitNOFILE')).toEqual([String(RECOMMENDED_NOFILE)]);
    // 4 x 10000 x 2 + 1024.
    expect(directive(unit(4), 'LimitNOFILE')).toEqual(['81024']);
    expect(unit(4)).toContain('counted as the 4 CPUs');
  });

  it('adapts the sandbox: egress needs netlink, a config under /home stays readable, other dirs are opened', () => {
    const text = [
      'pid_file: /srv/sluice/sluice.pid',
      'egress: { listen: "127.0.0.1:3128", policies: [{ name: all, sources: [127.0.0.1], hosts: [example.com] }] }',
      'servers: [{ listen: 8080, routes: [{ respond: { body: ok } }] }]',
    ].join('\n');
    const unit = only(
      render('systemd', inputOf(text, {}, '/home/ops/sluice.yaml')),
      'etc/systemd/system/sluice.service',
    );
    expect(directive(unit, 'RestrictAddressFamilies')).toEqual(['AF_INET AF_INET6 AF_UNIX AF_NETLINK']);
    expect(directive(unit, 'ProtectHome')).toEqual(['read-only']);
    expect(directive(unit, 'ReadWritePaths')).toEqual(['/srv/sluice']);
    expect(directive(unit, 'EnvironmentFile')).toEqual(['-/home/ops/sluice.env']);
  });

  it('quotes paths with spaces, and keeps the shared /tmp when the config or its files lie there', () => {
    const text = [
      'pid_file: "/run/my sluice/sluice.pid"',
      'log: { access: "/tmp/logs dir/access.log" }',
      'servers: [{ listen: 8080, routes: [{ respond: { body: ok } }] }]',
    ].join('\n');
    const unit = only(render('systemd', inputOf(text)), 'etc/systemd/system/sluice.service');
    expect(directive(unit, 'RuntimeDirectory')).toEqual(['"my sluice"']);
    expect(directive(unit, 'PrivateTmp')).toEqual(['no']);
    // ProtectSystem=strict makes the shared /tmp read-only, where a private one is writable: tsx
    // could not create $TMPDIR/tsx-UID and a .ts handler failed to load (mkdir EACCES).
    expect(directive(unit, 'ReadWritePaths')).toEqual(['"/tmp/logs dir"', '/tmp /var/tmp']);
    const plain = only(
      render('systemd', inputOf('servers: [{ listen: 8080, routes: [{ respond: { body: ok } }] }]')),
      'etc/systemd/system/sluice.service',
    );
    expect(directive(plain, 'PrivateTmp')).toEqual(['yes']);
  });

  // EnvironmentFile= was written "/srv/my sluice/sluice.env", quotes included: systemd ignored it
  // ("path is not absolute") and the service started without its secrets.
  it('writes each path the way its setting reads it: EnvironmentFile= whole, lists quoted, names with : escaped', () => {
    const text = [
      'pid_file: "/run/my:sluice/sluice.pid"',
      'log: { access: "/srv/logs 100%/access.log" }',
      'servers: [{ listen: 8080, routes: [{ respond: { body: ok } }] }]',
    ].join('\n');
    const unit = only(
      render('systemd', inputOf(text, {}, '/srv/my sluice/sluice.yaml')),
      'etc/systemd/system/sluice.service',
    );
    expect(directive(unit, 'EnvironmentFile')).toEqual(['-/srv/my sluice/sluice.env']);
    expect(directive(unit, 'ExecStart')).toEqual([
      '/usr/local/bin/sluice start -c "/srv/my sluice/sluice.yaml"',
    ]);
    expect(directive(unit, 'RuntimeDirectory')).toEqual(['my\\:sluice']);
    expect(directive(unit, 'ReadWritePaths')).toEqual(['"/srv/logs 100%%"']);
    const percent = only(
      render('systemd', inputOf(text, {}, '/srv/100%/sluice.yaml')),
      'etc/systemd/system/sluice.service',
    );
    expect(directive(percent, 'EnvironmentFile')).toEqual(['-/srv/100%%/sluice.env']);
  });

  // ReadWritePaths=/run let the service write /run, but /run belongs to root: sluice, started as
  // User=, could not create its pid file there (SLUICE_E_RUNTIME_PID_FILE) and restarted for ever.
  it('creates a file sluice writes directly in /run or /var/log for User= before start', () => {
    const text = [
      'user: www-data',
      'group: adm',
      'pid_file: /run/sluice.pid',
      'log: { access: /var/log/sluice-access.log }',
      'servers: [{ listen: 8080, routes: [{ respond: { body: ok } }] }]',
    ].join('\n');
    const unit = only(render('systemd', inputOf(text)), 'etc/systemd/system/sluice.service');
    expect(directive(unit, 'ExecStartPre')).toEqual([
      '+/bin/touch /run/sluice.pid',
      '+/bin/chown www-data:adm /run/sluice.pid',
      '+/bin/touch /var/log/sluice-access.log',
      '+/bin/chown www-data:adm /var/log/sluice-access.log',
    ]);
    expect(directive(unit, 'ExecStopPost')).toEqual(['+/bin/rm -f /run/sluice.pid']);
    // The pid file alone; the log's directory, where logrotate puts the next file.
    expect(directive(unit, 'ReadWritePaths')).toEqual(['/run/sluice.pid', '/var/log']);
    expect(directive(unit, 'RuntimeDirectory')).toEqual([]);
    expect(unit).toContain('Simpler: a directory of its own, e.g. /run/sluice/sluice.pid.');
    // Below /run (or /var/run, the same), systemd makes the directory: nothing is created by hand.
    const below = only(
      render('systemd', inputOf(text.replace('/run/sluice.pid', '/var/run/edge/sluice.pid'))),
      'etc/systemd/system/sluice.service',
    );
    expect(directive(below, 'RuntimeDirectory')).toEqual(['edge']);
    expect(directive(below, 'ExecStartPre')).toEqual([
      '+/bin/touch /var/log/sluice-access.log',
      '+/bin/chown www-data:adm /var/log/sluice-access.log',
    ]);
    expect(directive(below, 'ExecStopPost')).toEqual([]);
  });

  it('quotes ExecStart words as systemd reads them', () => {
    expect(quoteArg('/opt/my app/sluice')).toBe('"/opt/my app/sluice"');
    expect(quoteArg('/etc/100%/$HOME.yaml')).toBe('/etc/100%%/$$HOME.yaml');
    expect(quoteArg('/plain/path')).toBe('/plain/path');
  });

  describe('systemd-analyze verify', () => {
    const analyze = '/usr/bin/systemd-analyze';
    const present = existsSync(analyze);
    if (!present) console.log(`skipped: ${analyze} is absent, the units cannot be verified`);
    /** Warnings systemd-analyze may print that say nothing about the unit itself. None are known so far. */
    const HARMLESS: readonly RegExp[] = [];

    const cases: { name: string; input: () => Promise<InitInput> }[] = [
      { name: 'the fixture config', input: fixtureInput },
      { name: 'the default config', input: async () => inputOf(DEFAULT_CONFIG_TEXT) },
      {
        name: 'paths with spaces, a % and a colon',
        input: async () =>
          inputOf(
            [
              'pid_file: "/run/my:sluice/sluice.pid"',
              'log: { access: "/srv/logs 100%/access.log" }',
              'servers: [{ listen: 8080, routes: [{ respond: { body: ok } }] }]',
            ].join('\n'),
            {},
            '/srv/my sluice/sluice.yaml',
          ),
      },
      {
        name: 'a pid file directly in /run and a log directly in /var/log',
        input: async () =>
          inputOf(
            [
              'pid_file: /run/sluice.pid',
              'log: { access: /var/log/sluice-access.log }',
              'servers: [{ listen: 8080, routes: [{ respond: { body: ok } }] }]',
            ].join('\n'),
          ),
      },
      {
        name: 'a config in /tmp (the shared /tmp, writable)',
        input: async () =>
          inputOf('servers: [{ listen: 8080, routes: [{ respond: { body: ok } }] }]', {}, '/tmp/sluice.yaml'),
      },
      {
        name: 'an egress config under /home',
        input: async () =>
          inputOf(
            [
              'egress: { listen: "127.0.0.1:3128", policies: [{ name: all, sources: [127.0.0.1], hosts: [example.com] }] }',
              'servers: [{ listen: 8080, routes: [{ respond: { body: ok } }] }]',
            ].join('\n'),
            {},
            '/home/ops/sluice.yaml',
          ),
      },
    ];
    for (const c of cases) {
      it.skipIf(!present)(`accepts the unit for ${c.name}`, async () => {
        const dir = mkdtempSync(join(tmpdir(), 'sluice-unit-'));
        try {
          // ExecStart must name an executable that exists: a stand-in script.
          const bin = join(dir, 'sluice');
          writeFileSync(bin, '#!/bin/sh\nexit 0\n');
          chmodSync(bin, 0o755);
          const unit = only(
            render('systemd', { ...(await c.input()), sluiceBin: bin }),
            'etc/systemd/system/sluice.service',
          );
          writeFileSync(join(dir, 'sluice.service'), unit);
          const run = spawnSync(analyze, ['verify', join(dir, 'sluice.service')], { encoding: 'utf8' });
          const lines = `${run.stdout}${run.stderr}`.split('\n').filter((l) => l.trim() !== '');
          const harmless = lines.filter((l) => HARMLESS.some((h) => h.test(l)));
          if (harmless.length > 0) console.log(`systemd-analyze verify (tolerated):\n${harmless.join('\n')}`);
          expect(lines.filter((l) => !harmless.includes(l))).toEqual([]);
          expect(run.status).toBe(0);
        } finally {
          rmSync(dir, { recursive: true, force: true });
        }
      });
    }
  });
});

describe('sluice init docker', () => {
  it('builds in one stage and runs in another, as a non-root user, with a node health check', async () => {
    const files = render('docker', await fixtureInput());
    const dockerfile = only(files, 'Dockerfile');
    const instructions = dockerfile.split('\n').filter((l) => /^[A-Z]+ /.test(l));
    const from = instructions.filter((l) => l.startsWith('FROM '));
    expect(from).toEqual(['FROM node:22-bookworm-slim AS build', 'FROM node:22-bookworm-slim']);
    const runtimeStart = instructions.indexOf(from[1]!);
    const build = instructions.slice(0, runtimeStart);
    const runtime = instructions.slice(runtimeStart);
    expect(build.join('\n')).toMatch(/npm ci/);
    expect(build).toContain('RUN npm run build && npm prune --omit=dev');
    for (const what of ['dist', 'node_modules', 'package.json']) {
      expect(
        runtime.some((l) => l.startsWith('COPY --from=build ') && l.includes(`/app/${what}`)),
        what,
      ).toBe(true);
    }
    const user = runtime.filter((l) => l.startsWith('USER '));
    expect(user).toHaveLength(1);
    expect(user[0]).not.toMatch(/^USER (root|0)(:|$)/);
    expect(dockerfile).toMatch(/apt-get install -y --no-install-recommends ca-certificates/);
    expect(runtime).toContain('EXPOSE 80 8080');
    expect(runtime).toContain('STOPSIGNAL SIGTERM');
    expect(runtime).toContain('COPY sluice.yaml /etc/sluice/sluice.yaml');
    expect(runtime).toContain('CMD ["start", "-c", "/etc/sluice/sluice.yaml"]');
    // The health check is node, not curl, and asks the admin API.
    const health = /^ {2}CMD (\[.*\])$/m.exec(dockerfile.slice(dockerfile.indexOf('HEALTHCHECK')));
    const argv = JSON.parse(health![1]!) as string[];
    expect(argv.slice(0, 2)).toEqual(['node', '-e']);
    expect(argv[2]).toContain('http://127.0.0.1:9090/api/status');
    // The header tells docker run how long to wait and how many files to allow.
    expect(dockerfile).toContain('--stop-timeout 30 --ulimit nofile=401024:401024 -p 80:80 -p 8080:8080');
    // The config's user: does not exist in the image.
    expect(dockerfile).toContain("The config's user: sluice-svc must go");

    const ignore = only(files, '.dockerignore');
    const rules = ignore.split('\n').filter((l) => l !== '' && !l.startsWith('#'));
    expect(rules[0]).toBe('*');
    expect(rules).toEqual(
      expect.arrayContaining(['!package.json', '!package-lock.json', '!src/', '!sluice.yaml']),
    );
  });

  it('copies the handler modules the routes run beside the config, and lets them into the build context', () => {
    const path = join(process.cwd(), 'test/fixtures/config/handlers/sluice.yaml');
    const text = 'servers: [{ listen: 8080, routes: [{ handler: ./app.ts }] }]';
    const files = render('docker', inputOf(text, {}, path));
    expect(only(files, 'Dockerfile')).toContain('\nCOPY app.ts /etc/sluice/app.ts\n');
    expect(only(files, '.dockerignore').split('\n')).toContain('!app.ts');
  });

  it('without an admin API, checks the first plain-HTTP server port; with none, has no HEALTHCHECK', () => {
    const server = only(
      render('docker', inputOf('servers: [{ listen: "[::]:8081", routes: [{ respond: { body: ok } }] }]')),
      'Dockerfile',
    );
    expect(server).toContain("require('http').get('http://[::1]:8081/'");
    expect(server).not.toContain('statusCode<500');

    // Config loading reads the TLS files: a real pair.
    const pki = makePki();
    const leaf = pki.ca('root').leaf('a.test', { dns: ['a.test'], usage: 'server' });
    const tlsText = `servers: [{ listen: 8443, tls: { cert: ${leaf.cert}, key: ${leaf.key} }, routes: [{ respond: { body: ok } }] }]`;
    let tls: string;
    try {
      tls = only(render('docker', inputOf(tlsText)), 'Dockerfile');
    } finally {
      pki.remove();
    }
    expect(tls).not.toMatch(/^HEALTHCHECK/m);
    expect(tls).toContain('# No HEALTHCHECK');
    expect(tls).toContain(`${leaf.cert}, ${leaf.key}`);
  });

  it('lists an admin token_file among the files to copy or mount', () => {
    const dir = mkdtempSync(join(tmpdir(), 'sluice-init-'));
    const tokenFile = join(dir, 'ops.token');
    writeFileSync(tokenFile, 'an-operator-token-0123456789\n');
    try {
      const text = `admin: { listen: "127.0.0.1:9090", tokens: [{ name: ops, role: operator, token_file: ${tokenFile} }] }\nservers: [{ listen: 8080, routes: [{ respond: { body: ok } }] }]`;
      expect(only(render('docker', inputOf(text)), 'Dockerfile')).toContain(tokenFile);
      expect(
        render('k8s', inputOf(text))
          .map((f) => f.content)
          .join('\n'),
      ).toContain(tokenFile);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});

describe('sluice init sysctl and limits', () => {
  it('sysctl sets every SYSCTL_SETTINGS key, each after its why, and says how to apply', async () => {
    const conf = only(render('sysctl', await fixtureInput()), 'etc/sysctl.d/60-sluice.conf');
    const lines = conf.split('\n');
    for (const s of SYSCTL_SETTINGS) {
      const at = lines.indexOf(`${s.key} = ${s.value}`);
      expect(at, s.key).toBeGreaterThan(0);
      expect(lines[at - 1]).toBe(`# ${s.why}`);
    }
    expect(lines.filter((l) => l !== '' && !l.startsWith('#'))).toHaveLength(SYSCTL_SETTINGS.length);
    expect(conf).toContain('sysctl --system');
  });

  // A sysctl.d file sets values: one below the host's own lowered it (systemd's fs.file-max of
  // 2^63 - 1 became 1000000), and fixed values ignored what -c asks for, which the doctor checks.
  it("sysctl writes what the doctor expects for -c, or the host's value where that is better", () => {
    const big = `workers: 4
servers:
  - listen: "127.0.0.1:24280"
    limits: { backlog: 131072, max_connections: 150000 }
    routes: [{ respond: { body: "x" } }]
`;
    const hostSysctl = {
      'fs.file-max': '9223372036854775807',
      'net.core.somaxconn': '262144',
      'net.ipv4.tcp_max_syn_backlog': '1024',
      'net.ipv4.ip_local_port_range': '2000 60999',
      'net.ipv4.tcp_fin_timeout': '60',
      'net.core.rmem_default': null,
    };
    const values = (input: InitInput) =>
      Object.fromEntries(
        only(render('sysctl', input), 'etc/sysctl.d/60-sluice.conf')
          .split('\n')
          .filter((l) => l !== '' && !l.startsWith('#'))
          .map((l) => l.split(' = ') as [string, string]),
      );
    expect(values(inputOf(big, {}, '/etc/sluice/big.yaml'))).toMatchObject({
      'fs.file-max': '1201024', // 4 workers × 150000 × 2 + 1024, as the doctor and LimitNOFILE count
      'net.core.somaxconn': '131072',
      'net.ipv4.tcp_max_syn_backlog': '131072',
    });
    const conf = only(render('sysctl', inputOf(big, { hostSysctl })), 'etc/sysctl.d/60-sluice.conf');
    expect(values(inputOf(big, { hostSysctl }))).toEqual({
      'fs.file-max': '9223372036854775807',
      'net.core.somaxconn': '262144',
      'net.ipv4.tcp_max_syn_backlog': '131072',
      'net.ipv4.ip_local_port_range': '1024 65535',
      'net.ipv4.tcp_tw_reuse': '1',
      'net.ipv4.tcp_fin_timeout': '30',
      'net.core.rmem_default': '262144',
      'net.core.wmem_default': '262144',
    });
    expect(conf).toContain('# (1201024 needed; this host has 9223372036854775807, which is kept)');
    expect(conf).toContain(
      'sluice.yaml needs 1201024 open files (4 workers × 150000 connections × 2 + 1024)',
    );
    expect(nofileLimit(inputOf(big).config, 4).value).toBe(1201024);
  });

  // `user: "33"` gave `33 soft nofile ...`: pam_limits reads a bare number as a user name, so the
  // lines matched no one; a uid is `:33` there.
  it('limits names a numeric user: as a uid, :UID', () => {
    const conf = (user: string) =>
      only(
        render(
          'limits',
          inputOf(`user: "${user}"\nservers: [{ listen: 8080, routes: [{ respond: { body: ok } }] }]`),
        ),
        'etc/security/limits.d/sluice.conf',
      );
    const rules = (text: string) =>
      text
        .split('\n')
        .filter((l) => l !== '' && !l.startsWith('#'))
        .map((l) => l.replace(/\d+$/, 'N'));
    expect(rules(conf('33'))).toEqual([':33 soft nofile N', ':33 hard nofile N']);
    expect(conf('33')).toContain('# Open files for uid 33 when');
    expect(rules(conf('www-data'))).toEqual(['www-data soft nofile N', 'www-data hard nofile N']);
  });

  it('limits sets soft and hard nofile for the service user, and points systemd at LimitNOFILE', async () => {
    const conf = only(render('limits', await fixtureInput()), 'etc/security/limits.d/sluice.conf');
    expect(conf.split('\n').filter((l) => l !== '' && !l.startsWith('#'))).toEqual([
      'sluice-svc soft nofile 401024',
      'sluice-svc hard nofile 401024',
    ]);
    expect(conf).toContain('LimitNOFILE=');
    const plain = only(
      render('limits', inputOf(DEFAULT_CONFIG_TEXT, { cpus: 1 })),
      'etc/security/limits.d/sluice.conf',
    );
    expect(plain).toContain(
      `sluice soft nofile ${RECOMMENDED_NOFILE}\nsluice hard nofile ${RECOMMENDED_NOFILE}\n`,
    );
  });
});

interface K8sObject {
  apiVersion: string;
  kind: string;
  metadata: { name: string; labels: Record<string, string> };
  // biome-ignore lint/suspicious/noExplicitAny: the manifests are checked field by field below.
  spec?: any;
  data?: Record<string, string>;
}

function k8sObjects(text: string): K8sObject[] {
  const docs = parseAllDocuments(text);
  if (!Array.isArray(docs)) throw new Error('not a YAML stream');
  for (const d of docs) expect(d.errors).toEqual([]);
  return docs.map((d) => d.toJS() as K8sObject);
}

describe('sluice init k8s', () => {
  it('is one YAML stream of ConfigMap, Deployment, Service, HorizontalPodAutoscaler and PodDisruptionBudget', async () => {
    const input = await fixtureInput();
    const objects = k8sObjects(only(render('k8s', input), 'k8s/sluice.yaml'));
    expect(objects.map((o) => `${o.apiVersion} ${o.kind}`)).toEqual([
      'v1 ConfigMap',
      'apps/v1 Deployment',
      'v1 Service',
      'autoscaling/v2 HorizontalPodAutoscaler',
      'policy/v1 PodDisruptionBudget',
    ]);
    const [configMap, deployment, service, hpa, pdb] = objects as [
      K8sObject,
      K8sObject,
      K8sObject,
      K8sObject,
      K8sObject,
    ];
    for (const o of objects) expect(o.metadata.name).toBe('sluice');
    const labels = deployment.spec.template.metadata.labels as Record<string, string>;

    expect(configMap.data).toEqual({ 'sluice.yaml': input.configText });

    expect(deployment.spec.replicas).toBeUndefined();
    expect(deployment.spec.selector.matchLabels).toEqual(labels);
    const pod = deployment.spec.template.spec;
    // preStop 5 s + shutdown_timeout 20 s + 10 s.
    expect(pod.terminationGracePeriodSeconds).toBe(35);
    expect(pod.securityContext).toMatchObject({ runAsNonRoot: true, runAsUser: 1000 });
    // Port 80 without root.
    expect(pod.securityContext.sysctls).toEqual([
      { name: 'net.ipv4.ip_unprivileged_port_start', value: '0' },
    ]);
    expect(pod.containers).toHaveLength(1);
    const c = pod.containers[0];
    expect(c.image).toBe('sluice:latest');
    expect(c.args).toEqual(['start', '-c', '/etc/sluice/sluice.yaml']);
    expect(c.ports.map((p: { containerPort: number }) => p.containerPort)).toEqual([80, 8080]);
    expect(c.readinessProbe.tcpSocket.port).toBe('http');
    expect(c.livenessProbe.exec.command.slice(0, 2)).toEqual(['node', '-e']);
    expect(c.livenessProbe.exec.command[2]).toContain('127.0.0.1:9090/api/status');
    expect(c.lifecycle.preStop.exec.command).toEqual(['sleep', '5']);
    expect(c.resources.requests).toEqual({ cpu: '4', memory: '1152Mi' });
    expect(c.resources.limits).toEqual(c.resources.requests);
    expect(c.securityContext).toEqual({
      allowPrivilegeEscalation: false,
      readOnlyRootFilesystem: true,
      capabilities: { drop: ['ALL'] },
    });
    const mounts = Object.fromEntries(
      c.volumeMounts.map((m: { name: string; mountPath: string }) => [m.mountPath, m.name]),
    );
    expect(Object.keys(mounts)).toEqual(['/etc/sluice', '/tmp', '/run/sluice', '/var/log/sluice']);
    const volumes = pod.volumes.map((v: { name: string }) => v.name);
    for (const name of Object.values(mounts)) expect(volumes).toContain(name);
    expect(pod.volumes[0]).toEqual({ name: 'config', configMap: { name: 'sluice' } });
    expect(deployment.spec.template.metadata.annotations['sluice/config-sha256']).toMatch(/^[0-9a-f]{64}$/);

    expect(service.spec.selector).toEqual(labels);
    expect(service.spec.ports).toEqual([
      { name: 'http', port: 80, targetPort: 'http', protocol: 'TCP' },
      { name: 'http-8080', port: 8080, targetPort: 'http-8080', protocol: 'TCP' },
    ]);

    expect(hpa.spec.scaleTargetRef).toEqual({ apiVersion: 'apps/v1', kind: 'Deployment', name: 'sluice' });
    expect(hpa.spec.minReplicas).toBeGreaterThanOrEqual(2);
    expect(hpa.spec.maxReplicas).toBeGreaterThan(hpa.spec.minReplicas);
    expect(hpa.spec.metrics).toEqual([
      {
        type: 'Resource',
        resource: { name: 'cpu', target: { type: 'Utilization', averageUtilization: 70 } },
      },
    ]);

    expect(pdb.spec.selector.matchLabels).toEqual(labels);
    expect(pdb.spec.maxUnavailable).toBe(1);
  });

  it('notes that replicas need state.redis, with a commented example, and no YAML aliases', async () => {
    const text = only(render('k8s', await fixtureInput()), 'k8s/sluice.yaml');
    expect(text).toMatch(/^# .*rate limits and bans/m);
    expect(text).toMatch(/^# {3}state:\n# {5}redis: redis:\/\//m);
    expect(text).not.toMatch(/[&*]a\d/);
    const shared = only(
      render(
        'k8s',
        inputOf(
          'state: { redis: "redis://redis:6379/0" }\nservers: [{ listen: 8080, routes: [{ respond: { body: ok } }] }]',
        ),
      ),
      'k8s/sluice.yaml',
    );
    expect(shared).toContain("shared through the config's state.redis");
  });

  it('workers: auto becomes --workers 2 in the pod; without an admin API both probes are TCP', () => {
    const text = only(
      render('k8s', inputOf('servers: [{ listen: 8080, routes: [{ respond: { body: ok } }] }]')),
      'k8s/sluice.yaml',
    );
    const deployment = k8sObjects(text)[1]!;
    const pod = deployment.spec.template.spec;
    const c = pod.containers[0];
    expect(c.args).toEqual(['start', '-c', '/etc/sluice/sluice.yaml', '--workers', '2']);
    expect(c.resources.limits.cpu).toBe('2');
    expect(c.livenessProbe.tcpSocket.port).toBe('http');
    expect(pod.securityContext.sysctls).toBeUndefined();
    // shutdown_timeout defaults to 30 s.
    expect(pod.terminationGracePeriodSeconds).toBe(45);
  });
});

describe('sluice init docker and k8s: paths in the container', () => {
  /**
   * A config in ROOT/dir naming files relative to itself, above it (`..`), and absolutely; in the
   * image and the pod the same text is /etc/sluice/sluice.yaml, and sluice resolves from there.
   */
  function placedConfig(body: (root: string) => string[]): {
    root: string;
    input: InitInput;
    remove(): void;
  } {
    const pki = makePki();
    const leaf = pki.ca('root').leaf('a.test', { dns: ['a.test'], usage: 'server' });
    const root = pki.dir;
    mkdirSync(join(root, 'dir', 'tokens'), { recursive: true });
    mkdirSync(join(root, 'cfg'));
    copyFileSync(leaf.cert, join(root, 'cfg', 'cert.pem'));
    copyFileSync(leaf.key, join(root, 'cfg', 'key.pem'));
    writeFileSync(
      join(root, 'app-out.ts'),
      'export default (_req: unknown, res: { end(): void }) => res.end();\n',
    );
    writeFileSync(join(root, 'dir', 'tokens', 'ci.token'), 'a-ci-token-0123456789abcdef\n');
    writeFileSync(join(root, 'dir', 'ops.token'), 'an-ops-token-0123456789abcdef\n');
    const path = join(root, 'dir', 'rel.yaml');
    return { root, input: inputOf(body(root).join('\n'), {}, path), remove: () => pki.remove() };
  }

  const relative = (root: string) => [
    'pid_file: ../run/sluice.pid',
    'log: { access: ../logs/access.log }',
    'admin:',
    '  listen: 127.0.0.1:9090',
    '  tokens:',
    '    - { name: ci, role: viewer, token_file: ./tokens/ci.token }',
    `    - { name: ops, role: operator, token_file: ${join(root, 'dir', 'ops.token')} }`,
    'servers:',
    '  - listen: 8443',
    '    tls: { cert: ../cfg/cert.pem, key: ../cfg/key.pem }',
    '    routes: [{ handler: ../app-out.ts }]',
  ];

  it('resolves a relative path from /etc/sluice, .. included, and keeps an absolute one', () => {
    const { root, input, remove } = placedConfig(relative);
    try {
      const dockerfile = only(render('docker', input), 'Dockerfile');
      expect(dockerfile).toContain(
        '\nRUN mkdir -p /etc/run /etc/logs && chown 1000:1000 /etc/run /etc/logs\n',
      );
      expect(dockerfile).toContain(
        `# ${join(root, 'app-out.ts')} lies outside the config's directory: copy it to /etc/app-out.ts.`,
      );
      const reads = /baking keys into the image: (.*)$/m.exec(dockerfile)?.[1]?.split(', ');
      expect(reads).toEqual([
        '/etc/cfg/cert.pem',
        '/etc/cfg/key.pem',
        '/etc/sluice/tokens/ci.token',
        join(root, 'dir', 'ops.token'),
      ]);
      expect(dockerfile).not.toContain(join(root, 'run'));

      const manifest = only(render('k8s', input), 'k8s/sluice.yaml');
      const deployment = k8sObjects(manifest)[1]!;
      const container = deployment.spec.template.spec.containers[0];
      expect(container.volumeMounts.map((m: { mountPath: string }) => m.mountPath)).toEqual([
        '/etc/sluice',
        '/tmp',
        '/etc/run',
        '/etc/logs',
      ]);
      expect(manifest).toContain(
        `# The config also reads /etc/cfg/cert.pem, /etc/cfg/key.pem, /etc/app-out.ts, /etc/sluice/tokens/ci.token, ${join(root, 'dir', 'ops.token')}: mount them`,
      );
      expect(manifest).not.toContain(join(root, 'cfg'));
    } finally {
      remove();
    }
  });

  it('never gives away or mounts over a directory holding /etc/sluice', () => {
    const { input, remove } = placedConfig(() => [
      'pid_file: ../sluice.pid',
      'log: { access: ../logs/access.log }',
      'servers: [{ listen: 8080, routes: [{ respond: { body: ok } }] }]',
    ]);
    try {
      const dockerfile = only(render('docker', input), 'Dockerfile');
      expect(dockerfile).toContain('\nRUN mkdir -p /etc/logs && chown 1000:1000 /etc/logs\n');
      expect(dockerfile).toContain('# /etc holds /etc/sluice and system files: not given');
      const manifest = only(render('k8s', input), 'k8s/sluice.yaml');
      const container = k8sObjects(manifest)[1]!.spec.template.spec.containers[0];
      expect(container.volumeMounts.map((m: { mountPath: string }) => m.mountPath)).toEqual([
        '/etc/sluice',
        '/tmp',
        '/etc/logs',
      ]);
      expect(manifest).toContain('# /etc cannot be written (a volume there would hide /etc/sluice');
    } finally {
      remove();
    }
  });
});

describe('init docker: users and written files in node:22-bookworm-slim', () => {
  const server = 'servers: [{ listen: 8080, routes: [{ respond: { body: ok } }] }]';
  const dockerfileOf = (text: string) => only(render('docker', inputOf(text)), 'Dockerfile');

  // The file said the image's /etc/passwd had only node; Debian's base users are there too, and
  // sluice, started as node, switches to no one: user: www-data works as it is.
  it('a user: the image has is harmless; one it lacks must go, and the file says which the image has', () => {
    const known = dockerfileOf(`user: www-data\n${server}`);
    expect(known).toContain("The config's user: www-data is unnecessary here and harmless");
    expect(known).not.toContain('must go');
    expect(known).not.toContain('does not have it');
    const unknown = dockerfileOf(`user: edge\n${server}`);
    expect(unknown).toContain("The config's user: edge must go");
    expect(unknown).toContain("Debian's base users (www-data, nobody, daemon...) and node");
  });

  const master = '/usr/share/base-passwd/passwd.master';
  it.skipIf(!existsSync(master))("knows Debian's base users as this host's base-passwd lists them", () => {
    const names = readFileSync(master, 'utf8')
      .split('\n')
      .filter((l) => l !== '')
      .map((l) => l.split(':')[0]!);
    for (const name of names) expect(IMAGE_USERS.has(name), name).toBe(true);
  });

  // `chown 1000:1000 /run /var/log` gave the server's user the whole directories.
  it('gives the server a file it writes directly in a directory of the image, not the directory', () => {
    const dockerfile = dockerfileOf(
      `pid_file: /run/sluice.pid\nlog: { access: /var/log/sluice.log }\n${server}`,
    );
    const runs = dockerfile.split('\n').filter((l) => /chown/.test(l));
    expect(runs).toEqual([
      'RUN touch /run/sluice.pid /var/log/sluice.log && chown 1000:1000 /run/sluice.pid /var/log/sluice.log',
    ]);
    // A directory of its own is still created and given whole.
    const own = dockerfileOf(
      `pid_file: /run/sluice/sluice.pid\nlog: { access: /var/log/sluice.log }\n${server}`,
    );
    expect(own.split('\n').filter((l) => /chown/.test(l))).toEqual([
      'RUN mkdir -p /run/sluice && chown 1000:1000 /run/sluice',
      'RUN touch /var/log/sluice.log && chown 1000:1000 /var/log/sluice.log',
    ]);
  });
});

describe('init systemd: files User= cannot read', () => {
  const root = mkdtempSync(join(tmpdir(), 'sluice-account-'));
  mkdirSync(join(root, 'etc'));
  writeFileSync(
    join(root, 'etc/passwd'),
    'root:x:0:0:root:/root:/bin/bash\nwww-data:x:33:33:www-data:/var/www:/usr/sbin/nologin\n',
  );
  writeFileSync(
    join(root, 'etc/group'),
    'root:x:0:\nwww-data:x:33:\nssl-cert:x:110:www-data,postgres\nadm:x:4:\n',
  );
  afterAll(() => rmSync(root, { recursive: true, force: true }));
  const step = (mode: number, uid: number, gid: number, directory = true) => ({
    path: '/x',
    directory,
    mode,
    uid,
    gid,
  });

  it('takes the ids systemd gives: uid, Group= or the primary group, and the groups listing the user', () => {
    const own = serviceAccount('www-data', null, `${root}/`);
    expect(own.uid).toBe(33);
    expect(own.gids).toEqual([33, 110]);
    expect(serviceAccount('www-data', 'adm', `${root}/`).gids).toEqual([4, 110]);
    expect(serviceAccount('1234', null, `${root}/`)).toMatchObject({ uid: 1234, gids: [] });
    expect(serviceAccount('sluice', null, `${root}/`)).toMatchObject({ uid: null, gids: [] });
  });

  it('refuses a directory without search or a file without read for the class the account falls in', () => {
    const www = serviceAccount('www-data', null, `${root}/`);
    const file = (mode: number, uid: number, gid: number) => step(mode, uid, gid, false);
    expect(deniedStep([step(0o755, 0, 0), file(0o600, 0, 0)], www)?.mode).toBe(0o600);
    expect(deniedStep([step(0o755, 0, 0), file(0o640, 0, 110)], www)).toBeNull();
    expect(deniedStep([step(0o700, 0, 0), file(0o644, 0, 0)], www)?.mode).toBe(0o700);
    expect(deniedStep([step(0o750, 0, 110), file(0o644, 0, 0)], www)).toBeNull();
    // The owner's bits decide for the owner, even when the others' would allow more.
    expect(deniedStep([step(0o755, 0, 0), file(0o044, 33, 0)], www)?.mode).toBe(0o044);
  });
});
