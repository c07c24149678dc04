/**
 * https targets are answered through the same client and strict parser as http ones: an unsolicited
 * 100 Continue is skipped, a malformed answer is a 502, streamed bodies go out byte for byte; and
 * the TLS connection keeps what undici's connector gave: the target's name in SNI and checked, its
 * CA, session resumption, and `timeouts.connect` over the handshake.
 */
import { createHash, randomBytes } from 'node:crypto';
import { readFileSync } from 'node:fs';
import https from 'node:https';
import net from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { sendInPieces } from '../helpers/http.js';
import { rawRequest } from '../helpers/raw-http.js';
import { type RawUpstream, rawUpstream } from '../helpers/raw-upstream.js';
import { startSluice, type TestSluice } from '../helpers/sluice.js';
import { makePki, type TestPki } from '../helpers/tls-pki.js';

/** Over BODY_BUFFER_LIMIT (64 KiB): streamed. */
const STREAMED = 70_000;

/** Answers a strict client refuses, by path. */
const BAD_ANSWERS: Record<string, string> = {
  '/http2': 'HTTP/2.0 200 OK\r\nContent-Length: 5\r\n\r\nhello',
  '/te-gzip': 'HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip\r\n\r\nhello',
  '/te-gzip-chunked': 'HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip, chunked\r\n\r\n5\r\nhello\r\n0\r\n\r\n',
  '/te-chunked-chunked':
    'HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked, chunked\r\n\r\n5\r\nhello\r\n0\r\n\r\n',
  '/te-empty': 'HTTP/1.1 200 OK\r\nTransfer-Encoding: \r\nContent-Length: 5\r\n\r\nhello',
  '/empty-line-first': '\r\nHTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nhello',
};

const ANSWERS: Record<string, string> = {
  ...BAD_ANSWERS,
  '/continue': 'HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nhello',
  '/equal-cl': 'HTTP/1.1 200 OK\r\nContent-Length: 5\r\nContent-Length: 5\r\n\r\nhello',
};

let pki: TestPki;
let ca: string;
let up: RawUpstream;
/** Accepts TCP and never says a word of TLS. */
let mute: net.Server;
/** Answers with the length and SHA-256 of the body it received, and how it was framed. */
let hashing: https.Server;
let sluice: TestSluice;

beforeAll(async () => {
  pki = makePki();
  const root = pki.ca('root');
  ca = root.cert;
  const leaf = root.leaf('backend', { dns: ['backend.internal'], usage: 'server' });
  up = await rawUpstream((path) => ANSWERS[path] ?? 'HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok', {
    tls: { cert: readFileSync(leaf.cert), key: readFileSync(leaf.key) },
  });
  mute = net.createServer((socket) => socket.on('error', () => undefined));
  await new Promise<void>((r) => mute.listen(0, '127.0.0.1', r));
  hashing = https.createServer({ cert: readFileSync(leaf.cert), key: readFileSync(leaf.key) }, (req, res) => {
    const hash = createHash('sha256');
    let length = 0;
    req.on('data', (d: Buffer) => {
      hash.update(d);
      length += d.length;
    });
    req.on('end', () => {
      res.end(
        JSON.stringify({
          length,
          sha256: hash.digest('hex'),
          contentLength: req.headers['content-length'] ?? null,
          transferEncoding: req.headers['transfer-encoding'] ?? null,
        }),
      );
    });
  });
  await new Promise<void>((r) => hashing.listen(0, '127.0.0.1', r));
  const tls = { ca, server_name: 'backend.internal' };
  sluice = await startSluice({
    servers: [
      {
        listen: '127.0.0.1:0',
        limits: { max_body: '64mb' },
        routes: [
          { match: { path_prefix: '/mute/' }, proxy: { upstream: 'mute', timeouts: { connect: '300ms' } } },
          { match: { path_prefix: '/misnamed/' }, proxy: { upstream: 'misnamed' } },
          { match: { path_prefix: '/hashing/' }, proxy: { upstream: 'hashing' } },
          { proxy: { upstream: 'secure' } },
        ],
      },
    ],
    upstreams: {
      // keepalive: 0: a connection per request, so that each one's handshake can be seen.
      secure: { keepalive: 0, targets: [{ url: `https://127.0.0.1:${up.port}` }], tls },
      misnamed: {
        targets: [{ url: `https://127.0.0.1:${up.port}` }],
        tls: { ca, server_name: 'elsewhere.internal' },
      },
      hashing: {
        targets: [{ url: `https://127.0.0.1:${(hashing.address() as net.AddressInfo).port}` }],
        tls,
      },
      mute: {
        targets: [{ url: `https://127.0.0.1:${(mute.address() as net.AddressInfo).port}` }],
        tls,
      },
    },
  });
});

afterAll(async () => {
  await sluice?.close();
  await up?.close();
  mute?.close();
  hashing?.closeAllConnections();
  hashing?.close();
  pki?.remove();
});

function upload(path: string, size: number): string {
  return `PUT ${path} HTTP/1.1\r\nHost: a\r\nContent-Length: ${size}\r\nConnection: close\r\n\r\n${'x'.repeat(size)}`;
}

const get = (path: string) => `GET ${path} HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n`;
const bodyOf = (text: string) => text.slice(text.indexOf('\r\n\r\n') + 4);

describe('answers of an https target', () => {
  // undici, which carried https requests, destroyed the connection on any 100: a 502.
  it.each([
    ['no body', get('/continue')],
    ['a streamed body', upload('/continue', STREAMED)],
  ])('skips an unsolicited 100 Continue and relays the final answer (%s)', async (_kind, request) => {
    const r = await rawRequest(sluice.port, request, { waitMs: 5000 });
    expect(r.status).toBe(200);
    expect(r.text).not.toContain('100 Continue');
    expect(bodyOf(r.text)).toBe('hello');
  });

  it.each(Object.keys(BAD_ANSWERS))('answers 502 for %s', async (path) => {
    const r = await rawRequest(sluice.port, get(path), { waitMs: 5000 });
    expect(r.status).toBe(502);
    expect(r.text).toContain('SLUICE_E_UPSTREAM_INVALID_RESPONSE');
    expect(r.text).not.toContain('hello');
  });

  it('relays an answer repeating an equal Content-Length, with one', async () => {
    const r = await rawRequest(sluice.port, get('/equal-cl'), { waitMs: 5000 });
    expect(r.status).toBe(200);
    expect(r.text.match(/^content-length: 5\r$/gim)).toHaveLength(1);
  });
});

describe('TLS to an https target', () => {
  it('resumes the session on the next connection', async () => {
    const before = up.connections.length;
    for (let i = 0; i < 3; i++) expect((await rawRequest(sluice.port, get(`/r${i}`))).status).toBe(200);
    const made = up.connections.slice(before);
    expect(made).toHaveLength(3);
    expect(made.slice(1).map((c) => c.resumed)).toEqual([true, true]);
  });

  it('answers 502 SLUICE_E_UPSTREAM_CONNECT when the certificate does not match server_name', async () => {
    const before = up.connections.length;
    const r = await rawRequest(sluice.port, get('/misnamed/x'), { waitMs: 5000 });
    expect(r.status).toBe(502);
    expect(r.text).toContain('SLUICE_E_UPSTREAM_CONNECT');
    expect(up.connections.slice(before).flatMap((c) => c.heads)).toEqual([]);
  });

  it('answers 504 when the handshake does not finish within timeouts.connect', async () => {
    const started = Date.now();
    const r = await rawRequest(sluice.port, get('/mute/x'), { waitMs: 5000 });
    expect(r.status).toBe(504);
    expect(r.text).toContain('SLUICE_E_UPSTREAM_TIMEOUT');
    expect(Date.now() - started).toBeLessThan(2000);
  });

  it.each(['length', 'chunked'] as const)(
    'carries a 10 MB streamed body byte for byte (%s)',
    async (framing) => {
      const body = randomBytes(10 * 1024 * 1024);
      // Several writes: without a length, Node's client sends them chunked.
      const answer = (
        await sendInPieces(`${sluice.url}/hashing/x`, body, { framing, piece: 1 << 20 })
      ).body.toString();
      expect(JSON.parse(answer)).toEqual({
        length: body.length,
        sha256: createHash('sha256').update(body).digest('hex'),
        contentLength: framing === 'length' ? String(body.length) : null,
        transferEncoding: framing === 'chunked' ? 'chunked' : null,
      });
    },
  );
});
