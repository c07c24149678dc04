/**
 * Test certificates made with the `openssl` CLI in a temporary directory: a CA, and leaf
 * certificates signed by it with the DNS names and URI SANs (SPIFFE ids) a test asks for.
 * EC P-256 keys (RSA 2048 for a leaf that asks), valid for two days.
 */
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

/** A certificate and its key, as file paths. */
export interface CertFiles {
  readonly cert: string;
  readonly key: string;
}

/** A certificate authority that signs leaves into its directory. */
export interface TestCa extends CertFiles {
  /** Signs a leaf; `name` names its files (and is its CN). */
  leaf(
    name: string,
    opts: {
      dns?: string[];
      uri?: string[];
      usage: 'server' | 'client' | 'both';
      /** The leaf's key type: EC P-256 (the default), or RSA 2048 (DHE-RSA suites need one). */
      keyType?: 'ec' | 'rsa';
    },
  ): CertFiles;
}

/** A directory of test certificates. */
export interface TestPki {
  readonly dir: string;
  /** Makes a CA named `name`. */
  ca(name: string): TestCa;
  remove(): void;
}

function openssl(args: string[], cwd: string): void {
  execFileSync('openssl', args, { cwd, stdio: ['ignore', 'ignore', 'pipe'] });
}

/** A fresh directory for certificates. */
export function makePki(): TestPki {
  const dir = mkdtempSync(join(tmpdir(), 'sluice-tls-'));
  let serial = 1000 + Math.floor(Math.random() * 1000);
  return {
    dir,
    ca(name) {
      const cert = join(dir, `${name}.pem`);
      const key = join(dir, `${name}.key`);
      openssl(
        [
          'req',
          '-x509',
          '-newkey',
          'ec',
          '-pkeyopt',
          'ec_paramgen_curve:P-256',
          '-nodes',
          '-keyout',
          key,
          '-out',
          cert,
          '-days',
          '2',
          '-subj',
          `/CN=${name}`,
          '-addext',
          'basicConstraints=critical,CA:TRUE',
          '-addext',
          'keyUsage=critical,keyCertSign,cRLSign',
        ],
        dir,
      );
      return {
        cert,
        key,
        leaf(leafName, opts) {
          const leafCert = join(dir, `${leafName}.pem`);
          const leafKey = join(dir, `${leafName}.key`);
          const csr = join(dir, `${leafName}.csr`);
          const ext = join(dir, `${leafName}.ext`);
          const sans = [
            ...(opts.dns ?? []).map((d) => `DNS:${d}`),
            ...(opts.uri ?? []).map((u) => `URI:${u}`),
          ];
          const eku = { server: 'serverAuth', client: 'clientAuth', both: 'serverAuth,clientAuth' }[
            opts.usage
          ];
          writeFileSync(
            ext,
            [
              'basicConstraints=critical,CA:FALSE',
              'keyUsage=critical,digitalSignature',
              `extendedKeyUsage=${eku}`,
              ...(sans.length > 0 ? [`subjectAltName=${sans.join(',')}`] : []),
            ].join('\n'),
          );
          openssl(
            [
              'req',
              '-new',
              '-newkey',
              ...(opts.keyType === 'rsa' ? ['rsa:2048'] : ['ec', '-pkeyopt', 'ec_paramgen_curve:P-256']),
              '-nodes',
              '-keyout',
              leafKey,
              '-out',
              csr,
              '-subj',
              `/CN=${leafName}`,
            ],
            dir,
          );
          openssl(
            [
              'x509',
              '-req',
              '-in',
              csr,
              '-CA',
              cert,
              '-CAkey',
              key,
              '-set_serial',
              String(serial++),
              '-days',
              '2',
              '-extfile',
              ext,
              '-out',
              leafCert,
            ],
            dir,
          );
          return { cert: leafCert, key: leafKey };
        },
      };
    },
    remove() {
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

/** Replaces `target` with a copy of `source` the way rotation tools do: write a temporary file, rename it over. */
export function replaceFile(target: string, source: string): void {
  writeFileSync(`${target}.tmp`, readFileSync(source));
  renameSync(`${target}.tmp`, target);
}
