/**
 * `sluice import nginx` end to end with the built CLI: an nginx config pointing at real upstream
 * servers on 127.0.0.1 is imported, checked with `sluice check`, started with `sluice start`, and
 * real requests show nginx's behaviour carried over: location precedence (= before ^~ before
 * regex before prefix), weighted round-robin that never uses the backup or the down server while
 * the primaries are up, the backup taking over from a dead primary, `return` answers and
 * redirects, proxy_pass with a URI part, and the proxied headers.
 */
import { copyFileSync, mkdirSync, readFileSync } from 'node:fs';
import { readFile, writeFile } from 'node:fs/promises';
import https from 'node:https';
import type { AddressInfo } from 'node:net';
import { join } from 'node:path';
import type tls from 'node:tls';
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
import { makePki, type TestPki } from '../helpers/tls-pki.js';
import { startUpstream, type TestUpstream } from '../helpers/upstream.js';

/** The one warning for nginx's default proxy_redirect, which sluice does not apply, at FILE:LINE. */
const DEFAULT_REDIRECT = (file: string, line: number) =>
  new RegExp(
    `^${file.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}:${line}: warning: proxy_pass: nginx's default proxy_redirect is not carried over`,
  );

/** An upstream that answers with its name and the request it saw. */
function named(name: string): Promise<TestUpstream> {
  return startUpstream((req, res) => {
    const doc = JSON.stringify({ name, url: req.url, headers: req.headers });
    res.writeHead(200, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(doc) });
    res.end(doc);
  });
}

function nginxConf(p: Record<'port' | 'a' | 'b' | 'c' | 'd' | 's' | 'dead', number>): string {
  return `# written by test/e2e/import-nginx.test.ts
worker_processes 1;
events {}

http {
    gzip on;

    upstream pool {
        server 127.0.0.1:${p.a} weight=3;
        server 127.0.0.1:${p.b};
        server 127.0.0.1:${p.c} backup;
        server 127.0.0.1:${p.d} down;
    }

    upstream failover {
        server 127.0.0.1:${p.dead};
        server 127.0.0.1:${p.c} backup;
    }

    server {
        listen 127.0.0.1:${p.port};
        server_name import.test;

        proxy_set_header Host $host;
        proxy_set_header X-Real-IP $remote_addr;
        proxy_set_header X-Forwarded-For $proxy_add_x_forwarded_for;
        proxy_set_header X-Via nginx-import;
        client_max_body_size 1k;

        location = /exact {
            return 200 "exact\\n";
        }
        location / {
            proxy_pass http://pool;
        }
        location ^~ /static/ {
            proxy_pass http://127.0.0.1:${p.s};
        }
        location ~* \\.png$ {
            return 200 "regex png\\n";
        }
        location /old/ {
            return 301 https://example.com/new/;
        }
        location /api/ {
            client_max_body_size 64k;
            proxy_pass http://127.0.0.1:${p.b}/v1/;
        }
        location /fail/ {
            proxy_pass http://failover;
        }
    }
}
`;
}

describe('sluice import nginx (built CLI)', () => {
  let tmp: { path: string; remove(): Promise<void> };
  const up: Record<'a' | 'b' | 'c' | 'd' | 's', TestUpstream> = {} as never;
  let port: number;
  let sluice: CliProcess;
  let conf: string;
  let out: string;
  let imported: Awaited<ReturnType<typeof runCli>>;

  const get = (path: string) => http(`http://127.0.0.1:${port}${path}`, { headers: { host: 'import.test' } });
  const seen = (u: TestUpstream, prefix: string) => u.seen.filter((r) => r.url.startsWith(prefix));

  beforeAll(async () => {
    requireBuilt();
    tmp = await tempDir('sluice-import-nginx-');
    for (const name of ['a', 'b', 'c', 'd', 's'] as const) up[name] = await named(name);
    port = await freePort();
    const dead = await freePort();
    conf = join(tmp.path, 'nginx.conf');
    out = join(tmp.path, 'sluice.yaml');
    await writeFile(
      conf,
      nginxConf({ port, a: up.a.port, b: up.b.port, c: up.c.port, d: up.d.port, s: up.s.port, dead }),
    );
    imported = await runCli(['import', 'nginx', conf, '-o', out]);
  });

  afterAll(async () => {
    await killAll();
    for (const u of Object.values(up)) await u?.close();
    await tmp?.remove();
  });

  it('writes the YAML with -o and prints each dropped directive as FILE:LINE: warning', async () => {
    expect(imported.code, imported.stderr).toBe(0);
    expect(imported.stdout).toBe(`wrote ${out} (3 warnings); next: sluice check -c ${out}\n`);
    expect(imported.stderr.split('\n')).toEqual([
      `${conf}:6: warning: gzip: not carried over: sluice does not compress responses; let the upstream compress them`,
      `${conf}:26: warning: proxy_set_header X-Forwarded-For $proxy_add_x_forwarded_for: sluice sends X-Forwarded-For itself, but keeps the client's chain only when the peer is one of trusted_proxies (else the peer address alone); nginx appends the peer to any chain the client sent`,
      expect.stringMatching(DEFAULT_REDIRECT(conf, 34)),
      '',
    ]);
    const yaml = await readFile(out, 'utf8');
    expect(yaml).toMatch(/^# Imported from nginx\.conf by `sluice import nginx`\./);
    // Without -o the same YAML goes to stdout.
    const printed = await runCli(['import', 'nginx', conf], { cwd: tmp.path });
    expect(printed.code).toBe(0);
    expect(printed.stdout).toBe(yaml);
  });

  it('does not overwrite the -o file without --force', async () => {
    const again = await runCli(['import', 'nginx', conf, '-o', out]);
    expect(again.code).toBe(1);
    expect(again.stderr).toBe(`sluice import nginx: ${out} exists; nothing written (--force overwrites)\n`);
    expect((await runCli(['import', 'nginx', conf, '-o', out, '--force'])).code).toBe(0);
  });

  it('refuses a file nginx would refuse, with FILE:LINE:COL, exit 2', async () => {
    const bad = join(tmp.path, 'bad.conf');
    await writeFile(bad, 'http {\n    server {\n        listen 80\n    }\n}\n');
    const r = await runCli(['import', 'nginx', bad]);
    expect(r.code).toBe(2);
    expect(r.stdout).toBe('');
    expect(r.stderr).toBe(
      `${bad}:3:18: error: directive "listen" is not terminated by ";" before "}" on line 4\n`,
    );
  });

  it('gives a config that sluice check accepts', async () => {
    const r = await runCli(['check', '-c', out]);
    expect(r.stderr).toBe('');
    expect(r.stdout).toBe(`${out}: ok (1 server, 10 routes, 2 upstreams, 2 proxy.url origins)\n`);
    expect(r.code).toBe(0);
  });

  describe('started with sluice start', () => {
    beforeAll(async () => {
      sluice = spawnCli(['start', '-c', out]);
      await waitForPort(port, { proc: sluice });
    });

    it('answers an exact location with its return', async () => {
      const r = await get('/exact');
      expect([r.status, r.body]).toEqual([200, 'exact\n']);
    });

    it('lets a ^~ prefix win over a regex, and the regex (case-insensitive) over a plain prefix', async () => {
      const s = await get('/static/logo.png');
      expect(s.status).toBe(200);
      expect(s.json()).toMatchObject({ name: 's', url: '/static/logo.png' });
      const png = await get('/images/LOGO.PNG');
      expect([png.status, png.body]).toEqual([200, 'regex png\n']);
    });

    it('redirects as the return says', async () => {
      const r = await get('/old/page');
      expect(r.status).toBe(301);
      expect(r.headers.location).toBe('https://example.com/new/');
    });

    it("limits request bodies by the server's client_max_body_size, and by a location's own", async () => {
      const post = (path: string) =>
        http(`http://127.0.0.1:${port}${path}`, {
          method: 'POST',
          body: 'u'.repeat(8 * 1024),
          headers: { host: 'import.test' },
        });
      expect((await post('/api/upload')).json()).toMatchObject({ name: 'b', url: '/v1/upload' });
      expect((await post('/pool/upload')).status).toBe(413);
      expect([up.a, up.b, up.c].some((u) => seen(u, '/pool/upload').length > 0)).toBe(false);
    });

    it('replaces the location prefix with the URI part of proxy_pass', async () => {
      const r = await get('/api/users?page=2');
      expect(r.json()).toMatchObject({ name: 'b', url: '/v1/users?page=2' });
    });

    it('balances 3:1 by weight and never uses the backup or the down server while both primaries are up', async () => {
      for (let i = 0; i < 40; i++) {
        const r = await get(`/pool/${i}`);
        expect(r.status).toBe(200);
      }
      expect([seen(up.a, '/pool/').length, seen(up.b, '/pool/').length]).toEqual([30, 10]);
      expect(up.c.seen).toEqual([]);
      expect(up.d.seen).toEqual([]);
    });

    it('sends the headers nginx would: the client Host, X-Real-IP, X-Forwarded-For and its own', () => {
      const headers = seen(up.a, '/pool/')[0]?.headers;
      expect(headers).toMatchObject({
        host: 'import.test',
        'x-real-ip': '127.0.0.1',
        'x-forwarded-for': '127.0.0.1',
        'x-via': 'nginx-import',
      });
    });

    it('falls over to the backup when the primary cannot be reached', async () => {
      const r = await get('/fail/over');
      expect(r.status).toBe(200);
      expect(r.json()).toMatchObject({ name: 'c', url: '/fail/over' });
    });

    it('stops on SIGTERM', async () => {
      sluice.signal('SIGTERM');
      expect(await sluice.waitForExit(15_000)).toEqual({ code: 0, signal: null });
    });
  });
});

describe('sluice import nginx: an https upstream with its own CA and a client certificate', () => {
  let tmp: { path: string; remove(): Promise<void> };
  let pki: TestPki;
  let upstream: https.Server;

  beforeAll(async () => {
    requireBuilt();
    tmp = await tempDir('sluice-import-mtls-');
    pki = makePki();
    const root = pki.ca('private-root');
    const server = root.leaf('backend.internal', { dns: ['backend.internal'], usage: 'server' });
    const client = root.leaf('edge', { dns: ['edge.internal'], usage: 'client' });
    // Answers only a client holding a certificate of the private CA, and says who it was.
    upstream = https.createServer(
      {
        cert: readFileSync(server.cert),
        key: readFileSync(server.key),
        ca: readFileSync(root.cert),
        requestCert: true,
        rejectUnauthorized: true,
      },
      (req, res) => {
        const socket = req.socket as tls.TLSSocket;
        res.end(
          `client ${socket.getPeerCertificate().subject.CN} sni ${String((socket as { servername?: string }).servername)}`,
        );
      },
    );
    await new Promise<void>((r) => upstream.listen(0, '127.0.0.1', r));
    const port = (upstream.address() as AddressInfo).port;
    await writeFile(
      join(tmp.path, 'nginx.conf'),
      `events {}
http {
    upstream secure { server 127.0.0.1:${port}; }
    server {
        listen 127.0.0.1:PORT;
        location / {
            proxy_pass https://secure;
            proxy_ssl_trusted_certificate ${root.cert};
            proxy_ssl_certificate ${client.cert};
            proxy_ssl_certificate_key ${client.key};
            proxy_ssl_verify on;
            proxy_ssl_name backend.internal;
        }
    }
}
`,
    );
  });

  afterAll(async () => {
    await killAll();
    await new Promise<void>((r) => upstream?.close(() => r()));
    pki?.remove();
    await tmp?.remove();
  });

  it('imports proxy_ssl_* without a warning, and the started config reaches the target over mTLS', async () => {
    const port = await freePort();
    const conf = join(tmp.path, 'nginx.conf');
    await writeFile(conf, (await readFile(conf, 'utf8')).replace('PORT', String(port)));
    const out = join(tmp.path, 'sluice.yaml');
    const imported = await runCli(['import', 'nginx', conf, '-o', out]);
    expect(imported.stderr).toMatch(DEFAULT_REDIRECT(conf, 7));
    expect(imported.stderr.split('\n')).toHaveLength(2);
    expect(imported.code).toBe(0);
    expect((await runCli(['check', '-c', out])).code).toBe(0);
    const sluice = spawnCli(['start', '-c', out]);
    await waitForPort(port, { proc: sluice });
    const r = await http(`http://127.0.0.1:${port}/`);
    expect([r.status, r.body]).toEqual([200, 'client edge sni backend.internal']);
    sluice.signal('SIGTERM');
    expect(await sluice.waitForExit(15_000)).toEqual({ code: 0, signal: null });
  });
});

describe('sluice import nginx: certificate paths', () => {
  let tmp: { path: string; remove(): Promise<void> };

  beforeAll(async () => {
    requireBuilt();
    tmp = await tempDir('sluice-import-certs-');
  });

  afterAll(async () => {
    await tmp?.remove();
  });

  it("writes relative ssl_certificate paths absolute, from the main file's directory even in an include, so the YAML works anywhere", async () => {
    const nginxDir = join(tmp.path, 'nginx');
    mkdirSync(join(nginxDir, 'sites'), { recursive: true });
    mkdirSync(join(nginxDir, 'certs'));
    mkdirSync(join(tmp.path, 'elsewhere'));
    for (const f of ['example.com.crt', 'example.com.key']) {
      copyFileSync(join('test/fixtures/nginx/tls/certs', f), join(nginxDir, 'certs', f));
    }
    await writeFile(join(nginxDir, 'nginx.conf'), 'events {}\nhttp {\n    include sites/*.conf;\n}\n');
    await writeFile(
      join(nginxDir, 'sites', 'a.conf'),
      'server {\n    listen 127.0.0.1:8443 ssl;\n    ssl_certificate certs/example.com.crt;\n    ssl_certificate_key certs/example.com.key;\n    location / { return 204; }\n}\n',
    );
    // Printed from inside nginx's directory, saved and checked from another one.
    const printed = await runCli(['import', 'nginx', 'nginx.conf'], { cwd: nginxDir });
    expect(printed.stderr).toBe('');
    expect(printed.code).toBe(0);
    expect(printed.stdout).toContain(`cert: ${join(nginxDir, 'certs', 'example.com.crt')}\n`);
    const saved = join(tmp.path, 'elsewhere', 'sluice.yaml');
    await writeFile(saved, printed.stdout);
    const check = await runCli(['check', '-c', saved], { cwd: tmp.path });
    expect([check.code, check.stderr]).toEqual([0, '']);
    // With -o beside the certificates too: the YAML may be moved.
    const out = join(nginxDir, 'sluice.yaml');
    expect((await runCli(['import', 'nginx', join(nginxDir, 'nginx.conf'), '-o', out])).code).toBe(0);
    expect(await readFile(out, 'utf8')).toContain(`key: ${join(nginxDir, 'certs', 'example.com.key')}\n`);
  });
});
