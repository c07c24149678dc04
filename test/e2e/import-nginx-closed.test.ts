/**
 * `sluice import nginx` is never more open than the nginx config it came from, shown with the
 * built CLI: each nginx config below is imported, checked with `sluice check`, started with
 * `sluice start` in front of a loopback echo upstream, and sent the requests nginx refuses (or
 * answers itself), which must not reach the upstream in sluice either.
 */
import { readFile, writeFile } from 'node:fs/promises';
import https from 'node:https';
import { networkInterfaces } from 'node:os';
import { join, resolve } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  type CliProcess,
  freePort,
  killAll,
  requireBuilt,
  runCli,
  spawnCli,
  tempDir,
  waitForPort,
} from '../helpers/cli.js';
import { http } from '../helpers/http.js';
import { startUpstream, type TestUpstream } from '../helpers/upstream.js';

/** One nginx config imported, checked and started. */
interface Imported {
  readonly port: number;
  readonly warnings: string;
  readonly yaml: string;
  readonly sluice: CliProcess;
  get(path: string, headers?: Record<string, string>): ReturnType<typeof http>;
}

let tmp: { path: string; remove(): Promise<void> };
let upstream: TestUpstream;
let n = 0;

/**
 * Imports `conf` (PORT and UP stand for the listen port and the echo upstream's), an http block's
 * content after `main`'s directives, requires `sluice check` to accept the output, and starts it.
 */
async function importAndStart(conf: string, main = ''): Promise<Imported> {
  const port = await freePort();
  const dir = join(tmp.path, String(++n));
  const file = `${dir}.conf`;
  const out = `${dir}.yaml`;
  await writeFile(
    file,
    `${main}events {}\nhttp {\n${conf.replaceAll('PORT', String(port)).replaceAll('UP', `127.0.0.1:${upstream.port}`)}\n}\n`,
  );
  const imported = await runCli(['import', 'nginx', file, '-o', out]);
  expect(imported.code, imported.stderr).toBe(0);
  const check = await runCli(['check', '-c', out]);
  expect([check.code, check.stderr]).toEqual([0, '']);
  const sluice = spawnCli(['start', '-c', out]);
  await waitForPort(port, { proc: sluice });
  return {
    port,
    warnings: imported.stderr,
    yaml: await readFile(out, 'utf8'),
    sluice,
    get: (path, headers = {}) => http(`http://127.0.0.1:${port}${path}`, { headers }),
  };
}

beforeAll(async () => {
  requireBuilt();
  tmp = await tempDir('sluice-import-closed-');
  upstream = await startUpstream();
});

afterAll(async () => {
  await killAll();
  await upstream?.close();
  await tmp?.remove();
});

describe('a proxy_set_header sluice cannot build', () => {
  let s: Imported;
  beforeAll(async () => {
    s = await importAndStart(`
    server {
        listen 127.0.0.1:PORT;
        proxy_set_header X-Client-Verify $ssl_client_verify;
        proxy_set_header X-Remote-User $remote_user;
        location / { proxy_pass http://UP; }
    }`);
  });

  it("never passes on the client's own copy of the header (nginx always sets it)", async () => {
    const r = await s.get('/headers', { 'x-client-verify': 'SUCCESS', 'x-remote-user': 'admin' });
    expect(r.status).toBe(200);
    const seen = (r.json() as { headers: Record<string, string> }).headers;
    expect(seen['x-client-verify']).toBeUndefined();
    expect(seen['x-remote-user']).toBeUndefined();
    expect(s.warnings).toMatch(/X-Client-Verify \$ssl_client_verify: .*removes the client's X-Client-Verify/);
  });
});

describe('locations that nginx matches on the decoded path', () => {
  let s: Imported;
  beforeAll(async () => {
    s = await importAndStart(`
    server {
        listen 127.0.0.1:PORT;
        location /café/ { deny all; }
        location ~ ^/naïve { deny all; }
        location ~ "^/sp ace" { deny all; }
        location ~ ^/tab\\s { deny all; }
        location ~ \\.php$ { deny all; }
        location /a%20b/ { deny all; }
        location /@admin/ { deny all; }
        location / { proxy_pass http://UP; }
    }`);
  });

  it.each([
    '/caf%C3%A9/x',
    '/caf%c3%a9/x',
    '/na%C3%AFve',
    '/sp%20ace',
    '/tab%09x',
    '/index.php',
    '/index.php%0A',
    '/a%2520b/',
    '/@admin/x',
    '/%40admin/x',
  ])('refuses %s as nginx does (403)', async (path) => {
    expect((await s.get(path)).status).toBe(403);
  });

  it.each(['/cafe/x', '/naive', '/space', '/tabx', '/index.php5', '/a%20b/'])(
    'proxies %s as nginx does',
    async (path) => {
      const r = await s.get(path);
      expect(r.status).toBe(200);
      expect((r.json() as { url: string }).url).toBe(path);
    },
  );
});

describe("nginx's HTTP/3 layout: a quic listen beside the ssl one", () => {
  let s: Imported;
  const certs = resolve('test/fixtures/nginx/tls/certs');
  beforeAll(async () => {
    s = await importAndStart(`
    server {
        listen 127.0.0.1:PORT quic reuseport;
        listen 127.0.0.1:PORT ssl;
        http2 on;
        http3 on;
        ssl_certificate ${certs}/example.com.crt;
        ssl_certificate_key ${certs}/example.com.key;
        location / { proxy_pass http://UP; }
    }`);
  });

  it('serves TLS on the port, never plain HTTP', async () => {
    expect(s.yaml).toContain('tls:');
    expect(s.warnings).toMatch(/quic reuseport: HTTP\/3 \(QUIC, over UDP\) is not carried over/);
    const status = await new Promise<number>((done, fail) => {
      https
        .get({ host: '127.0.0.1', port: s.port, path: '/tls', rejectUnauthorized: false }, (res) => {
          res.resume();
          done(res.statusCode ?? 0);
        })
        .on('error', fail);
    });
    expect(status).toBe(200);
    // Plain HTTP on the TLS address gets sluice's plain-text 400, not the upstream.
    expect((await s.get('/plain')).status).toBe(400);
  });
});

describe('PCRE-only syntax in a location that refuses', () => {
  let s: Imported;
  beforeAll(async () => {
    s = await importAndStart(`
    server {
        listen 127.0.0.1:PORT;
        location ~ ^/[[:alpha:]]+\\d\\z { deny all; }
        location ~ ^/(?>admin|adm)in { deny all; }
        location ~ ^/\\Q.git\\E { deny all; }
        location ~ \\A/private { return 404; }
        location / { proxy_pass http://UP; }
    }`);
  });

  it.each(['/abc1', '/adminin', '/.git/config', '/private/x'])(
    'is carried over: %s is refused as in nginx',
    async (path) => {
      expect([403, 404]).toContain((await s.get(path)).status);
    },
  );

  // An atomic group does not give back: /admin is not refused, as in nginx.
  it.each(['/abc1%0A', '/admin', '/xgit', '/public'])('and %s is proxied as in nginx', async (path) => {
    expect((await s.get(path)).status).toBe(200);
  });

  it('stops the import (exit 2, FILE:LINE:COL) where a refusing location has no translation', async () => {
    const file = join(tmp.path, 'backref.conf');
    await writeFile(
      file,
      'events {}\nhttp {\n  server {\n    listen 127.0.0.1:8080;\n    location ~ ^/(\\w+)/\\1$ { deny all; }\n    location / { return 204; }\n  }\n}\n',
    );
    const r = await runCli(['import', 'nginx', file]);
    expect(r.code).toBe(2);
    expect(r.stdout).toBe('');
    expect(r.stderr).toMatch(
      new RegExp(
        `^${file.replaceAll('.', '\\.')}:5:5: error: location ~ \\^/\\(\\\\w\\+\\)/\\\\1\\$: the back reference .*\\(hint: .*\\)\\n$`,
      ),
    );
  });
});

/** An address of this host that is not loopback, or `undefined` (then the check is skipped). */
const outside = Object.values(networkInterfaces())
  .flat()
  .find((i) => i !== undefined && !i.internal && i.family === 'IPv4')?.address;

describe('a loopback-only server beside a wildcard listen of its port', () => {
  let s: Imported;
  beforeAll(async () => {
    s = await importAndStart(`
    server {
        listen PORT;
        location / { return 204; }
    }
    server {
        listen 127.0.0.1:PORT;
        server_name a.test;
        location / { proxy_pass http://UP; }
    }`);
  });

  it('serves loopback clients', async () => {
    const r = await s.get('/local', { host: 'a.test' });
    expect(r.status).toBe(200);
  });

  it.skipIf(outside === undefined)(
    'refuses a client from another address, as nginx never sees it',
    async () => {
      const r = await http(`http://${outside}:${s.port}/outside`, { headers: { host: 'a.test' } });
      expect(r.status).toBe(403);
      expect(upstream.seen.some((x) => x.url === '/outside')).toBe(false);
      // The wildcard server still answers everyone.
      expect((await http(`http://${outside}:${s.port}/`)).status).toBe(204);
    },
  );
});

describe('a limit_req zone of a server that is the default_server of some of its listens only', () => {
  let s: Imported;
  beforeAll(async () => {
    // app.test is the default of 127.0.0.1 but not of 127.0.0.2: two sluice servers, one zone.
    s = await importAndStart(
      `
    limit_req_zone $binary_remote_addr zone=one:10m rate=1r/m;
    limit_req_status 429;
    server {
        listen 127.0.0.2:PORT;
        server_name other.test;
        location / { return 204; }
    }
    server {
        listen 127.0.0.1:PORT default_server;
        listen 127.0.0.2:PORT;
        server_name app.test;
        location / { limit_req zone=one; proxy_pass http://UP; }
    }`,
      // One bucket of one token: with more workers, each would let a request through.
      'worker_processes 1;\n',
    );
  });

  it("counts the client once on both addresses, in the zone's one bucket, as nginx does", async () => {
    const statuses = [];
    for (const address of ['127.0.0.1', '127.0.0.1', '127.0.0.2', '127.0.0.2']) {
      const r = await http(`http://${address}:${s.port}/zone`, { headers: { host: 'app.test' } });
      statuses.push(r.status);
    }
    expect(statuses).toEqual([200, 429, 429, 429]);
    expect(s.yaml).toMatch(/name: app\.test-nondefault\n/);
  });
});

describe('keepalive_requests 0', () => {
  let s: Imported;
  beforeAll(async () => {
    s = await importAndStart(`
    keepalive_requests 0;
    server {
        listen 127.0.0.1:PORT;
        location / { proxy_pass http://UP; }
    }`);
  });

  it('closes the connection after every request, as nginx does', async () => {
    const r = await s.get('/once');
    expect(r.status).toBe(200);
    expect(r.headers.connection).toBe('close');
  });
});

describe('$host, $http_host and $server_port in proxy_set_header', () => {
  let s: Imported;
  beforeAll(async () => {
    s = await importAndStart(`
    server {
        listen 127.0.0.1:PORT;
        server_name host.test;
        location /host { proxy_pass http://UP; proxy_set_header Host $host; proxy_set_header X-Forwarded-Host $host; }
        location /http-host { proxy_pass http://UP; proxy_set_header Host $http_host; }
        location /with-port { proxy_pass http://UP; proxy_set_header Host $host:$server_port; }
    }`);
  });

  const sent = async (path: string) =>
    ((await s.get(path, { host: 'Host.TEST:1234' })).json() as { headers: Record<string, string> }).headers;

  it('sends $host as nginx has it: lower-case, without the port', async () => {
    expect(await sent('/host')).toMatchObject({ host: 'host.test', 'x-forwarded-host': 'host.test' });
  });

  it('sends $http_host as the client wrote it, and $server_port as the port it reached', async () => {
    expect((await sent('/http-host')).host).toBe('Host.TEST:1234');
    expect((await sent('/with-port')).host).toBe(`host.test:${s.port}`);
  });
});

describe('the response headers nginx hides from clients', () => {
  let s: Imported;
  let accel: TestUpstream;
  beforeAll(async () => {
    accel = await startUpstream((_req, res) => {
      res.writeHead(200, {
        'x-accel-redirect': '/internal/secret.pdf',
        'x-accel-buffering': 'no',
        'x-accel-expires': '60',
        'x-pad': 'avoid browser bug',
        'x-kept': 'yes',
      });
      res.end('body');
    });
    s = await importAndStart(`
    server {
        listen 127.0.0.1:PORT;
        location / { proxy_pass http://127.0.0.1:${accel.port}; }
    }`);
  });
  afterAll(async () => {
    await accel?.close();
  });

  it('does not pass X-Accel-* or X-Pad on, as nginx does not', async () => {
    const r = await s.get('/file');
    expect(r.status).toBe(200);
    expect(r.headers['x-kept']).toBe('yes');
    for (const name of ['x-accel-redirect', 'x-accel-buffering', 'x-accel-expires', 'x-pad']) {
      expect(r.headers[name], name).toBeUndefined();
    }
  });
});

describe('an upstream block named in another case than proxy_pass writes it', () => {
  let s: Imported;
  beforeAll(async () => {
    s = await importAndStart(`
    upstream Backend { server UP; }
    server {
        listen 127.0.0.1:PORT;
        location / { proxy_pass http://backend; }
    }`);
  });

  it('proxies to the upstream, as nginx does (its names are case-insensitive), with Host as proxy_pass writes it', async () => {
    const r = await s.get('/case');
    expect(r.status).toBe(200);
    expect((r.json() as { headers: Record<string, string> }).headers.host).toBe('backend');
    expect(s.yaml).toContain('upstream: Backend');
  });
});

describe('.example.com beside another server that has example.com on the same address', () => {
  let s: Imported;
  beforeAll(async () => {
    s = await importAndStart(`
    server {
        listen 127.0.0.1:PORT;
        server_name example.com;
        return 403;
    }
    server {
        listen 127.0.0.1:PORT;
        server_name .example.com;
        location / { proxy_pass http://UP; }
    }`);
  });

  it('passes sluice check, and the later server leaves both names to the first, as nginx does', async () => {
    expect(s.warnings).toMatch(
      /server_name \.example\.com: the server at .* has example\.com on the same address/,
    );
    for (const host of ['example.com', 'www.example.com']) {
      expect((await s.get(`/${host}`, { host })).status).toBe(403);
    }
    expect(upstream.seen.some((x) => x.url.endsWith('example.com'))).toBe(false);
  });
});

describe('header values and a return text written over several lines', () => {
  let s: Imported;
  beforeAll(async () => {
    s = await importAndStart(`
    server {
        listen 127.0.0.1:PORT;
        add_header Content-Security-Policy "default-src 'self';
            img-src *";
        location / {
            proxy_pass http://UP;
            proxy_set_header X-Multi "a
                b";
        }
        location = /text {
            default_type "text/plain;
                charset=utf-8";
            return 200 "one
two
";
        }
    }`);
  });

  it('passes sluice check, and sends each header on one line as clients read nginx folded one', async () => {
    const proxied = await s.get('/multi');
    expect(proxied.status).toBe(200);
    expect(proxied.headers['content-security-policy']).toBe("default-src 'self'; img-src *");
    expect((proxied.json() as { headers: Record<string, string> }).headers['x-multi']).toBe('a b');
    const text = await s.get('/text');
    expect([text.status, text.body.toString(), text.headers['content-type']]).toEqual([
      200,
      'one\ntwo\n',
      'text/plain; charset=utf-8',
    ]);
    expect(s.warnings).toMatch(/add_header Content-Security-Policy: the value spans several lines/);
  });
});
