/**
 * TLS as a user runs it: `sluice start` (two workers) with a TLS server that has `http2: true`,
 * certificate paths relative to the config file, reached with curl over HTTP/2 and HTTP/1.1 (or
 * node:http2 when curl cannot speak HTTP/2), a client certificate's SPIFFE id passed upstream,
 * and a certificate rotated on disk picked up by every worker without a restart.
 */
import { execFile } from 'node:child_process';
import { copyFileSync, readFileSync, renameSync } from 'node:fs';
import { writeFile } from 'node:fs/promises';
import http2 from 'node:http2';
import { join } from 'node:path';
import tls from 'node:tls';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  type CliProcess,
  freePort,
  killAll,
  requireBuilt,
  spawnCli,
  tempDir,
  waitForPort,
} from '../helpers/cli.js';
import { makePki, type TestPki } from '../helpers/tls-pki.js';
import { startUpstream, type TestUpstream } from '../helpers/upstream.js';

const run = promisify(execFile);

async function curlHasHttp2(): Promise<boolean> {
  try {
    const { stdout } = await run('curl', ['--version']);
    return /^Features:.*\bHTTP2\b/m.test(stdout);
  } catch {
    return false;
  }
}

let pki: TestPki;
let tmp: { path: string; remove(): Promise<void> };
let up: TestUpstream;
let sluice: CliProcess;
let port: number;
let ca: Buffer;

beforeAll(async () => {
  requireBuilt();
  pki = makePki();
  const root = pki.ca('root');
  ca = readFileSync(root.cert);
  const server = root.leaf('a.test', { dns: ['a.test'], usage: 'server' });
  root.leaf('a.test-next', { dns: ['a.test'], usage: 'server' });
  root.leaf('client', { uri: ['spiffe://example.org/client'], usage: 'client' });
  tmp = await tempDir();
  copyFileSync(server.cert, join(tmp.path, 'server.pem'));
  copyFileSync(server.key, join(tmp.path, 'server.key'));
  copyFileSync(root.cert, join(tmp.path, 'ca.pem'));
  up = await startUpstream();
  port = await freePort();
  await writeFile(
    join(tmp.path, 'sluice.yaml'),
    `version: 1
workers: 2
log: { level: info, access: stdout }
servers:
  - name: web
    listen: "127.0.0.1:${port}"
    server_name: [a.test]
    http2: true
    tls: { cert: server.pem, key: server.key, client_ca: ca.pem }
    routes:
      - proxy:
          url: ${up.url}
          set_headers: { X-Client-Id: $client_spiffe_id, X-Scheme: $scheme }
`,
  );
  sluice = spawnCli(['start', '-c', 'sluice.yaml'], { cwd: tmp.path });
  await waitForPort(port, { proc: sluice, timeoutMs: 20_000 });
  await sluice.waitForJson((l) => l.msg === 'sluice started', 1, 20_000);
});

afterAll(async () => {
  await killAll();
  await up?.close();
  await tmp?.remove();
  pki?.remove();
});

/** GET over HTTP/2 with node:http2: status, upstream-seen headers, protocol. */
function nodeH2(path: string): Promise<{ status: number; headers: Record<string, string>; version: string }> {
  return new Promise((resolve, reject) => {
    const client = http2.connect(`https://127.0.0.1:${port}`, { ca, servername: 'a.test' });
    client.on('error', reject);
    const req = client.request({ ':path': path, ':authority': 'a.test' });
    let body = '';
    let status = 0;
    req.setEncoding('utf8');
    req.on('response', (h) => {
      status = Number(h[':status']);
    });
    req.on('data', (d: string) => {
      body += d;
    });
    req.on('end', () => {
      client.close();
      resolve({ status, headers: JSON.parse(body).headers, version: '2' });
    });
    req.end();
  });
}

/** GET with curl; `version` is curl's %{http_version}. */
async function curl(
  path: string,
  args: string[],
): Promise<{ status: number; headers: Record<string, string>; version: string }> {
  const { stdout } = await run('curl', [
    '-sS',
    ...args,
    '--cacert',
    join(pki.dir, 'root.pem'),
    '--resolve',
    `a.test:${port}:127.0.0.1`,
    '-w',
    '\n%{http_code} %{http_version}',
    `https://a.test:${port}${path}`,
  ]);
  const lines = stdout.trimEnd().split('\n');
  const [status, version] = lines.pop()!.split(' ');
  return { status: Number(status), headers: JSON.parse(lines.join('\n')).headers, version: version! };
}

describe('sluice start with a TLS server and http2: true', () => {
  it('serves HTTP/2, proxied with https as the scheme', async () => {
    const r = (await curlHasHttp2()) ? await curl('/h2', ['--http2']) : await nodeH2('/h2');
    expect(r).toMatchObject({ status: 200, version: '2' });
    expect(r.headers).toMatchObject({
      'x-forwarded-proto': 'https',
      'x-scheme': 'https',
      host: expect.stringMatching(/^a\.test/),
    });
    expect(r.headers['x-client-id']).toBeUndefined();
  });

  it('serves HTTP/1.1 on the same port', async () => {
    const r = await curl('/h1', ['--http1.1']);
    expect(r).toMatchObject({ status: 200, version: '1.1' });
    expect(r.headers).toMatchObject({ 'x-forwarded-proto': 'https' });
  });

  it('passes the SPIFFE id of a client certificate upstream as $client_spiffe_id', async () => {
    const cert = ['--cert', join(pki.dir, 'client.pem'), '--key', join(pki.dir, 'client.key')];
    const r = await curl('/id', [...cert]);
    expect(r.status).toBe(200);
    expect(r.headers['x-client-id']).toBe('spiffe://example.org/client');
  });

  it('refuses TLS 1.1', async () => {
    const error = await new Promise<string>((resolve) => {
      const s = tls.connect({
        host: '127.0.0.1',
        port,
        servername: 'a.test',
        ca,
        minVersion: 'TLSv1',
        maxVersion: 'TLSv1.1',
        ciphers: 'DEFAULT@SECLEVEL=0',
      });
      s.on('secureConnect', () => {
        s.destroy();
        resolve('connected');
      });
      s.on('error', (err: NodeJS.ErrnoException) => resolve(err.code ?? err.message));
    });
    expect(error).toBe('ERR_SSL_TLSV1_ALERT_PROTOCOL_VERSION');
  });

  it('serves a certificate rotated on disk from every worker, without a restart', async () => {
    const served = () =>
      new Promise<string>((resolve, reject) => {
        const s = tls.connect({ host: '127.0.0.1', port, servername: 'a.test', ca }, () => {
          resolve(String(s.getPeerCertificate().subject.CN));
          s.destroy();
        });
        s.on('error', reject);
      });
    expect(await served()).toBe('a.test');
    for (const [from, to] of [
      ['a.test-next.pem', 'server.pem'],
      ['a.test-next.key', 'server.key'],
    ] as const) {
      copyFileSync(join(pki.dir, from), join(tmp.path, `${to}.tmp`));
      renameSync(join(tmp.path, `${to}.tmp`), join(tmp.path, to));
    }
    // New connections land on either worker: wait until ten in a row get the new certificate.
    const until = Date.now() + 10_000;
    let streak = 0;
    while (streak < 10 && Date.now() < until) {
      streak = (await served()) === 'a.test-next' ? streak + 1 : 0;
      if (streak === 0) await new Promise((r) => setTimeout(r, 100));
    }
    expect(streak).toBe(10);
    expect(sluice.exited()).toBeNull();
  });
});
