/**
 * A worker that dies while a deploy has the TLS files moved away (`sluice start`, `workers: 1`).
 * Its replacement read the server's certificate and the upstream's CA from disk, failed to start
 * five times in a row, the slot went `crash-loop`, and sluice exited ("every worker is in a crash
 * loop"). It now starts on the copies the primary keeps, says so, serves the certificate the node
 * had, and loads the files once they are back (here, a new certificate).
 */
import { X509Certificate } from 'node:crypto';
import { copyFileSync, readFileSync, renameSync } from 'node:fs';
import { writeFile } from 'node:fs/promises';
import https from 'node:https';
import type { AddressInfo } from 'node:net';
import { join } from 'node:path';
import tls from 'node:tls';
import { Agent, request } from 'undici';
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

let pki: TestPki;
let tmp: { path: string; remove(): Promise<void> };
let upstream: https.Server;
let sluice: CliProcess;
let port: number;
let ca: Buffer;

/** The SHA-256 fingerprint of the certificate a handshake with sluice gets. */
function servedFingerprint(): Promise<string> {
  return new Promise((resolve, reject) => {
    const s = tls.connect({ host: '127.0.0.1', port, servername: 'a.test', ca }, () => {
      resolve(s.getPeerCertificate().fingerprint256);
      s.destroy();
    });
    s.on('error', reject);
  });
}

/** GET `path` through sluice, on a connection of its own: status and body. */
async function get(path: string): Promise<{ status: number; body: string }> {
  const agent = new Agent({ connect: { ca, servername: 'a.test' } });
  try {
    const res = await request(`https://127.0.0.1:${port}${path}`, {
      dispatcher: agent,
      headers: { host: 'a.test' },
    });
    return { status: res.statusCode, body: await res.body.text() };
  } finally {
    await agent.close();
  }
}

function fingerprintOf(file: string): string {
  return new X509Certificate(readFileSync(file)).fingerprint256;
}

/** Puts `from` at `to` as deploy tools do: a copy, then a rename over. */
function deploy(from: string, to: string): void {
  copyFileSync(from, `${to}.tmp`);
  renameSync(`${to}.tmp`, to);
}

beforeAll(async () => {
  requireBuilt();
  pki = makePki();
  const root = pki.ca('root');
  ca = readFileSync(root.cert);
  const server = root.leaf('a.test', { dns: ['a.test'], usage: 'server' });
  root.leaf('a.test-next', { dns: ['a.test'], usage: 'server' });
  const back = root.leaf('back.test', { dns: ['back.test'], usage: 'server' });
  tmp = await tempDir('sluice-tls-restart-');
  copyFileSync(server.cert, join(tmp.path, 'server.pem'));
  copyFileSync(server.key, join(tmp.path, 'server.key'));
  copyFileSync(root.cert, join(tmp.path, 'upstream-ca.pem'));
  upstream = https.createServer({ cert: readFileSync(back.cert), key: readFileSync(back.key) }, (_req, res) =>
    res.end('from the upstream'),
  );
  await new Promise<void>((resolve) => upstream.listen(0, '127.0.0.1', resolve));
  const upstreamPort = (upstream.address() as AddressInfo).port;
  port = await freePort();
  await writeFile(
    join(tmp.path, 'sluice.yaml'),
    `version: 1
workers: 1
log: { level: info, access: off }
servers:
  - name: web
    listen: "127.0.0.1:${port}"
    server_name: [a.test]
    tls: { cert: server.pem, key: server.key }
    routes:
      - match: { path_prefix: /up }
        proxy: { upstream: back }
      - respond: { body: "ok" }
upstreams:
  back:
    targets: [{ url: "https://127.0.0.1:${upstreamPort}" }]
    tls: { ca: upstream-ca.pem, server_name: back.test }
`,
  );
  sluice = spawnCli(['start', '-c', 'sluice.yaml'], { cwd: tmp.path });
  await waitForPort(port, { proc: sluice, timeoutMs: 20_000 });
  await sluice.waitForJson((l) => l.msg === 'sluice started', 1, 20_000);
});

afterAll(async () => {
  await killAll();
  await new Promise((resolve) => upstream?.close(resolve));
  await tmp?.remove();
  pki?.remove();
});

describe('a worker restarted while its TLS files are moved away (built CLI, workers: 1)', () => {
  it('serves the certificate and upstream CA the node had, and loads the files when they return', async () => {
    const original = fingerprintOf(join(pki.dir, 'a.test.pem'));
    expect(await servedFingerprint()).toBe(original);
    expect(await get('/up')).toEqual({ status: 200, body: 'from the upstream' });

    const started = sluice.jsonLines().find((l) => l.msg === 'sluice started')!;
    const victim = (started.workers as number[])[0]!;
    renameSync(join(tmp.path, 'server.pem'), join(tmp.path, 'server.pem.bak'));
    renameSync(join(tmp.path, 'upstream-ca.pem'), join(tmp.path, 'upstream-ca.pem.bak'));
    process.kill(victim, 'SIGKILL');

    // Before, every start of the replacement failed, and sluice exited in a crash loop.
    const [restarted] = await sluice.waitForJson((l) => l.msg === 'worker restarted', 1, 15_000);
    const worker = restarted!.worker_pid as number;
    const warnings = sluice.jsonLines().filter((l) => l.event === 'tls_copy_in_use' && l.pid === worker);
    expect(warnings).toHaveLength(2);
    expect(warnings.find((l) => 'listener' in l)).toMatchObject({
      level: 'warn',
      file: join(tmp.path, 'server.pem'),
      cert: join(tmp.path, 'server.pem'),
      copy_sha256: original,
      err: { code: 'ENOENT' },
    });
    expect(warnings.find((l) => !('listener' in l))).toMatchObject({
      level: 'warn',
      file: join(tmp.path, 'upstream-ca.pem'),
      ca: join(tmp.path, 'upstream-ca.pem'),
      err: { code: 'ENOENT' },
    });
    expect(await servedFingerprint()).toBe(original);
    expect(await get('/')).toEqual({ status: 200, body: 'ok' });
    expect(await get('/up')).toEqual({ status: 200, body: 'from the upstream' });

    // A new certificate comes back (its key first): the worker loads it from disk.
    deploy(join(pki.dir, 'a.test-next.key'), join(tmp.path, 'server.key'));
    deploy(join(pki.dir, 'a.test-next.pem'), join(tmp.path, 'server.pem'));
    renameSync(join(tmp.path, 'upstream-ca.pem.bak'), join(tmp.path, 'upstream-ca.pem'));
    await sluice.waitForJson((l) => l.msg === 'TLS certificate reloaded' && l.pid === worker, 1, 10_000);
    expect(await servedFingerprint()).toBe(fingerprintOf(join(pki.dir, 'a.test-next.pem')));
    expect(await get('/up')).toEqual({ status: 200, body: 'from the upstream' });
    expect(sluice.exited()).toBeNull();
  });
});
