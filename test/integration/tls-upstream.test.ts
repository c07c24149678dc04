/**
 * TLS to upstreams (`upstreams.*.tls`): the target verified against `ca`, sluice's client
 * certificate presented (mTLS), the target pinned by SPIFFE id or checked by `server_name`; a
 * mismatch is a 502 whose access line says why; a rotated client certificate is used for new
 * connections.
 */
import { copyFileSync, readFileSync, renameSync } from 'node:fs';
import https from 'node:https';
import type { AddressInfo } from 'node:net';
import { join } from 'node:path';
import type tls from 'node:tls';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { ResolvedUpstreamTls } from '../../src/config/types.js';
import { probeTarget } from '../../src/proxy/health-probe.js';
import { http } from '../helpers/http.js';
import { startSluice, type TestSluice } from '../helpers/sluice.js';
import { type CertFiles, makePki, type TestPki } from '../helpers/tls-pki.js';
import { startUpstream, type TestUpstream } from '../helpers/upstream.js';

/** An https upstream that requires a client certificate signed by `ca` and echoes who it was. */
interface MtlsUpstream {
  readonly url: string;
  /** The SAN of the client certificate of each request, and the SNI it arrived with. */
  readonly seen: { clientSan: string; servername: string | false; host: string }[];
  close(): Promise<void>;
}

async function startMtlsUpstream(server: CertFiles, ca: string): Promise<MtlsUpstream> {
  const seen: MtlsUpstream['seen'] = [];
  const srv = https.createServer(
    {
      cert: readFileSync(server.cert),
      key: readFileSync(server.key),
      ca: readFileSync(ca),
      requestCert: true,
      rejectUnauthorized: true,
    },
    (req, res) => {
      const socket = req.socket as tls.TLSSocket;
      const entry = {
        clientSan: socket.getPeerCertificate().subjectaltname ?? '',
        servername: (socket as tls.TLSSocket & { servername: string | false }).servername,
        host: req.headers.host ?? '',
      };
      seen.push(entry);
      const body = JSON.stringify(entry);
      res.writeHead(200, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(body) });
      res.end(body);
    },
  );
  await new Promise<void>((resolve) => srv.listen(0, '127.0.0.1', resolve));
  return {
    url: `https://127.0.0.1:${(srv.address() as AddressInfo).port}`,
    seen,
    close: () =>
      new Promise<void>((resolve) => {
        srv.closeAllConnections();
        srv.close(() => resolve());
      }),
  };
}

let pki: TestPki;
let backend: MtlsUpstream;
let impostor: MtlsUpstream;
/** Carries the pinned id next to a second URI SAN: not an X.509-SVID. */
let mixed: MtlsUpstream;
let named: MtlsUpstream;
/** Speaks plain HTTP on the port an https target names. */
let plain: TestUpstream;
let sluice: TestSluice;
let liveClient: CertFiles;
let rootCa: string;
let rootKey: string;
let rotatedClient: CertFiles;

beforeAll(async () => {
  pki = makePki();
  const root = pki.ca('root');
  rootCa = root.cert;
  rootKey = root.key;
  const backendCert = root.leaf('backend', { uri: ['spiffe://example.org/backend'], usage: 'server' });
  const otherCert = root.leaf('other', { uri: ['spiffe://example.org/other'], usage: 'server' });
  const mixedCert = root.leaf('mixed', {
    uri: ['spiffe://example.org/backend', 'https://example.org/x'],
    usage: 'server',
  });
  const namedCert = root.leaf('named', { dns: ['backend.internal'], usage: 'server' });
  const sluiceClient = root.leaf('sluice', { uri: ['spiffe://example.org/sluice'], usage: 'client' });
  rotatedClient = root.leaf('sluice-next', { uri: ['spiffe://example.org/sluice-next'], usage: 'client' });
  liveClient = { cert: join(pki.dir, 'client-live.pem'), key: join(pki.dir, 'client-live.key') };
  copyFileSync(sluiceClient.cert, liveClient.cert);
  copyFileSync(sluiceClient.key, liveClient.key);
  backend = await startMtlsUpstream(backendCert, root.cert);
  impostor = await startMtlsUpstream(otherCert, root.cert);
  mixed = await startMtlsUpstream(mixedCert, root.cert);
  named = await startMtlsUpstream(namedCert, root.cert);
  plain = await startUpstream();
  const mtls = { ca: root.cert, cert: liveClient.cert, key: liveClient.key };
  const route = (prefix: string, upstream: string) => ({
    match: { path_prefix: prefix },
    proxy: { upstream, strip_prefix: prefix.slice(0, -1) },
  });
  sluice = await startSluice({
    servers: [
      {
        listen: '127.0.0.1:0',
        routes: [
          route('/pinned/', 'pinned'),
          route('/impostor/', 'impostor'),
          route('/mixed/', 'mixed'),
          route('/no-client-cert/', 'no_client_cert'),
          route('/named/', 'named'),
          route('/misnamed/', 'misnamed'),
          route('/untrusted/', 'untrusted'),
          route('/plain/', 'plain'),
        ],
      },
    ],
    upstreams: {
      pinned: {
        targets: [{ url: backend.url }],
        tls: { ...mtls, spiffe_id: 'spiffe://example.org/backend' },
      },
      impostor: {
        targets: [{ url: impostor.url }],
        tls: { ...mtls, spiffe_id: 'spiffe://example.org/backend' },
      },
      mixed: {
        targets: [{ url: mixed.url }],
        tls: { ...mtls, spiffe_id: 'spiffe://example.org/backend' },
      },
      no_client_cert: {
        targets: [{ url: backend.url }],
        tls: { ca: root.cert, spiffe_id: 'spiffe://example.org/backend' },
      },
      named: { targets: [{ url: named.url }], tls: { ...mtls, server_name: 'backend.internal' } },
      misnamed: { targets: [{ url: named.url }], tls: { ...mtls, server_name: 'elsewhere.internal' } },
      plain: { targets: [{ url: `https://127.0.0.1:${plain.port}` }], tls: { ca: root.cert } },
      untrusted: {
        targets: [{ url: backend.url }],
        tls: { cert: liveClient.cert, key: liveClient.key, spiffe_id: 'spiffe://example.org/backend' },
      },
    },
  });
});

afterAll(async () => {
  await sluice?.close();
  await Promise.all([backend?.close(), impostor?.close(), mixed?.close(), named?.close(), plain?.close()]);
  pki?.remove();
});

/** The last access line for `path`. */
async function accessLine(path: string): Promise<Record<string, unknown>> {
  const until = Date.now() + 3000;
  for (;;) {
    const line = sluice.accessLines().findLast((l) => l.path === path);
    if (line !== undefined || Date.now() > until) return line ?? {};
    await new Promise((r) => setTimeout(r, 10));
  }
}

describe('upstream mTLS with SPIFFE pinning', () => {
  it('reaches a target whose certificate carries the pinned SPIFFE id, presenting the client certificate', async () => {
    const res = await http(`${sluice.url}/pinned/x`, { headers: { host: 'client.example' } });
    expect(res.status).toBe(200);
    expect(res.json()).toMatchObject({
      clientSan: 'URI:spiffe://example.org/sluice',
      host: 'client.example',
    });
  });

  it('answers 502 when the target presents another SPIFFE id, and says so in the access line', async () => {
    const res = await http(`${sluice.url}/impostor/x`);
    expect(res.status).toBe(502);
    expect(impostor.seen).toHaveLength(0);
    expect(await accessLine('/impostor/x')).toMatchObject({
      status: 502,
      error: 'SLUICE_E_UPSTREAM_CONNECT',
      error_message:
        'upstream certificate SPIFFE id spiffe://example.org/other, expected spiffe://example.org/backend',
    });
  });

  it('answers 502 when the pinned id is one of two URI SANs (not an X.509-SVID)', async () => {
    const res = await http(`${sluice.url}/mixed/x`);
    expect(res.status).toBe(502);
    expect(mixed.seen).toHaveLength(0);
    expect(await accessLine('/mixed/x')).toMatchObject({
      error: 'SLUICE_E_UPSTREAM_CONNECT',
      error_message: expect.stringContaining('no single valid SPIFFE id'),
    });
  });

  it('answers 502 when the target requires a client certificate and none is configured', async () => {
    const res = await http(`${sluice.url}/no-client-cert/x`);
    expect(res.status).toBe(502);
  });

  it('answers 502 when the target certificate is not signed by the configured (or a public) CA', async () => {
    const res = await http(`${sluice.url}/untrusted/x`);
    expect(res.status).toBe(502);
    expect(await accessLine('/untrusted/x')).toMatchObject({
      error: 'SLUICE_E_UPSTREAM_CONNECT',
      error_message: expect.stringContaining('certificate'),
    });
  });
});

describe('a TLS handshake that fails', () => {
  // nginx: "SSL_do_handshake() failed ... while SSL handshaking to upstream", a connect failure.
  // OpenSSL's own codes (ERR_SSL_*) were logged as a reset of a connection that never carried a request.
  it('with a target speaking plain HTTP is a connect failure in the access line', async () => {
    const res = await http(`${sluice.url}/plain/x`);
    expect(res.status).toBe(502);
    expect(await accessLine('/plain/x')).toMatchObject({ status: 502, error: 'SLUICE_E_UPSTREAM_CONNECT' });
  });
});

describe('upstream server_name', () => {
  it('sends server_name in SNI and checks the certificate against it, whatever the Host', async () => {
    named.seen.length = 0;
    for (const host of ['one.example', 'two.example']) {
      const res = await http(`${sluice.url}/named/x`, { headers: { host } });
      expect(res.status).toBe(200);
    }
    expect(named.seen.map((s) => s.servername)).toEqual(['backend.internal', 'backend.internal']);
    expect(named.seen.map((s) => s.host)).toEqual(['one.example', 'two.example']);
  });

  it('answers 502 when the certificate does not match server_name', async () => {
    const res = await http(`${sluice.url}/misnamed/x`);
    expect(res.status).toBe(502);
    expect(await accessLine('/misnamed/x')).toMatchObject({
      error: 'SLUICE_E_UPSTREAM_CONNECT',
      error_message: expect.stringContaining('elsewhere.internal'),
    });
  });
});

describe('active health checks of an mTLS target', () => {
  const probe = (tls: ResolvedUpstreamTls | null) =>
    probeTarget({
      upstream: 'pinned',
      origin: backend.url,
      hostPort: new URL(backend.url).host,
      check: {
        path: '/healthz',
        intervalMs: 1000,
        timeoutMs: 2000,
        rise: 1,
        fall: 1,
        expectStatus: [[200, 399]],
        host: null,
      },
      health: 'unknown',
      tls,
    });
  const mtls = (spiffeId: string): ResolvedUpstreamTls => ({
    ca: rootCa,
    cert: liveClient.cert,
    key: liveClient.key,
    serverName: null,
    spiffeId,
  });

  it('passes with the upstream TLS settings', async () => {
    expect(await probe(mtls('spiffe://example.org/backend'))).toBeNull();
  });

  it('fails without them, or with another pinned id', async () => {
    // With the reason the log gives for a target found down.
    expect(await probe(null)).toMatch(/certificate/);
    expect(await probe(mtls('spiffe://example.org/other'))).toMatch(/spiffe:\/\/example\.org\/other/);
  });
});

describe('client certificate rotation', () => {
  it('presents the new client certificate on new connections once the files change', async () => {
    const tmpCert = `${liveClient.cert}.tmp`;
    const tmpKey = `${liveClient.key}.tmp`;
    copyFileSync(rotatedClient.cert, tmpCert);
    copyFileSync(rotatedClient.key, tmpKey);
    renameSync(tmpCert, liveClient.cert);
    renameSync(tmpKey, liveClient.key);
    const until = Date.now() + 6000;
    let san = '';
    while (Date.now() < until) {
      const res = await http(`${sluice.url}/pinned/rotate`);
      expect(res.status).toBe(200);
      san = (res.json() as { clientSan: string }).clientSan;
      if (san === 'URI:spiffe://example.org/sluice-next') break;
      await new Promise((r) => setTimeout(r, 200));
    }
    expect(san).toBe('URI:spiffe://example.org/sluice-next');
  });

  it('keeps the previous files when the key no longer matches, and logs the error as an object', async () => {
    // A key that is not the certificate's: the CA's.
    copyFileSync(rootKey, `${liveClient.key}.tmp`);
    renameSync(`${liveClient.key}.tmp`, liveClient.key);
    const until = Date.now() + 6000;
    const failed = () =>
      sluice.logs.find((l) => l.msg === 'upstream TLS files not reloaded; the previous ones stay in use');
    while (failed() === undefined && Date.now() < until) await new Promise((r) => setTimeout(r, 100));
    expect(failed()).toMatchObject({
      level: 'error',
      key: liveClient.key,
      err: { type: 'Error', message: expect.stringContaining('key values mismatch') },
    });
    const res = await http(`${sluice.url}/pinned/after-broken`);
    expect(res.status).toBe(200);
    expect((res.json() as { clientSan: string }).clientSan).toBe('URI:spiffe://example.org/sluice-next');
  });
});
