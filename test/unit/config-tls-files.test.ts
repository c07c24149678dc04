/**
 * TLS files are read and tried when the config loads, so `sluice check` reports what would fail
 * when the listener is built, at the position of the key, together with every other problem.
 */
import { execFileSync } from 'node:child_process';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { loadConfigText } from '../../src/config/load.js';
import { formatProblem } from '../../src/config/problem.js';
import { type CertFiles, makePki, type TestPki } from '../helpers/tls-pki.js';

let pki: TestPki;
let a: CertFiles;
let b: CertFiles;
let caCert: string;
let junk: string;

beforeAll(() => {
  pki = makePki();
  const root = pki.ca('root');
  caCert = root.cert;
  a = root.leaf('a.test', { dns: ['a.test'], usage: 'server' });
  b = root.leaf('b.test', { dns: ['b.test'], usage: 'server' });
  junk = join(pki.dir, 'junk.pem');
  writeFileSync(junk, 'not a certificate\n');
});

afterAll(() => pki?.remove());

function problems(text: string): string[] {
  const result = loadConfigText(text, 'sluice.yaml', {});
  return result.ok ? [] : result.problems.map((p) => formatProblem(p));
}

const server = (tls: string, extra = '') => `servers:
  - listen: 127.0.0.1:8443
    tls: { ${tls} }
    routes: [{ respond: { body: ok } }]
${extra}`;

describe('TLS files at config load', () => {
  it('accepts a certificate with its own key and a CA bundle', () => {
    expect(problems(server(`cert: ${a.cert}, key: ${a.key}, client_ca: ${caCert}`))).toEqual([]);
  });

  it('reports a key that is not the certificate’s at the key, with a way to compare them', () => {
    const found = problems(server(`cert: ${a.cert}, key: ${b.key}`));
    expect(found).toHaveLength(1);
    expect(found[0]).toMatch(
      /^sluice\.yaml:3:\d+: SLUICE_E_CONFIG_FILE servers\[0\]\.tls\.key: .*b\.test.* is not the private key of .*a\.test/,
    );
    expect(found[0]).toContain('openssl pkey -pubout');
  });

  it('reports files that are not PEM, each at its key, together with the other problems', () => {
    const found = problems(server(`cert: ${junk}, key: ${junk}`, 'workerz: 2\n'));
    expect(found).toHaveLength(3);
    expect(found[0]).toMatch(/servers\[0\]\.tls\.cert: .*junk\.pem is not a PEM certificate/);
    expect(found[1]).toMatch(/servers\[0\]\.tls\.key: .*junk\.pem is not a PEM private key/);
    expect(found[2]).toMatch(/SLUICE_E_CONFIG_UNKNOWN_KEY.*workerz/);
  });

  it('reports a client CA file that holds no certificate (OpenSSL would trust nobody, silently)', () => {
    const found = problems(server(`cert: ${a.cert}, key: ${a.key}, client_ca: ${junk}`));
    expect(found).toEqual([
      expect.stringMatching(/servers\[0\]\.tls\.client_ca: .*junk\.pem holds no PEM certificate/),
    ]);
  });

  it('takes a CA bundle in OpenSSL’s TRUSTED CERTIFICATE form, as Node does', () => {
    const trusted = join(pki.dir, 'trusted.pem');
    execFileSync('openssl', ['x509', '-in', caCert, '-trustout', '-addtrust', 'clientAuth', '-out', trusted]);
    expect(readFileSync(trusted, 'utf8')).toMatch(/^-----BEGIN TRUSTED CERTIFICATE-----/);
    expect(problems(server(`cert: ${a.cert}, key: ${a.key}, client_ca: ${trusted}`))).toEqual([]);
  });

  it('says a key is encrypted rather than not PEM', () => {
    const encrypted = join(pki.dir, 'encrypted.key');
    execFileSync('openssl', ['pkey', '-in', a.key, '-aes256', '-passout', 'pass:secret', '-out', encrypted]);
    expect(problems(server(`cert: ${a.cert}, key: ${encrypted}`))).toEqual([
      expect.stringMatching(
        /servers\[0\]\.tls\.key: .*encrypted\.key is an encrypted private key.*openssl pkey/,
      ),
    ]);
  });

  it('tries a set of files once per load, however many servers share it', () => {
    const twice = `servers:
  - listen: 127.0.0.1:8443
    tls: { cert: ${a.cert}, key: ${b.key} }
    routes: [{ respond: { body: ok } }]
  - listen: 127.0.0.1:8444
    tls: { cert: ${a.cert}, key: ${b.key} }
    routes: [{ respond: { body: ok } }]
`;
    expect(problems(twice)).toEqual([expect.stringMatching(/^sluice\.yaml:3:.* is not the private key of /)]);
  });

  it('checks an upstream’s client certificate and CA the same way', () => {
    const text = `servers: [{ listen: 8080, routes: [{ proxy: { upstream: u } }] }]
upstreams:
  u:
    targets: [{ url: https://127.0.0.1:9443 }]
    tls: { ca: ${junk}, cert: ${a.cert}, key: ${b.key} }
`;
    const found = problems(text);
    expect(found).toHaveLength(2);
    // In the order of their positions in the file.
    expect(found[0]).toMatch(/upstreams\.u\.tls\.ca: .*junk\.pem holds no PEM certificate/);
    expect(found[1]).toMatch(/upstreams\.u\.tls\.key: .* is not the private key of /);
  });
});
