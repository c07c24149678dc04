// biome-ignore-all lint/suspicious/noTemplateCurlyInString: these tests are about the literal ${NAME} syntax.
import { createHash } from 'node:crypto';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { describe, expect, it } from 'vitest';
import { defineConfig } from '../../src/config/define-config.js';
import {
  type ConfigResult,
  loadConfigFile,
  loadConfigText,
  resolveConfigObject,
} from '../../src/config/load.js';
import { type ConfigProblem, formatProblem } from '../../src/config/problem.js';
import type { ResolvedConfig } from '../../src/config/types.js';

const FULL = 'test/fixtures/config/valid/full.yaml';
const ENV = { SLUICE_TEST_PORT: '8081', SLUICE_TEST_USER: 'alice' };

function config(result: ConfigResult): ResolvedConfig {
  if (!result.ok) throw new Error(result.problems.map((p) => formatProblem(p)).join('\n'));
  return result.config;
}

/** Each problem as `LINE:COL CODE`. */
function where(result: ConfigResult): string[] {
  return result.ok ? [] : result.problems.map((p) => `${p.line}:${p.col} ${p.code}`);
}

function lines(result: ConfigResult): string[] {
  if (result.ok) throw new Error('expected problems');
  return result.problems.map((p) => formatProblem(p));
}

describe('the full fixture', async () => {
  const c = config(await loadConfigFile(FULL, ENV));
  const web = c.servers[0]!;
  const [api, healthz, old, users, docs] = web.routes;

  it('resolves the top level, with the file absolute and relative log paths next to it', () => {
    expect(c.version).toBe(1);
    expect(c.file).toBe(resolve(FULL));
    expect(c.workers).toBe('auto');
    expect(c.shutdownTimeoutMs).toBe(30_000);
    expect([c.user, c.group, c.pidFile, c.allowRootHandlers]).toEqual([
      'nobody',
      'nogroup',
      resolve('test/fixtures/config/valid/run/sluice.pid'),
      false,
    ]);
    expect(web.routes.at(-1)?.action).toEqual({
      kind: 'handler',
      module: resolve('test/fixtures/config/handlers/app.ts'),
      timeoutMs: 60_000,
    });
    expect(c.log).toEqual({
      level: 'info',
      access: resolve('test/fixtures/config/valid/logs/access.log'),
      format: 'json',
    });
    expect(c.admin).toEqual({
      listen: { host: '127.0.0.1', port: 9090, key: '127.0.0.1:9090' },
      metricsAuth: false,
      tokens: [],
    });
    expect(c.egress).toBeNull();
    expect(c.state).toEqual({ redis: null });
    expect(c.tracing).toEqual({ otlpEndpoint: null, sampleRatio: 1, serviceName: 'sluice' });
    expect(c.hash).toMatch(/^[0-9a-f]{16}$/);
  });

  it('resolves a server: listen keys, names, proxies, limits in bytes and milliseconds', () => {
    expect(web.name).toBe('web');
    expect(web.listen).toEqual([
      { host: '0.0.0.0', port: 8080, key: '0.0.0.0:8080' },
      { host: '::', port: 8443, key: '[::]:8443' },
    ]);
    expect(web.serverNames).toEqual([
      'example.com',
      '*.example.com',
      '~^api\\d+\\.example\\.com$',
      'example.org',
      '*.example.org',
    ]);
    expect(web.default).toBe(true);
    expect(web.trustedProxies).toEqual(['10.0.0.0/8', '192.168.1.10/32', 'fd00::/8']);
    expect(web.limits).toEqual({
      maxBody: 1_048_576,
      maxHeader: 16_384,
      maxUri: 8192,
      headerTimeoutMs: 10_000,
      keepaliveTimeoutMs: 75_000,
      requestTimeoutMs: 60_000,
      sendTimeoutMs: 60_000,
      maxConnections: 10_000,
      backlog: 4096,
      maxRequestsPerConnection: 1000,
    });
  });

  it('resolves a proxy route with interpolated env, ordered headers and default timeouts', () => {
    expect(api).toMatchObject({
      name: 'api',
      path: { kind: 'prefix', prefix: '/api/' },
      methods: ['GET', 'POST'],
      headers: [
        { name: 'x-canary', value: '1', regex: false },
        { name: 'x-version', value: '^v[23]$', regex: true },
      ],
      action: {
        kind: 'proxy',
        upstream: 'backend',
        basePath: '',
        stripPrefix: '/api',
        preserveHost: true,
        setHeaders: [
          ['X-Real-IP', '$remote_addr'],
          ['X-Request-Id', '$request_id'],
          ['X-User', 'alice'],
        ],
        removeHeaders: ['x-internal'],
        responseSetHeaders: [['X-Frame-Options', 'DENY']],
        responseRemoveHeaders: ['server'],
        connectTimeoutMs: 5000,
        readTimeoutMs: 60_000,
        sendTimeoutMs: 60_000,
      },
    });
  });

  it('names routes after what they match and applies respond/redirect defaults', () => {
    expect(healthz?.name).toBe('/healthz');
    expect(healthz?.action).toEqual({
      kind: 'respond',
      status: 200,
      body: 'ok\n',
      headers: [['content-type', 'text/plain']],
    });
    expect(old?.name).toBe('/old/');
    expect(old?.action).toEqual({ kind: 'redirect', status: 301, to: 'https://example.com/new$request_uri' });
    expect(users?.name).toBe('~^/users/[0-9]+$');
    expect(users?.path).toEqual({ kind: 'regex', source: '^/users/[0-9]+$' });
  });

  it('turns proxy.url into one shared implicit upstream named by its origin, with the base path on the route', () => {
    expect(users?.action).toMatchObject({
      kind: 'proxy',
      upstream: 'http://127.0.0.1:9001',
      basePath: '/v1',
      preserveHost: false,
    });
    expect(docs?.action).toMatchObject({ kind: 'proxy', upstream: 'http://127.0.0.1:9001', basePath: '' });
    expect(Object.keys(c.upstreams)).toEqual(['backend', 'sessions', 'http://127.0.0.1:9001']);
    const target = (origin: string, extra = {}) => ({
      origin,
      weight: 1,
      backup: false,
      down: false,
      maxConns: 0,
      resolve: false,
      ...extra,
    });
    expect(c.upstreams['http://127.0.0.1:9001']).toEqual({
      name: 'http://127.0.0.1:9001',
      balance: 'round_robin',
      hashKey: null,
      targets: [target('http://127.0.0.1:9001')],
      keepalive: 32,
      keepaliveTimeoutMs: 4000,
      maxFails: 1,
      failTimeoutMs: 10_000,
      healthCheck: null,
      retry: { on: ['error', 'timeout'], tries: 0, timeoutMs: 0, nonIdempotent: false },
      dnsMinTtlMs: 1000,
      dnsMaxTtlMs: 300_000,
      tls: null,
    });
    expect(c.upstreams.backend).toMatchObject({
      name: 'backend',
      balance: 'least_conn',
      hashKey: null,
      targets: [
        target('http://10.0.0.11:8080'),
        target('http://10.0.0.12:8080', { weight: 2, maxConns: 100 }),
        target('http://10.0.0.13:8080', { backup: true }),
        target('http://10.0.0.14:8080', { down: true }),
        target('http://backend.internal:8080', { resolve: true }),
      ],
      keepalive: 32,
      keepaliveTimeoutMs: 4000,
      maxFails: 1,
      failTimeoutMs: 10_000,
      healthCheck: {
        path: '/healthz',
        intervalMs: 5000,
        timeoutMs: 2000,
        rise: 2,
        fall: 3,
        expectStatus: [[200, 399]],
        host: 'backend.internal',
      },
      retry: {
        on: ['error', 'timeout', 'http_500', 'http_502', 'http_503', 'http_504'],
        tries: 3,
        timeoutMs: 10_000,
        nonIdempotent: false,
      },
      dnsMinTtlMs: 1000,
      dnsMaxTtlMs: 300_000,
    });
    expect(c.upstreams.sessions).toMatchObject({ balance: 'hash', hashKey: '$http_x_user_id' });
  });

  it('gives an unnamed server web<N>, reads an unquoted ${PORT} as a number and keeps $$ and $${ literal', () => {
    const second = c.servers[1]!;
    expect(second.name).toBe('web2');
    expect(second.listen).toEqual([{ host: '0.0.0.0', port: 8081, key: '0.0.0.0:8081' }]);
    expect(second.routes[0]?.action).toEqual({
      kind: 'redirect',
      status: 302,
      to: 'https://$host$request_uri',
    });
    expect(second.routes[1]?.action).toMatchObject({ body: 'costs $$5 and ${HOME}' });
  });

  it('is deep-frozen', () => {
    expect(Object.isFrozen(c)).toBe(true);
    expect(Object.isFrozen(web.routes[0]?.action)).toBe(true);
    expect(Object.isFrozen(c.upstreams.backend?.targets[0])).toBe(true);
    expect(() => {
      // The types say readonly; freezing makes it true at run time too.
      (web.listen[0] as { port: number }).port = 1;
    }).toThrow(TypeError);
  });
});

describe('defaults', () => {
  it('fills every default for the smallest config', async () => {
    const c = config(await loadConfigFile('test/fixtures/config/valid/minimal.yaml', {}));
    expect(c.admin).toBeNull();
    expect(c.workers).toBe('auto');
    expect(c.log).toEqual({ level: 'info', access: 'stdout', format: 'json' });
    expect(c.upstreams).toEqual({});
    expect(c.servers).toEqual([
      {
        name: 'web1',
        listen: [{ host: '0.0.0.0', port: 8080, key: '0.0.0.0:8080' }],
        serverNames: [],
        default: false,
        trustedProxies: [],
        limits: {
          maxBody: 1_048_576,
          maxHeader: 16_384,
          maxUri: 8192,
          headerTimeoutMs: 10_000,
          keepaliveTimeoutMs: 75_000,
          requestTimeoutMs: 60_000,
          sendTimeoutMs: 60_000,
          maxConnections: 10_000,
          backlog: 4096,
          maxRequestsPerConnection: 1000,
        },
        mergeSlashes: true,
        http2: false,
        tls: null,
        guards: { access: null, rateLimit: null, ban: null },
        routes: [
          {
            name: '*',
            path: null,
            methods: null,
            headers: [],
            action: { kind: 'respond', status: 200, body: 'ok\n', headers: [] },
            guards: { access: null, rateLimit: null, ban: null },
            maxBody: null,
          },
        ],
      },
    ]);
  });

  it('uses 127.0.0.1:9090 for admin: {} and allows request_timeout: 0s', () => {
    const c = config(
      loadConfigText(
        'admin: {}\nservers: [{ listen: 80, limits: { request_timeout: 0s }, routes: [{ respond: {} }] }]\n',
        'x.yaml',
        {},
      ),
    );
    expect(c.admin?.listen.key).toBe('127.0.0.1:9090');
    expect(c.servers[0]?.limits.requestTimeoutMs).toBe(0);
  });

  it('derives the server name from the first non-regex server_name, and makes derived names unique', () => {
    const c = config(
      resolveConfigObject({
        servers: [
          { listen: 80, server_name: ['~^a', 'API.example.com'], routes: [{ respond: {} }] },
          {
            listen: 81,
            server_name: 'api.example.com',
            routes: [{ respond: {} }, { respond: {} }, { name: '*', respond: {} }],
          },
        ],
      }),
    );
    expect(c.servers.map((s) => s.name)).toEqual(['api.example.com', 'api.example.com#2']);
    expect(c.servers[1]?.routes.map((r) => r.name)).toEqual(['*#1', '*#2', '*']);
  });

  it('hashes the same config the same way wherever the file is, and differently when it changes', () => {
    const text = 'servers: [{ listen: 80, routes: [{ respond: {} }] }]\n';
    const a = config(loadConfigText(text, '/a/sluice.yaml', {}));
    const b = config(loadConfigText(text, '/b/sluice.yaml', {}));
    const c = config(loadConfigText(text.replace('80', '81'), '/a/sluice.yaml', {}));
    expect(a.hash).toBe(b.hash);
    expect(a.hash).not.toBe(c.hash);
  });
});

describe('config objects', () => {
  it('report problems by key path, with file "config" and no position, in the order written', () => {
    const result = resolveConfigObject({
      servers: [{ listen: ':80', routes: [{ proxy: { upstream: 'backnd' } }], tlss: true }],
      upstreams: { backend: { targets: [{ url: 'http://127.0.0.1:9001' }] } },
    });
    expect(lines(result)).toEqual([
      'config: SLUICE_E_CONFIG_UNKNOWN_UPSTREAM servers[0].routes[0].proxy.upstream: unknown upstream "backnd"; did you mean "backend"? (hint: defined upstreams: backend; or use proxy.url for a single target)',
      'config: SLUICE_E_CONFIG_UNKNOWN_KEY servers[0]: unknown key "tlss"; did you mean "tls"? (hint: remove the key or correct its spelling; allowed here: name, listen, server_name, default, trusted_proxies, limits, merge_slashes, http2, tls, access, rate_limit, ban, routes)',
    ]);
    const first: ConfigProblem | undefined = result.ok ? undefined : result.problems[0];
    expect([first?.file, first?.line, first?.col]).toEqual(['config', 0, 0]);
  });

  it('name the module file when given one, and do not interpolate ${ENV}', () => {
    const result = resolveConfigObject(
      { servers: [{ listen: '${PORT}', routes: [{ respond: { body: '${HOME}' } }] }] },
      'sluice.config.ts',
    );
    expect(lines(result)).toEqual([
      'sluice.config.ts:1:1: SLUICE_E_CONFIG_LISTEN servers[0].listen: "${PORT}" has no port; write HOST:PORT or :PORT (hint: write PORT, :PORT, HOST:PORT or [IPV6]:PORT, e.g. ":8080" or "127.0.0.1:8080")',
    ]);
  });

  it('reject a non-object at the top level', () => {
    expect(lines(resolveConfigObject(42))).toEqual([
      'config: SLUICE_E_CONFIG_TYPE expected a mapping, got a number (42) (hint: write the value in the type shown; quote strings that YAML would read as numbers or booleans)',
    ]);
  });

  it('accept what defineConfig returns', () => {
    const input = defineConfig({ servers: [{ listen: 3000, routes: [{ redirect: { to: '/x' } }] }] });
    expect(config(resolveConfigObject(input, 'sluice.config.ts')).file).toBe(resolve('sluice.config.ts'));
  });
});

describe('a config with many upstreams', () => {
  const upstreams = Object.fromEntries(
    Array.from({ length: 300 }, (_, i) => [`u${i}`, { targets: [{ url: `http://127.0.0.1:${9000 + i}` }] }]),
  );
  const refused = (names: readonly string[]): string[] =>
    lines(
      resolveConfigObject({
        servers: [{ listen: ':80', routes: names.map((upstream) => ({ proxy: { upstream } })) }],
        upstreams,
      }),
    );

  it('name the closest upstreams in the hint, and how many more there are', () => {
    expect(refused(['uu51'])).toEqual([
      'config: SLUICE_E_CONFIG_UNKNOWN_UPSTREAM servers[0].routes[0].proxy.upstream: unknown upstream "uu51"; did you mean "u51"? (hint: defined upstreams: u51, u151, u251, u5, u1, u11, u15, u21 and 292 more; or use proxy.url for a single target)',
    ]);
    // Nothing near: the first ones, in written order.
    expect(refused(['missing0'])[0]).toContain(
      '(hint: defined upstreams: u0, u1, u2, u3, u4, u5, u6, u7 and 292 more; or use proxy.url',
    );
  });

  it('keep each problem line short however many upstreams there are', () => {
    const all = refused(Array.from({ length: 100 }, (_, i) => `missing${i}`));
    expect(all).toHaveLength(100);
    for (const line of all) expect(line.length).toBeLessThan(300);
  });
});

describe('files', () => {
  it('reports an unreadable file as SLUICE_E_CONFIG_FILE naming the path as given', async () => {
    expect(lines(await loadConfigFile('no/such/sluice.yaml'))).toEqual([
      'no/such/sluice.yaml:1:1: SLUICE_E_CONFIG_FILE cannot read the file: no such file (hint: check the path (given with -c, or named in the config: relative to its directory) and that the file is readable by this user)',
    ]);
  });

  it('refuses bytes that are not UTF-8 at the first of them, and reads UTF-8 with a BOM', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'sluice-config-'));
    const file = join(dir, 'latin1.yaml');
    const head = 'servers:\n  - listen: 80\n    routes:\n';
    // "café" saved as Latin-1 passed and was served as "caf\uFFFD". An emoji (4 bytes, 2 columns
    // as the parser counts them) and a U+FFFD written as such come before it on the line.
    const route = Buffer.concat([
      Buffer.from('      - respond: { body: "\u{1F600}\uFFFD caf'),
      Buffer.from([0xe9]),
      Buffer.from('" }\n'),
    ]);
    writeFileSync(file, Buffer.concat([Buffer.from(head), route]));
    expect(lines(await loadConfigFile(file))).toEqual([
      `${file}:4:34: SLUICE_E_CONFIG_SYNTAX byte 0xE9 is not UTF-8: the file is in another encoding (hint: save the file as UTF-8 (in Latin-1, 0xE9 is "é"))`,
    ]);
    writeFileSync(file, `\uFEFF${head}      - respond: { body: "café" }\n`);
    const c = config(await loadConfigFile(file));
    expect(c.servers[0]!.routes[0]!.action).toMatchObject({ kind: 'respond', body: 'café' });
  });

  it('reads JSON (with tab indentation) as YAML, positions included', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'sluice-config-'));
    writeFileSync(
      join(dir, 'c.json'),
      '{\n\t"servers": [{\n\t\t"listen": 80, "routes": [{ "respond": {} }],\n\t\t"lisen": 1\n\t}]\n}\n',
    );
    const result = await loadConfigFile(join(dir, 'c.json'));
    expect(result.ok).toBe(false);
    if (!result.ok)
      expect(result.problems.map((p) => [p.line, p.col, p.code])).toEqual([
        [4, 3, 'SLUICE_E_CONFIG_UNKNOWN_KEY'],
      ]);
  });

  it('imports a .js module and resolves its default export', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'sluice-config-'));
    writeFileSync(
      join(dir, 'sluice.config.mjs'),
      'export default { servers: [{ listen: 8080, routes: [{ respond: { status: 204 } }] }] };\n',
    );
    const c = config(await loadConfigFile(join(dir, 'sluice.config.mjs')));
    expect(c.servers[0]?.routes[0]?.action).toEqual({ kind: 'respond', status: 204, body: '', headers: [] });
    expect(c.file).toBe(join(dir, 'sluice.config.mjs'));
  });
  it('notes which paths were written relative to the file, which a deployment moves with it', () => {
    const text = [
      'pid_file: ../run/sluice.pid',
      'log: { access: /var/log/sluice/access.log }',
      'servers: [{ listen: 8080, routes: [{ respond: { body: ok } }] }]',
    ].join('\n');
    const c = config(loadConfigText(text, '/srv/app/sluice.yaml', {}));
    expect(c.pidFile).toBe('/srv/run/sluice.pid');
    expect(c.relativePaths).toEqual(['/srv/run/sluice.pid']);
    // `..` above the root stays at the root, as the kernel resolves it.
    expect(config(loadConfigText(text, '/elsewhere/sluice.yaml', {})).relativePaths).toEqual([
      '/run/sluice.pid',
    ]);
  });
});

describe('problems in YAML', () => {
  it('point at the value for wrong values, at the key for unknown keys and at the mapping for missing keys', () => {
    const text = [
      'servers:',
      '  - listen: 80',
      '    routes:',
      '      - proxy: { ur: x }',
      '        respond: { status: "2" }',
      '',
    ].join('\n');
    expect(where(loadConfigText(text, 's.yaml', {}))).toEqual([
      '4:9 SLUICE_E_CONFIG_ROUTE_ACTION',
      // The proxy of a route with two actions is still checked: it has no target.
      '4:16 SLUICE_E_CONFIG_VALUE',
      '4:18 SLUICE_E_CONFIG_UNKNOWN_KEY',
      '5:28 SLUICE_E_CONFIG_TYPE',
    ]);
  });

  it("resolve a route's max_body in bytes, and point at a bad one", () => {
    const good = loadConfigText(
      'servers:\n  - listen: 80\n    routes:\n      - match: { path_prefix: /up/ }\n        max_body: 200mb\n        respond: { status: 204 }\n      - respond: { status: 204 }\n',
      's.yaml',
      {},
    );
    if (!good.ok) throw new Error('expected the config to load');
    expect(good.config.servers[0]!.routes.map((r) => r.maxBody)).toEqual([200 * 1024 ** 2, null]);
    const bad =
      'servers:\n  - listen: 80\n    routes:\n      - max_body: lots\n        respond: { status: 204 }\n';
    expect(where(loadConfigText(bad, 's.yaml', {}))).toEqual(['4:19 SLUICE_E_CONFIG_SIZE']);
  });

  it('refuse header values HTTP cannot carry, where they are written', () => {
    const text = [
      'servers:',
      '  - listen: 80',
      '    routes:',
      '      - proxy: { url: "http://127.0.0.1:9001", set_headers: { X-Note: "snow \u2603" } }',
      '      - respond: { headers: { X-Bell: "a\\u0007b", X-Ok: "café" } }',
      '',
    ].join('\n');
    expect(lines(loadConfigText(text, 's.yaml', {}))).toEqual([
      's.yaml:4:71: SLUICE_E_CONFIG_VALUE servers[0].routes[0].proxy.set_headers.X-Note: a header value cannot hold U+2603 "\u2603" (hint: header values are bytes: use ASCII (or Latin-1) characters, and percent-encode others as the receiver expects)',
      's.yaml:5:39: SLUICE_E_CONFIG_VALUE servers[0].routes[1].respond.headers.X-Bell: a header value cannot hold U+0007 "\\u0007" (hint: header values are bytes: use ASCII (or Latin-1) characters, and percent-encode others as the receiver expects)',
    ]);
  });

  it('report all YAML syntax errors and stop there', () => {
    const result = loadConfigText('a: [1\nb: }\n', 's.yaml', {});
    expect(result.ok).toBe(false);
    if (!result.ok)
      expect(new Set(result.problems.map((p) => p.code))).toEqual(new Set(['SLUICE_E_CONFIG_SYNTAX']));
  });

  // YAML's own line count missed the newline inside a token it could not place, and every
  // position after it stayed on the line before (2:56 on a line of 21 characters).
  it('place the problems after a token that runs over a line break on their own lines', () => {
    const text =
      '        respond: { body: "x" }\n    fail_timeout: 10s\n      - { url: http://a:1, backup: true }\n';
    const found = lines(loadConfigText(text, 'p.yaml', {})).map((l) => l.split(' SLUICE_E_')[0] ?? '');
    expect(found).toEqual(['p.yaml:2:5:', 'p.yaml:2:17:']);
    const lengths = text.split('\n').map((l) => l.length);
    for (const l of found) {
      const [, line, col] = /:(\d+):(\d+):$/.exec(l)!.map(Number);
      expect(col).toBeLessThanOrEqual(lengths[line! - 1]! + 1);
    }
  });

  // One space before the first key ended the document there, and each token after it was a
  // problem of its own: 30 lines for a 7-line file.
  it('report the tokens YAML reads no more as one problem, with their count', () => {
    const text = [
      ' version: 1',
      'servers:',
      '  - listen: "127.0.0.1:8080"',
      '    routes:',
      '      - respond: { body: x }',
      '',
    ].join('\n');
    expect(lines(loadConfigText(text, 'i.yaml', {})).map((l) => l.replace(/ \(hint: .*/, ''))).toEqual([
      'i.yaml:2:1: SLUICE_E_CONFIG_SYNTAX unexpected scalar at node end',
      'i.yaml:2:8: SLUICE_E_CONFIG_SYNTAX unexpected map-value-ind token in YAML stream: ":"; YAML read nothing from here on (14 more tokens after it): look for a line indented more or less than the lines around it, here or above',
    ]);
    // An unquoted ${NAME} after the break is one more of those tokens, not the fault to name.
    const withRef = `${text}      - respond: { status: \${S} }\n`;
    expect(
      lines(loadConfigText(withRef, 'i.yaml', {})).map((l) => l.split(' (hint')[0]!.slice(0, 60)),
    ).toEqual([
      'i.yaml:2:1: SLUICE_E_CONFIG_SYNTAX unexpected scalar at node',
      'i.yaml:2:8: SLUICE_E_CONFIG_SYNTAX unexpected map-value-ind ',
    ]);
  });

  // The second merge key was silently ignored, as a repeated plain key is not.
  it('refuse a merge key given twice in one mapping', () => {
    const text = [
      'servers:',
      '  - listen: "127.0.0.1:8080"',
      '    routes:',
      '      - proxy: { <<: { upstream: a }, <<: { upstream: b } }',
      '      - proxy: { <<: [{ upstream: a }, { timeouts: { read: 5s } }] }',
      'upstreams:',
      '  a: { targets: [{ url: "http://127.0.0.1:1" }] }',
      '  b: { targets: [{ url: "http://127.0.0.1:2" }] }',
      '',
    ].join('\n');
    expect(lines(loadConfigText(text, 'm.yaml', {})).map((l) => l.replace(/ \(hint: .*/, ''))).toEqual([
      'm.yaml:4:39: SLUICE_E_CONFIG_DUPLICATE_KEY servers[0].routes[0].proxy: key "<<" is given twice in one mapping (first at line 4)',
    ]);
  });

  // zod's int() adds a safe-integer maximum of its own: both bounds were reported at one place.
  it('report only the tightest bound a value breaks', () => {
    const text =
      'workers: 99999999999999999999\nservers: [{ listen: "127.0.0.1:8080", routes: [{ respond: {} }] }]\n';
    expect(lines(loadConfigText(text, 'w.yaml', {})).map((l) => l.replace(/ \(hint: .*/, ''))).toEqual([
      'w.yaml:1:10: SLUICE_E_CONFIG_VALUE workers: must be at most 1024, got 100000000000000000000',
    ]);
  });

  it('refuse several documents in one file', () => {
    expect(lines(loadConfigText('servers: []\n---\nx: 1\n', 's.yaml', {}))).toEqual([
      's.yaml:2:1: SLUICE_E_CONFIG_SYNTAX only one YAML document is allowed; remove the "---" separator and what follows it (hint: fix the YAML syntax at the position shown; indentation must use spaces)',
    ]);
  });

  it('report an empty file as a missing servers key at 1:1', () => {
    expect(lines(loadConfigText('', 'empty.yaml', {}))).toEqual([
      'empty.yaml:1:1: SLUICE_E_CONFIG_TYPE expected a mapping, got an empty value (hint: write the value in the type shown; quote strings that YAML would read as numbers or booleans)',
    ]);
  });

  it('refuse a list or mapping as a key without printing a process warning', () => {
    expect(lines(loadConfigText('a: &x [1]\n*x : 2\n? { k: v }\n: 3\nservers: []\n', 'k.yaml', {}))).toEqual([
      'k.yaml:2:1: SLUICE_E_CONFIG_SYNTAX a key must be plain text, not a list or mapping (hint: fix the YAML syntax at the position shown; indentation must use spaces)',
      'k.yaml:3:3: SLUICE_E_CONFIG_SYNTAX a key must be plain text, not a list or mapping (hint: fix the YAML syntax at the position shown; indentation must use spaces)',
    ]);
  });

  it('still check the well-formed parts next to a malformed one, without follow-on noise', () => {
    const text = [
      'servers:',
      '  - listen: [":80", true, "127.0.0.1:80"]',
      '    routes:',
      '      - proxy: 3',
      '      - proxy: { upstream: 4 }',
      '      - proxy: { upstream: nope }',
      '',
    ].join('\n');
    expect(where(loadConfigText(text, 's.yaml', {}))).toEqual([
      '2:21 SLUICE_E_CONFIG_TYPE',
      '2:27 SLUICE_E_CONFIG_DUPLICATE_LISTEN',
      '4:16 SLUICE_E_CONFIG_TYPE',
      '5:28 SLUICE_E_CONFIG_TYPE',
      '6:28 SLUICE_E_CONFIG_UNKNOWN_UPSTREAM',
    ]);
  });

  it('refuse a file nested more than 100 levels deep at the first level too many, as often as it is read', () => {
    const blockMaps = (levels: number): string =>
      Array.from({ length: levels }, (_, i) => `${' '.repeat(i)}k:`).join('\n') + ' 1\n';
    const refused = (at: string): string[] => [
      `d.yaml:${at}: SLUICE_E_CONFIG_SYNTAX the file nests lists and mappings more than 100 levels deep (hint: a config nests a few levels deep (servers, routes, proxy, ...); write the nested lists and mappings out flatter)`,
    ];
    // 2,500 levels of block mappings overflowed the parser's stack: a RangeError, not a problem.
    // After 3,000 nested "- " the parser caught its own overflow, and parsing them again in the
    // same process could abort it (V8 could no longer compile a regular expression).
    for (let i = 0; i < 2; i++) {
      expect(lines(loadConfigText(blockMaps(2500), 'd.yaml', {}))).toEqual(refused('101:101'));
      expect(lines(loadConfigText(`${'- '.repeat(3000)}1\n`, 'd.yaml', {}))).toEqual(refused('1:201'));
      expect(lines(loadConfigText(`a: ${'['.repeat(3000)}${']'.repeat(3000)}\n`, 'd.yaml', {}))).toEqual(
        refused('1:103'),
      );
    }
    // 100 levels are read; the position survives comments, quoted and block scalars and CRLF.
    expect(where(loadConfigText(blockMaps(100), 'd.yaml', {}))).toEqual([
      '1:1 SLUICE_E_CONFIG_MISSING_KEY',
      '1:1 SLUICE_E_CONFIG_UNKNOWN_KEY',
    ]);
    // A block list one level under each line, as deep as the flow one: a line's `-` is the level
    // its indent opened, not one more (this was refused at 99 lists).
    const blockLists = (lists: number): string =>
      `x:\n${Array.from({ length: lists - 1 }, (_, i) => `${' '.repeat(2 * (i + 1))}-`).join('\n')}\n${' '.repeat(2 * lists)}- []\n`;
    expect(where(loadConfigText(blockLists(98), 'd.yaml', {}))).not.toContain(
      '99:199 SLUICE_E_CONFIG_SYNTAX',
    );
    expect(where(loadConfigText(blockLists(98), 'd.yaml', {})).filter((w) => w.includes('SYNTAX'))).toEqual(
      [],
    );
    expect(
      where(loadConfigText(`x: ${'['.repeat(99)}${']'.repeat(99)}\n`, 'd.yaml', {})).filter((w) =>
        w.includes('SYNTAX'),
      ),
    ).toEqual([]);
    expect(
      where(loadConfigText(blockLists(99), 'd.yaml', {})).filter((w) => w.includes('SYNTAX')),
    ).toHaveLength(1);
    const head =
      '# [[[[\r\nx: "over\r\n  lines [[["\r\ny: |\r\n  - - [[[ {{{\r\nz: plain\r\n  more - ? [\r\n';
    expect(where(loadConfigText(`${head}w: ${'['.repeat(100)}${']'.repeat(100)}\r\n`, 'd.yaml', {}))).toEqual(
      ['8:103 SLUICE_E_CONFIG_SYNTAX'],
    );
  });

  it('point at the alias or merge that cannot be resolved', () => {
    const text = [
      'servers:',
      '  - listen: 80',
      '    routes: *nope',
      '  - listen: 81',
      '    routes: &self [{ respond: {} }, *self]',
      '  - listen: 82',
      '    routes:',
      '      - respond:',
      '          <<: 5',
      '          status: 200',
      '      - respond: &list [1]',
      '      - respond: { <<: *list }',
      '',
    ].join('\n');
    expect(lines(loadConfigText(text, 'a.yaml', {}))).toEqual([
      'a.yaml:3:13: SLUICE_E_CONFIG_SYNTAX alias *nope has no anchor &nope before it (hint: put the anchor (&name) on a node before the alias (*name) and outside it)',
      'a.yaml:5:37: SLUICE_E_CONFIG_SYNTAX alias *self is inside the node it names, which would hold itself (hint: put the anchor (&name) on a node before the alias (*name) and outside it)',
      'a.yaml:9:15: SLUICE_E_CONFIG_SYNTAX a merge (<<) takes a mapping, an alias of one (*name) or a list of them (hint: write <<: *name with &name on a mapping, or <<: [*a, *b])',
      'a.yaml:12:24: SLUICE_E_CONFIG_SYNTAX a merge (<<) takes a mapping, an alias of one (*name) or a list of them (hint: write <<: *name with &name on a mapping, or <<: [*a, *b])',
    ]);
  });

  it('let an anchor be used as often as needed, and stop an alias bomb where it goes past 100,000 values', () => {
    const routes = Array.from({ length: 500 }, (_, i) => `      - { match: { path: /p${i} }, proxy: *px }`);
    const shared = [
      'servers:',
      '  - listen: 80',
      '    routes:',
      '      - { match: { path: /p }, proxy: &px { url: "http://127.0.0.1:9001", timeouts: { read: 5s } } }',
      ...routes,
      '',
    ].join('\n');
    // yaml's own limit refused the 101st use, at 1:1, as "excessive alias count".
    const c = config(loadConfigText(shared, 's.yaml', {}));
    expect(c.servers[0]!.routes).toHaveLength(501);
    expect(
      c.servers[0]!.routes.every((r) => r.action.kind === 'proxy' && r.action.readTimeoutMs === 5000),
    ).toBe(true);
    const laughs = ['a: &a [x, x, x, x, x, x, x, x, x]'];
    for (const [i, name] of ['b', 'c', 'd', 'e', 'f', 'g', 'h', 'i'].entries()) {
      const above = 'abcdefgh'[i];
      laughs.push(`${name}: &${name} [${Array(9).fill(`*${above}`).join(', ')}]`);
    }
    // b adds 90 values, c 819, d 7,380, e 66,429: the first *e on f's line goes past 100,000.
    expect(lines(loadConfigText(`${laughs.join('\n')}\nservers: *i\n`, 'bomb.yaml', {}))).toEqual([
      'bomb.yaml:6:8: SLUICE_E_CONFIG_SYNTAX with this alias, aliases add more than 100,000 values to the file (an alias bomb?) (hint: an alias may be used as often as needed, but what the aliases stand for must stay within that; share smaller blocks, or write them out)',
    ]);
  });

  it('follow merge keys and anchors', () => {
    const text = [
      'x-route: &ok { respond: { status: 204 } }',
      'servers:',
      '  - listen: 80',
      '    routes:',
      '      - <<: *ok',
      '        match: { path: /a }',
      '',
    ].join('\n');
    // The anchor's holder is an unknown top-level key; the merged route itself is fine.
    const result = loadConfigText(text, 'm.yaml', {});
    expect(lines(result)).toEqual([
      'm.yaml:1:1: SLUICE_E_CONFIG_UNKNOWN_KEY unknown key "x-route" (hint: remove the key or correct its spelling; allowed here: $schema, version, workers, user, group, pid_file, allow_root_handlers, shutdown_timeout, log, tracing, admin, egress, state, servers, upstreams)',
    ]);
  });
});

describe('warnings', () => {
  it('warn about a route shadowed by an identical one, strip_prefix that never applies and a Host header overriding preserve_host', () => {
    const text = [
      'servers:',
      '  - listen: 80',
      '    routes:',
      '      - match: { path_prefix: /api/ }',
      '        proxy: { url: http://127.0.0.1:9001, strip_prefix: /v1, preserve_host: false, set_headers: { Host: x } }',
      '      - match: { path_prefix: /api/ }',
      '        respond: {}',
      '',
    ].join('\n');
    const result = loadConfigText(text, 'w.yaml', {});
    expect(result.ok).toBe(true);
    if (!result.ok) return;
    expect(result.warnings.map((w) => formatProblem(w, 'warning'))).toEqual([
      'w.yaml:5:60: SLUICE_E_CONFIG_VALUE warning: servers[0].routes[0].proxy.strip_prefix: "/v1" is not a prefix of the route\'s path "/api/", so it never strips anything (hint: make strip_prefix the start of the matched path, e.g. path_prefix: /api/ with strip_prefix: /api)',
      'w.yaml:5:80: SLUICE_E_CONFIG_VALUE warning: servers[0].routes[0].proxy.preserve_host: preserve_host: false has no effect: set_headers sets Host (hint: remove one of the two; set_headers wins)',
      'w.yaml:6:9: SLUICE_E_CONFIG_VALUE warning: servers[0].routes[1]: this route matches exactly what routes[0] matches, so it is never chosen (hint: remove it, or narrow one of the two with methods or headers)',
    ]);
  });

  // CONTRACT's example lists hash_key beside balance: round_robin; refused, the example failed check.
  it('warn that hash_key is ignored without balance: hash, and load', () => {
    const text = [
      'servers: [{ listen: 80, routes: [{ proxy: { upstream: be } }] }]',
      'upstreams:',
      '  be: { balance: round_robin, hash_key: $http_x_user_id, targets: [{ url: http://127.0.0.1:9001 }] }',
      '',
    ].join('\n');
    const result = loadConfigText(text, 'w.yaml', {});
    expect(result.ok).toBe(true);
    if (!result.ok) return;
    expect(result.warnings.map((w) => formatProblem(w, 'warning'))).toEqual([
      'w.yaml:3:41: SLUICE_E_CONFIG_VALUE warning: upstreams.be.hash_key: hash_key is used only with balance: hash, not round_robin: it is ignored (hint: set balance: hash, or remove hash_key)',
    ]);
  });

  it('read handler_timeout on a handler route, and warn that it is ignored on any other', () => {
    const text = [
      'servers:',
      '  - listen: 80',
      '    routes:',
      '      - { match: { path: /a }, handler: ../handlers/app.ts, handler_timeout: 90s }',
      '      - { match: { path: /b }, handler: ../handlers/app.ts, handler_timeout: 0s }',
      '      - { match: { path: /c }, proxy: { url: http://127.0.0.1:9001 }, handler_timeout: 5s }',
      '',
    ].join('\n');
    const result = loadConfigText(text, 'test/fixtures/config/valid/w.yaml', {});
    expect(result.ok).toBe(true);
    if (!result.ok) return;
    const [a, b] = result.config.servers[0]!.routes;
    expect([a?.action, b?.action]).toMatchObject([{ timeoutMs: 90_000 }, { timeoutMs: 0 }]);
    expect(result.warnings.map((w) => formatProblem(w, 'warning'))).toEqual([
      'test/fixtures/config/valid/w.yaml:6:88: SLUICE_E_CONFIG_VALUE warning: servers[0].routes[2].handler_timeout: handler_timeout applies to handler routes only, not proxy: it is ignored (hint: a proxy route is timed by proxy.timeouts.read)',
    ]);
  });

  // A spiffe_id pin beside an http:// target checked nothing for that target: it went in plain text.
  it('warn that an upstream tls: does not apply to its http:// targets', () => {
    const text = [
      'servers: [{ listen: 80, routes: [{ proxy: { upstream: be } }] }]',
      'upstreams:',
      '  be:',
      '    targets: [{ url: http://127.0.0.1:9001 }, { url: https://127.0.0.1:9002 }]',
      '    tls: { spiffe_id: spiffe://example.org/backend }',
      '  all: { targets: [{ url: https://127.0.0.1:9003 }], tls: { spiffe_id: spiffe://example.org/backend } }',
      '',
    ].join('\n');
    const result = loadConfigText(text, 'w.yaml', {});
    expect(result.ok).toBe(true);
    if (!result.ok) return;
    expect(result.warnings.map((w) => formatProblem(w, 'warning'))).toEqual([
      'w.yaml:5:10: SLUICE_E_CONFIG_VALUE warning: upstreams.be.tls: tls applies to https:// targets only; 1 of the 2 targets is http:// (http://127.0.0.1:9001) and reached without TLS (hint: write those targets with https://, or remove tls: if they are meant to be plain HTTP)',
    ]);
  });

  // The file looked as if /metrics were protected; without tokens every read is open on loopback.
  it('warn that metrics_auth: true does nothing without admin tokens', () => {
    const text = [
      'admin: { listen: "127.0.0.1:9090", metrics_auth: true }',
      'servers: [{ listen: 80, routes: [{ respond: {} }] }]',
      '',
    ].join('\n');
    const result = loadConfigText(text, 'w.yaml', {});
    expect(result.ok).toBe(true);
    if (!result.ok) return;
    expect(result.warnings.map((w) => formatProblem(w, 'warning'))).toEqual([
      'w.yaml:1:50: SLUICE_E_CONFIG_VALUE warning: admin.metrics_auth: metrics_auth: true has no effect without admin.tokens: /metrics stays open to loopback callers (hint: configure admin.tokens (any role may then read /metrics), or remove metrics_auth)',
    ]);
  });
});

describe('admin tokens', () => {
  // A problem in one token hid nothing of another's, but the hint of a repeated name spoke of
  // servers and routes only.
  it('report each token its own problems, a repeated name with a hint about tokens', () => {
    const text = [
      'admin:',
      '  listen: 127.0.0.1:9091',
      '  tokens:',
      '    - { name: a, role: viewr, token_env: X }',
      '    - { name: b, role: operator, token_file: /nonexistent-sluice-token }',
      '    - { name: b, role: viewer, token_sha256: "0000000000000000000000000000000000000000000000000000000000000000" }',
      'servers: [{ listen: 80, routes: [{ respond: {} }] }]',
      '',
    ].join('\n');
    const result = loadConfigText(text, 't.yaml', {});
    expect(result.ok).toBe(false);
    if (result.ok) return;
    expect(result.problems.map((p) => `${p.line}:${p.code}`)).toEqual([
      '4:SLUICE_E_CONFIG_VALUE',
      '5:SLUICE_E_CONFIG_FILE',
      '6:SLUICE_E_CONFIG_DUPLICATE_NAME',
    ]);
    expect(result.problems[2]!.hint).toMatch(/each token its own name/);
  });
});

describe('admin tokens given twice', () => {
  // Both passed check; the first entry listed took every call, so `ops` could never operate.
  it('refuse one token in two entries, whatever their sources, without printing it', () => {
    const secret = 'shared-token-0123456789abcdef';
    const file = join(mkdtempSync(join(tmpdir(), 'sluice-tokens-')), 'ops.token');
    writeFileSync(file, `${secret}\n`);
    const sha = createHash('sha256').update(secret).digest('hex');
    const text = [
      'admin:',
      '  tokens:',
      '    - { name: grafana, role: viewer, token_env: TA }',
      `    - { name: ops, role: operator, token_file: ${file} }`,
      `    - { name: dev, role: developer, token_sha256: "${sha.toUpperCase()}" }`,
      '    - { name: other, role: operator, token_env: TB }',
      'servers: [{ listen: 80, routes: [{ respond: {} }] }]',
      '',
    ].join('\n');
    const env = { TA: secret, TB: 'another-token-0123456789abcdef' };
    const found = lines(loadConfigText(text, 'd.yaml', env));
    expect(found.map((l) => l.replace(/ \(hint: .*/, ''))).toEqual([
      'd.yaml:4:7: SLUICE_E_ADMIN_DUPLICATE_TOKEN admin.tokens[1]: token "ops" (operator) is the same token as "grafana" (viewer, admin.tokens[0]): every call with it would be taken as "grafana"\'s',
      'd.yaml:5:7: SLUICE_E_ADMIN_DUPLICATE_TOKEN admin.tokens[2]: token "dev" (developer) is the same token as "grafana" (viewer, admin.tokens[0]): every call with it would be taken as "grafana"\'s',
    ]);
    expect(found[0]).toMatch(/\(hint: give each entry its own token/);
    for (const line of found) {
      expect(line).not.toContain(secret);
      expect(line.toLowerCase()).not.toContain(sha);
    }
    // Each its own token: no problem.
    const distinct = text.replace(/\n {4}- \{ name: dev[^\n]*/, '');
    expect(loadConfigText(distinct, 'd.yaml', { ...env, TA: 'grafana-token-0123456789abcdef' }).ok).toBe(
      true,
    );
  });
});

describe('access that names no client', () => {
  // `allow: []` let every client in, and on a route replaced the server's access: with the server
  // allowing 10.0.0.0/8 only, 127.0.0.1 got /internal/x (200) where /x was 403.
  it('is refused in either form, at its line and column, with a hint', () => {
    const text = [
      'servers:',
      '  - listen: "127.0.0.1:8080"',
      '    access: { allow: [10.0.0.0/8] }',
      '    routes:',
      '      - { match: { path_prefix: /internal/ }, access: { allow: [] }, respond: {} }',
      '      - { match: { path_prefix: /both/ }, access: { allow: [], deny: [all] }, respond: {} }',
      '      - { match: { path_prefix: /list/ }, access: [], respond: {} }',
      '      - { match: { path_prefix: /none/ }, access: {}, respond: {} }',
      '      - { match: { path_prefix: /deny/ }, access: { deny: [] }, respond: {} }',
      '      - { respond: {} }',
      '  - listen: "127.0.0.1:8081"',
      '    access: { allow: [] }',
      '    routes: [{ respond: {} }]',
      '',
    ].join('\n');
    const found = lines(loadConfigText(text, 'a.yaml', {}));
    expect(found.map((l) => l.replace(/ \(hint: .*/, ''))).toEqual([
      'a.yaml:5:64: SLUICE_E_CONFIG_VALUE servers[0].routes[0].access.allow: an empty allow list names no client to let in',
      'a.yaml:6:60: SLUICE_E_CONFIG_VALUE servers[0].routes[1].access.allow: an empty allow list names no client to let in',
      'a.yaml:7:51: SLUICE_E_CONFIG_VALUE servers[0].routes[2].access: an empty access list names no client: it would let every client in (on a route, whatever its server allows)',
      'a.yaml:8:51: SLUICE_E_CONFIG_VALUE servers[0].routes[3].access: access names no client in allow or deny: it would let every client in (on a route, whatever its server allows)',
      'a.yaml:9:51: SLUICE_E_CONFIG_VALUE servers[0].routes[4].access: access names no client in allow or deny: it would let every client in (on a route, whatever its server allows)',
      'a.yaml:12:22: SLUICE_E_CONFIG_VALUE servers[1].access.allow: an empty allow list names no client to let in',
    ]);
    for (const line of found) {
      expect(line).toContain(
        "(hint: to let every client in, write allow: [all] (or remove access: a route then has its server's); to let none in, write deny: [all])",
      );
    }
  });

  it('lets a route open what its server restricts only when it says so', () => {
    const text = [
      'servers:',
      '  - listen: "127.0.0.1:8080"',
      '    access: { allow: [10.0.0.0/8] }',
      '    routes:',
      '      - { match: { path_prefix: /public/ }, access: { allow: [all] }, respond: {} }',
      '      - { match: { path_prefix: /closed/ }, access: [{ deny: all }], respond: {} }',
      '      - { match: { path_prefix: /spared/ }, access: { allow: [10.0.0.0/8], deny: [] }, respond: {} }',
      '      - { respond: {} }',
      '',
    ].join('\n');
    expect(loadConfigText(text, 'a.yaml', {}).ok).toBe(true);
  });
});

describe('egress policy names', () => {
  it('refuse a name used twice: the log says which policy allowed a request', () => {
    const text = [
      'egress:',
      '  listen: 127.0.0.1:3128',
      '  policies:',
      '    - { name: web, sources: [10.0.0.0/8], hosts: [example.com] }',
      '    - { name: web, sources: [10.0.0.0/8], hosts: [example.org] }',
      'servers: [{ listen: 80, routes: [{ respond: {} }] }]',
      '',
    ].join('\n');
    const result = loadConfigText(text, 'e.yaml', {});
    expect(result.ok).toBe(false);
    if (result.ok) return;
    expect(result.problems.map((p) => formatProblem(p))).toEqual([
      'e.yaml:5:15: SLUICE_E_CONFIG_DUPLICATE_NAME egress.policies[1].name: policy name "web" is used twice (hint: give each policy its own name: an egress log line\'s `policy` names the one that allowed it)',
    ]);
  });
});

describe('egress policy hosts', () => {
  const load = (hosts: string) =>
    loadConfigText(
      [
        'egress:',
        '  listen: 127.0.0.1:3128',
        `  policies: [{ name: p, sources: [127.0.0.1], hosts: ${hosts} }]`,
        'servers: [{ listen: "127.0.0.1:8080", routes: [{ respond: { status: 200 } }] }]',
        '',
      ].join('\n'),
      'm.yaml',
      {},
    );

  it('keeps names in lower case and international names in their xn-- form, as requests are compared', () => {
    const c = config(load('[API.Example.com, "bücher.example.org:443", "*.bücher.example"]'));
    expect(c.egress?.policies[0]?.hosts).toEqual([
      'api.example.com',
      'xn--bcher-kva.example.org:443',
      '*.xn--bcher-kva.example',
    ]);
  });

  it('refuses ports outside 1-65535, each at its line and column, with a hint that says what to write', () => {
    const r = load('["example.com:99999", "example.net:0", "[::1]:443", "a b"]');
    expect(where(r)).toEqual([
      '3:55 SLUICE_E_CONFIG_VALUE',
      '3:76 SLUICE_E_CONFIG_VALUE',
      '3:106 SLUICE_E_CONFIG_VALUE',
    ]);
    expect(lines(r)[0]).toContain(
      '"example.com:99999": port 99999 is not between 1 and 65535 (hint: write a name',
    );
    expect(lines(r)[2]).toContain('"a b" is not a host, *.domain or host:port');
  });

  it('keeps entries in the canonical form requests are compared in: no trailing dot, IPv4 as four numbers', () => {
    const c = config(load('["api.example.com.", "127.1:80", "[0:0::1]:0443", "*.Example.ORG."]'));
    expect(c.egress?.policies[0]?.hosts).toEqual([
      'api.example.com',
      '127.0.0.1:80',
      '[::1]:443',
      '*.example.org',
    ]);
  });

  it('refuses entries that could never match a request: not a host, or a wildcard over an address', () => {
    const r = load('["foo.123", "*.127.0.0.1", "*.[::1]:443", "x..example.com", "ok.example.com"]');
    expect(where(r)).toEqual([
      '3:55 SLUICE_E_CONFIG_VALUE',
      '3:66 SLUICE_E_CONFIG_VALUE',
      '3:81 SLUICE_E_CONFIG_VALUE',
      '3:96 SLUICE_E_CONFIG_VALUE',
    ]);
    const text = lines(r);
    expect(text[0]).toContain('m.yaml:3:55: SLUICE_E_CONFIG_VALUE egress.policies[0].hosts[0]: "foo.123"');
    expect(text[0]).toContain('(hint: ');
    expect(text[1]).toContain('"*.127.0.0.1": a wildcard never matches an IP address');
    expect(text[2]).toContain('"*.[::1]:443": a wildcard never matches an IP address');
    expect(text[3]).toContain('"x..example.com"');
  });
});

describe('state.redis', () => {
  const load = (url: string) =>
    loadConfigText(
      `state: { redis: "${url}" }\nservers: [{ listen: "127.0.0.1:8080", routes: [{ respond: {} }] }]\n`,
      'r.yaml',
      {},
    );

  it('refuses a database that is no number, in the path or the query, where it is written', () => {
    // ioredis read these with parseInt: NaN (its SELECT NaN ended the process) and 3.
    for (const [url, db] of [
      ['redis://127.0.0.1:6379/abc', 'abc'],
      ['redis://127.0.0.1:6379?db=x', 'x'],
      ['redis://:pw-9f8e@127.0.0.1:6379/3abc', '3abc'],
      ['redis://127.0.0.1:6379/-1', '-1'],
      ['redis://127.0.0.1:6379/2147483648', '2147483648'],
      ['redis://127.0.0.1:6379/1/2', '1/2'],
    ]) {
      const r = load(url as string);
      expect(where(r)).toEqual(['1:17 SLUICE_E_CONFIG_URL']);
      const [line] = lines(r);
      expect(line).toContain(
        `the database "${db}" is not a number from 0 to 2147483647 (hint: write the database`,
      );
      expect(line).not.toContain('pw-9f8e');
    }
  });

  // ioredis decodes the user name and password with decodeURIComponent: `50%off` threw URIError at
  // start, after check had passed it. A / of the password ended the userinfo.
  it.each([
    ['redis://:50%off@127.0.0.1:6379/0', 'is not valid percent-encoding', 'percent-encode % as %25'],
    ['redis://u%:pw@127.0.0.1:6379/0', 'is not valid percent-encoding', 'percent-encode % as %25'],
    ['redis://:%FF@127.0.0.1:6379/0', 'is not valid percent-encoding', 'percent-encode % as %25'],
    ['redis://:p/w@127.0.0.1:6379/0', 'has an @ after a /, ? or #', 'as %2F, %3F, %23 and %40'],
    ['redis://u:1/pw@127.0.0.1:6379/0', 'has an @ after a /, ? or #', 'as %2F, %3F, %23 and %40'],
    ['redis://:p?w@127.0.0.1:6379/0', 'has an @ after a /, ? or #', 'as %2F, %3F, %23 and %40'],
    ['redis://:p?x=1@127.0.0.1:6379/0', 'has an @ after a /, ? or #', 'as %2F, %3F, %23 and %40'],
    ['redis://:p#w@127.0.0.1:6379/0', 'has an @ after a /, ? or #', 'as %2F, %3F, %23 and %40'],
  ])('refuses %s, whose userinfo ioredis cannot read', (url, message, hint) => {
    const r = load(url);
    expect(where(r)).toEqual(['1:17 SLUICE_E_CONFIG_URL']);
    const [line] = lines(r);
    expect(line).toContain(message);
    expect(line).toContain(hint);
  });

  it('refuses a URL without // after redis:, which ioredis takes for a host name', () => {
    for (const url of ['redis:pw@127.0.0.1:6379', 'redis:/:pw@127.0.0.1', 'redis:']) {
      const r = load(url);
      expect(where(r)).toEqual(['1:17 SLUICE_E_CONFIG_URL']);
      expect(lines(r)[0]).toContain('is not a redis:// URL');
    }
  });

  it('takes a database number in the path or the query, or none', () => {
    for (const url of [
      'redis://:50%25off@127.0.0.1:6379/0',
      'redis://u%3Ax:p%2Fw%3F%23%40@127.0.0.1:6379/0',
      'redis://127.0.0.1:6379',
      'redis://127.0.0.1:6379/',
      'redis://127.0.0.1:6379/0',
      'redis://127.0.0.1:6379/15',
      'redis://127.0.0.1:6379?db=2',
      'rediss://:pw@127.0.0.1:6379/2147483647',
      // An @ of a query value is no userinfo's: ioredis reads ?password= from the query.
      'redis://127.0.0.1:6379/0?password=p@ss',
    ])
      expect(config(load(url)).state.redis).toBe(url);
  });
});

describe('tracing.otlp_endpoint', () => {
  const load = (url: string) =>
    loadConfigText(
      `tracing: { otlp_endpoint: "${url}" }\nservers: [{ listen: "127.0.0.1:8080", routes: [{ respond: {} }] }]\n`,
      'r.yaml',
      {},
    );

  // The exporter decodes the userinfo for its Basic authorization: `50%off` failed every export.
  it.each([
    ['http://u:50%off@127.0.0.1:4318/v1/traces', 'is not valid percent-encoding'],
    ['http://u:p/w@127.0.0.1:4318/v1/traces', 'has an @ after a /, ? or #'],
    ['http:u:50%off@127.0.0.1:4318/v1/traces', 'is not valid percent-encoding'],
  ])('refuses %s, whose userinfo the exporter cannot read', (url, message) => {
    const r = load(url);
    expect(where(r)).toEqual(['1:27 SLUICE_E_CONFIG_URL']);
    expect(lines(r)[0]).toContain(message);
  });

  it('takes percent-encoded userinfo, and an @ in a query value', () => {
    for (const url of [
      'http://u:50%25off%2F@127.0.0.1:4318/v1/traces',
      'http://127.0.0.1:4318/v1/traces?api_key=a@b',
    ])
      expect(config(load(url)).tracing.otlpEndpoint).toBe(url);
  });

  it('shows none of a password with an @, or after white space', () => {
    for (const url of [' ftp://u:Leak1@127.0.0.1:4318', 'ftp://127.0.0.1:4318/v1?token=a@Leak2']) {
      const r = load(url);
      expect(where(r)).toEqual(['1:27 SLUICE_E_CONFIG_URL']);
      expect(lines(r)[0]).not.toMatch(/Leak/);
    }
  });
});

describe('route paths', () => {
  const routes = (lines: string, server = '') =>
    `servers:\n  - listen: 80\n${server}    routes:\n${lines}      - respond: {}\n`;

  it('are read in the form request paths are matched in', () => {
    const ok = loadConfigText(
      routes(
        '      - { match: { path_prefix: "/naïve/" }, respond: {} }\n      - { match: { path: "/%40a/caf%c3%a9" }, respond: {} }\n',
      ),
      's.yaml',
      {},
    );
    const [naive, cafe] = config(ok).servers[0]!.routes;
    expect(naive?.path).toEqual({ kind: 'prefix', prefix: '/na%C3%AFve/' });
    expect(cafe?.path).toEqual({ kind: 'exact', path: '/@a/caf%C3%A9' });
    // Named as written.
    expect([naive?.name, cafe?.name]).toEqual(['/naïve/', '/%40a/caf%c3%a9']);
  });

  it('report one that could never match, and a malformed escape, where they are written', () => {
    const text = routes(
      '      - { match: { path_prefix: "/x//y/" }, respond: {} }\n      - { match: { path_regex: "^/naïve" }, respond: {} }\n      - { match: { path: "/a%zz" }, respond: {} }\n',
    );
    expect(where(loadConfigText(text, 's.yaml', {}))).toEqual(['6:26 SLUICE_E_CONFIG_VALUE']);
    const warned = loadConfigText(text.replace('/a%zz', '/a'), 's.yaml', {});
    expect(warned.ok && warned.warnings.map((w) => `${w.line}:${w.col} ${w.code}`)).toEqual([
      '4:33 SLUICE_E_CONFIG_VALUE',
      '5:32 SLUICE_E_CONFIG_REGEX',
    ]);
    // With merge_slashes off, `//` is matched as written.
    const kept = loadConfigText(
      routes('      - { match: { path_prefix: "/x//y/" }, respond: {} }\n', '    merge_slashes: false\n'),
      's.yaml',
      {},
    );
    expect(config(kept).servers[0]!.routes[0]?.path).toEqual({ kind: 'prefix', prefix: '/x//y/' });
  });
});

describe('sizes', () => {
  it('refuse one too large to be exact, and a max_header over 1mb, where they are written', () => {
    // 99999999gb passed `check` and then killed every worker as it started: Node refused it as maxHeaderSize.
    const text =
      'servers:\n  - listen: 80\n    limits: { max_header: 99999999gb, max_body: 1025gb }\n    routes: [{ respond: {} }]\n';
    expect(lines(loadConfigText(text, 's.yaml', {}))).toEqual([
      's.yaml:3:27: SLUICE_E_CONFIG_SIZE servers[0].limits.max_header: "99999999gb" is too large: must be at most 1mb (hint: a request head is held in memory whole; nginx reads at most 4 header lines of 8k each; write 1mb or less)',
      's.yaml:3:49: SLUICE_E_CONFIG_SIZE servers[0].limits.max_body: "1025gb" is too large: must be at most 1024gb (hint: write 1024gb or less)',
    ]);
  });

  it('accept the largest of each', () => {
    const ok = loadConfigText(
      'servers:\n  - listen: 80\n    limits: { max_header: 1mb, max_body: 1024gb }\n    routes: [{ respond: {} }]\n',
      's.yaml',
      {},
    );
    expect(config(ok).servers[0]?.limits.maxHeader).toBe(1024 ** 2);
    expect(config(ok).servers[0]?.limits.maxBody).toBe(1024 ** 4);
  });
});

describe('durations', () => {
  const text = (lines: string): string =>
    `${lines}servers:\n  - listen: 80\n    routes:\n      - proxy: { url: "http://127.0.0.1:9001", timeouts: { send: 25d } }\n`;

  it('refuse one longer than a timer holds (it would fire after 1 ms), where it is written', () => {
    expect(lines(loadConfigText(text('shutdown_timeout: 30d\n'), 's.yaml', {}))).toEqual([
      's.yaml:1:19: SLUICE_E_CONFIG_DURATION shutdown_timeout: "30d" is too long: must be at most 24d (hint: a duration arms a timer, and a timer holds at most 2147483647 ms (24.8 days): beyond that it would fire at once; write 24d or less)',
      's.yaml:5:66: SLUICE_E_CONFIG_DURATION servers[0].routes[0].proxy.timeouts.send: "25d" is too long: must be at most 24d (hint: a duration arms a timer, and a timer holds at most 2147483647 ms (24.8 days): beyond that it would fire at once; write 24d or less)',
    ]);
  });

  it('accept 24d, and bans (compared with the clock, not timed) up to 365d', () => {
    const ok = loadConfigText(
      'shutdown_timeout: 24d\nservers:\n  - listen: 80\n    ban: { statuses: [404], max: 3, window: 30d, duration: 365d }\n    routes: [{ respond: {} }]\n',
      's.yaml',
      {},
    );
    expect(config(ok).shutdownTimeoutMs).toBe(24 * 86_400_000);
    const long =
      'servers:\n  - listen: 80\n    ban: { statuses: [404], max: 3, duration: 366d }\n    routes: [{ respond: {} }]\n';
    expect(where(loadConfigText(long, 's.yaml', {}))).toEqual(['3:47 SLUICE_E_CONFIG_DURATION']);
  });
});

describe('respond status', () => {
  const load = (respond: string) =>
    loadConfigText(
      `servers: [{ listen: "127.0.0.1:8080", routes: [{ respond: ${respond} }] }]\n`,
      'r.yaml',
      {},
    );

  it('refuses a 1xx (no final answer: the client waits on) and a body on a 204 or 304', () => {
    expect(lines(load('{ status: 100 }'))[0]).toContain('respond.status: must be at least 200, got 100');
    expect(lines(load('{ status: 204, body: "x" }'))[0]).toContain('a 204 answer has no body');
    expect(lines(load('{ status: 304, body: "x" }'))[0]).toContain('a 304 answer has no body');
    expect(config(load('{ status: 204 }')).servers[0]?.routes[0]?.action).toMatchObject({ status: 204 });
  });
});

describe('IPv6 zone ids', () => {
  // A zone id in a listen address made the checks throw (TypeError: Invalid URL): sluice check
  // printed a stack trace, and a reload answered 500. In a rule it was taken and then ignored.
  it('are refused in listen addresses and address rules, each at its line and column', () => {
    const text = [
      'admin: { listen: "[fe80::1%eth0]:9090" }',
      'egress:',
      '  listen: "127.0.0.1:3128"',
      '  policies: [{ name: p, sources: ["fe80::2%eth0"], hosts: [a.example] }]',
      'servers:',
      '  - listen: ["[fe80::1%lo]:8080", "[::1]:8080"]',
      '    trusted_proxies: ["fe80::1%eth0/64"]',
      '    access: { allow: ["fe80::3%eth0"] }',
      '    routes: [{ respond: {} }]',
      '',
    ].join('\n');
    const r = loadConfigText(text, 'z.yaml', {});
    expect(where(r)).toEqual([
      '1:18 SLUICE_E_CONFIG_LISTEN',
      '4:35 SLUICE_E_CONFIG_CIDR',
      '6:14 SLUICE_E_CONFIG_LISTEN',
      '7:23 SLUICE_E_CONFIG_CIDR',
      '8:23 SLUICE_E_CONFIG_CIDR',
    ]);
    expect(lines(r)[2]).toBe(
      'z.yaml:6:14: SLUICE_E_CONFIG_LISTEN servers[0].listen[0]: "fe80::1%lo" has an IPv6 zone id ("%lo"), which a listen address cannot have; listen on "[::]:PORT" to serve link-local addresses (hint: write PORT, :PORT, HOST:PORT or [IPV6]:PORT, e.g. ":8080" or "127.0.0.1:8080")',
    );
  });
});

describe('server names', () => {
  const load = (a: string, b: string) =>
    loadConfigText(
      [
        'servers:',
        `  - { name: a, listen: "127.0.0.1:8080", server_name: ${a}, routes: [{ respond: {} }] }`,
        `  - { name: b, listen: "127.0.0.1:8080", server_name: ${b}, routes: [{ respond: {} }] }`,
        '',
      ].join('\n'),
      'n.yaml',
      {},
    );

  // Hosts are matched without their trailing dot: "example.com." matched no request, and was not
  // seen as another server's "example.com" on the same address.
  it('drop a trailing dot, as Host headers are matched', () => {
    const c = config(load('[Example.COM., "*.example.org.", ".example.net."]', 'b.example.com'));
    expect(c.servers[0]?.serverNames).toEqual([
      'example.com',
      '*.example.org',
      'example.net',
      '*.example.net',
    ]);
  });

  it('refuse a name claimed twice on one address when one is written with a trailing dot', () => {
    expect(lines(load('example.com', '"example.com."'))).toEqual([
      'n.yaml:3:55: SLUICE_E_CONFIG_DUPLICATE_NAME servers[1].server_name: server name "example.com" on 127.0.0.1:8080 is already used by servers[0] ("a") (hint: a host name may belong to one server per listen address; merge the two servers or their routes)',
    ]);
  });

  it('refuse a name that still ends in a dot without it', () => {
    expect(lines(load('"example.com.."', 'b.example.com'))[0]).toContain(
      'servers[0].server_name: "example.com.." is not a server name',
    );
  });
});

describe('empty settings', () => {
  // Each passed sluice check: user: "" then failed at start (SLUICE_E_RUNTIME_PRIVILEGES), the
  // others did nothing (hash_key: "" hashed every request alike, onto one target).
  it('are refused where an empty string means nothing, each at its line and column', () => {
    const text = [
      'user: ""',
      'group: " "',
      'pid_file: ""',
      'admin:',
      '  listen: 127.0.0.1:9090',
      '  tokens: [{ name: "", role: viewer, token_sha256: "' + 'a'.repeat(64) + '" }]',
      'servers: [{ listen: "127.0.0.1:8080", routes: [{ proxy: { upstream: u } }] }]',
      'upstreams:',
      '  u: { balance: hash, hash_key: "", targets: [{ url: "http://127.0.0.1:9001" }] }',
      '',
    ].join('\n');
    const r = loadConfigText(text, 'e.yaml', {});
    expect(where(r)).toEqual([
      '1:7 SLUICE_E_CONFIG_VALUE',
      '2:8 SLUICE_E_CONFIG_VALUE',
      '3:11 SLUICE_E_CONFIG_VALUE',
      '6:20 SLUICE_E_CONFIG_VALUE',
      '9:33 SLUICE_E_CONFIG_VALUE',
    ]);
    expect(lines(r)[0]).toBe(
      'e.yaml:1:7: SLUICE_E_CONFIG_VALUE user: must not be empty (hint: write a user name or uid, or remove user: to keep the user sluice starts as)',
    );
    expect(lines(r)[4]).toContain('upstreams.u.hash_key: must not be empty (hint: write the value to hash');
  });

  // A bad admin.listen (or egress.listen) skipped the checks of its tokens (or policies).
  it('hide nothing: a bad admin or egress address is reported with the problems of its tokens and policies', () => {
    const text = [
      'admin:',
      '  listen: "nowhere"',
      '  tokens: [{ name: a, role: viewer, token_sha256: "abc" }]',
      'egress:',
      '  listen: "nowhere"',
      '  policies: [{ name: p, sources: ["10.0.0.0/33"], hosts: [a.example] }]',
      'servers: [{ listen: "127.0.0.1:8080", routes: [{ respond: {} }] }]',
      '',
    ].join('\n');
    expect(where(loadConfigText(text, 'h.yaml', {}))).toEqual([
      '2:11 SLUICE_E_CONFIG_LISTEN',
      '3:51 SLUICE_E_CONFIG_VALUE',
      '5:11 SLUICE_E_CONFIG_LISTEN',
      '6:35 SLUICE_E_CONFIG_CIDR',
    ]);
  });
});

describe('messages', () => {
  const problemsOf = (text: string) => lines(loadConfigText(text, 'm.yaml', {}));

  // "use one of the values listed in the message" was the hint of messages that list none.
  it('give a hint that fits a message listing no values', () => {
    const text = [
      'servers:',
      '  - listen: 80',
      '    ban: { statuses: [404], max: 1, window: 0s }',
      '    routes:',
      '      - { match: { path: /r }, redirect: { to: "" } }',
      '      - { proxy: { upstream: u } }',
      'upstreams:',
      '  u: { targets: [{ url: "http://127.0.0.1:1" }], health_check: { interval: 0s, path: x } }',
      '',
    ].join('\n');
    const hints = problemsOf(text).map((l) => l.replace(/^.*\(hint: (.*)\)$/, '$1'));
    expect(hints).toEqual([
      'write the counting window, e.g. 1m (the default)',
      'write a URL or a path, e.g. https://example.com$request_uri or /new/',
      'write the time between two probes of a target, e.g. 5s (the default)',
      'write the path probes request, e.g. /healthz',
    ]);
  });

  it('suggest the choice a typo was meant for, but not another number', () => {
    const text = [
      'servers: [{ listen: 80, routes: [{ proxy: { upstream: u } }] }]',
      'upstreams:',
      '  u: { balance: roundrobin, targets: [{ url: "http://127.0.0.1:1" }], retry: { on: [http_418] } }',
      '',
    ].join('\n');
    const [balance, retry] = problemsOf(text);
    expect(balance).toContain(
      'got "roundrobin"; did you mean "round_robin"? (hint: use one of the values listed in the message)',
    );
    expect(retry).toContain('got "http_418" (hint: use one of the values listed in the message)');
  });

  it("say a rate's expected form, not only that it is wrong", () => {
    const text = 'servers: [{ listen: 80, rate_limit: { rate: fast }, routes: [{ respond: {} }] }]\n';
    expect(problemsOf(text)).toEqual([
      'm.yaml:1:45: SLUICE_E_CONFIG_VALUE servers[0].rate_limit.rate: expected a rate such as 100/s, 600/m or 1000/h, got "fast" (hint: write the value in the form the message shows)',
    ]);
  });

  it("refuse a rate limit that gives its zone another rate or key than the zone's first rule", () => {
    const text = [
      'servers:',
      '  - listen: 80',
      '    rate_limit: { rate: 1/s, zone: one }',
      '    routes:',
      '      - { match: { path: /a }, rate_limit: { rate: 60/m, burst: 5, zone: one }, respond: {} }',
      '      - { match: { path: /b }, rate_limit: { rate: 2/s, zone: one }, respond: {} }',
      '      - { match: { path: /c }, rate_limit: { rate: 1/s, key: $http_x_key, zone: one }, respond: {} }',
      '      - { match: { path: /d }, rate_limit: { rate: 2/s, zone: two }, respond: {} }',
      '      - { match: { path: /e }, rate_limit: { rate: 1/s, zone: "" }, respond: {} }',
      '',
    ].join('\n');
    const why = 'the rules of a zone share its buckets, so they give the same rate and key';
    const hint = "(hint: give this rule the zone's rate and key (burst may differ), or name another zone)";
    expect(problemsOf(text)).toEqual([
      `m.yaml:6:63: SLUICE_E_CONFIG_VALUE servers[0].routes[1].rate_limit.zone: zone "one" counts 1/s per $remote_addr (servers[0].rate_limit), and this rule 2/s per $remote_addr: ${why} ${hint}`,
      `m.yaml:7:81: SLUICE_E_CONFIG_VALUE servers[0].routes[2].rate_limit.zone: zone "one" counts 1/s per $remote_addr (servers[0].rate_limit), and this rule 1/s per $http_x_key: ${why} ${hint}`,
      'm.yaml:9:63: SLUICE_E_CONFIG_VALUE servers[0].routes[4].rate_limit.zone: must not be empty (hint: name the zone whose buckets this rule shares, or remove zone: to give it buckets of its own)',
    ]);
  });

  // They passed check, and every call made with them was answered 401.
  it('refuse a token an Authorization header cannot carry', () => {
    const text = [
      'admin:',
      '  tokens:',
      '    - { name: spaced, role: viewer, token_env: A }',
      '    - { name: newline, role: viewer, token_env: B }',
      '    - { name: accented, role: viewer, token_env: C }',
      '    - { name: fine, role: viewer, token_env: D }',
      'servers: [{ listen: 80, routes: [{ respond: {} }] }]',
      '',
    ].join('\n');
    const env = {
      A: 'correct horse battery staple',
      B: '0123456789abcdef0123\n',
      C: 'päßwörd-päßwörd-päßwörd',
      D: 'abcdefABCDEF0123456789-._~+/==',
    };
    expect(lines(loadConfigText(text, 'm.yaml', env)).map((l) => l.replace(/ \(hint: .*/, ''))).toEqual(
      ['spaced', 'newline', 'accented'].map(
        (name, i) =>
          `m.yaml:${3 + i}:7: SLUICE_E_CONFIG_VALUE admin.tokens[${i}]: token "${name}" holds a space, a control character or a non-ASCII character, which an Authorization header cannot carry`,
      ),
    );
  });

  // token_env: "" said "environment variable  is not set"; tls.cert: "" "cannot read /dir: EISDIR".
  it('say that an empty file or variable name is empty', () => {
    const text = [
      'admin: { tokens: [{ name: a, role: viewer, token_env: "" }, { name: b, role: viewer, token_file: "" }] }',
      'servers: [{ listen: 443, tls: { cert: "", key: "" }, routes: [{ respond: {} }] }]',
      '',
    ].join('\n');
    expect(problemsOf(text).map((l) => l.replace(/ \(hint: .*/, ''))).toEqual([
      'm.yaml:1:55: SLUICE_E_CONFIG_VALUE admin.tokens[0].token_env: must not be empty',
      'm.yaml:1:98: SLUICE_E_CONFIG_VALUE admin.tokens[1].token_file: must not be empty',
      'm.yaml:2:39: SLUICE_E_CONFIG_VALUE servers[0].tls.cert: must not be empty',
      'm.yaml:2:48: SLUICE_E_CONFIG_VALUE servers[0].tls.key: must not be empty',
    ]);
  });

  // A pin with a query, a port or an upper-case trust domain was taken, then could never match:
  // a target certificate's id is held to the SPIFFE id format (core/spiffe-id.ts).
  it('refuse an upstream spiffe_id a valid X.509-SVID cannot carry', () => {
    const text = (id: string) =>
      [
        'servers: [{ listen: 80, routes: [{ proxy: { upstream: u } }] }]',
        `upstreams: { u: { targets: [{ url: "https://127.0.0.1:1" }], tls: { spiffe_id: "${id}" } } }`,
        '',
      ].join('\n');
    for (const id of [
      'spiffe://example.org/p?q=1',
      'spiffe://example.org:8443/p',
      'spiffe://Example.org/p',
    ]) {
      expect(problemsOf(text(id)).map((l) => l.replace(/ \(hint: .*/, ''))).toEqual([
        `m.yaml:2:80: SLUICE_E_CONFIG_VALUE upstreams.u.tls.spiffe_id: "${id}" is not a SPIFFE id`,
      ]);
    }
    expect(loadConfigText(text('spiffe://example.org/ns/a/sa/b'), 'm.yaml', {}).ok).toBe(true);
  });
});

describe('access entries the schema refuses', () => {
  // Salvaged to an entry with neither allow nor deny, `{ alow: x }` threw a TypeError: check,
  // start and reload ended with a stack trace (exit 1) instead of the problem (exit 2).
  it('are reported at their position, with no crash, in either form', () => {
    const text = [
      'servers:',
      '  - listen: "127.0.0.1:8080"',
      '    access: [{ alow: 127.0.0.1 }, {}, { deny: null }, { deny: 5 }, { deny: [] }, { deny: all, x: 1 }]',
      '    routes:',
      '      - { access: { allow: 5, deny: all }, respond: {} }',
      '',
    ].join('\n');
    const found = lines(loadConfigText(text, 'a.yaml', {}));
    expect(found.length).toBeGreaterThanOrEqual(7);
    for (const line of found) expect(line).toMatch(/^a\.yaml:(3|5):\d+: SLUICE_E_CONFIG_/);
    expect(found.filter((l) => l.startsWith('a.yaml:3:')).length).toBeGreaterThanOrEqual(6);
  });

  it('name the keys the mapping form allows, with a did-you-mean', () => {
    const text = [
      'servers:',
      '  - listen: "127.0.0.1:8080"',
      '    access: { alow: [10.0.0.0/8] }',
      '    routes: [{ respond: {} }]',
      '',
    ];
    const found = lines(loadConfigText(text.join('\n'), 'a.yaml', {}));
    expect(found).toContainEqual(
      expect.stringContaining(
        'a.yaml:3:15: SLUICE_E_CONFIG_UNKNOWN_KEY servers[0].access: unknown key "alow"; did you mean "allow"? (hint: remove the key or correct its spelling; allowed here: allow, deny)',
      ),
    );
  });
});
