/**
 * Client certificates (`tls.client_ca`, `tls.require_client_cert`): a required certificate is
 * checked in the handshake; an optional one that does not verify counts as none; the SPIFFE id of
 * a verified one is `$client_spiffe_id`. Servers sharing an address may ask differently.
 */
import { readFileSync } from 'node:fs';
import http2 from 'node:http2';
import https from 'node:https';
import { connect as tlsConnect } from 'node:tls';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startSluice, type TestSluice } from '../helpers/sluice.js';
import { makePki, type TestPki } from '../helpers/tls-pki.js';
import { startUpstream, type TestUpstream } from '../helpers/upstream.js';

let pki: TestPki;
let ca: Buffer;
let clientCert: { cert: Buffer; key: Buffer };
let rogueCert: { cert: Buffer; key: Buffer };
let noIdCert: { cert: Buffer; key: Buffer };
/** A SPIFFE id and a second URI SAN: not an X.509-SVID. */
let mixedCert: { cert: Buffer; key: Buffer };
/** A SPIFFE id with a query, which the SPIFFE id format forbids. */
let queryCert: { cert: Buffer; key: Buffer };
let up: TestUpstream;
/** required.test requires a certificate, optional.test takes one, plain.test asks for none. */
let shared: TestSluice;
/** Only servers that require a certificate: refused in the handshake itself. */
let strict: TestSluice;

const read = (f: { cert: string; key: string }) => ({ cert: readFileSync(f.cert), key: readFileSync(f.key) });
const proxyWithId = (url: string) => [
  { proxy: { url, set_headers: { 'X-Client-Id': '$client_spiffe_id' } } },
];

beforeAll(async () => {
  pki = makePki();
  const root = pki.ca('root');
  const rogue = pki.ca('rogue');
  ca = readFileSync(root.cert);
  const server = root.leaf('server', {
    dns: ['required.test', 'optional.test', 'plain.test', 'strict.test'],
    usage: 'server',
  });
  clientCert = read(root.leaf('client', { uri: ['spiffe://example.org/client'], usage: 'client' }));
  noIdCert = read(root.leaf('no-id', { dns: ['client.test'], usage: 'client' }));
  mixedCert = read(
    root.leaf('mixed', { uri: ['spiffe://example.org/mixed', 'https://example.org/x'], usage: 'client' }),
  );
  queryCert = read(root.leaf('query', { uri: ['spiffe://example.org/p?q=1'], usage: 'client' }));
  rogueCert = read(rogue.leaf('rogue-client', { uri: ['spiffe://example.org/client'], usage: 'client' }));
  up = await startUpstream();
  const tls = (extra: object) => ({ cert: server.cert, key: server.key, ...extra });
  shared = await startSluice({
    servers: [
      {
        name: 'required',
        listen: '127.0.0.1:0',
        server_name: ['required.test'],
        http2: true,
        tls: tls({ client_ca: root.cert, require_client_cert: true }),
        routes: proxyWithId(up.url),
      },
      {
        name: 'optional',
        listen: '127.0.0.1:0',
        server_name: ['optional.test'],
        tls: tls({ client_ca: root.cert }),
        routes: proxyWithId(up.url),
      },
      {
        name: 'plain',
        listen: '127.0.0.1:0',
        server_name: ['plain.test'],
        default: true,
        tls: tls({}),
        routes: proxyWithId(up.url),
      },
    ],
  });
  strict = await startSluice({
    servers: [
      {
        listen: '127.0.0.1:0',
        server_name: ['strict.test'],
        tls: tls({ client_ca: root.cert, require_client_cert: true }),
        routes: proxyWithId(up.url),
      },
    ],
  });
});

afterAll(async () => {
  await shared?.close();
  await strict?.close();
  await up?.close();
  pki?.remove();
});

type Outcome = { status: number; clientId: string | null } | { error: string };

/** GET / over HTTP/1.1 with `name` in SNI and Host, with an optional client certificate. */
function get(
  sluice: TestSluice,
  name: string,
  cert?: { cert: Buffer; key: Buffer },
  opts: {
    host?: string;
    session?: Buffer;
    onSession?: (s: Buffer) => void;
    onReused?: (r: boolean) => void;
  } = {},
): Promise<Outcome> {
  return new Promise((resolve) => {
    const req = https.request(
      {
        host: '127.0.0.1',
        port: sluice.port,
        path: '/',
        servername: name,
        ca,
        ...cert,
        ...(opts.session === undefined ? {} : { session: opts.session }),
        agent: false,
        headers: { host: opts.host ?? name },
      },
      (res) => {
        opts.onReused?.((res.socket as import('node:tls').TLSSocket).isSessionReused());
        let body = '';
        res.setEncoding('utf8');
        res.on('data', (d: string) => {
          body += d;
        });
        res.on('end', () => {
          const headers = res.statusCode === 200 ? (JSON.parse(body).headers as Record<string, string>) : {};
          resolve({ status: res.statusCode ?? 0, clientId: headers['x-client-id'] ?? null });
        });
      },
    );
    req.on('socket', (socket) => socket.on('session', (s: Buffer) => opts.onSession?.(s)));
    req.on('error', (err: NodeJS.ErrnoException) => resolve({ error: err.code ?? err.message }));
    req.end();
  });
}

describe('require_client_cert (every server of the address requires one)', () => {
  it('refuses a client without a certificate in the handshake', async () => {
    const r = await get(strict, 'strict.test');
    expect(r).toEqual({ error: expect.stringMatching(/CERTIFICATE_REQUIRED|ECONNRESET|HANDSHAKE/) });
  });

  it('refuses a certificate from another CA', async () => {
    const r = await get(strict, 'strict.test', rogueCert);
    expect(r).toHaveProperty('error');
  });

  it('accepts a certificate signed by client_ca and sends its SPIFFE id upstream', async () => {
    expect(await get(strict, 'strict.test', clientCert)).toEqual({
      status: 200,
      clientId: 'spiffe://example.org/client',
    });
  });

  it('sends no id for a verified certificate without a SPIFFE id', async () => {
    expect(await get(strict, 'strict.test', noIdCert)).toEqual({ status: 200, clientId: null });
  });

  it('sends no id for a certificate that is not an X.509-SVID: two URI SANs, or an id with a query', async () => {
    expect(await get(strict, 'strict.test', mixedCert)).toEqual({ status: 200, clientId: null });
    expect(await get(strict, 'strict.test', queryCert)).toEqual({ status: 200, clientId: null });
  });
});

describe('servers of one address asking differently', () => {
  // nginx's 421: the certificate was checked (or not) for the server the SNI name chose; a request
  // naming another server walked past its require_client_cert, or carried an identity its
  // client_ca never verified.
  it('answers 421 to a request naming another server than its SNI, when they differ in client certificates', async () => {
    expect(await get(shared, 'plain.test', undefined, { host: 'required.test' })).toEqual({
      status: 421,
      clientId: null,
    });
    expect(await get(shared, 'optional.test', clientCert, { host: 'plain.test' })).toEqual({
      status: 421,
      clientId: null,
    });
    expect(await get(shared, 'optional.test', undefined, { host: 'required.test' })).toEqual({
      status: 421,
      clientId: null,
    });
  });

  it('does not resume a session made under another server of the address', async () => {
    let session: Buffer | undefined;
    const first = await get(shared, 'optional.test', clientCert, {
      onSession: (s) => {
        session = s;
      },
    });
    expect(first).toEqual({ status: 200, clientId: 'spiffe://example.org/client' });
    expect(session).toBeDefined();
    let reused: boolean | undefined;
    // No certificate this time: a resumed session would have carried the first one's verdict.
    const second = await get(shared, 'required.test', undefined, {
      session,
      onReused: (r) => {
        reused = r;
      },
    });
    expect(second).toHaveProperty('error');
    expect(reused).not.toBe(true);
  });

  it('required: refuses a client without a certificate', async () => {
    expect(await get(shared, 'required.test')).toHaveProperty('error');
  });

  it('required: refuses a certificate from another CA', async () => {
    expect(await get(shared, 'required.test', rogueCert)).toHaveProperty('error');
  });

  it('required: accepts a verified certificate, with its id', async () => {
    expect(await get(shared, 'required.test', clientCert)).toEqual({
      status: 200,
      clientId: 'spiffe://example.org/client',
    });
  });

  it('optional: serves a client without a certificate, with no id', async () => {
    expect(await get(shared, 'optional.test')).toEqual({ status: 200, clientId: null });
  });

  it('optional: treats a certificate that does not verify as none', async () => {
    expect(await get(shared, 'optional.test', rogueCert)).toEqual({ status: 200, clientId: null });
  });

  it('optional: passes on the id of a verified certificate', async () => {
    expect(await get(shared, 'optional.test', clientCert)).toEqual({
      status: 200,
      clientId: 'spiffe://example.org/client',
    });
  });

  it('no client_ca: serves everyone and never trusts a certificate', async () => {
    expect(await get(shared, 'plain.test')).toEqual({ status: 200, clientId: null });
    expect(await get(shared, 'plain.test', clientCert)).toEqual({ status: 200, clientId: null });
  });

  it('passes the id on over HTTP/2 too', async () => {
    const r = await new Promise<{ status: number; clientId: string | null }>((resolve, reject) => {
      const client = http2.connect(`https://127.0.0.1:${shared.port}`, {
        ca,
        servername: 'required.test',
        ...clientCert,
      });
      client.on('error', reject);
      const req = client.request({ ':path': '/', ':authority': 'required.test' });
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
        resolve({ status, clientId: JSON.parse(body).headers['x-client-id'] ?? null });
      });
      req.end();
    });
    expect(r).toEqual({ status: 200, clientId: 'spiffe://example.org/client' });
  });
});

describe('a client that renegotiates (TLS 1.2)', () => {
  // The second handshake's certificate went unchecked while the connection kept the first one's
  // verdict: a client verified once could present a self-signed certificate naming any SPIFFE id,
  // and the upstream was sent that id. nginx refuses renegotiation ("no renegotiation").
  it.each(['optional.test', 'required.test', 'plain.test'])('is refused on %s', async (name) => {
    const outcome = await new Promise<string>((resolve) => {
      const socket = tlsConnect({
        host: '127.0.0.1',
        port: shared.port,
        servername: name,
        ca,
        maxVersion: 'TLSv1.2',
        ...clientCert,
      });
      const timer = setTimeout(() => resolve('no answer'), 5000);
      const done = (what: string) => {
        clearTimeout(timer);
        socket.destroy();
        resolve(what);
      };
      socket.on('error', () => done('refused'));
      socket.on('close', () => done('refused'));
      socket.on('secureConnect', () => {
        socket.renegotiate({ rejectUnauthorized: true }, (err) => done(err ? 'refused' : 'renegotiated'));
      });
    });
    expect(outcome).toBe('refused');
  });
});
