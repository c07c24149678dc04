/**
 * `sluice check`, `--help`, `version` and usage errors, run as the built CLI in a child process.
 */
import { spawn } from 'node:child_process';
import { mkdir, readFile, symlink, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import {
  BIN,
  DIST_INDEX,
  freePort,
  killAll,
  PACKAGE_ROOT,
  ROOT,
  requireBuilt,
  runCli,
  startConfigured,
  tempDir,
} from '../helpers/cli.js';
import { http } from '../helpers/http.js';

const FIXTURES = join(ROOT, 'test/fixtures/e2e');

describe('sluice check (built CLI)', () => {
  let tmp: { path: string; remove(): Promise<void> };

  beforeAll(async () => {
    requireBuilt();
    tmp = await tempDir();
  });
  afterEach(killAll);
  afterAll(async () => {
    await killAll();
    await tmp?.remove();
  });

  /** A project directory whose package.json says "type": "module", as an ESM user project would. */
  async function esmProject(name: string): Promise<string> {
    const dir = join(tmp.path, name);
    await mkdir(dir);
    await writeFile(join(dir, 'package.json'), '{ "name": "app", "private": true, "type": "module" }\n');
    return dir;
  }

  it('accepts a valid file: exit 0 and one ok line on stdout', async () => {
    const r = await runCli(['check', '-c', 'valid.yaml'], { cwd: FIXTURES });
    expect(r.stderr).toBe('');
    expect(r.stdout).toBe('valid.yaml: ok (1 server, 2 routes, 1 upstream)\n');
    expect(r.code).toBe(0);
  });

  // Workers switch to user: only when started as root: then a user the host lacks is a config
  // problem (exit 2) for check and start, found before any worker is forked.
  it.runIf(process.getuid?.() === 0)(
    'as root, refuses a user: or group: not in /etc/passwd or /etc/group: exit 2, before forking',
    async () => {
      const dir = join(tmp.path, 'nouser');
      await mkdir(dir);
      await writeFile(
        join(dir, 'sluice.yaml'),
        'user: no-such-user-x\ngroup: no-such-group-x\nservers:\n  - listen: "127.0.0.1:18084"\n    routes: [{ respond: { body: "x" } }]\n',
      );
      const r = await runCli(['check', '-c', 'sluice.yaml'], { cwd: dir });
      expect(r.code).toBe(2);
      expect(r.stdout).toContain(
        'sluice.yaml:1:7: SLUICE_E_CONFIG_VALUE user: "no-such-user-x" is not in /etc/passwd',
      );
      expect(r.stdout).toContain(
        'sluice.yaml:2:8: SLUICE_E_CONFIG_VALUE group: "no-such-group-x" is not in /etc/group',
      );
      expect(r.stdout).toContain('(hint: sluice reads /etc/passwd and /etc/group (not NSS or LDAP)');
      const start = await runCli(['start', '-c', 'sluice.yaml'], { cwd: dir });
      expect(start.code).toBe(2);
      expect(start.stderr).toContain('"no-such-user-x" is not in /etc/passwd');
      expect(start.stderr).not.toContain('SLUICE_E_RUNTIME_PRIVILEGES');
    },
  );

  // As root, sluice start refused a config whose handlers would run as root, while check said ok.
  it.runIf(process.getuid?.() === 0)(
    'run as root, warns that start would refuse handlers running as root, and still says ok',
    async () => {
      const dir = join(tmp.path, 'root-handlers');
      await mkdir(dir);
      await writeFile(join(dir, 'app.mjs'), 'export default (req, res) => res.end();\n');
      const write = (extra: string) =>
        writeFile(
          join(dir, 'sluice.yaml'),
          `${extra}servers: [{ listen: "127.0.0.1:18084", routes: [{ handler: ./app.mjs }] }]\n`,
        );
      await write('');
      const r = await runCli(['check', '-c', 'sluice.yaml'], { cwd: dir });
      expect(r.stderr).toBe(
        'sluice.yaml:1:1: SLUICE_E_HANDLER_ROOT warning: handler routes would run as root, which sluice start refuses when run as root, as this check is (hint: set user: (and group:) to an unprivileged account, or allow_root_handlers: true if you really mean it)\n',
      );
      expect(r.stdout).toBe('sluice.yaml: ok (1 server, 1 route, 0 upstreams)\n');
      expect(r.code).toBe(0);
      await write('user: nobody\n');
      expect((await runCli(['check', '-c', 'sluice.yaml'], { cwd: dir })).stderr).toBe('');
    },
  );

  it('counts proxy.url origins apart from the upstreams the file defines', async () => {
    const dir = join(tmp.path, 'origins');
    await mkdir(dir);
    await writeFile(
      join(dir, 'sluice.yaml'),
      [
        'servers:',
        '  - listen: "127.0.0.1:18083"',
        '    routes:',
        '      - { match: { path_prefix: /a/ }, proxy: { url: "http://127.0.0.1:19001" } }',
        '      - { match: { path_prefix: /b/ }, proxy: { url: "http://127.0.0.1:19001/b" } }',
        '      - { match: { path_prefix: /c/ }, proxy: { url: "http://127.0.0.1:19002" } }',
        '      - { proxy: { upstream: be } }',
        'upstreams:',
        '  be: { targets: [{ url: "http://127.0.0.1:19003" }] }',
        '',
      ].join('\n'),
    );
    const r = await runCli(['check', '-c', 'sluice.yaml'], { cwd: dir });
    expect(r.stdout).toBe('sluice.yaml: ok (1 server, 4 routes, 1 upstream, 2 proxy.url origins)\n');
    expect(r.code).toBe(0);
  });

  // It printed the Redis password and the values of credential headers in clear: --print output
  // goes to CI logs and bug reports.
  it('--print redacts secrets as GET /api/config does', async () => {
    const dir = join(tmp.path, 'print-secrets');
    await mkdir(dir);
    await writeFile(
      join(dir, 'sluice.yaml'),
      [
        'state: { redis: "redis://:hunter2pass@127.0.0.1:6379/0" }',
        'servers:',
        '  - listen: "127.0.0.1:18084"',
        '    routes:',
        // biome-ignore lint/suspicious/noTemplateCurlyInString: a ${VARIABLE} of the config, not of this file.
        '      - proxy: { url: "http://127.0.0.1:19001", set_headers: { Authorization: "Bearer ${SLUICE_E2E_API_SECRET}" } }',
        '',
      ].join('\n'),
    );
    const r = await runCli(['check', '-c', 'sluice.yaml', '--print'], {
      cwd: dir,
      env: { SLUICE_E2E_API_SECRET: 's3cr3t-value' },
    });
    expect(r.code).toBe(0);
    expect(r.stdout).not.toContain('hunter2pass');
    expect(r.stdout).not.toContain('s3cr3t-value');
    const c = JSON.parse(r.stdout);
    expect(c.state.redis).toContain('127.0.0.1:6379');
  });

  // check passed a password with a lone %, and start then ended with ioredis's `URIError: URI
  // malformed` (a reload of it, every worker, again and again).
  it('refuses a Redis password with a % that starts no escape, in check and start: exit 2', async () => {
    const dir = join(tmp.path, 'redis-percent');
    await mkdir(dir);
    const port = await freePort();
    await writeFile(
      join(dir, 'sluice.yaml'),
      `state: { redis: "redis://:50%off@127.0.0.1:6379/0" }\nservers: [{ listen: "127.0.0.1:${port}", routes: [{ respond: { body: ok } }] }]\n`,
    );
    const problem =
      'sluice.yaml:1:17: SLUICE_E_CONFIG_URL state.redis: "redis://:redacted@127.0.0.1:6379/0" has a user name or password that is not valid percent-encoding (hint: percent-encode % as %25';
    const check = await runCli(['check', '-c', 'sluice.yaml'], { cwd: dir });
    expect(check.stdout).toContain(problem);
    expect(check.code).toBe(2);
    const start = await runCli(['start', '-c', 'sluice.yaml'], { cwd: dir });
    expect(start.stderr).toContain(problem);
    expect(start.stderr).not.toContain('URIError');
    expect(start.code).toBe(2);
    expect(`${check.stdout}${check.stderr}${start.stdout}${start.stderr}`).not.toContain('50%off');
  });

  it('--print prints the resolved config as JSON: defaults applied, units resolved', async () => {
    const r = await runCli(['check', '-c', 'valid.yaml', '--print'], { cwd: FIXTURES });
    expect(r.code).toBe(0);
    const c = JSON.parse(r.stdout);
    expect(c.version).toBe(1);
    expect(c.file).toBe(join(FIXTURES, 'valid.yaml'));
    expect(c.hash).toMatch(/^[0-9a-f]{16}$/);
    expect(c.workers).toBe(2);
    expect(c.shutdownTimeoutMs).toBe(15_000);
    expect(c.log).toEqual({ level: 'warn', access: 'stdout', format: 'json' });
    const web = c.servers[0];
    expect(web.name).toBe('web');
    expect(web.listen).toEqual([{ host: '127.0.0.1', port: 18080, key: '127.0.0.1:18080' }]);
    expect(web.limits).toMatchObject({
      maxBody: 10 * 1024 * 1024,
      headerTimeoutMs: 500,
      requestTimeoutMs: 120_000,
      // defaults
      maxHeader: 16 * 1024,
      keepaliveTimeoutMs: 75_000,
      maxConnections: 10_000,
    });
    expect(web.routes.map((r: { name: string }) => r.name)).toEqual(['api', 'health']);
    expect(web.routes[0].path).toEqual({ kind: 'prefix', prefix: '/api/' });
    expect(web.routes[0].action).toMatchObject({
      kind: 'proxy',
      upstream: 'backend',
      connectTimeoutMs: 250,
      readTimeoutMs: 90_000,
      preserveHost: true,
    });
    expect(web.routes[1]).toMatchObject({
      path: { kind: 'exact', path: '/healthz' },
      action: { kind: 'respond', status: 200, body: 'ok\n' },
    });
    expect(c.upstreams.backend).toMatchObject({
      name: 'backend',
      keepaliveTimeoutMs: 3000,
      targets: [
        { origin: 'http://127.0.0.1:19001', weight: 1 },
        { origin: 'http://127.0.0.1:19002', weight: 3 },
      ],
    });
  });

  it('rejects an invalid file: exit 2, every problem as FILE:LINE:COL: CODE message (hint: ...)', async () => {
    const r = await runCli(['check', '-c', 'invalid.yaml'], { cwd: FIXTURES });
    expect(r.code).toBe(2);
    // Positions counted by hand in test/fixtures/e2e/invalid.yaml.
    expect(r.stdout.split('\n')).toEqual([
      'invalid.yaml:5:25: SLUICE_E_CONFIG_SIZE servers[0].limits.max_body: "lots" is not a size (hint: write a number with a unit: 512b, 16kb, 10mb or 1gb (1kb = 1024 bytes))',
      'invalid.yaml:7:9: SLUICE_E_CONFIG_ROUTE_ACTION servers[0].routes[0]: route has respond and redirect: give it exactly one action (hint: give each route one of proxy, respond, redirect or handler)',
      'invalid.yaml:14:9: SLUICE_E_CONFIG_UNKNOWN_KEY upstreams.be.targets[0]: unknown key "weigth"; did you mean "weight"? (hint: remove the key or correct its spelling; allowed here: url, weight, backup, down, max_conns, resolve)',
      '',
    ]);
    expect(r.stderr).toBe('invalid.yaml: 3 problems\n');
  });

  // The URL host parser stopped at the path, query or backslash and dropped the user part, so each
  // entry was kept as a bare host: all of localhost allowed, or api.example.com for evil.com.
  it('refuses egress hosts entries that say more than a host, each at its line and column', async () => {
    const dir = join(tmp.path, 'egress-hosts');
    await mkdir(dir);
    await writeFile(
      join(dir, 'sluice.yaml'),
      [
        'egress:',
        '  listen: 127.0.0.1:21610',
        '  policies:',
        '    - name: apps',
        '      sources: [127.0.0.1]',
        '      hosts:',
        '        - localhost/only/this/path',
        '        - "evil.com@api.example.com:443"',
        '        - api.example.com?x',
        "        - 'a\\b.com'",
        '        - 10.0.0.0/8',
        '        - "*.example.com:443"',
        '        - api.example.com',
        'servers: [{ listen: "127.0.0.1:21611", routes: [{ respond: {} }] }]',
        '',
      ].join('\n'),
    );
    const r = await runCli(['check', '-c', 'sluice.yaml'], { cwd: dir });
    expect(r.code).toBe(2);
    const paths =
      'write host, host:PORT or *.domain[:PORT] (api.example.com:443); egress checks only the host and port, not paths: HTTPS goes through CONNECT tunnels, which show the proxy nothing else';
    expect(r.stdout.split('\n')).toEqual([
      `sluice.yaml:7:11: SLUICE_E_CONFIG_VALUE egress.policies[0].hosts[0]: "localhost/only/this/path" has a path: egress allows whole hosts, not URLs (hint: ${paths})`,
      `sluice.yaml:8:11: SLUICE_E_CONFIG_VALUE egress.policies[0].hosts[1]: "evil.com@api.example.com:443" has a user part before "@", which a host entry cannot have (hint: ${paths})`,
      `sluice.yaml:9:11: SLUICE_E_CONFIG_VALUE egress.policies[0].hosts[2]: "api.example.com?x" has a query: egress allows whole hosts, not URLs (hint: ${paths})`,
      `sluice.yaml:10:11: SLUICE_E_CONFIG_VALUE egress.policies[0].hosts[3]: "a\\\\b.com" has a backslash, which a host cannot have (hint: ${paths})`,
      'sluice.yaml:11:11: SLUICE_E_CONFIG_VALUE egress.policies[0].hosts[4]: "10.0.0.0/8" is a CIDR block: hosts match the target as the client wrote it, a name or one address (hint: list each address (10.0.0.7, [fd00::7]) or the names the clients use: a request for a name is never matched by the address it resolves to)',
      '',
    ]);
    expect(r.stderr).toBe('sluice.yaml: 5 problems\n');
  });

  // The egress proxy and the admin API bind `[::]` dual stack, so it holds the port on IPv4 too:
  // check said ok, and start failed with EADDRINUSE.
  it('refuses an egress or admin [::]:PORT beside another listener on PORT, at the later one, naming the other', async () => {
    const dir = join(tmp.path, 'egress-listen');
    await mkdir(dir);
    const write = (lines: string[]) => writeFile(join(dir, 'sluice.yaml'), `${lines.join('\n')}\n`);
    const egress = (listen: string) => [
      'egress:',
      `  listen: "${listen}"`,
      '  policies: [{ name: p, sources: [127.0.0.1], hosts: [localhost] }]',
    ];
    await write([
      ...egress('[::]:21630'),
      'servers:',
      '  - name: web',
      '    listen: ["[::]:21631", "127.0.0.1:21630"]',
      '    routes: [{ respond: {} }]',
    ]);
    const r = await runCli(['check', '-c', 'sluice.yaml'], { cwd: dir });
    expect(r.stdout).toBe(
      'sluice.yaml:2:11: SLUICE_E_CONFIG_DUPLICATE_LISTEN egress.listen: [::]:21630 overlaps 127.0.0.1:21630 of servers[0] ("web"): the egress proxy binds [::] dual stack, which takes port 21630 for IPv4 too, so both cannot be bound (hint: give the egress proxy a port of its own, e.g. 127.0.0.1:3128)\n',
    );
    expect(r.code).toBe(2);

    await write([
      'admin:',
      '  listen: "[::]:21632"',
      `  tokens: [{ name: ops, role: operator, token_sha256: "${'a'.repeat(64)}" }]`,
      ...egress('127.0.0.1:21632'),
      'servers:',
      '  - name: web',
      '    listen: ["0.0.0.0:21632"]',
      '    routes: [{ respond: {} }]',
    ]);
    const both = await runCli(['check', '-c', 'sluice.yaml'], { cwd: dir });
    expect(both.stdout.split('\n')).toEqual([
      'sluice.yaml:2:11: SLUICE_E_CONFIG_DUPLICATE_LISTEN admin.listen: [::]:21632 overlaps 0.0.0.0:21632 of servers[0] ("web"): the admin API binds [::] dual stack, which takes port 21632 for IPv4 too, so both cannot be bound (hint: give the admin API a port of its own, e.g. 127.0.0.1:9090)',
      'sluice.yaml:5:11: SLUICE_E_CONFIG_DUPLICATE_LISTEN egress.listen: 127.0.0.1:21632 overlaps 0.0.0.0:21632 of servers[0] ("web"): the wildcard address takes port 21632 on every interface, so both cannot be bound (hint: give the egress proxy a port of its own, e.g. 127.0.0.1:3128)',
      '',
    ]);

    // A server's [::] is bound IPv6-only: the egress proxy may have the port's IPv4 addresses.
    await write([
      ...egress('127.0.0.1:21633'),
      'servers: [{ listen: "[::]:21633", routes: [{ respond: {} }] }]',
    ]);
    const apart = await runCli(['check', '-c', 'sluice.yaml'], { cwd: dir });
    expect(apart.stdout).toBe('sluice.yaml: ok (1 server, 1 route, 0 upstreams)\n');
    expect(apart.code).toBe(0);
  });

  // A listen address written IPv4-mapped was read as IPv6: check passed addresses that start then
  // could not bind (EADDRINUSE), and refused `[::]` beside one, which binds (`[::]` is IPv6-only).
  it('reads an IPv4-mapped listen address as the IPv4 address it carries, in check and in start', async () => {
    const dir = join(tmp.path, 'mapped-listen');
    await mkdir(dir);
    const write = (lines: string[]) => writeFile(join(dir, 'sluice.yaml'), `${lines.join('\n')}\n`);
    const check = async (lines: string[]) => {
      await write(lines);
      return runCli(['check', '-c', 'sluice.yaml'], { cwd: dir });
    };
    const [a, b, c, d, e] = [
      await freePort(),
      await freePort(),
      await freePort(),
      await freePort(),
      await freePort(),
    ];
    const server = (listen: string) =>
      `servers: [{ listen: ${listen}, routes: [{ respond: { body: "hi" } }] }]`;

    const twice = await check([server(`["127.0.0.1:${a}", "[::ffff:127.0.0.1]:${a}"]`)]);
    expect(twice.stdout).toContain(
      `SLUICE_E_CONFIG_DUPLICATE_LISTEN servers[0].listen[1]: 127.0.0.1:${a} is already listed at servers[0].listen[0]`,
    );
    expect(twice.code).toBe(2);
    const wildcard = await check([server(`[":${b}", "[::ffff:127.0.0.1]:${b}"]`)]);
    expect(wildcard.stdout).toContain(
      `SLUICE_E_CONFIG_DUPLICATE_LISTEN servers[0].listen[1]: 127.0.0.1:${b} overlaps 0.0.0.0:${b}`,
    );
    expect(wildcard.code).toBe(2);
    const egress = await check([
      'egress:',
      `  listen: "[::ffff:127.0.0.1]:${c}"`,
      '  policies: [{ name: p, sources: [127.0.0.1], hosts: [localhost] }]',
      server(`"127.0.0.1:${c}"`),
    ]);
    expect(egress.stdout).toContain(
      `SLUICE_E_CONFIG_DUPLICATE_LISTEN egress.listen: 127.0.0.1:${c} is also a listen address of servers[0]`,
    );
    expect(egress.code).toBe(2);

    // Both bind; and a loopback admin address without tokens is loopback however it is written.
    const binds = [
      'admin:',
      `  listen: "[::ffff:127.0.0.1]:${d}"`,
      server(`["[::]:${e}", "[::ffff:127.0.0.1]:${e}"]`),
    ];
    const ok = await check(binds);
    expect(ok.stdout).toBe('sluice.yaml: ok (1 server, 1 route, 0 upstreams)\n');
    expect(ok.code).toBe(0);
    await startConfigured(dir, `${binds.join('\n')}\n`, e);
    expect((await http(`http://127.0.0.1:${e}/`)).body).toBe('hi');
    expect((await http(`http://[::1]:${e}/`)).body).toBe('hi');
    expect((await http(`http://127.0.0.1:${d}/api/status`)).status).toBe(200);
  });

  it('--workers takes what workers: takes, at most 1024: start and serve refuse more before starting anything', async () => {
    for (const args of [
      ['start', '--workers', '5000', '-c', 'no-such-file.yaml'],
      ['serve', 'no-such-app.ts', '--workers', '1025'],
    ]) {
      const r = await runCli(args, { cwd: tmp.path });
      expect(r.code).toBe(2);
      expect(r.stderr).toMatch(/not a number of workers from 1 to 1024: (5000|1025)\n/);
    }
  });

  it('names the file as given: an absolute path appears in every problem line', async () => {
    const file = join(FIXTURES, 'invalid.yaml');
    const r = await runCli(['check', '-c', file]);
    expect(r.code).toBe(2);
    const lines = r.stdout.trim().split('\n');
    expect(lines).toHaveLength(3);
    for (const line of lines) expect(line.startsWith(`${file}:`)).toBe(true);
  });

  // 100 unknown upstreams among 300 printed 1.9 KB of upstream names per line; the problems of
  // one code, thousands of them, ended with a count that did not say which.
  it('prints every problem of a large file in short lines, and counts them by code at the end', async () => {
    const dir = join(tmp.path, 'many-problems');
    await mkdir(dir);
    const text = [
      'upstreams:',
      ...Array.from(
        { length: 300 },
        (_, i) => `  u${i}: { targets: [{ url: "http://127.0.0.1:${20000 + i}" }] }`,
      ),
      'servers:',
      '  - listen: "127.0.0.1:21612"',
      '    access:',
      ...Array.from({ length: 150 }, (_, i) => `      - deny: 10.0.${i}.0/33`),
      '    routes:',
      ...Array.from(
        { length: 100 },
        (_, i) => `      - { match: { path_prefix: /s${i}/ }, proxy: { upstream: missing${i} } }`,
      ),
      '',
    ].join('\n');
    await writeFile(join(dir, 'sluice.yaml'), text);
    const r = await runCli(['check', '-c', 'sluice.yaml'], { cwd: dir });
    expect(r.code).toBe(2);
    const lines = r.stdout.trim().split('\n');
    expect(lines).toHaveLength(250);
    expect(lines.filter((l) => l.includes(' SLUICE_E_CONFIG_CIDR '))).toHaveLength(150);
    expect(lines[150]).toBe(
      'sluice.yaml:456:60: SLUICE_E_CONFIG_UNKNOWN_UPSTREAM servers[0].routes[0].proxy.upstream: unknown upstream "missing0" (hint: defined upstreams: u0, u1, u2, u3, u4, u5, u6, u7 and 292 more; or use proxy.url for a single target)',
    );
    for (const line of lines) expect(line.length).toBeLessThan(300);
    expect(r.stderr).toBe(
      'sluice.yaml: 250 problems (150 SLUICE_E_CONFIG_CIDR, 100 SLUICE_E_CONFIG_UNKNOWN_UPSTREAM)\n',
    );
  });

  it('ends with its own exit code when its reader goes away (check | head), without a stack trace', async () => {
    const dir = join(tmp.path, 'closed-reader');
    await mkdir(dir);
    const routes = Array.from({ length: 2000 }, (_, i) => `      - { proxy: { upstream: missing${i} } }`);
    await writeFile(
      join(dir, 'sluice.yaml'),
      ['servers:', '  - listen: "127.0.0.1:21613"', '    routes:', ...routes, ''].join('\n'),
    );
    const child = spawn(process.execPath, [BIN, 'check', '-c', 'sluice.yaml'], {
      cwd: dir,
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    // The reader takes the first lines and closes its end, as `head -1` does.
    child.stdout.once('data', () => child.stdout.destroy());
    let stderr = '';
    child.stderr.setEncoding('utf8').on('data', (d: string) => {
      stderr += d;
    });
    const code = await new Promise<number | null>((resolve) => child.once('close', (c) => resolve(c)));
    expect(stderr).not.toContain('EPIPE');
    expect(code).toBe(2);
  });

  it('a missing file: exit 2 with SLUICE_E_CONFIG_FILE', async () => {
    const r = await runCli(['check', '-c', 'no-such-file.yaml'], { cwd: tmp.path });
    expect(r.code).toBe(2);
    expect(r.stdout).toMatch(
      /^no-such-file\.yaml:1:1: SLUICE_E_CONFIG_FILE cannot read the file: no such file \(hint: .+\)\n$/,
    );
    expect(r.stderr).toBe('no-such-file.yaml: 1 problem\n');
  });

  it('sluice.config.ts with defineConfig imported from the built package passes check', async () => {
    const dir = await esmProject('ts-abs');
    await writeFile(
      join(dir, 'sluice.config.ts'),
      [
        `import { defineConfig } from '${pathToFileURL(DIST_INDEX).href}';`,
        '',
        'const port: number = 18081;',
        'export default defineConfig({',
        '  version: 1,',
        // biome-ignore lint/suspicious/noTemplateCurlyInString: TypeScript source written into the config file.
        '  servers: [{ name: "ts", listen: `127.0.0.1:${port}`, limits: { max_body: "2mb" }, routes: [{ respond: { body: "ok" } }] }],',
        '});',
        '',
      ].join('\n'),
    );
    const r = await runCli(['check', '-c', 'sluice.config.ts'], { cwd: dir });
    expect(r.stderr).toBe('');
    expect(r.stdout).toBe('sluice.config.ts: ok (1 server, 1 route, 0 upstreams)\n');
    expect(r.code).toBe(0);
    const printed = await runCli(['check', '-c', 'sluice.config.ts', '--print'], { cwd: dir });
    expect(printed.code).toBe(0);
    const c = JSON.parse(printed.stdout);
    expect(c.file).toBe(join(dir, 'sluice.config.ts'));
    expect(c.servers[0].listen[0].key).toBe('127.0.0.1:18081');
    expect(c.servers[0].limits.maxBody).toBe(2 * 1024 * 1024);
  });

  it("sluice.config.ts importing 'sluice' (the package as users install it) passes check", async () => {
    const dir = await esmProject('ts-pkg');
    await mkdir(join(dir, 'node_modules'));
    await symlink(PACKAGE_ROOT, join(dir, 'node_modules', 'sluice'), 'dir');
    await writeFile(
      join(dir, 'sluice.config.ts'),
      [
        "import { defineConfig } from 'sluice';",
        'export default defineConfig({',
        '  servers: [{ listen: "127.0.0.1:18082", routes: [{ proxy: { upstream: "be" } }] }],',
        '  upstreams: { be: { targets: [{ url: "http://127.0.0.1:19001" }] } },',
        '});',
        '',
      ].join('\n'),
    );
    const r = await runCli(['check', '-c', 'sluice.config.ts'], { cwd: dir });
    expect(r.stdout).toBe('sluice.config.ts: ok (1 server, 1 route, 1 upstream)\n');
    expect(r.code).toBe(0);
  });

  it('an invalid sluice.config.ts: exit 2, problems located by key path (no line)', async () => {
    const dir = await esmProject('ts-bad');
    await writeFile(
      join(dir, 'sluice.config.ts'),
      [
        `import { defineConfig } from '${pathToFileURL(DIST_INDEX).href}';`,
        'export default defineConfig({',
        '  servers: [{ listen: "127.0.0.1:18083", limits: { max_body: "lots" }, routes: [{ respond: {} }] }],',
        '});',
        '',
      ].join('\n'),
    );
    const r = await runCli(['check', '-c', 'sluice.config.ts'], { cwd: dir });
    expect(r.code).toBe(2);
    expect(r.stdout).toBe(
      'sluice.config.ts:1:1: SLUICE_E_CONFIG_SIZE servers[0].limits.max_body: "lots" is not a size (hint: write a number with a unit: 512b, 16kb, 10mb or 1gb (1kb = 1024 bytes))\n',
    );
  });

  // Known bug (src/config/load.ts, loadConfigModule): without "type": "module" in the nearest
  // package.json, tsx compiles sluice.config.ts as CommonJS and the imported namespace's default is
  // module.exports ({ default: config }); sluice then reports 'unknown key "default"' and
  // 'missing required key "servers"'. Flip to `it` when fixed.
  it('sluice.config.ts in a project without "type": "module" passes check', async () => {
    const dir = join(tmp.path, 'ts-cjs');
    await mkdir(dir);
    await writeFile(
      join(dir, 'sluice.config.ts'),
      [
        `import { defineConfig } from '${pathToFileURL(DIST_INDEX).href}';`,
        'export default defineConfig({ servers: [{ listen: "127.0.0.1:18084", routes: [{ respond: { body: "ok" } }] }] });',
        '',
      ].join('\n'),
    );
    const r = await runCli(['check', '-c', 'sluice.config.ts'], { cwd: dir });
    expect(r.stdout).toBe('sluice.config.ts: ok (1 server, 1 route, 0 upstreams)\n');
    expect(r.code).toBe(0);
  });

  it('sluice --help, sluice check --help and sluice start --help exit 0 with usage', async () => {
    const top = await runCli(['--help']);
    expect(top.code).toBe(0);
    expect(top.stdout).toContain('Usage: sluice');
    for (const cmd of ['start', 'check', 'version'])
      expect(top.stdout).toMatch(new RegExp(`^\\s+${cmd}\\b`, 'm'));

    const check = await runCli(['check', '--help']);
    expect(check.code).toBe(0);
    expect(check.stdout).toContain('Usage: sluice check');
    expect(check.stdout).toContain('-c, --config <file>');
    expect(check.stdout).toContain('--print');

    const start = await runCli(['start', '--help']);
    expect(start.code).toBe(0);
    expect(start.stdout).toContain('Usage: sluice start');
    expect(start.stdout).toContain('--workers <n>');
  });

  it('sluice version and sluice --version print the package version, exit 0', async () => {
    const { version } = JSON.parse(await readFile(join(ROOT, 'package.json'), 'utf8')) as { version: string };
    const r = await runCli(['version']);
    expect(r.code).toBe(0);
    expect(r.stdout).toBe(`sluice ${version} (node ${process.version})\n`);
    const v = await runCli(['--version']);
    expect(v.code).toBe(0);
    expect(v.stdout.trim()).toBe(version);
  });

  it('usage errors exit 2 with a message on stderr', async () => {
    const unknown = await runCli(['frobnicate']);
    expect(unknown.code).toBe(2);
    expect(unknown.stderr).toContain("unknown command 'frobnicate'");

    const badFlag = await runCli(['check', '-c', 'valid.yaml', '--bogus'], { cwd: FIXTURES });
    expect(badFlag.code).toBe(2);
    expect(badFlag.stderr).toContain("unknown option '--bogus'");
    expect(badFlag.stdout).toBe('');

    const noConfig = await runCli(['check']);
    expect(noConfig.code).toBe(2);
    expect(noConfig.stderr).toBe(
      "error: required option '-c, --config <file>' not specified\n(run sluice --help for usage)\n",
    );
    // The unknown option is the error to name, not the -c it may have been meant as.
    const bogusAlone = await runCli(['check', '--bogus']);
    expect(bogusAlone.code).toBe(2);
    expect(bogusAlone.stderr).toBe("error: unknown option '--bogus'\n(run sluice --help for usage)\n");

    const missingArg = await runCli(['check', '-c']);
    expect(missingArg.code).toBe(2);
    expect(missingArg.stderr).toContain('argument missing');
  });

  it('sluice help NAME for a command that does not exist says so, as sluice NAME does', async () => {
    const bogus = await runCli(['help', 'bogus']);
    expect(bogus.code).toBe(2);
    expect(bogus.stderr).toBe("error: unknown command 'bogus'\n(run sluice --help for usage)\n");
    expect(bogus.stdout).toBe('');
    const typo = await runCli(['help', 'strat']);
    expect(typo.code).toBe(2);
    expect(typo.stderr).toContain("unknown command 'strat'\n(Did you mean start?)");
    // Known names still print their help, on stdout, exit 0.
    const known = await runCli(['help', 'init']);
    expect(known.code).toBe(0);
    expect(known.stdout).toContain('Usage: sluice init');
    const self = await runCli(['help', 'help']);
    expect(self.code).toBe(0);
    expect(self.stdout).toContain('Usage: sluice [options] [command]');
  });

  it('start --workers 0 is a usage error: exit 2', async () => {
    const r = await runCli(['start', '-c', 'valid.yaml', '--workers', '0'], { cwd: FIXTURES });
    expect(r.code).toBe(2);
  });

  // Known bug (src/cli/bin.ts, parsePositiveInt): the CommanderError it throws bypasses commander's
  // error output, so the usage error is silent. Flip to `it` when fixed.
  it('start --workers 0 says why on stderr', async () => {
    const r = await runCli(['start', '-c', 'valid.yaml', '--workers', '0'], { cwd: FIXTURES });
    expect(r.code).toBe(2);
    expect(r.stderr).toContain('not a number of workers from 1 to 1024: 0');
  });
});
