/**
 * TLS sessions across a rotated `client_ca`: a session made when the old bundle verified the
 * client's certificate is not resumed once the bundle changes (a resumed session would carry the
 * old verdict and SPIFFE id), while resumption goes on when nothing changed or only the server's
 * certificate did. Checked with `openssl s_client -sess_out` / `-sess_in`, TLS 1.2 and 1.3; and
 * on an address whose servers share the bundle, from the moment any of them has re-read it.
 */
import { spawn } from 'node:child_process';
import { copyFileSync, readFileSync } from 'node:fs';
import type { AddressInfo } from 'node:net';
import { join } from 'node:path';
import tls from 'node:tls';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import type { ListenerTable } from '../../src/server/gateway-tables.js';
import { TlsTerminator } from '../../src/server/tls-terminator.js';
import { startSluice, type TestSluice } from '../helpers/sluice.js';
import { type CertFiles, makePki, replaceFile, type TestCa, type TestPki } from '../helpers/tls-pki.js';
import { startUpstream, type TestUpstream } from '../helpers/upstream.js';

let pki: TestPki;
let root: TestCa;
let otherRoot: TestCa;
let client: CertFiles;
let up: TestUpstream;

beforeAll(async () => {
  pki = makePki();
  root = pki.ca('root');
  otherRoot = pki.ca('other-root');
  client = root.leaf('client', { uri: ['spiffe://example.org/client'], usage: 'client' });
  up = await startUpstream();
});

afterAll(async () => {
  await up?.close();
  pki?.remove();
});

interface Outcome {
  readonly reused: boolean;
  readonly status: number | null;
  readonly clientId: string | null;
  readonly subject: string | null;
}

/** One GET / with `openssl s_client` (asynchronous: sluice runs in this process). */
function sClient(port: number, version: string, args: string[]): Promise<Outcome> {
  return new Promise((resolve, reject) => {
    const child = spawn('openssl', [
      's_client',
      '-connect',
      `127.0.0.1:${port}`,
      '-servername',
      'a.test',
      version,
      '-ign_eof',
      ...args,
    ]);
    let out = '';
    child.stdout.on('data', (d: Buffer) => {
      out += d.toString();
    });
    child.stderr.resume();
    child.on('error', reject);
    child.on('close', () => {
      resolve({
        reused: /^Reused,/m.test(out),
        status: Number(/HTTP\/1\.1 (\d{3}) /.exec(out)?.[1] ?? Number.NaN) || null,
        clientId: /"x-client-id":"([^"]*)"/.exec(out)?.[1] ?? null,
        subject: /^subject=.*CN\s*=\s*(\S+)/m.exec(out)?.[1] ?? null,
      });
    });
    child.stdin.end('GET / HTTP/1.1\r\nHost: a.test\r\nConnection: close\r\n\r\n');
  });
}

/** Retries `probe` until `done` holds (the files are polled once a second). */
async function until(probe: () => Promise<Outcome>, done: (o: Outcome) => boolean): Promise<Outcome> {
  const deadline = Date.now() + 6000;
  let o = await probe();
  while (!done(o) && Date.now() < deadline) {
    await new Promise((r) => setTimeout(r, 100));
    o = await probe();
  }
  return o;
}

describe.each([
  ['TLS 1.2', '-tls1_2'],
  ['TLS 1.3', '-tls1_3'],
])('sessions and a rotated client_ca, %s', (_name, version) => {
  let sluice: TestSluice;
  let liveCa: string;
  let live: CertFiles;
  let session: string;
  const withCert = () => ['-cert', client.cert, '-key', client.key];
  const resume = () => sClient(sluice.port, version, ['-sess_in', session]);

  beforeAll(async () => {
    const tag = version.slice(1);
    const first = root.leaf(`first-${tag}`, { dns: ['a.test'], usage: 'server' });
    live = { cert: join(pki.dir, `live-${tag}.pem`), key: join(pki.dir, `live-${tag}.key`) };
    liveCa = join(pki.dir, `live-ca-${tag}.pem`);
    copyFileSync(first.cert, live.cert);
    copyFileSync(first.key, live.key);
    copyFileSync(root.cert, liveCa);
    session = join(pki.dir, `session-${tag}.pem`);
    sluice = await startSluice({
      servers: [
        {
          listen: '127.0.0.1:0',
          server_name: ['a.test'],
          // Optional: a client resuming without a certificate is served, so what it is served
          // with (a client id, or none) shows whether the old verdict came back.
          tls: { cert: live.cert, key: live.key, client_ca: liveCa },
          routes: [{ proxy: { url: up.url, set_headers: { 'X-Client-Id': '$client_spiffe_id' } } }],
        },
      ],
    });
  });

  afterAll(async () => {
    await sluice?.close();
  });

  it('resumes a session when nothing changed', async () => {
    const full = await sClient(sluice.port, version, [...withCert(), '-sess_out', session]);
    expect(full).toMatchObject({ reused: false, status: 200, clientId: 'spiffe://example.org/client' });
    expect(await resume()).toMatchObject({
      reused: true,
      status: 200,
      clientId: 'spiffe://example.org/client',
    });
  });

  it('still resumes it after the server certificate rotates', async () => {
    const second = root.leaf(`second-${version.slice(1)}`, { dns: ['a.test'], usage: 'server' });
    replaceFile(live.cert, second.cert);
    replaceFile(live.key, second.key);
    const fresh = await until(
      () => sClient(sluice.port, version, []),
      (o) => o.subject?.startsWith('second') === true,
    );
    expect(fresh.subject).toMatch(/^second/);
    expect(await resume()).toMatchObject({
      reused: true,
      status: 200,
      clientId: 'spiffe://example.org/client',
    });
  });

  it('does not resume it once client_ca is replaced by another CA', async () => {
    replaceFile(liveCa, otherRoot.cert);
    // The old CA's client certificate no longer verifies on a full handshake: the new bundle is in use.
    const fresh = await until(
      () => sClient(sluice.port, version, withCert()),
      (o) => o.status === 200 && o.clientId === null,
    );
    expect(fresh).toMatchObject({ reused: false, status: 200, clientId: null });
    expect(await resume()).toMatchObject({ reused: false, status: 200, clientId: null });
  });
});

/** A listener table with just what a terminator reads. */
function table(
  servers: { name: string; isDefault: boolean; cert: CertFiles; clientCa: string }[],
): ListenerTable {
  return {
    address: { key: '127.0.0.1:0' },
    limits: { headerTimeoutMs: 10_000 },
    servers: servers.map((s) => ({
      config: {
        serverNames: [s.name],
        default: s.isDefault,
        tls: {
          cert: s.cert.cert,
          key: s.cert.key,
          minVersion: 'TLSv1.2',
          clientCa: s.clientCa,
          requireClientCert: false,
        },
      },
    })),
  } as unknown as ListenerTable;
}

describe('servers of one address sharing a client_ca', () => {
  it('stop resuming sessions as soon as one of them re-reads the rotated bundle', async () => {
    // Only the watch timers are faked: the default server's context polls half a second after
    // the other's, so the other one sees the rotation first.
    vi.useFakeTimers({ toFake: ['setInterval', 'clearInterval'] });
    const liveCa = join(pki.dir, 'live-ca-shared.pem');
    copyFileSync(root.cert, liveCa);
    const a = root.leaf('shared-a', { dns: ['a.test'], usage: 'server' });
    const b = root.leaf('shared-b', { dns: ['b.test'], usage: 'server' });
    const reloaded: unknown[] = [];
    const terminator = new TlsTerminator(
      table([{ name: 'a.test', isDefault: true, cert: a, clientCa: liveCa }]),
      { reloaded: (info) => reloaded.push(info.cert), failed: () => {} },
      1000,
    );
    const server = tls.createServer(terminator.serverOptions(), (socket) => socket.end('ok'));
    terminator.attach(server);
    try {
      vi.advanceTimersByTime(500);
      terminator.update(
        table([
          { name: 'a.test', isDefault: false, cert: a, clientCa: liveCa },
          { name: 'b.test', isDefault: true, cert: b, clientCa: liveCa },
        ]),
      );
      await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
      const port = (server.address() as AddressInfo).port;
      const connect = (opts: tls.ConnectionOptions) =>
        new Promise<{ reused: boolean; session: Buffer | undefined }>((resolve, reject) => {
          const socket = tls.connect(
            {
              host: '127.0.0.1',
              port,
              servername: 'a.test',
              ca: readFileSync(root.cert),
              maxVersion: 'TLSv1.2',
              ...opts,
            },
            () => {
              resolve({ reused: socket.isSessionReused(), session: socket.getSession() });
              socket.destroy();
            },
          );
          socket.on('error', reject);
        });
      const { session } = await connect({ cert: readFileSync(client.cert), key: readFileSync(client.key) });
      expect(await connect({ session })).toMatchObject({ reused: true });

      replaceFile(liveCa, otherRoot.cert);
      // a.test's context polls at 1000 ms; the default's own poll is not due until 1500 ms.
      vi.advanceTimersByTime(500);
      const waitFor = async (cert: string) => {
        const deadline = Date.now() + 1000;
        while (!reloaded.includes(cert) && Date.now() < deadline) await new Promise((r) => setTimeout(r, 10));
      };
      await waitFor(a.cert);
      expect(reloaded).toContain(a.cert);
      // The default's re-read, when the rotation prompts one, is a stat and a file read away.
      await waitFor(b.cert);
      expect(await connect({ session })).toMatchObject({ reused: false });
    } finally {
      vi.useRealTimers();
      terminator.close();
      server.close();
    }
  });
});
