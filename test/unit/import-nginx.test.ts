// biome-ignore-all lint/suspicious/noTemplateCurlyInString: nginx writes variables as ${name}; these strings are nginx text, not templates.
/**
 * `sluice import nginx`: golden files (test/fixtures/nginx/NAME/: nginx.conf and its includes, the
 * expected sluice.yaml and warnings.txt), each output loaded by the real config loader, nginx's own
 * `nginx -t` on every fixture when nginx is installed, location precedence checked against an
 * nginx model through sluice's real router, and the syntax errors with their line and column.
 *
 * UPDATE_GOLDEN=1 rewrites the expected files from the current output.
 */
import { spawnSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { describe, expect, it } from 'vitest';
import { loadConfigFile, loadConfigText } from '../../src/config/load.js';
import { formatProblem } from '../../src/config/problem.js';
import type { ResolvedConfig } from '../../src/config/types.js';
import { DEFAULT_REDIRECT, importNginx } from '../../src/ops/import-nginx/import-nginx.js';
import type { NginxFiles } from '../../src/ops/import-nginx/load-nginx-tree.js';
import { NginxSyntaxError } from '../../src/ops/import-nginx/nginx-syntax-error.js';
import { NothingToImportError } from '../../src/ops/import-nginx/nothing-to-import-error.js';
import { parseNginx } from '../../src/ops/import-nginx/parse.js';
import { translateRegex } from '../../src/ops/import-nginx/regex.js';
import { tokenize } from '../../src/ops/import-nginx/tokenize.js';
import { toSluiceDuration, toSluiceSize } from '../../src/ops/import-nginx/units.js';
import { formatWarning } from '../../src/ops/import-nginx/warnings.js';
import { RouteTable } from '../../src/router/route-table.js';

/** Relative to the repository root, as a user would name the file. */
const FIXTURES = 'test/fixtures/nginx';
const UPDATE = process.env.UPDATE_GOLDEN === '1';
const fixtures = readdirSync(FIXTURES).filter((d) => statSync(join(FIXTURES, d)).isDirectory());

/** Imports the fixture as `sluice import nginx DIR/nginx.conf -o DIR/sluice.yaml` would. */
function importFixture(name: string) {
  const dir = join(FIXTURES, name);
  const file = join(dir, 'nginx.conf');
  const result = importNginx({ file, text: readFileSync(file, 'utf8'), outputDir: dir });
  const warnings = result.warnings.map((w) => `${formatWarning(w)}\n`).join('');
  return { dir, result, warnings };
}

function resolved(yaml: string, file = 'sluice.yaml'): ResolvedConfig {
  const r = loadConfigText(yaml, file, {});
  if (!r.ok) throw new Error(r.problems.map((p) => formatProblem(p)).join('\n'));
  expect(r.warnings.map((w) => formatProblem(w, 'warning'))).toEqual([]);
  return r.config;
}

/** The warnings but the one for nginx's default proxy_redirect (said once per file, tested on its own). */
function warned(r: ReturnType<typeof importNginx>) {
  return r.warnings.filter((w) => w.message !== DEFAULT_REDIRECT);
}

/** In-memory files for the include tests. */
function memoryFiles(files: Record<string, string>): NginxFiles {
  return {
    read: (path) => {
      const text = files[path];
      if (text === undefined) throw Object.assign(new Error(`ENOENT: ${path}`), { code: 'ENOENT' });
      return text;
    },
    glob: (pattern) => {
      const re = new RegExp(`^${pattern.replace(/[.+^${}()|\\]/g, '\\$&').replace(/\*/g, '[^/]*')}$`);
      return Object.keys(files)
        .filter((f) => re.test(f))
        .sort();
    },
  };
}

describe('golden fixtures', () => {
  it('has at least five fixtures, each with its expected YAML and warnings', () => {
    expect(fixtures.length).toBeGreaterThanOrEqual(5);
    for (const name of fixtures) {
      const files = readdirSync(join(FIXTURES, name));
      expect(files).toContain('nginx.conf');
      if (!UPDATE) expect(files).toEqual(expect.arrayContaining(['sluice.yaml', 'warnings.txt']));
    }
  });

  it.each(fixtures)('%s converts to the expected sluice.yaml and warnings', (name) => {
    const { dir, result, warnings } = importFixture(name);
    if (UPDATE) {
      writeFileSync(join(dir, 'sluice.yaml'), result.yaml);
      writeFileSync(join(dir, 'warnings.txt'), warnings);
    }
    expect(result.yaml).toBe(readFileSync(join(dir, 'sluice.yaml'), 'utf8'));
    expect(warnings).toBe(readFileSync(join(dir, 'warnings.txt'), 'utf8'));
  });

  it.each(fixtures)(
    '%s: the expected sluice.yaml passes the config loader with no problem or warning',
    async (name) => {
      const result = await loadConfigFile(join(FIXTURES, name, 'sluice.yaml'), {});
      expect(result.ok ? [] : result.problems.map((p) => formatProblem(p))).toEqual([]);
      expect(result.ok ? result.warnings.map((w) => formatProblem(w, 'warning')) : []).toEqual([]);
    },
  );

  it.each(fixtures)('%s: every warning names an existing fixture file and line', (name) => {
    const { result } = importFixture(name);
    for (const w of result.warnings) {
      const lines = readFileSync(w.file, 'utf8').split('\n');
      expect(w.line, formatWarning(w)).toBeGreaterThanOrEqual(1);
      expect(w.line, formatWarning(w)).toBeLessThanOrEqual(lines.length);
    }
  });
});

const nginx = ['/usr/sbin/nginx', 'nginx'].find((bin) => spawnSync(bin, ['-v']).status === 0);

describe('the fixtures are valid nginx', () => {
  if (nginx === undefined) console.info('nginx is not installed: `nginx -t` on the fixtures is skipped');
  it.skipIf(nginx === undefined).each(fixtures)('nginx -t accepts %s', (name) => {
    const prefix = mkdtempSync(join(tmpdir(), 'sluice-nginx-t-'));
    mkdirSync(join(prefix, 'logs'));
    try {
      const file = resolve(FIXTURES, name, 'nginx.conf');
      const run = spawnSync(nginx!, ['-t', '-q', '-e', 'stderr', '-p', `${prefix}/`, '-c', file], {
        encoding: 'utf8',
      });
      if (run.status !== 0 && /getpwnam|getgrnam/.test(run.stderr)) {
        console.info(`nginx -t on ${name} skipped: a user or group of the fixture is missing here`);
        return;
      }
      // Warnings (a conflicting server name, on purpose in vhosts) are fine; errors are not.
      expect(run.stderr).not.toMatch(/\[(emerg|alert|crit|error)\]/);
      expect(run.status).toBe(0);
    } finally {
      rmSync(prefix, { recursive: true, force: true });
    }
  });
});

describe('location precedence, against a model of nginx', () => {
  // Flat locations of every kind; the paths below cross every rule of nginx's order.
  const locations = [
    '= /',
    '/',
    '/images/',
    '^~ /static/',
    '^~ /static/img/',
    '/static/js/',
    '^~ /assets',
    '~ ^/users/\\d+$',
    '~* \\.(png|jpe?g)$',
    '~ /static/js/.*\\.js$',
    '= /images/logo.png',
  ];
  const text = `http { server { listen 8080;\n${locations.map((l, i) => `location ${l} { return 200 "${i}"; }`).join('\n')}\n} }`;

  /** nginx's choice (ngx_http_core_find_location), for flat locations. */
  function nginxChoice(path: string): number {
    const parsed = locations.map((l) => {
      const [mod, arg] = l.includes(' ') ? (l.split(' ') as [string, string]) : ['', l];
      return { mod, arg };
    });
    const exact = parsed.findIndex((p) => p.mod === '=' && p.arg === path);
    if (exact !== -1) return exact;
    let longest = -1;
    parsed.forEach((p, i) => {
      if ((p.mod === '' || p.mod === '^~') && path.startsWith(p.arg)) {
        if (longest === -1 || p.arg.length > parsed[longest]!.arg.length) longest = i;
      }
    });
    if (longest !== -1 && parsed[longest]!.mod === '^~') return longest;
    const regex = parsed.findIndex(
      (p) => (p.mod === '~' || p.mod === '~*') && new RegExp(p.arg, p.mod === '~*' ? 'i' : '').test(path),
    );
    return regex !== -1 ? regex : longest;
  }

  const { config, yaml } = importNginx({ file: 'precedence.conf', text });
  const server = resolved(yaml).servers[0]!;
  const table = new RouteTable(server.routes, (route) => {
    if (route.action.kind !== 'respond') throw new Error('expected respond routes');
    return Number(route.action.body);
  });
  const noHeaders = { header: () => undefined };

  it('converts every location to one route', () => {
    expect(config.servers[0]!.routes).toHaveLength(locations.length);
  });

  it.each([
    '/',
    '/index.html',
    '/users/42',
    '/users/42/edit',
    '/images/',
    '/images/logo.png',
    '/images/photo.JPG',
    '/static/app.css',
    '/static/logo.png',
    '/static/img/a.png',
    '/static/js/app.js',
    '/static/js/logo.png',
    '/assets/x.png',
    '/assetsfoo/x.PNG',
    '/other/x.jpeg',
  ])('%s goes where nginx sends it', (path) => {
    expect(table.match(path, 'GET', noHeaders)).toBe(nginxChoice(path));
  });
});

describe('includes', () => {
  const files = {
    '/etc/nginx/nginx.conf': 'events {}\nhttp {\n  include conf.d/*.conf;\n  include missing/*.conf;\n}\n',
    '/etc/nginx/conf.d/b.conf':
      'server {\n  listen 80;\n  server_name b.test;\n  include snippets/proxy.conf;\n  location / { proxy_pass http://127.0.0.1:9002; }\n}\n',
    '/etc/nginx/conf.d/a.conf': 'upstream a { server 127.0.0.1:9001; }\n',
    '/etc/nginx/snippets/proxy.conf': 'proxy_set_header Host $host;\nproxy_read_timeout 5s;\ngzip on;\n',
  };

  it('resolves relative includes against the prefix, in glob order, and warns in the included file', () => {
    const r = importNginx({
      file: '/etc/nginx/nginx.conf',
      text: files['/etc/nginx/nginx.conf'],
      files: memoryFiles(files),
    });
    expect(r.config.servers[0]!.routes[0]!.proxy).toMatchObject({
      url: 'http://127.0.0.1:9002',
      set_headers: { Host: '$host' },
      timeouts: { read: '5s' },
    });
    expect(Object.keys(r.config.upstreams ?? {})).toEqual(['a']);
    expect(warned(r).map(formatWarning)).toEqual([
      '/etc/nginx/nginx.conf:4: warning: include missing/*.conf matches no file',
      '/etc/nginx/snippets/proxy.conf:3: warning: gzip: not carried over: sluice does not compress responses; let the upstream compress them',
    ]);
  });

  it('reads a file of server blocks on its own as part of http, and finds includes next to it too', () => {
    const r = importNginx({
      file: '/etc/nginx/conf.d/b.conf',
      text: files['/etc/nginx/conf.d/b.conf'],
      prefix: '/etc/nginx',
      files: memoryFiles(files),
    });
    expect(r.config.servers[0]!.server_name).toEqual(['b.test']);
    expect(warned(r).map((w) => w.file)).toEqual(['/etc/nginx/snippets/proxy.conf']);
  });

  it('reports an include loop and an unreadable include, and goes on', () => {
    const loop = {
      '/x/nginx.conf':
        'http { include self.conf; include gone.conf; server { listen 80; location / { return 204; } } }',
      '/x/self.conf': 'include self.conf;',
    };
    const r = importNginx({ file: '/x/nginx.conf', text: loop['/x/nginx.conf'], files: memoryFiles(loop) });
    expect(warned(r).map(formatWarning)).toEqual([
      '/x/nginx.conf:1: warning: include /x/gone.conf: cannot read the file (no such file); its directives are missing',
      '/x/self.conf:1: warning: include /x/self.conf includes itself (through /x/nginx.conf → /x/self.conf); skipped',
    ]);
  });
});

describe('conversions', () => {
  const convert = (http: string) => importNginx({ file: 'n.conf', text: `http {\n${http}\n}\n` });

  it('turns a mixed 80/443 server into a plain and a TLS server with the same routes', () => {
    const r = importNginx({
      file: join(FIXTURES, 'tls/nginx.conf'),
      text: 'http { server { listen 80; listen 443 ssl; server_name a.test; ssl_certificate certs/example.com.crt; ssl_certificate_key certs/example.com.key; location / { return 204; } } }',
      outputDir: join(FIXTURES, 'tls'),
    });
    expect(r.config.servers.map((s) => [s.name, s.listen, s.tls?.cert])).toEqual([
      ['a.test', [':80'], undefined],
      ['a.test-tls', [':443'], 'certs/example.com.crt'],
    ]);
    expect(r.config.servers[0]!.routes).toEqual(r.config.servers[1]!.routes);
  });

  it('carries proxy_ssl_* to the upstream, inherited from the server, and warns where sluice cannot follow', () => {
    const r = convert(
      [
        'upstream b { server 10.0.0.5:8443; }',
        'server { listen 80;',
        '  proxy_ssl_trusted_certificate /etc/ca.pem; proxy_ssl_verify on;',
        '  location /a/ { proxy_pass https://b; proxy_ssl_name b.internal; }',
        '  location /b/ { proxy_pass https://b; proxy_ssl_certificate /etc/c.pem; }',
        '  location /c/ { proxy_pass https://b; proxy_ssl_name $host; }',
        '}',
      ].join('\n'),
    );
    expect(r.config.upstreams?.b?.tls).toEqual({ ca: '/etc/ca.pem', server_name: 'b.internal' });
    expect(warned(r).map((w) => [w.line, w.message])).toEqual([
      [6, expect.stringMatching(/^proxy_ssl_certificate: a client certificate needs both/)],
      [6, expect.stringMatching(/^proxy_ssl_\* settings differ from those of n\.conf:5 for upstream b/)],
      [7, expect.stringMatching(/^proxy_ssl_name \$host: sluice needs a fixed name/)],
      [7, expect.stringMatching(/^proxy_ssl_\* settings differ from those of n\.conf:5/)],
    ]);
  });

  it('warns that nginx does not check an https target unless proxy_ssl_verify on, and sluice does', () => {
    const r = convert('server { listen 80; location / { proxy_pass https://10.0.0.5:8443; } }');
    expect(r.config.servers[0]!.routes[0]!.proxy?.url).toBe('https://10.0.0.5:8443');
    expect(warned(r).map((w) => w.message)).toEqual([
      expect.stringMatching(/proxy_ssl_verify off, its default\); sluice always checks it/),
    ]);
    const plain = convert(
      'server { listen 80; proxy_ssl_verify off; location / { proxy_pass http://10.0.0.5:8080; } }',
    );
    expect(warned(plain)).toEqual([]);
  });

  it('widens a specific address beside a wildcard on the same port, with a warning', () => {
    const r = convert(
      'server { listen 80; location / { return 204; } }\nserver { listen 127.0.0.1:80; server_name local; location / { return 200; } }',
    );
    expect(r.config.servers.map((s) => s.listen)).toEqual([[':80'], [':80']]);
    expect(warned(r).map((w) => w.line)).toEqual([3]);
    resolved(r.yaml);
  });

  it('keeps the first of two default servers on one address', () => {
    const r = convert(
      'server { listen 80 default_server; location / { return 204; } }\nserver { listen 80 default_server; server_name b; location / { return 200; } }',
    );
    expect(r.config.servers.map((s) => s.default)).toEqual([true, undefined]);
    expect(warned(r)[0]?.message).toMatch(/already the default of :80/);
    resolved(r.yaml);
  });

  it("keeps a default_server of some listens only off the others where another server is nginx's default", () => {
    const r = convert(
      [
        'server { listen 80; listen 81 default_server; server_name p; location / { return 200; } }',
        'server { listen 80 default_server; server_name q; location / { return 204; } }',
        // The first server of :83 is nginx's default there too: nothing to split.
        'server { listen 82 default_server; listen 83; server_name r; location / { return 200; } }',
      ].join('\n'),
    );
    expect(r.config.servers.map((s) => [s.name, s.listen, s.default])).toEqual([
      ['p', [':81'], true],
      ['p-nondefault', [':80'], undefined],
      ['q', [':80'], true],
      ['r', [':82', ':83'], true],
    ]);
    expect(warned(r)).toEqual([]);
    expect(resolved(r.yaml).servers.map((s) => s.routes.length)).toEqual([1, 1, 1, 1]);
  });

  it('leaves a name an nginx server_name gives to its server, and names the copies sluice makes around it', () => {
    const r = importNginx({
      file: join(FIXTURES, 'tls/nginx.conf'),
      text: [
        'http {',
        'server { listen 80; listen 81 default_server; server_name p; location / { return 200; } }',
        'server { listen 80 default_server; server_name q; location / { return 204; } }',
        'server { listen 82; server_name p-nondefault; location / { return 201; } }',
        'server { listen 83; listen 443 ssl; server_name t; ssl_certificate certs/example.com.crt; ssl_certificate_key certs/example.com.key; location / { return 202; } }',
        'server { listen 84; server_name t-tls; location / { return 203; } }',
        // server<N> is sluice's name for a server without one: server6 here.
        'server { listen 85; location / { return 205; } }',
        'server { listen 86; server_name server6; location / { return 206; } }',
        '}',
      ].join('\n'),
      outputDir: join(FIXTURES, 'tls'),
    });
    expect(r.config.servers.map((s) => [s.name, s.listen])).toEqual([
      ['p', [':81']],
      ['p-nondefault-2', [':80']],
      ['q', [':80']],
      ['p-nondefault', [':82']],
      ['t', [':83']],
      ['t-tls-2', [':443']],
      ['t-tls', [':84']],
      ['server6-2', [':85']],
      ['server6', [':86']],
    ]);
    expect(resolved(r.yaml, join(FIXTURES, 'tls/sluice.yaml')).servers.map((s) => s.name)).toEqual(
      r.config.servers.map((s) => s.name),
    );
  });

  it('drops a later name that .example.com overlaps on the same address (or that overlaps it), as nginx ignores it', () => {
    const r = convert(
      [
        'server { listen 80; server_name example.com; location / { return 204; } }',
        'server { listen 80; server_name .example.com www.example.org; location / { return 204; } }',
        'server { listen 80; server_name .example.net; location / { return 204; } }',
        'server { listen 80; server_name *.example.net example.org; location / { return 204; } }',
        'server { listen 81; server_name .example.com; location / { return 204; } }',
      ].join('\n'),
    );
    expect(r.config.servers.map((s) => s.server_name)).toEqual([
      ['example.com'],
      ['www.example.org'],
      ['.example.net'],
      ['example.org'],
      ['.example.com'],
    ]);
    expect(warned(r).map((w) => [w.line, w.message])).toEqual([
      [
        3,
        'server_name .example.com: the server at n.conf:2 has example.com on the same address; nginx ignores it here too',
      ],
      [
        5,
        'server_name *.example.net: the server at n.conf:4 has .example.net on the same address; nginx ignores it here too',
      ],
    ]);
    resolved(r.yaml);
  });

  it('says where nginx answers requests without a Host with another server than sluice, which sends them to the default', () => {
    const r = convert(
      [
        'server { listen 80 default_server; server_name _; location / { return 200; } }',
        'server { listen 80; server_name ""; return 444; }',
        'server { listen 81; server_name a.test; location / { return 200; } }',
        'server { listen 81; listen 84; location / { return 404; } }',
        'server { listen 82; server_name "" b.test; location / { return 204; } }',
        'server { listen 82; server_name ""; location / { return 404; } }',
        'server { listen 83 default_server; server_name "" c.test; location / { return 204; } }',
      ].join('\n'),
    );
    expect(warned(r).map((w) => [w.line, w.message])).toEqual([
      [3, 'return 444: sluice cannot close a connection without answering; it answers 403 instead'],
      [
        3,
        'server_name "": nginx answers requests without a Host header (HTTP/1.0) on :80 with this server; sluice has no server name for them and answers them with the default server of the address, server1 (n.conf:2); with no other name, this server answers no request in sluice',
      ],
      [
        5,
        'server: without a server_name (nginx\'s default is server_name ""), nginx answers requests without a Host header (HTTP/1.0) on :81 with this server; sluice has no server name for them and answers them with the default server of the address, a.test (n.conf:4)',
      ],
    ]);
    // The first server with "" on :82 and the default of :83 get them in both.
    expect(r.config.servers.map((s) => s.server_name)).toEqual([
      undefined,
      undefined,
      ['a.test'],
      undefined,
      ['b.test'],
      undefined,
      ['c.test'],
    ]);
    expect(r.yaml).toContain(
      '# nginx answers requests without a Host header here (server_name ""); sluice answers them',
    );
    resolved(r.yaml);
  });

  it('leaves out a name with a final dot, which nginx never matches (it drops the dot of the Host)', () => {
    const r = convert(
      [
        'server { listen 80; server_name example.com.; location / { return 204; } }',
        'server { listen 80; server_name example.com; location / { return 200; } }',
      ].join('\n'),
    );
    expect(r.config.servers.map((s) => s.server_name)).toEqual([undefined, ['example.com']]);
    expect(warned(r).map((w) => [w.line, w.message])).toEqual([
      [
        2,
        'server_name example.com.: nginx removes the final dot of a Host before it looks for the server, so this name matches no request; not carried over',
      ],
    ]);
    resolved(r.yaml);
  });

  it('maps http-level guards and limits onto every server', () => {
    const r = convert(
      'limit_req_zone $binary_remote_addr zone=z:1m rate=30r/m;\nlimit_req zone=z burst=5 nodelay;\nlimit_req_status 429;\nallow 10.0.0.0/8;\ndeny all;\nclient_max_body_size 0;\nserver { listen 80; location / { proxy_pass http://127.0.0.1:9000; } }',
    );
    const s = r.config.servers[0]!;
    expect(s.rate_limit).toEqual({ rate: '30/m', burst: 5, zone: 'z' });
    expect(s.access).toEqual([{ allow: '10.0.0.0/8' }, { deny: 'all' }]);
    expect(s.limits).toEqual({ max_body: '1024gb' });
    expect(warned(r)).toEqual([]);
    resolved(r.yaml);
  });

  it('gives a location its own client_max_body_size as the route max_body, nested locations included', () => {
    const r = convert(
      'client_max_body_size 2m;\nserver { listen 80;\nlocation / { proxy_pass http://127.0.0.1:9000; }\nlocation /upload/ { client_max_body_size 200m; proxy_pass http://127.0.0.1:9000;\nlocation /upload/raw/ { proxy_pass http://127.0.0.1:9000; } }\nlocation /any/ { client_max_body_size 0; proxy_pass http://127.0.0.1:9000; }\nlocation /bad/ { client_max_body_size lots; proxy_pass http://127.0.0.1:9000; } }',
    );
    const s = r.config.servers[0]!;
    expect(s.limits).toEqual({ max_body: '2mb' });
    const byPrefix = Object.fromEntries(s.routes.map((route) => [route.match?.path_prefix, route.max_body]));
    expect(byPrefix).toEqual({
      '/': undefined,
      '/upload/': '200mb',
      '/upload/raw/': '200mb',
      '/any/': '1024gb',
      '/bad/': undefined,
    });
    expect(r.yaml).toContain('nginx: client_max_body_size 0 (no limit)');
    expect(warned(r).map((w) => [w.line, w.message])).toEqual([
      [8, 'client_max_body_size lots: not a size; not carried over'],
    ]);
    const config = resolved(r.yaml);
    const proxied = config.servers[0]!.routes.filter((route) => route.action.kind === 'proxy');
    expect(proxied.map((route) => [route.name, route.maxBody])).toEqual([
      ['/', null],
      ['/upload/', 200 * 1024 ** 2],
      ['/upload/raw/', 200 * 1024 ** 2],
      ['/any/', 1024 ** 4],
      ['/bad/', null],
    ]);
  });

  it("carries nginx's 301 for a proxied prefix location's path without its slash, unless a location has that path", () => {
    const r = convert(
      'server { listen 80;\nlocation /api/ { proxy_pass http://127.0.0.1:9000/v1/; }\nlocation /files/ { proxy_pass http://127.0.0.1:9000; }\nlocation = /files { return 204; }\nlocation /static/ { return 200 "s"; }\nlocation / { proxy_pass http://127.0.0.1:9001; } }',
    );
    const routes = r.config.servers[0]!.routes;
    expect(routes.filter((route) => route.redirect !== undefined)).toEqual([
      { match: { path: '/api' }, redirect: { to: '/api/$is_args$args', status: 301 } },
    ]);
    const config = resolved(r.yaml);
    expect(config.servers[0]!.routes[0]).toMatchObject({ path: { kind: 'exact', path: '/api' } });
  });

  it('carries merge_slashes off (on is the default of both)', () => {
    const off = convert(
      'merge_slashes off;\nserver { listen 80;\nlocation / { proxy_pass http://127.0.0.1:9000; } }',
    );
    expect(off.config.servers[0]!.merge_slashes).toBe(false);
    expect(warned(off)).toEqual([]);
    const on = convert(
      'server { listen 80; merge_slashes on;\nlocation / { proxy_pass http://127.0.0.1:9000; } }',
    );
    expect(on.config.servers[0]!.merge_slashes).toBeUndefined();
    expect(warned(on)).toEqual([]);
    expect(resolved(off.yaml).servers[0]!.mergeSlashes).toBe(false);
  });

  it('carries proxy_next_upstream to the upstream and warns when locations disagree', () => {
    const r = convert(
      'upstream u { server 127.0.0.1:9001; server 127.0.0.1:9002; }\nserver { listen 80;\nlocation /a/ { proxy_next_upstream error timeout http_503; proxy_pass http://u; }\nlocation /b/ { proxy_next_upstream off; proxy_pass http://u; } }',
    );
    expect(r.config.upstreams?.u?.retry).toEqual({ on: ['error', 'timeout', 'http_503'] });
    expect(warned(r).map((w) => [w.line, w.message.slice(0, 40)])).toEqual([
      [5, 'proxy_next_upstream settings differ from'],
    ]);
  });

  it('writes a server-level return as one route for every path and warns for the locations it hides', () => {
    const r = convert(
      'server { listen 80; return 301 https://$host$request_uri; location /x/ { return 204; } }',
    );
    expect(r.config.servers[0]!.routes).toEqual([
      { redirect: { to: 'https://$host$request_uri', status: 301 } },
    ]);
    expect(warned(r)[0]?.message).toMatch(/^location \/x\/ is never reached/);
  });

  it('needs at least one server', () => {
    expect(() => convert('upstream u { server 127.0.0.1:1; }')).toThrow(NothingToImportError);
  });

  it('writes nginx times and sizes with sluice units', () => {
    expect(['30', '1m30s', '500ms', '2h', '1d', '30d', '1y'].map((t) => toSluiceDuration(t))).toEqual([
      '30s',
      '90s',
      '500ms',
      '2h',
      '1d',
      '24d',
      '24d',
    ]);
    expect(['1024', '16k', '10m', '1G', 'x'].map(toSluiceSize)).toEqual(['1kb', '16kb', '10mb', '1gb', null]);
  });

  it('folds letters for ~* and refuses PCRE-only syntax', () => {
    expect(translateRegex('\\.(gif|jpg)$', true)).toEqual({ source: '\\.([gG][iI][fF]|[jJ][pP][gG])$' });
    expect(translateRegex('^/(?P<id>[a-f0-9]+)$', true)).toEqual({ source: '^/(?<id>[a-f0-9A-F]+)$' });
    expect(translateRegex('\\Aabc', false)).toHaveProperty('error');
    expect(translateRegex('a++', false)).toHaveProperty('error');
  });
});

describe('tokenizer and parser', () => {
  /** The error `parseNginx` throws, as `LINE:COL message`. */
  function syntaxError(text: string): string {
    try {
      parseNginx(text, 'bad.conf');
    } catch (err) {
      if (!(err instanceof NginxSyntaxError)) throw err;
      expect(err.format()).toBe(`bad.conf:${err.line}:${err.col}: error: ${err.message}`);
      return `${err.line}:${err.col} ${err.message}`;
    }
    throw new Error('expected a syntax error');
  }

  it('reads quotes, escapes, variables with braces and comments as nginx does', () => {
    const words = tokenize("a \"b c\" 'd\\'e' ${x}y\\;z f#g # comment\n;", 'f').flatMap((t) =>
      t.kind === 'word' ? [t.value] : [t.kind],
    );
    expect(words).toEqual(['a', 'b c', "d'e", '${x}y\\;z', 'f#g', ';']);
    const [d] = parseNginx('\n  location ~ \\.php$ {\n    return 200 "a\\"b";\n  }\n', 'f');
    expect(d).toMatchObject({ name: 'location', args: ['~', '\\.php$'], line: 2, col: 3 });
    expect(d?.block?.[0]).toMatchObject({ name: 'return', args: ['200', 'a"b'], line: 3, col: 5 });
  });

  it('reports an unterminated quote where it opens', () => {
    expect(syntaxError('http {\n  server {\n    return 200 "ok;\n  }\n}\n')).toBe(
      '3:16 unexpected end of file: the string opened here is not closed by "',
    );
  });

  it('reports a missing ";" after the last word of the directive', () => {
    expect(syntaxError('server {\n    listen 80\n    server_name a.test;\n}\n')).toBe(
      '2:14 directive "listen" is not terminated by ";" before "server_name" on line 3',
    );
    expect(syntaxError('server {\n  location / {\n    proxy_pass http://b\n  }\n}\n')).toBe(
      '3:24 directive "proxy_pass" is not terminated by ";" before "}" on line 4',
    );
    expect(syntaxError('worker_processes 2')).toBe(
      '1:19 directive "worker_processes" is not terminated by ";" before the end of the file',
    );
  });

  it('reports unbalanced braces', () => {
    expect(syntaxError('http {\n  server {\n    listen 80;\n}\n')).toBe(
      '1:1 unexpected end of file: the "http" block opened here is not closed by "}"',
    );
    expect(syntaxError('http {\n}\n}\n')).toBe('3:1 unexpected "}": no block is open here');
    expect(syntaxError('http {\n  ;\n}')).toBe('2:3 unexpected ";": a directive name must come first');
  });

  it('reports a word glued to a quoted string', () => {
    expect(syntaxError('return 200 "a"b;')).toBe('1:15 unexpected "b" after a quoted string');
  });

  it('keeps directives whose arguments span lines', () => {
    const [d] = parseNginx("log_format main '$a'\n                '$b';\n", 'f');
    expect(d?.args).toEqual(['main', '$a', '$b']);
  });

  it('passes a syntax error of an included file through with that file', () => {
    const files = {
      '/n/nginx.conf': 'http { include bad.conf; }',
      '/n/bad.conf': 'server {\n  listen 80;\n',
    };
    expect(() =>
      importNginx({ file: '/n/nginx.conf', text: files['/n/nginx.conf'], files: memoryFiles(files) }),
    ).toThrow(expect.objectContaining({ file: '/n/bad.conf', line: 1, col: 1 }));
  });
});

describe('very large configs', () => {
  // 4000 nested blocks ran the import out of stack (a RangeError and a stack trace, exit 1).
  it('refuses blocks nested more than 100 deep where the too-deep block opens, includes counted in', () => {
    const nested = (n: number) => `${'location /a { '.repeat(n)}return 204;${' }'.repeat(n)}`;
    const deep = `http { server { listen 80; ${nested(4000)} } }`;
    let error: unknown;
    try {
      importNginx({ file: 'deep.conf', text: deep });
    } catch (err) {
      error = err;
    }
    expect(error).toBeInstanceOf(NginxSyntaxError);
    expect((error as NginxSyntaxError).format()).toBe(
      'deep.conf:1:1400: error: the "location" block is nested more than 100 levels deep; sluice import nginx reads at most 100 (a config uses about five)',
    );
    // 60 levels in each of two files: each alone is fine, not the two together.
    const files = {
      '/n/nginx.conf': `http { server { listen 80; ${'location /a { '.repeat(60)}include inner.conf;${' }'.repeat(60)} } }`,
      '/n/inner.conf': nested(60),
    };
    expect(() =>
      importNginx({ file: '/n/nginx.conf', text: files['/n/nginx.conf'], files: memoryFiles(files) }),
    ).toThrow(/nested more than 100 levels deep/);
    expect(() =>
      importNginx({ file: 'ok.conf', text: `http { server { listen 80; ${nested(90)} } }` }),
    ).not.toThrow();
  });

  // 16,000 locations took 31 s: every location searched its server's whole list for each directive.
  it('takes about linear time in the number of locations', () => {
    const server = (n: number) =>
      `http { server { listen 80;\n${Array.from(
        { length: n },
        (_, i) =>
          `location /l${i}/ { proxy_pass http://127.0.0.1:9000; location ~ \\.x$ { return 204; } }\nlocation ^~ /c${i}/ { return 204; }\nlocation = /e${i} { return 204; }`,
      ).join('\n')}\n} }`;
    const time = (n: number): number => {
      const text = server(n);
      let best = Number.POSITIVE_INFINITY;
      for (let k = 0; k < 2; k++) {
        const start = performance.now();
        importNginx({ file: 'big.conf', text });
        best = Math.min(best, performance.now() - start);
      }
      return best;
    };
    time(200);
    const small = time(1000);
    const large = time(4000);
    // Four times the locations: about four times the time; quadratic work would be sixteen.
    expect(large / small).toBeLessThan(8);
  }, 120_000);
});

describe('errors and warnings say where and what', () => {
  const convert = (http: string) => importNginx({ file: 'n.conf', text: `http {\n${http}\n}\n` });

  it('keeps a warning on one line when it quotes a text with a newline', () => {
    const r = convert('server { listen 80; location / { return 200 "$host\\nok\\tthere"; } }');
    expect(warned(r).map(formatWarning)).toEqual([
      'n.conf:2: warning: return 200 "$host\\nok\\tthere": sluice sends the text as written, without expanding its variables',
    ]);
  });

  it('reports an unquoted "{" inside an argument where nginx does, not at the end of the file', () => {
    let error: unknown;
    try {
      parseNginx('http {\n  server {\n    server_name ~^\\p{Lu}+\\.test$;\n  }\n}\n', 'brace.conf');
    } catch (err) {
      error = err;
    }
    expect((error as NginxSyntaxError).format()).toBe(
      'brace.conf:3:21: error: directive "server_name" is not terminated by ";": a "{" opens a block here, which server_name does not take (quote an argument that holds "{" or "}")',
    );
  });

  it('says that the query string of a proxy_pass is what sluice cannot carry', () => {
    const r = convert('server { listen 80; location / { proxy_pass http://h:8080/q?x=1; } }');
    expect(r.config.servers[0]!.routes[0]!.respond).toEqual({ status: 502 });
    expect(warned(r).map((w) => w.message)).toEqual([
      "proxy_pass http://h:8080/q?x=1: sluice forwards the request's own query string; a query (or fragment) in proxy_pass, ?x=1, has no sluice equivalent; the route answers 502",
    ]);
  });
});
