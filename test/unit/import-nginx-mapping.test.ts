// biome-ignore-all lint/suspicious/noTemplateCurlyInString: nginx writes variables as ${name}; these strings are nginx text, not templates.
/**
 * `sluice import nginx` is never more permissive than the nginx config it came from: directives
 * that change behaviour are carried over (send_timeout, add_header, the Host nginx sends, the query
 * string of a rewrite, both sides of a dual-stack listen), or the route refuses requests (internal,
 * auth_basic, limit_except) with a warning at the line they were written on.
 */
import { describe, expect, it } from 'vitest';
import { loadConfigText } from '../../src/config/load.js';
import { formatProblem } from '../../src/config/problem.js';
import type { ResolvedAccess, ResolvedConfig } from '../../src/config/types.js';
import { DEFAULT_REDIRECT, importNginx } from '../../src/ops/import-nginx/import-nginx.js';
import { RefusedLocationError } from '../../src/ops/import-nginx/refused-location-error.js';
import { upstreamPath } from '../../src/proxy/proxy-route.js';
import { HostTable } from '../../src/router/host-table.js';
import { RouteTable } from '../../src/router/route-table.js';
import { AccessControl } from '../../src/security/access-control.js';

const convert = (http: string) => importNginx({ file: 'n.conf', text: `http {\n${http}\n}\n` });
/** The response headers nginx never passes on (proxy_hide_header's defaults), removed on every proxy route. */
const HIDDEN = [
  'X-Accel-Redirect',
  'X-Accel-Buffering',
  'X-Accel-Charset',
  'X-Accel-Expires',
  'X-Accel-Limit-Rate',
  'X-Pad',
];

/** The warnings but the one for nginx's default proxy_redirect (said once per file, tested on its own). */
const messages = (r: ReturnType<typeof convert>) =>
  r.warnings.filter((w) => w.message !== DEFAULT_REDIRECT).map((w) => [w.line, w.message]);

function resolved(yaml: string): ResolvedConfig {
  const r = loadConfigText(yaml, 'sluice.yaml', {});
  if (!r.ok) throw new Error(r.problems.map((p) => formatProblem(p)).join('\n'));
  return r.config;
}

describe('limits and forwarding headers', () => {
  it('carries send_timeout to limits.send_timeout (60s, the default of both, is not written)', () => {
    const r = convert(
      [
        'send_timeout 30s;',
        'server { listen 80; location / { return 204; } }',
        'server { listen 81; send_timeout 60; location / { return 204; } }',
      ].join('\n'),
    );
    expect(r.config.servers.map((s) => s.limits?.send_timeout)).toEqual(['30s', undefined]);
    expect(messages(r)).toEqual([]);
    expect(resolved(r.yaml).servers[0]!.limits.sendTimeoutMs).toBe(30_000);
  });

  it('says how X-Forwarded-For differs when nginx appends to the chain the client sent', () => {
    const r = convert(
      'server { listen 80; location / { proxy_pass http://10.0.0.5:8080; proxy_set_header X-Forwarded-For $proxy_add_x_forwarded_for; } }',
    );
    expect(messages(r)).toEqual([
      [2, expect.stringMatching(/X-Forwarded-For .*trusted_proxies.*nginx appends the peer to any chain/)],
    ]);
  });
});

describe('rewrite', () => {
  it("keeps the query string nginx appends to a redirect, unless the replacement ends with '?'", () => {
    const r = convert(
      [
        'server { listen 80;',
        '  location /a/ { rewrite ^ https://b.test/x permanent; }',
        '  location /b/ { rewrite ^ https://b.test/y? redirect; }',
        '  location /c/ { rewrite ^ https://b.test/z?from=c permanent; }',
        '}',
      ].join('\n'),
    );
    expect(r.config.servers[0]!.routes.map((route) => route.redirect)).toEqual([
      { to: 'https://b.test/x$is_args$args', status: 301 },
      { to: 'https://b.test/y' },
      { to: 'https://b.test/z?from=c', status: 301 },
    ]);
    expect(messages(r)).toEqual([[5, expect.stringMatching(/adds the request's query string to this one/)]]);
    resolved(r.yaml);
  });
});

describe('proxy_pass with a URI part', () => {
  // `location /orders { proxy_pass http://h/orders; }` became strip_prefix /orders and a base path
  // /orders, which sent /ordersX as /orders/X and /orders as /orders/, without a warning.
  it('forwards the path as it came when the URI part is the location itself', () => {
    const r = convert(
      [
        'server { listen 80;',
        '  location /orders { proxy_pass http://127.0.0.1:9000/orders; }',
        '  location /api/ { proxy_pass http://127.0.0.1:9000/api/; }',
        '  location = /exact { proxy_pass http://127.0.0.1:9000/exact; }',
        '}',
      ].join('\n'),
    );
    expect(messages(r)).toEqual([]);
    const proxies = resolved(r.yaml).servers[0]!.routes.flatMap((route) =>
      route.action.kind === 'proxy' ? [route.action] : [],
    );
    expect(proxies).toHaveLength(3);
    const sent = (i: number, path: string) => upstreamPath(proxies[i]!, path, '');
    expect([sent(0, '/orders'), sent(0, '/ordersX'), sent(0, '/orders/1')]).toEqual([
      '/orders',
      '/ordersX',
      '/orders/1',
    ]);
    expect([sent(1, '/api/'), sent(1, '/api/x')]).toEqual(['/api/', '/api/x']);
    expect(sent(2, '/exact')).toBe('/exact');
  });

  it('says how a path differs when neither the location nor the URI part ends with a slash', () => {
    const r = convert(
      'server { listen 80; location /orders { proxy_pass http://127.0.0.1:9000/v2/orders; } }',
    );
    expect(messages(r)).toEqual([
      [
        2,
        'proxy_pass http://127.0.0.1:9000/v2/orders: nginx forwards /ordersx as /v2/ordersx, sluice as /v2/orders/x',
      ],
    ]);
  });
});

describe('listen', () => {
  it('keeps the IPv4 side of a dual-stack [::]:PORT ipv6only=off (sluice binds [::] IPv6-only)', () => {
    const r = convert(
      [
        'server { listen [::]:80 ipv6only=off default_server; location / { return 204; } }',
        'server { listen [::]:8443 ssl ipv6only=off; listen [::1]:81 ipv6only=off; ssl_certificate /c.pem; ssl_certificate_key /k.pem; location / { return 204; } }',
      ].join('\n'),
    );
    expect(r.config.servers.map((s) => [s.listen, s.default])).toEqual([
      [['[::]:80', ':80'], true],
      [['[::1]:81'], undefined],
      [['[::]:8443', ':8443'], undefined],
    ]);
    expect(r.config.servers[2]!.tls).toEqual({ cert: '/c.pem', key: '/k.pem' });
    expect(messages(r)).toEqual([]);
    const plain = convert('server { listen [::]:80 ipv6only=off; location / { return 204; } }');
    const listens = resolved(plain.yaml).servers[0]!.listen.map((a) => a.key);
    expect(listens).toEqual(['[::]:80', '0.0.0.0:80']);
  });

  // nginx's HTTP/3 layout: a quic (UDP) listen beside the ssl (TCP) one of the same address. The
  // quic line was read as a TCP listen, the ssl one dropped as its duplicate, and the server lost
  // its tls: plain HTTP on the HTTPS port.
  it('leaves out a quic listen (HTTP/3 over UDP) and keeps TLS on the ssl one', () => {
    const r = convert(
      [
        'server {',
        '  listen 127.0.0.1:8443 quic reuseport;',
        '  listen 127.0.0.1:8443 ssl;',
        '  http2 on;',
        '  http3 on;',
        '  ssl_certificate /c.pem; ssl_certificate_key /k.pem;',
        '  location / { return 204; }',
        '}',
      ].join('\n'),
    );
    expect(r.config.servers.map((s) => [s.listen, s.tls, s.http2])).toEqual([
      [['127.0.0.1:8443'], { cert: '/c.pem', key: '/k.pem' }, true],
    ]);
    expect(messages(r)).toEqual([
      [
        3,
        expect.stringMatching(
          /^listen 127\.0\.0\.1:8443 quic reuseport: HTTP\/3 \(QUIC, over UDP\) is not carried over/,
        ),
      ],
      [
        6,
        expect.stringMatching(
          /^http3: not carried over: sluice serves HTTP\/1\.1 and HTTP\/2 over TCP; HTTP\/3/,
        ),
      ],
    ]);
  });
});

describe('the Host sent upstream', () => {
  it("sends the upstream block's name as Host, as nginx's $proxy_host; $host, $http_host and $server_port as nginx has them", () => {
    const r = convert(
      [
        'upstream Backend { server 10.0.0.5:8080; server 10.0.0.6:8080; }',
        'server { listen 80;',
        '  location /a/ { proxy_pass http://Backend; }',
        '  location /b/ { proxy_pass http://10.0.0.7:8080; }',
        '  location /c/ { proxy_pass http://Backend; proxy_set_header Host $host; }',
        '  location /d/ { proxy_pass http://Backend; proxy_set_header Host $proxy_host; }',
        '  location /e/ { proxy_pass http://Backend; proxy_set_header Host $http_host; }',
        '  location /f/ { proxy_pass http://Backend; proxy_set_header Host $host:$server_port; proxy_set_header X-Forwarded-Host $host; }',
        '}',
        'server { listen 81; listen 82; location / { proxy_pass http://Backend; proxy_set_header Host $host:$server_port; } }',
      ].join('\n'),
    );
    const proxies = r.config.servers[0]!.routes.filter((x) => x.proxy !== undefined).map((x) => x.proxy);
    expect(proxies.map((p) => [p?.upstream ?? p?.url, p?.set_headers, p?.preserve_host])).toEqual([
      ['Backend', { Host: 'Backend' }, undefined],
      ['http://10.0.0.7:8080', undefined, false],
      // $host is the name without the port, lower-case: sluice's $host, not the client's Host.
      ['Backend', { Host: '$host' }, undefined],
      ['Backend', { Host: 'Backend' }, undefined],
      ['Backend', undefined, undefined],
      ['Backend', { Host: '$host:80', 'X-Forwarded-Host': '$host' }, undefined],
    ]);
    const routes = resolved(r.yaml).servers[0]!.routes;
    const actions = routes.map((x) => x.action).filter((a) => a.kind === 'proxy');
    expect(actions.map((a) => [a.preserveHost, a.setHeaders.map(([name]) => name)])).toEqual([
      [true, ['Host']],
      [false, []],
      [true, ['Host']],
      [true, ['Host']],
      [true, []],
      [true, ['Host', 'X-Forwarded-Host']],
    ]);
    // Two ports: $server_port stands for neither, and the client's Host (with its port) is sent.
    expect(r.config.servers[1]!.routes[0]!.proxy?.set_headers).toBeUndefined();
    expect(messages(r)).toEqual([
      [
        11,
        expect.stringMatching(
          /^proxy_set_header Host \$host:\$server_port: \$server_port stands for no one port here .*; the client's Host is sent instead$/,
        ),
      ],
    ]);
  });
});

describe('upstream names', () => {
  it('finds an upstream block whatever the case proxy_pass writes its name in, as nginx does', () => {
    const r = convert(
      [
        'upstream Backend { server 10.0.0.5:8080; }',
        'upstream BACKEND { server 10.0.0.6:8080; }',
        'server { listen 80;',
        '  location /a/ { proxy_pass http://backend; }',
        '  location /b/ { proxy_pass http://BACKEND; }',
        '}',
      ].join('\n'),
    );
    const proxies = r.config.servers[0]!.routes.filter((x) => x.proxy !== undefined).map((x) => x.proxy);
    // nginx's $proxy_host is the name as proxy_pass writes it.
    expect(proxies.map((p) => [p?.upstream ?? p?.url, p?.set_headers])).toEqual([
      ['Backend', { Host: 'backend' }],
      ['Backend', { Host: 'BACKEND' }],
    ]);
    expect(Object.keys(r.config.upstreams ?? {})).toEqual(['Backend']);
    expect(messages(r)).toEqual([
      [3, 'duplicate upstream BACKEND (first at n.conf:2); nginx refuses this too, so it is left out'],
    ]);
    const routes = resolved(r.yaml).servers[0]!.routes.map((x) => x.action);
    expect(routes.filter((a) => a.kind === 'proxy').map((a) => a.upstream)).toEqual(['Backend', 'Backend']);
  });
});

describe('what sluice cannot do is refused, never served more openly', () => {
  const r = convert(
    [
      'server { listen 80;',
      '  location / { proxy_pass http://10.0.0.5:8080; }',
      '  location /int/ { internal; proxy_pass http://10.0.0.5:8080; location /int/deep/ { return 200 "deep"; } }',
      '  location /auth/ { auth_basic "staff"; auth_basic_user_file /etc/nginx/htpasswd; proxy_pass http://10.0.0.5:8080;',
      '    location /auth/open/ { auth_basic off; proxy_pass http://10.0.0.6:8080; } }',
      '  location = /auth/ping { auth_basic "staff"; return 200 "pong"; }',
      '  location /sso/ { auth_request /check; proxy_pass http://10.0.0.5:8080; }',
      '  location /ro/ { limit_except GET { deny all; } proxy_pass http://10.0.0.7:8080; }',
      '  location /lan/ { limit_except GET POST { allow 10.0.0.0/8; deny all; } proxy_pass http://10.0.0.7:8080; }',
      '  location /odd/ { limit_except GET { auth_basic "x"; } proxy_pass http://10.0.0.7:8080; }',
      '}',
    ].join('\n'),
  );
  const server = resolved(r.yaml).servers[0]!;
  const table = new RouteTable(server.routes, (route) => route);
  const answer = (path: string, method = 'GET') => {
    const route = table.match(path, method, { header: () => undefined });
    const a = route?.action;
    if (a?.kind === 'respond') return a.status;
    if (a?.kind === 'redirect') return `${a.status} redirect`;
    if (a?.kind === 'proxy') return `proxy ${a.upstream}`;
    return a?.kind;
  };

  it('answers 404 for an internal location and those nested in it, its slash redirect too', () => {
    expect([answer('/int/x'), answer('/int/deep/x'), answer('/int')]).toEqual([404, 404, 404]);
  });

  it('refuses (403) where nginx asks for credentials, but for a return (answered first) and auth_basic off', () => {
    expect(answer('/auth/x')).toBe(403);
    expect(answer('/sso/x')).toBe(403);
    expect(answer('/auth/ping')).toBe(200);
    expect(answer('/auth/open/x')).toMatch(/^proxy/);
  });

  it('refuses the methods limit_except leaves out, or checks them against its allow/deny', () => {
    expect([answer('/ro/x'), answer('/ro/x', 'HEAD'), answer('/ro/x', 'POST')]).toEqual([
      expect.stringMatching(/^proxy/),
      expect.stringMatching(/^proxy/),
      403,
    ]);
    expect(answer('/lan/x', 'POST')).toMatch(/^proxy/);
    const del = table.match('/lan/x', 'DELETE', { header: () => undefined });
    expect(del?.action.kind).toBe('proxy');
    expect(del?.guards.access).not.toBeNull();
    expect([answer('/odd/x'), answer('/odd/x', 'POST')]).toEqual([403, 403]);
  });

  it('warns at each line', () => {
    expect(messages(r)).toEqual([
      [4, expect.stringMatching(/^internal: not carried over: .*answers 404 to every request/)],
      [5, expect.stringMatching(/^auth_basic_user_file: not carried over/)],
      [
        5,
        expect.stringMatching(
          /^auth_basic staff: sluice cannot check credentials, so the location refuses every request \(403\)/,
        ),
      ],
      [8, expect.stringMatching(/^auth_request \/check: sluice cannot check credentials/)],
      [
        11,
        expect.stringMatching(
          /^limit_except \{ auth_basic \}: sluice can restrict the other methods by allow\/deny only; the location refuses every request \(403\)/,
        ),
      ],
    ]);
  });
});

describe('a regex location sluice cannot follow, with limit_except', () => {
  // The route for the other methods was a copy of the proxy and went on proxying: POST
  // /app/admin from 10.x reached the app, where nginx answers 403.
  it('refuses every method, not only those limit_except lists', () => {
    const r = convert(
      [
        'server { listen 80;',
        '  location ~ ^/app { limit_except GET { allow 10.0.0.0/8; deny all; } proxy_pass http://10.0.0.5:8080;',
        '    location ~ ^/app/admin { deny all; } }',
        '}',
      ].join('\n'),
    );
    const table = new RouteTable(resolved(r.yaml).servers[0]!.routes, (route) => route);
    const kinds = ['GET', 'HEAD', 'POST', 'DELETE'].map((method) => {
      const a = table.match('/app/admin', method, { header: () => undefined })?.action;
      return a?.kind === 'respond' ? a.status : a?.kind;
    });
    expect(kinds).toEqual([502, 502, 502, 502]);
  });
});

describe('if ($scheme = http) { return 301 https://... }', () => {
  it('redirects every path on the plain addresses and leaves the TLS ones as they are', () => {
    const r = convert(
      [
        'server { listen 80; listen 443 ssl; server_name a.test;',
        '  ssl_certificate /c.pem; ssl_certificate_key /k.pem;',
        '  if ($scheme = http) { return 301 https://$host$request_uri; }',
        '  location / { proxy_pass http://10.0.0.5:8080; }',
        '}',
        'server { listen 8080; if ( $scheme != "https" ) { return 301 https://b.test$request_uri; } location / { return 204; } }',
        'server { listen 8081; if ($scheme = http) { set $x 1; return 301 https://c.test; } location / { return 204; } }',
      ].join('\n'),
    );
    const routes = r.config.servers.map((s) => [s.name, s.routes]);
    expect(routes).toEqual([
      ['a.test', [{ redirect: { to: 'https://$host$request_uri', status: 301 } }]],
      [
        'a.test-tls',
        [
          {
            match: { path_prefix: '/' },
            proxy: {
              url: 'http://10.0.0.5:8080',
              preserve_host: false,
              response_headers: { remove: HIDDEN },
            },
          },
        ],
      ],
      ['server2', [{ redirect: { to: 'https://b.test$request_uri', status: 301 } }]],
      ['server3', [{ respond: { status: 502 } }]],
    ]);
    expect(messages(r)).toEqual([
      [8, expect.stringMatching(/^if \(\$scheme = http\): only a return .* the plain addresses answer 502/)],
    ]);
  });

  // A rewrite without a flag goes on to the next directive: the redirect was dropped and the
  // plain address proxied everything.
  it('looks past a server-level rewrite that does not end the rewrites, and refuses after one that does', () => {
    const r = convert(
      [
        'server { listen 80; listen 443 ssl; server_name a.test;',
        '  ssl_certificate /c.pem; ssl_certificate_key /k.pem;',
        '  rewrite ^/old/(.*)$ /new/$1;',
        '  if ($scheme = http) { return 301 https://$host$request_uri; }',
        '  location / { proxy_pass http://10.0.0.5:8080; }',
        '}',
        'server { listen 8080; rewrite ^/old/(.*)$ /new/$1 last;',
        '  if ($scheme = http) { return 301 https://b.test$request_uri; } location / { return 204; } }',
      ].join('\n'),
    );
    expect(r.config.servers.map((s) => s.routes[0])).toEqual([
      { redirect: { to: 'https://$host$request_uri', status: 301 } },
      expect.objectContaining({ match: { path_prefix: '/' } }),
      { respond: { status: 502 } },
    ]);
  });
});

describe("certbot's if ($host = NAME) { return 301 https://... }", () => {
  const CERTBOT = [
    'server {',
    '  if ($host = www.example.com) { return 301 https://$host$request_uri; }',
    '  if ($host = example.com) { return 301 https://$host$request_uri; }',
    '  listen 80; server_name example.com www.example.com; return 404;',
    '}',
  ].join('\n');

  // Read as a condition sluice cannot test, the server refused every request (403): the site
  // lost its redirect to https.
  it('redirects the tested names and leaves the rest of the server (its 404, its default) as it was', () => {
    const r = convert(CERTBOT);
    expect(messages(r)).toEqual([]);
    const servers = resolved(r.yaml).servers;
    expect(servers).toHaveLength(2);
    const hosts = new HostTable(
      servers.map((s) => ({ names: s.serverNames, isDefault: s.default, value: s })),
    );
    const answer = (host: string) => {
      const route = new RouteTable(hosts.match(host).routes, (x) => x).match('/a', 'GET', {
        header: () => undefined,
      });
      return route?.action;
    };
    for (const host of ['example.com', 'WWW.Example.com:80']) {
      expect(answer(host)).toMatchObject({ kind: 'redirect', to: 'https://$host$request_uri', status: 301 });
    }
    expect(answer('other.test')).toMatchObject({ kind: 'respond', status: 404 });
    expect(answer('')).toMatchObject({ kind: 'respond', status: 404 });
  });

  // Beside an `if ($scheme = http)`, the host test turned the TLS half into 403 for every request.
  it('redirects www to the bare name on the TLS half when the plain half redirects by scheme', () => {
    const r = convert(
      [
        'server { listen 80; listen 443 ssl; server_name example.com www.example.com;',
        '  ssl_certificate /c.pem; ssl_certificate_key /k.pem;',
        '  if ($scheme = http) { return 301 https://$host$request_uri; }',
        '  if ($host = www.example.com) { return 301 https://example.com$request_uri; }',
        '  location / { return 204; }',
        '}',
      ].join('\n'),
    );
    expect(messages(r)).toEqual([]);
    expect(
      r.config.servers.map((s) => [
        s.listen,
        s.server_name,
        s.routes.map((x) => x.redirect?.to ?? x.respond?.status),
      ]),
    ).toEqual([
      [[':80'], ['example.com', 'www.example.com'], ['https://$host$request_uri']],
      [[':443'], ['example.com'], [204]],
      [[':443'], ['www.example.com'], ['https://example.com$request_uri']],
    ]);
  });

  it('still refuses the whole server when an if tests a name the server does not have', () => {
    const r = convert(CERTBOT.replace('$host = example.com', '$host = elsewhere.test'));
    expect(r.config.servers).toHaveLength(1);
    expect(r.config.servers[0]!.routes).toEqual([{ respond: { status: 403 } }]);
    expect(messages(r).map(([line]) => line)).toEqual([3, 3, 4]);
  });
});

describe('add_header', () => {
  it("adds beside the target's header, on the statuses nginx adds to, or on every one with always", () => {
    const r = convert(
      [
        'server { listen 80;',
        '  add_header X-Frame-Options DENY;',
        '  add_header Strict-Transport-Security "max-age=31536000" always;',
        '  location / { proxy_pass http://10.0.0.5:8080; }',
        '  location /api/ { proxy_pass http://10.0.0.5:8080; add_header X-Api $host; }',
        '}',
      ].join('\n'),
    );
    const headers = r.config.servers[0]!.routes.map((x) => x.proxy?.response_headers);
    expect(headers).toEqual([
      {
        remove: HIDDEN,
        add: { 'X-Frame-Options': 'DENY' },
        add_always: { 'Strict-Transport-Security': 'max-age=31536000' },
      },
      undefined,
      { remove: HIDDEN, add: { 'X-Api': '$host' } },
    ]);
    expect(messages(r)).toEqual([]);
    const action = resolved(r.yaml).servers[0]!.routes[0]!.action;
    expect(action.kind === 'proxy' && [action.responseAddHeaders, action.responseAddAlwaysHeaders]).toEqual([
      [['X-Frame-Options', 'DENY']],
      [['Strict-Transport-Security', 'max-age=31536000']],
    ]);
  });
});

describe('nested locations', () => {
  it('refuses a regex location with locations nested in it (nginx searches them after the regex), and inherits into nested ones', () => {
    const r = convert(
      [
        'server { listen 80;',
        '  location ~ \\.php$ { proxy_pass http://10.0.0.5:8080; location ~ ^/admin { deny all; } }',
        '  location /a/ { proxy_pass http://10.0.0.5:8080; proxy_read_timeout 5s; allow 10.0.0.0/8; deny all;',
        '    location /a/b/ { proxy_pass http://10.0.0.6:8080; } }',
        '}',
      ].join('\n'),
    );
    const routes = r.config.servers[0]!.routes;
    expect(routes.find((x) => x.name === '~ \\.php$' || x.match?.path_regex === '\\.php$')?.respond).toEqual({
      status: 502,
    });
    expect(routes.some((x) => x.match?.path_regex?.includes('admin'))).toBe(false);
    const nested = routes.find((x) => x.match?.path_prefix === '/a/b/');
    expect([nested?.proxy?.timeouts, nested?.access]).toEqual([
      { read: '5s' },
      [{ allow: '10.0.0.0/8' }, { deny: 'all' }],
    ]);
    expect(messages(r)).toEqual([
      [
        3,
        expect.stringMatching(
          /^location ~ \^\/admin is nested in the regex location ~ \\\.php\$ \(line 3\).*refuses every request \(502\)/,
        ),
      ],
    ]);
  });
});

describe('return routes keep the allow/deny in force where they are', () => {
  const r = convert(
    [
      'allow 192.168.0.0/16; deny all;',
      'server { listen 80; allow 10.0.0.0/8; deny all;',
      '  location = /health { return 200 "ok"; }',
      '  location /gone { return 404; }',
      '  location /lan/ { allow 10.1.0.0/16; deny all; return 200 "lan"; }',
      '  location /p/ { proxy_pass http://10.0.0.5:8080; }',
      '}',
      'server { listen 81; return 301 https://x.test$request_uri; }',
      'server { listen 82; listen 443 ssl; ssl_certificate /c.pem; ssl_certificate_key /k.pem; allow 10.0.0.0/8; deny all;',
      '  if ($scheme = http) { return 301 https://$host$request_uri; }',
      '  location / { return 200 "tls"; }',
      '}',
    ].join('\n'),
  );

  it('checks every route of a server, return routes included, against the nearest allow/deny', () => {
    // Only the routes: the TLS files of the last server do not exist here.
    const config = resolved(r.yaml.replace(/\n {4}tls:\n {6}cert: \/c\.pem\n {6}key: \/k\.pem/, ''));
    const allowed = (route: { guards: { access: ResolvedAccess | null } }, address: string) =>
      route.guards.access === null || new AccessControl(route.guards.access).allows(address);
    const verdicts = config.servers.map((s) =>
      s.routes.map((route) => ['10.2.0.1', '10.1.0.1', '192.168.1.1'].map((a) => allowed(route, a))),
    );
    expect(verdicts).toEqual([
      // /health, /gone, /lan/, /p (the slash redirect), /p/
      [
        [true, true, false],
        [true, true, false],
        [false, true, false],
        [true, true, false],
        [true, true, false],
      ],
      // server-level return: the http level's rules
      [[false, false, true]],
      // the plain half's redirect, and the TLS half's route
      [[true, true, false]],
      [[true, true, false]],
    ]);
  });

  it('warns that nginx answers a return before it checks allow/deny', () => {
    expect(messages(r).filter(([, m]) => String(m).includes('before it checks allow/deny'))).toEqual([
      [4, expect.any(String)],
      [5, expect.any(String)],
      [6, expect.any(String)],
      [9, expect.any(String)],
      [11, expect.any(String)],
      [12, expect.any(String)],
    ]);
  });
});

describe('proxy_redirect and limit_req', () => {
  it('warns that Location headers pass unchanged, and carries limit_req to rate_limit', () => {
    const r = convert(
      [
        'limit_req_zone $binary_remote_addr zone=one:10m rate=5r/s;',
        'server { listen 80;',
        '  location / { proxy_pass http://10.0.0.5:8080; proxy_redirect http://10.0.0.5:8080/ /; limit_req zone=one burst=10 nodelay; }',
        '  location /off/ { proxy_pass http://10.0.0.5:8080; proxy_redirect off; }',
        '}',
      ].join('\n'),
    );
    expect(r.config.servers[0]!.routes[0]!.rate_limit).toEqual({ rate: '5/s', burst: 10, zone: 'one' });
    expect(messages(r)).toEqual([
      [4, expect.stringMatching(/^limit_req: nginx refuses requests above the rate with 503/)],
      [
        4,
        expect.stringMatching(
          /^proxy_redirect is not carried over: sluice passes Location headers on unchanged/,
        ),
      ],
    ]);
  });
});

describe('a limit_req key that can be empty', () => {
  // nginx counts no request with an empty key; sluice counts them in one bucket, so clients without
  // the header throttled each other after the import, which said nothing.
  it('says that requests without the header share one bucket in sluice', () => {
    const r = convert(
      [
        'limit_req_zone $http_x_api_key zone=key:10m rate=5r/s;',
        'limit_req_zone $binary_remote_addr$http_x_api_key zone=mixed:10m rate=5r/s;',
        'limit_req_status 429;',
        'server { listen 80; location /k/ { limit_req zone=key; proxy_pass http://10.0.0.5; } location /m/ { limit_req zone=mixed; proxy_pass http://10.0.0.5; } }',
      ].join('\n'),
    );
    const k = r.config.servers[0]!.routes.find((x) => x.match?.path_prefix === '/k/');
    expect(k?.rate_limit).toEqual({ rate: '5/s', key: '$http_x_api_key', zone: 'key' });
    expect(messages(r)).toEqual([
      [
        2,
        expect.stringMatching(
          /^limit_req_zone \$http_x_api_key: nginx does not limit requests whose key is empty/,
        ),
      ],
    ]);
  });
});

describe('an if that refuses requests on a condition sluice cannot test', () => {
  it('refuses the whole location (or server) rather than serve everyone; other ifs are only warned', () => {
    const r = convert(
      [
        'server { listen 80;',
        '  location /a/ { if ($http_user_agent ~* bot) { return 403; } proxy_pass http://10.0.0.5:8080; }',
        '  location /b/ { if ($request_method = OPTIONS) { return 204; } proxy_pass http://10.0.0.5:8080; }',
        '  location /c/ { if ($http_x_debug) { rewrite ^ https://secure.test$request_uri permanent; } proxy_pass http://10.0.0.5:8080; }',
        // Every visitor without a session reached the app: the if was dropped with a warning.
        '  location /d/ { if ($cookie_session = "") { return 302 /login; } proxy_pass http://10.0.0.5:8080; }',
        '  location /e/ { if ($cookie_session = "") { rewrite ^ /login redirect; } proxy_pass http://10.0.0.5:8080; }',
        '}',
        'server { listen 81; if ($host !~ ^a\\.test$) { return 444; } location / { proxy_pass http://10.0.0.5:8080; } }',
      ].join('\n'),
    );
    const [one, two] = r.config.servers;
    const answers = one!.routes.filter((x) => x.match?.path_prefix !== undefined);
    expect(answers.map((x) => [x.match?.path_prefix, x.respond?.status ?? 'proxy'])).toEqual([
      ['/a/', 403],
      ['/b/', 'proxy'],
      ['/c/', 403],
      ['/d/', 403],
      ['/e/', 403],
    ]);
    expect(two!.routes).toEqual([{ respond: { status: 403 } }]);
    const refusals = messages(r).filter(([, m]) => String(m).includes('refuses every request (403)'));
    expect(refusals.map(([line]) => line)).toEqual([3, 5, 6, 7, 9]);
  });

  it('quotes the condition as it was written', () => {
    const r = convert(
      [
        'server { listen 80;',
        '  location /a/ { if ($cookie_session = "") { return 302 /login; } proxy_pass http://10.0.0.5:8080; }',
        '  location /b/ { if ( $http_x = "a b" ) { return 403; } proxy_pass http://10.0.0.5:8080; }',
        '}',
      ].join('\n'),
    );
    const conditions = messages(r)
      .map(([, m]) => String(m))
      .filter((m) => m.includes('refuses every request (403)'))
      .map((m) => m.slice(0, m.indexOf(':')));
    expect(conditions).toEqual(['if ($cookie_session = "")', 'if ( $http_x = "a b" )']);
  });
});

describe('a proxy_set_header whose value sluice cannot build', () => {
  // nginx always sets the header (an empty value sends none), so a client's own X-Client-Verify
  // never reached the upstream; dropped with a warning, the client's copy went through.
  it("removes the client's header of that name, and says so", () => {
    const r = convert(
      [
        'map $ssl_client_s_dn $who { default ""; }',
        'server { listen 80;',
        '  proxy_set_header X-Client-Verify $ssl_client_verify;',
        '  proxy_set_header X-Client-DN $ssl_client_s_dn;',
        '  proxy_set_header X-User $remote_user;',
        '  proxy_set_header X-Who $who;',
        '  proxy_set_header X-Via edge;',
        '  location / { proxy_pass http://10.0.0.5:8080; }',
        '}',
      ].join('\n'),
    );
    const proxy = r.config.servers[0]!.routes[0]!.proxy;
    expect(proxy?.remove_headers).toEqual(['X-Client-Verify', 'X-Client-DN', 'X-User', 'X-Who']);
    expect(proxy?.set_headers).toEqual({ 'X-Via': 'edge' });
    const removed = messages(r).filter(([, m]) => String(m).includes('remove_headers'));
    expect(removed.map(([line]) => line)).toEqual([4, 5, 6, 7]);
    expect(String(removed[0]![1])).toMatch(
      /^proxy_set_header X-Client-Verify \$ssl_client_verify: sluice has no variable \$ssl_client_verify; not carried over: sluice removes the client's X-Client-Verify instead/,
    );
    const action = resolved(r.yaml).servers[0]!.routes[0]!.action;
    expect(action.kind === 'proxy' && action.removeHeaders).toEqual([
      'x-client-verify',
      'x-client-dn',
      'x-user',
      'x-who',
    ]);
  });
});

describe("nginx's default proxy_redirect", () => {
  // nginx rewrites an upstream's Location: http://127.0.0.1:21003/v1/login to the client's URL
  // unless proxy_redirect off; sluice has no such rewrite, and the import said nothing.
  it('is warned once per file, at the first proxy_pass without proxy_redirect', () => {
    const r = importNginx({
      file: '/etc/nginx/nginx.conf',
      text: [
        'http {',
        '  server { listen 80;',
        '    location /off/ { proxy_pass http://10.0.0.5:8080; proxy_redirect off; }',
        '    location /api/ { proxy_pass http://10.0.0.5:8080/v1/; }',
        '    location /b/ { proxy_pass http://10.0.0.6:8080; }',
        '  }',
        '  include site.conf;',
        '}',
      ].join('\n'),
      files: {
        read: (path) => {
          if (path !== '/etc/nginx/site.conf') throw new Error('ENOENT');
          return 'server { listen 81; location / { proxy_pass http://10.0.0.7:8080; } }\n';
        },
        glob: () => [],
      },
    });
    const warned = r.warnings.filter((w) => w.message === DEFAULT_REDIRECT);
    expect(warned.map((w) => [w.file, w.line])).toEqual([
      ['/etc/nginx/nginx.conf', 4],
      ['/etc/nginx/site.conf', 1],
    ]);
    expect(DEFAULT_REDIRECT).toMatch(/Location or Refresh header .* sluice passes it on unchanged/);
  });
});

describe('a location sluice cannot match', () => {
  // A location whose regex has no exact translation was dropped with a warning: its deny went
  // with it, and its requests reached location / and were proxied.
  it('stops the import when it refuses, redirects or limits requests, naming every such location', () => {
    const text = [
      'http { server { listen 80;',
      '  location ~ ^/(\\w+)/\\1$ { deny all; }',
      '  location ~ "^/\\p{Lu}" { return 404; }',
      '  location ~ ^/(a)\\1 { proxy_pass http://10.0.0.5:8080; }',
      '  location ~ ^/(b)\\1 { location /b/ { auth_basic "x"; } }',
      '  location / { proxy_pass http://10.0.0.5:8080; }',
      '} }',
    ].join('\n');
    let error: unknown;
    try {
      importNginx({ file: 'n.conf', text });
    } catch (err) {
      error = err;
    }
    expect(error).toBeInstanceOf(RefusedLocationError);
    const lines = (error as RefusedLocationError).format().split('\n');
    expect(lines).toEqual([
      expect.stringMatching(
        /^n\.conf:2:3: error: location ~ \^\/\(\\w\+\)\/\\1\$: the back reference \\1 .*nothing is imported \(hint: /,
      ),
      expect.stringMatching(/^n\.conf:3:3: error: location ~ \^\/\\p\{Lu\}: \\p \(Unicode property\)/),
      expect.stringMatching(/^n\.conf:5:3: error: location ~ \^\/\(b\)\\1: /),
    ]);
  });

  it('is dropped with a warning when it only serves (its requests go to another route, as open as it)', () => {
    const r = convert(
      'server { listen 80; location ~ ^/(a)\\1 { proxy_pass http://10.0.0.5:8080; } location / { return 204; } }',
    );
    expect(messages(r)).toEqual([[2, expect.stringMatching(/back reference .*; not carried over$/)]]);
  });
});

describe('what nginx accepts gives a config sluice check accepts', () => {
  // Each of these made `sluice check` refuse the import: ${ read as an environment variable, a body
  // on a 204 or 304, a 1xx said to be fine, an empty redirect target, a timer beyond 24d.
  it('escapes ${, leaves out bodies that cannot be sent, answers 502 for a 1xx and cuts times to 24d', () => {
    const r = convert(
      [
        'server { listen 80;',
        '  location /a { return 200 "it\'s: ${host} $${x}"; }',
        '  location /b { return 204 "nobody"; }',
        '  location /c { return 304 "x"; }',
        '  location /d { return 100; }',
        '  location /e { return 308 ""; }',
        '  location /f { proxy_pass http://10.0.0.5:8080; proxy_read_timeout 30d; }',
        '  location /g { add_header X-T "${x}"; return 200; }',
        '}',
      ].join('\n'),
    );
    const routes = resolved(r.yaml).servers[0]!.routes.map((route) => route.action);
    expect(routes.map((a) => (a.kind === 'respond' ? [a.status, a.body] : a.kind))).toEqual([
      [200, "it's: ${host} $${x}"],
      [204, ''],
      [304, ''],
      [502, ''],
      [308, ''],
      'proxy',
      [200, ''],
    ]);
    const proxy = routes[5];
    expect(proxy?.kind === 'proxy' && proxy.readTimeoutMs).toBe(24 * 86_400_000);
    expect(messages(r)).toEqual([
      [3, expect.stringMatching(/^return 200 .*: sluice sends the text as written/)],
      [4, 'return 204 "nobody": a 204 answer has no body; the text is left out'],
      [5, 'return 304 "x": a 304 answer has no body; the text is left out'],
      [
        6,
        'return 100: sluice answers with statuses 200-599 only (a 1xx is no final answer); not carried over',
      ],
      [7, 'return 308 "": nginx answers 308 with an empty Location; sluice answers 308 without one'],
      [
        8,
        expect.stringMatching(
          /^proxy_read_timeout 30d: longer than sluice's longest duration .*; 24d is used$/,
        ),
      ],
      [9, expect.stringMatching(/^add_header X-T \$\{x\}: sluice sends respond headers as written/)],
    ]);
  });
});

describe('a quoted value written over several lines', () => {
  const ONE_LINE = 'sluice sends it on one line, each line break with the spaces around it as one space';
  const FOLDED = `the value spans several lines, which nginx sends as they are: each line break followed by a space or tab is an obsolete line folding, read as one space by a receiver that accepts it; ${ONE_LINE}`;
  const BROKEN = `the value spans several lines, which nginx sends as they are: a line break without a space or tab after it ends the header there, and the receiver refuses the message or loses what follows; ${ONE_LINE}`;

  it('is folded to one line in a header (as a receiver reads the folding), and kept as written in a return body', () => {
    const r = convert(
      [
        'server { listen 80;',
        "  add_header Content-Security-Policy \"default-src 'self';",
        "      script-src 'self';\r",
        '      img-src *";',
        '  location /p { proxy_pass http://10.0.0.5:8080; proxy_set_header X-Multi "a',
        '     b"; }',
        '  location /t { default_type "text/plain;',
        '     charset=utf-8"; return 200 "one',
        '  two',
        '"; }',
        '  location /r { return 301 "https://b.test/',
        '     x"; }',
        '}',
      ].join('\n'),
    );
    const csp = "default-src 'self'; script-src 'self'; img-src *";
    const [proxy, respond, redirect] = r.config.servers[0]!.routes;
    expect(proxy?.proxy?.set_headers).toEqual({ 'X-Multi': 'a b' });
    expect(proxy?.proxy?.response_headers?.add).toEqual({ 'Content-Security-Policy': csp });
    expect(respond?.respond).toEqual({
      status: 200,
      body: 'one\n  two\n',
      headers: { 'content-type': 'text/plain; charset=utf-8', 'Content-Security-Policy': csp },
    });
    expect(redirect?.redirect).toEqual({ to: 'https://b.test/ x', status: 301 });
    expect(messages(r)).toEqual([
      [3, `add_header Content-Security-Policy: ${FOLDED}`],
      [
        3,
        'add_header Content-Security-Policy: sluice sends redirects without extra headers; not carried over to the redirects',
      ],
      [6, `proxy_set_header X-Multi: ${FOLDED}`],
      [8, `default_type: ${FOLDED}`],
      [12, `return: ${FOLDED}`],
    ]);
    const routes = resolved(r.yaml).servers[0]!.routes.map((x) => x.action);
    expect(routes.map((a) => (a.kind === 'respond' ? a.body : a.kind))).toEqual([
      'proxy',
      'one\n  two\n',
      'redirect',
    ]);
  });

  it('says that a line break without a space or tab after it is no folding: nginx sends a malformed header', () => {
    const r = convert(
      [
        'server { listen 80;',
        '  location /a { proxy_pass http://10.0.0.5:8080; add_header X-A "one',
        'two"; }',
        '  location /b { proxy_pass http://10.0.0.5:8080; add_header X-B "one',
        '',
        '  two"; }',
        '}',
      ].join('\n'),
    );
    expect(r.config.servers[0]!.routes.map((x) => x.proxy?.response_headers?.add)).toEqual([
      { 'X-A': 'one two' },
      { 'X-B': 'one two' },
    ]);
    expect(messages(r)).toEqual([
      [3, `add_header X-A: ${BROKEN}`],
      [5, `add_header X-B: ${BROKEN}`],
    ]);
  });
});

describe('a loopback-only server beside a wildcard of its port', () => {
  // sluice cannot bind 127.0.0.1:8080 beside :8080, so the server listens on :8080: it was
  // reachable from every interface with its Host, where nginx served local clients only.
  it('allows loopback clients only, keeping its own allow/deny, in a server of its own when it also listens elsewhere', () => {
    const r = convert(
      [
        'server { listen 8080; location / { return 204; } }',
        'server { listen 127.0.0.1:8080; server_name a.test;',
        '  location / { proxy_pass http://10.0.0.5:8080; proxy_redirect off; }',
        '  location /x/ { allow 10.0.0.0/8; allow 127.0.0.2; deny 127.0.0.3; proxy_pass http://10.0.0.5:8080; proxy_redirect off; }',
        '}',
        'server { listen 127.0.0.1:8080; listen 9090; server_name b.test; location / { return 204; } }',
        'server { listen 127.0.0.1:8080; listen 8080; server_name c.test; location / { return 204; } }',
      ].join('\n'),
    );
    const servers = r.config.servers.map((s) => [s.name, s.listen, s.access]);
    expect(servers).toEqual([
      ['server1', [':8080'], undefined],
      ['a.test', [':8080'], [{ allow: '127.0.0.0/8' }, { deny: 'all' }]],
      ['b.test', [':9090'], undefined],
      ['b.test-local', [':8080'], [{ allow: '127.0.0.0/8' }, { deny: 'all' }]],
      ['c.test', [':8080'], undefined],
    ]);
    expect(r.config.servers[1]!.routes.find((x) => x.match?.path_prefix === '/x/')?.access).toEqual([
      { deny: '10.0.0.0/8' },
      { allow: '127.0.0.2' },
      { deny: '127.0.0.2' },
      { deny: '127.0.0.3' },
      { allow: '127.0.0.0/8' },
      { deny: 'all' },
    ]);
    const local = "and allows loopback clients (127.0.0.0/8) only, as nginx's address did";
    expect(
      messages(r).map(([line, m]) => [line, String(m).replace(/^.*\(server_name still picks it\),? ?/, '')]),
    ).toEqual([
      [3, local],
      [7, local],
      [8, ''],
    ]);
    const guards = resolved(r.yaml).servers[1]!.guards;
    const access = new AccessControl(guards.access as ResolvedAccess);
    expect([access.allows('127.0.0.1'), access.allows('192.0.2.2'), access.allows('::1')]).toEqual([
      true,
      false,
      false,
    ]);
  });
});

describe('keepalive_requests', () => {
  // nginx closes the connection after every request with keepalive_requests 0; it became
  // max_requests_per_connection: 0, which is no limit at all in sluice.
  it('0 closes after every request, as in nginx (sluice: 1); other numbers are carried as they are', () => {
    const r = convert(
      [
        'server { listen 80; keepalive_requests 0; location / { return 204; } }',
        'server { listen 81; keepalive_requests 50; location / { return 204; } }',
      ].join('\n'),
    );
    expect(r.config.servers.map((s) => s.limits?.max_requests_per_connection)).toEqual([1, 50]);
    expect(resolved(r.yaml).servers.map((s) => s.limits.maxRequestsPerConnection)).toEqual([1, 50]);
    expect(messages(r)).toEqual([]);
  });
});

describe('limit_req as nginx applies it', () => {
  it('says that nginx refuses with 503 without limit_req_status, and leaves the limit off a location that returns', () => {
    const r = convert(
      [
        'limit_req_zone $binary_remote_addr zone=one:10m rate=5r/s;',
        'server { listen 80;',
        '  location /p/ { limit_req zone=one burst=5 nodelay; proxy_pass http://10.0.0.5:8080; proxy_redirect off; }',
        // nginx answers the return in its rewrite phase, before limit_req: never limited.
        '  location /r/ { limit_req zone=one burst=5 nodelay; return 200 "ok"; }',
        '}',
        'server { listen 81; limit_req zone=one burst=5 nodelay; location / { return 204; } }',
      ].join('\n'),
    );
    const [one, two] = r.config.servers;
    const byPath = (p: string) => one!.routes.find((x) => x.match?.path_prefix === p);
    expect(byPath('/p/')?.rate_limit).toEqual({ rate: '5/s', burst: 5, zone: 'one' });
    expect(byPath('/r/')?.rate_limit).toBeUndefined();
    expect(two!.rate_limit).toEqual({ rate: '5/s', burst: 5, zone: 'one' });
    const routes = resolved(r.yaml).servers[0]!.routes;
    expect(routes.map((x) => [x.name, x.guards.rateLimit === null])).toEqual([
      ['/p', true],
      ['/p/', false],
      ['/r/', true],
    ]);
    expect(messages(r)).toEqual([
      [
        4,
        expect.stringMatching(
          /^limit_req: nginx refuses requests above the rate with 503 \(limit_req_status is not set\); sluice refuses them with 429/,
        ),
      ],
      [
        5,
        expect.stringMatching(
          /^limit_req: nginx answers the return on line 5 before it applies limit_req, so the limit is not carried over/,
        ),
      ],
      [7, expect.stringMatching(/^limit_req: nginx refuses requests above the rate with 503/)],
      [
        7,
        expect.stringMatching(
          /^nginx answers this before it applies limit_req, so no request here is limited; sluice applies the server's rate_limit/,
        ),
      ],
    ]);
  });
});

describe('the response headers nginx hides', () => {
  // nginx never passes X-Accel-* (its own instructions, X-Accel-Redirect among them) or X-Pad to
  // the client; sluice passed them on.
  it('removes X-Accel-* and X-Pad from every proxied answer, but those proxy_pass_header lets through', () => {
    const r = convert(
      [
        'server { listen 80;',
        '  location / { proxy_pass http://10.0.0.5:8080; proxy_redirect off; }',
        '  location /h/ { proxy_pass http://10.0.0.5:8080; proxy_redirect off; proxy_hide_header X-Powered-By; proxy_pass_header X-Accel-Buffering; }',
        '}',
      ].join('\n'),
    );
    const removed = r.config.servers[0]!.routes.flatMap((x) =>
      x.proxy === undefined ? [] : [x.proxy.response_headers?.remove],
    );
    expect(removed).toEqual([HIDDEN, ['X-Powered-By', ...HIDDEN.filter((h) => h !== 'X-Accel-Buffering')]]);
    expect(messages(r)).toEqual([]);
    const action = resolved(r.yaml).servers[0]!.routes[0]!.action;
    expect(action.kind === 'proxy' && action.responseRemoveHeaders).toEqual(
      HIDDEN.map((h) => h.toLowerCase()),
    );
  });
});
