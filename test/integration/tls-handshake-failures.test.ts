/**
 * TLS connections refused before they carry a request: a client certificate that does not verify
 * (another CA, a serverAuth-only EKU), a required one not sent, a TLS version below min_version.
 * Each is counted in sluice_tls_handshake_failures_total{reason}; a refused client certificate is
 * also a log line with the client's address, the server and the verification code, at most 10 a
 * second.
 */
import { readFileSync } from 'node:fs';
import tls from 'node:tls';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { until } from '../helpers/runtime.js';
import { startSluice, type TestSluice } from '../helpers/sluice.js';
import { makePki, type TestPki } from '../helpers/tls-pki.js';

type Pair = { cert: Buffer; key: Buffer };

let pki: TestPki;
let ca: Buffer;
let goodCert: Pair;
let rogueCert: Pair;
let serverOnlyCert: Pair;
/** Every server of the address requires a certificate: checked by Node's rejectUnauthorized. */
let strict: TestSluice;
/** required.test requires one, plain.test asks for none, tls13.test takes TLS 1.3 only. */
let shared: TestSluice;

const read = (f: { cert: string; key: string }): Pair => ({
  cert: readFileSync(f.cert),
  key: readFileSync(f.key),
});

beforeAll(async () => {
  pki = makePki();
  const root = pki.ca('root');
  const rogue = pki.ca('rogue');
  ca = readFileSync(root.cert);
  const server = root.leaf('server', {
    dns: ['strict.test', 'required.test', 'plain.test', 'tls13.test'],
    usage: 'server',
  });
  goodCert = read(root.leaf('good', { dns: ['client.test'], usage: 'client' }));
  rogueCert = read(rogue.leaf('rogue-client', { dns: ['client.test'], usage: 'client' }));
  serverOnlyCert = read(root.leaf('server-only', { dns: ['client.test'], usage: 'server' }));
  const tlsOf = (extra: object) => ({ cert: server.cert, key: server.key, ...extra });
  const ok = [{ respond: { status: 200, body: 'ok\n' } }];
  strict = await startSluice({
    servers: [
      {
        name: 'strict',
        listen: '127.0.0.1:0',
        server_name: ['strict.test'],
        tls: tlsOf({ client_ca: root.cert, require_client_cert: true }),
        routes: ok,
      },
    ],
  });
  shared = await startSluice({
    servers: [
      {
        name: 'plain',
        listen: '127.0.0.1:0',
        server_name: ['plain.test'],
        default: true,
        tls: tlsOf({}),
        routes: ok,
      },
      {
        name: 'required',
        listen: '127.0.0.1:0',
        server_name: ['required.test'],
        tls: tlsOf({ client_ca: root.cert, require_client_cert: true }),
        routes: ok,
      },
      {
        name: 'tls13',
        listen: '127.0.0.1:0',
        server_name: ['tls13.test'],
        tls: tlsOf({ min_version: 'TLSv1.3' }),
        routes: ok,
      },
    ],
  });
});

afterAll(async () => {
  await strict?.close();
  await shared?.close();
  pki?.remove();
});

/** A TLS connection sending one request: 'answered', or the client's error code. */
function connect(
  sluice: TestSluice,
  servername: string,
  opts: { cert?: Pair; maxVersion?: tls.SecureVersion } = {},
): Promise<string> {
  return new Promise((resolve) => {
    let text = '';
    const socket = tls.connect(
      {
        host: '127.0.0.1',
        port: sluice.port,
        servername,
        ca,
        ...opts.cert,
        // An old client: OpenSSL 3.5 (Node 24) offers TLS 1.1 only at security level 0.
        ...(opts.maxVersion === undefined
          ? {}
          : { maxVersion: opts.maxVersion, minVersion: 'TLSv1', ciphers: 'DEFAULT@SECLEVEL=0' }),
      },
      () => socket.write(`GET / HTTP/1.1\r\nHost: ${servername}\r\nConnection: close\r\n\r\n`),
    );
    socket.setEncoding('latin1');
    socket.on('data', (d: string) => {
      text += d;
    });
    socket.on('error', (err: NodeJS.ErrnoException) => resolve(err.code ?? err.message));
    socket.on('close', () => resolve(text.startsWith('HTTP/1.1 200') ? 'answered' : 'closed'));
  });
}

/** The lines about refused client certificates. */
const refusedLines = (sluice: TestSluice) => sluice.logs.filter((l) => l.event === 'tls_client_cert_refused');

/** sluice_tls_handshake_failures_total{reason} of an instance. */
async function failures(sluice: TestSluice, reason: string): Promise<number> {
  const text = await sluice.instance.registry.getSingleMetricAsString('sluice_tls_handshake_failures_total');
  const m = new RegExp(`sluice_tls_handshake_failures_total\\{reason="${reason}"\\} (\\d+)`).exec(text);
  return m === null ? Number.NaN : Number(m[1]);
}

/** Waits for the `n`th refused-certificate line of `sluice`. */
const nthLine = (sluice: TestSluice, n: number) =>
  until(() => refusedLines(sluice)[n - 1], `refused client certificate line ${n}`, 3000);

describe('every server of the address requires a client certificate', () => {
  it('serves a certificate that verifies, and logs nothing about it (control)', async () => {
    expect(await connect(strict, 'strict.test', { cert: goodCert })).toBe('answered');
    expect(refusedLines(strict)).toHaveLength(0);
  });

  it('logs and counts a certificate from another CA', async () => {
    const before = await failures(strict, 'client_cert_rejected');
    expect(await connect(strict, 'strict.test', { cert: rogueCert })).not.toBe('answered');
    const line = await nthLine(strict, 1);
    expect(line).toMatchObject({
      level: 'info',
      event: 'tls_client_cert_refused',
      remote_addr: '127.0.0.1',
      server: 'strict',
      sni: 'strict.test',
      reason: 'client_cert_rejected',
      tls_error: expect.stringMatching(/^UNABLE_TO_(VERIFY_LEAF_SIGNATURE|GET_ISSUER_CERT)/),
    });
    expect(await failures(strict, 'client_cert_rejected')).toBe(before + 1);
  });

  it('logs the verification code of a certificate for servers only (EKU serverAuth)', async () => {
    expect(await connect(strict, 'strict.test', { cert: serverOnlyCert })).not.toBe('answered');
    const line = await nthLine(strict, 2);
    expect(line).toMatchObject({ reason: 'client_cert_rejected', tls_error: 'INVALID_PURPOSE' });
  });

  it('logs and counts a client that sends no certificate (refused in the handshake with an alert)', async () => {
    const r = await connect(strict, 'strict.test');
    expect(r).toMatch(/CERTIFICATE_REQUIRED|ECONNRESET|HANDSHAKE/);
    const line = await nthLine(strict, 3);
    expect(line).toMatchObject({
      remote_addr: '127.0.0.1',
      server: 'strict',
      reason: 'client_cert_missing',
      tls_error: 'ERR_SSL_PEER_DID_NOT_RETURN_A_CERTIFICATE',
    });
    expect(await failures(strict, 'client_cert_missing')).toBe(1);
  });

  it('bounds the lines of a flood of refused certificates, and counts every refusal', async () => {
    const linesBefore = refusedLines(strict).length;
    const before = await failures(strict, 'client_cert_rejected');
    for (let i = 0; i < 30; i++) await connect(strict, 'strict.test', { cert: rogueCert });
    await until(
      async () => ((await failures(strict, 'client_cert_rejected')) === before + 30 ? true : undefined),
      'every refusal counted',
      3000,
    );
    // 10 lines a second: the flood spans one or two windows.
    const written = refusedLines(strict).length - linesBefore;
    expect(written).toBeGreaterThanOrEqual(1);
    expect(written).toBeLessThanOrEqual(20);
  });
});

describe('servers of one address asking differently (checked after the handshake)', () => {
  it('logs a certificate that does not verify for the server that requires one', async () => {
    expect(await connect(shared, 'required.test', { cert: rogueCert })).not.toBe('answered');
    expect(await nthLine(shared, 1)).toMatchObject({
      remote_addr: '127.0.0.1',
      server: 'required',
      sni: 'required.test',
      reason: 'client_cert_rejected',
      tls_error: expect.stringMatching(/^UNABLE_TO_/),
    });
  });

  it('logs a missing certificate for the server that requires one', async () => {
    expect(await connect(shared, 'required.test')).not.toBe('answered');
    expect(await nthLine(shared, 2)).toMatchObject({
      server: 'required',
      reason: 'client_cert_missing',
      tls_error: 'ERR_SSL_PEER_DID_NOT_RETURN_A_CERTIFICATE',
    });
  });

  it('counts a TLS 1.2 connection to a TLSv1.3-only server, and a TLS 1.1 one, without a log line', async () => {
    const lines = refusedLines(shared).length;
    expect(await connect(shared, 'tls13.test', { maxVersion: 'TLSv1.2' })).not.toBe('answered');
    expect(await connect(shared, 'plain.test', { maxVersion: 'TLSv1.1' })).not.toBe('answered');
    await until(
      async () => ((await failures(shared, 'version')) === 2 ? true : undefined),
      'version refusals counted',
      3000,
    );
    expect(refusedLines(shared)).toHaveLength(lines);
    expect(await connect(shared, 'plain.test')).toBe('answered');
  });
});
