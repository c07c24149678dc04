/**
 * A server's `tls.min_version: TLSv1.3` on an address shared with a server that takes TLS 1.2: a
 * TLS 1.2 connection made for the other server (its SNI name) cannot reach it by its Host header
 * or `:authority`; it is answered 421, as a request whose client-certificate settings differ.
 */
import { readFileSync } from 'node:fs';
import http2 from 'node:http2';
import https from 'node:https';
import type tls from 'node:tls';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startSluice, type TestSluice } from '../helpers/sluice.js';
import { makePki, type TestPki } from '../helpers/tls-pki.js';

let pki: TestPki;
let ca: Buffer;
let sluice: TestSluice;

beforeAll(async () => {
  pki = makePki();
  const root = pki.ca('root');
  ca = readFileSync(root.cert);
  const site = root.leaf('site', { dns: ['example.test'], usage: 'server' });
  const shop = root.leaf('shop', { dns: ['shop.test'], usage: 'server' });
  sluice = await startSluice({
    servers: [
      {
        name: 'site',
        listen: '127.0.0.1:0',
        server_name: ['example.test'],
        default: true,
        http2: true,
        tls: { cert: site.cert, key: site.key },
        routes: [{ respond: { status: 200, body: 'site\n' } }],
      },
      {
        name: 'shop',
        listen: '127.0.0.1:0',
        server_name: ['shop.test'],
        http2: true,
        tls: { cert: shop.cert, key: shop.key, min_version: 'TLSv1.3' },
        routes: [{ respond: { status: 200, body: 'shop\n' } }],
      },
    ],
  });
});

afterAll(async () => {
  await sluice?.close();
  pki?.remove();
});

type Outcome = { status: number; body: string; protocol: string | null } | { error: string };

/** GET / over HTTP/1.1 with SNI `servername` and Host `host`, at most TLS `maxVersion`. */
function get(servername: string, host: string, maxVersion: tls.SecureVersion): Promise<Outcome> {
  return new Promise((resolve) => {
    const req = https.request(
      {
        host: '127.0.0.1',
        port: sluice.port,
        path: '/',
        servername,
        ca,
        maxVersion,
        agent: false,
        headers: { host },
      },
      (res) => {
        const protocol = (res.socket as tls.TLSSocket).getProtocol();
        let body = '';
        res.setEncoding('utf8');
        res.on('data', (d: string) => {
          body += d;
        });
        res.on('end', () => resolve({ status: res.statusCode ?? 0, body, protocol }));
      },
    );
    req.on('error', (err: NodeJS.ErrnoException) => resolve({ error: err.code ?? err.message }));
    req.end();
  });
}

/** GET / over HTTP/2 with SNI `servername` and `:authority` `authority`, at most TLS `maxVersion`. */
function h2Get(servername: string, authority: string, maxVersion: tls.SecureVersion): Promise<Outcome> {
  return new Promise((resolve) => {
    const client = http2.connect(`https://127.0.0.1:${sluice.port}`, { ca, servername, maxVersion });
    client.on('error', (err: NodeJS.ErrnoException) => resolve({ error: err.code ?? err.message }));
    const req = client.request({ ':path': '/', ':authority': authority });
    let status = 0;
    let body = '';
    req.setEncoding('utf8');
    req.on('response', (h) => {
      status = Number(h[':status']);
    });
    req.on('data', (d: string) => {
      body += d;
    });
    req.on('end', () => {
      const protocol = (client.socket as tls.TLSSocket).getProtocol();
      client.close();
      resolve({ status, body, protocol });
    });
    req.on('error', (err: NodeJS.ErrnoException) => resolve({ error: err.code ?? err.message }));
  });
}

describe('min_version: TLSv1.3 on one server of a shared address', () => {
  it('refuses a TLS 1.2 connection whose SNI names that server', async () => {
    expect(await get('shop.test', 'shop.test', 'TLSv1.2')).toHaveProperty('error');
  });

  it('answers 421 to a TLS 1.2 request naming it by Host under the other server’s SNI (HTTP/1.1)', async () => {
    expect(await get('example.test', 'shop.test', 'TLSv1.2')).toMatchObject({
      status: 421,
      protocol: 'TLSv1.2',
    });
    const line = (await sluice.waitForAccessLines(1)).at(-1);
    expect(line).toMatchObject({ status: 421, server: 'shop', error: 'SLUICE_E_CLIENT_MISDIRECTED' });
  });

  it('answers 421 to a TLS 1.2 request naming it by :authority under the other server’s SNI (HTTP/2)', async () => {
    expect(await h2Get('example.test', 'shop.test', 'TLSv1.2')).toMatchObject({
      status: 421,
      protocol: 'TLSv1.2',
    });
  });

  it('serves it over TLS 1.3 whatever the SNI name, which meets its min_version', async () => {
    expect(await get('example.test', 'shop.test', 'TLSv1.3')).toEqual({
      status: 200,
      body: 'shop\n',
      protocol: 'TLSv1.3',
    });
    expect(await h2Get('example.test', 'shop.test', 'TLSv1.3')).toEqual({
      status: 200,
      body: 'shop\n',
      protocol: 'TLSv1.3',
    });
  });

  it('still serves the TLS 1.2 server over TLS 1.2', async () => {
    expect(await get('example.test', 'example.test', 'TLSv1.2')).toEqual({
      status: 200,
      body: 'site\n',
      protocol: 'TLSv1.2',
    });
    expect(await h2Get('example.test', 'example.test', 'TLSv1.2')).toEqual({
      status: 200,
      body: 'site\n',
      protocol: 'TLSv1.2',
    });
  });
});
