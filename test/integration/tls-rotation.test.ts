/**
 * Certificate rotation: when a server's certificate and key change on disk, the next handshake
 * gets the new certificate without a restart, connections already open keep working, and a broken
 * replacement keeps the previous certificate (reported once in the log).
 */
import { copyFileSync, readFileSync, renameSync, writeFileSync } from 'node:fs';
import https from 'node:https';
import { join } from 'node:path';
import tls from 'node:tls';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startSluice, type TestSluice } from '../helpers/sluice.js';
import { type CertFiles, makePki, type TestPki } from '../helpers/tls-pki.js';
import { startUpstream, type TestUpstream } from '../helpers/upstream.js';

let pki: TestPki;
let ca: Buffer;
let first: CertFiles;
let second: CertFiles;
let other: CertFiles;
let live: CertFiles;
let up: TestUpstream;
let sluice: TestSluice;

/** Replaces a file the way rotation tools do: write a temporary file, rename it over. */
function replace(target: string, content: Buffer | string): void {
  const tmp = `${target}.tmp`;
  writeFileSync(tmp, content);
  renameSync(tmp, target);
}

beforeAll(async () => {
  pki = makePki();
  const root = pki.ca('root');
  ca = readFileSync(root.cert);
  first = root.leaf('first', { dns: ['a.test'], usage: 'server' });
  second = root.leaf('second', { dns: ['a.test'], usage: 'server' });
  other = root.leaf('other', { dns: ['a.test'], usage: 'server' });
  live = { cert: join(pki.dir, 'live.pem'), key: join(pki.dir, 'live.key') };
  copyFileSync(first.cert, live.cert);
  copyFileSync(first.key, live.key);
  up = await startUpstream();
  sluice = await startSluice({
    servers: [
      {
        listen: '127.0.0.1:0',
        server_name: ['a.test'],
        tls: { cert: live.cert, key: live.key },
        routes: [{ proxy: { url: up.url } }],
      },
    ],
  });
});

afterAll(async () => {
  await sluice?.close();
  await up?.close();
  pki?.remove();
});

/** The CN of the certificate a new connection is served. */
function servedCn(): Promise<string> {
  return new Promise((resolve, reject) => {
    const socket = tls.connect({ host: '127.0.0.1', port: sluice.port, servername: 'a.test', ca }, () => {
      resolve(String(socket.getPeerCertificate().subject.CN));
      socket.destroy();
    });
    socket.on('error', reject);
  });
}

/** Polls until a new connection is served `cn` (the watch polls once a second). */
async function waitForCn(cn: string, timeoutMs = 6000): Promise<string> {
  const until = Date.now() + timeoutMs;
  let seen = await servedCn();
  while (seen !== cn && Date.now() < until) {
    await new Promise((r) => setTimeout(r, 100));
    seen = await servedCn();
  }
  return seen;
}

function get(agent: https.Agent): Promise<{ status: number; cn: string; reused: boolean }> {
  return new Promise((resolve, reject) => {
    const req = https.request(
      {
        host: '127.0.0.1',
        port: sluice.port,
        path: '/',
        servername: 'a.test',
        ca,
        agent,
        headers: { host: 'a.test' },
      },
      (res) => {
        // Read while the socket is attached: a keep-alive agent takes it back at the end.
        const cn = String((res.socket as tls.TLSSocket).getPeerCertificate().subject.CN);
        res.resume();
        res.on('end', () => resolve({ status: res.statusCode ?? 0, cn, reused: req.reusedSocket }));
      },
    );
    req.on('error', reject);
    req.end();
  });
}

describe('certificate rotation', () => {
  it('serves a new certificate to the next connection while an open one keeps working', async () => {
    const agent = new https.Agent({ keepAlive: true, maxSockets: 1 });
    try {
      expect(await get(agent)).toMatchObject({ status: 200, cn: 'first', reused: false });
      replace(live.cert, readFileSync(second.cert));
      replace(live.key, readFileSync(second.key));
      expect(await waitForCn('second')).toBe('second');
      // The keep-alive connection opened before the rotation still serves, with its old certificate.
      expect(await get(agent)).toMatchObject({ status: 200, cn: 'first', reused: true });
    } finally {
      agent.destroy();
    }
  });

  it('keeps the previous certificate when the replacement is broken, and logs it once', async () => {
    expect(await waitForCn('second')).toBe('second');
    const errorsBefore = sluice.logs.filter((l) => l.event === 'tls_reload_failed').length;
    // A certificate with a key that does not belong to it.
    replace(live.cert, readFileSync(other.cert));
    await new Promise((r) => setTimeout(r, 3500));
    expect(await servedCn()).toBe('second');
    const errors = sluice.logs.filter((l) => l.event === 'tls_reload_failed');
    expect(errors.length - errorsBefore).toBe(1);
    // `err` as pino's serializer writes it, the object docs/tls.md shows, not "Error: ..." text.
    expect(errors.at(-1)).toMatchObject({
      level: 'error',
      cert: live.cert,
      err: {
        type: 'Error',
        message: expect.stringContaining('key values mismatch'),
        code: 'ERR_OSSL_X509_KEY_VALUES_MISMATCH',
      },
    });
    // Completing the pair makes it good again.
    replace(live.key, readFileSync(other.key));
    expect(await waitForCn('other')).toBe('other');
  });

  it('keeps the previous certificate when the file is garbage', async () => {
    replace(live.cert, 'not a certificate\n');
    await new Promise((r) => setTimeout(r, 2500));
    expect(await servedCn()).toBe('other');
  });
});
