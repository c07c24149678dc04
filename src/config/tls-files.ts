/**
 * The PEM files a `tls:` names, read and tried at load time: `sluice check`, start and reload
 * then report a file that is not PEM, a key that is not the certificate's, or a CA file without a
 * certificate, at the position of its key in the config and together with every other problem.
 * Before this, such files passed `sluice check` and failed only when the listener was built.
 * (tls-preflight.ts still tries them again just before serving: a file may change in between.)
 *
 * Cost: one TLS context per distinct certificate and key (about 3 ms for RSA-2048); a load tries
 * each distinct set of files once, so 300 servers sharing a wildcard certificate try it once.
 */
import { X509Certificate } from 'node:crypto';
import { existsSync, readFileSync } from 'node:fs';
import tls from 'node:tls';
import type { KeyPath } from './key-path.js';
import type { ProblemCollector } from './problem-collector.js';

/** One file of a `tls:` and the position of its key. */
interface TlsFile {
  readonly file: string | null;
  readonly path: KeyPath;
}

const PAIR_HINT =
  'the key must be the private key of the certificate; these two print the same line when it is: ' +
  'openssl x509 -noout -pubkey -in CERT | openssl sha256, and openssl pkey -pubout -in KEY | openssl sha256';

/** The sets of files each load has tried already (keyed by the load's collector). */
const tried = new WeakMap<ProblemCollector, Set<string>>();

/**
 * Checks the certificate, key and CA bundle (any may be null) of the `tls:` at `path`, whose CA
 * is under `caKey` (`client_ca` on a server, `ca` on an upstream); reports what cannot be used.
 */
export function checkTlsFiles(
  path: KeyPath,
  names: { readonly cert: string | null; readonly key: string | null; readonly ca: string | null },
  caKey: string,
  problems: ProblemCollector,
): void {
  const id = `${names.cert}\u0000${names.key}\u0000${names.ca}`;
  let seen = tried.get(problems);
  if (seen === undefined) {
    seen = new Set();
    tried.set(problems, seen);
  }
  if (seen.has(id)) return; // reported at its first use
  seen.add(id);

  const files = {
    cert: { file: names.cert, path: [...path, 'cert'] },
    key: { file: names.key, path: [...path, 'key'] },
    ca: { file: names.ca, path: [...path, caKey] },
  };
  const cert = readPem(files.cert, problems);
  const key = readPem(files.key, problems);
  const ca = readPem(files.ca, problems);
  if (cert !== null && key !== null) checkPair(cert, key, files, problems);
  else if (cert !== null) tryAlone({ cert }, files.cert, 'is not a PEM certificate', problems);
  else if (key !== null) tryKey(key, files.key, problems);
  if (ca !== null) checkCaBundle(ca, files.ca, problems);
}

/** The pair in one context; only when that fails, each alone, to say which file is wrong. */
function checkPair(
  cert: Buffer,
  key: Buffer,
  files: { readonly cert: TlsFile; readonly key: TlsFile },
  problems: ProblemCollector,
): void {
  try {
    tls.createSecureContext({ cert, key });
    return;
  } catch (err) {
    const certOk = tryAlone({ cert }, files.cert, 'is not a PEM certificate', problems);
    const keyOk = tryKey(key, files.key, problems);
    if (certOk && keyOk) {
      problems.error(
        files.key.path,
        'SLUICE_E_CONFIG_FILE',
        `${files.key.file} is not the private key of ${files.cert.file} (${reason(err)})`,
        { hint: PAIR_HINT },
      );
    }
  }
}

/** A file's bytes; null when there is none, it is missing (reported already) or cannot be read. */
function readPem(f: TlsFile, problems: ProblemCollector): Buffer | null {
  if (f.file === null || !existsSync(f.file)) return null;
  try {
    return readFileSync(f.file);
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    if (code === 'EACCES') {
      // `sluice check` as an unprivileged user, a key readable by root only: start will read it.
      problems.warn(f.path, 'SLUICE_E_CONFIG_FILE', `${f.file} cannot be read by this user; not checked`, {
        hint: 'run the check as the user sluice starts as (root, when it drops privileges itself)',
      });
    } else {
      problems.error(f.path, 'SLUICE_E_CONFIG_FILE', `cannot read ${f.file}: ${reason(err)}`);
    }
    return null;
  }
}

function tryKey(key: Buffer, f: TlsFile, problems: ProblemCollector): boolean {
  if (/-----BEGIN ENCRYPTED PRIVATE KEY-----|Proc-Type: 4,ENCRYPTED/.test(key.toString('latin1'))) {
    problems.error(f.path, 'SLUICE_E_CONFIG_FILE', `${f.file} is an encrypted private key`, {
      hint: 'sluice takes no passphrase: give the key unencrypted (openssl pkey -in KEY -out KEY.plain), readable by root only',
    });
    return false;
  }
  return tryAlone({ key }, f, 'is not a PEM private key', problems);
}

function tryAlone(
  options: tls.SecureContextOptions,
  f: TlsFile,
  what: string,
  problems: ProblemCollector,
): boolean {
  try {
    tls.createSecureContext(options);
    return true;
  } catch (err) {
    problems.error(f.path, 'SLUICE_E_CONFIG_FILE', `${f.file} ${what} (${reason(err)})`, {
      hint: 'give the PEM file ("-----BEGIN ...-----" blocks), unencrypted',
    });
    return false;
  }
}

/** `CERTIFICATE` and OpenSSL's `TRUSTED CERTIFICATE` blocks, both of which Node takes as a CA. */
const CERTIFICATE_BLOCK =
  /-----BEGIN (?:TRUSTED )?CERTIFICATE-----[\s\S]*?-----END (?:TRUSTED )?CERTIFICATE-----/g;

/** OpenSSL skips what it cannot read in a CA bundle: a bundle with no certificate would trust nobody. */
function checkCaBundle(bytes: Buffer, f: TlsFile, problems: ProblemCollector): void {
  const blocks = bytes.toString('latin1').match(CERTIFICATE_BLOCK) ?? [];
  if (blocks.length === 0) {
    problems.error(f.path, 'SLUICE_E_CONFIG_FILE', `${f.file} holds no PEM certificate`, {
      hint: 'give the CA certificates as PEM ("-----BEGIN CERTIFICATE-----" blocks)',
    });
    return;
  }
  blocks.forEach((block, i) => {
    try {
      new X509Certificate(block);
    } catch (err) {
      problems.error(
        f.path,
        'SLUICE_E_CONFIG_FILE',
        `certificate ${i + 1} of ${f.file} cannot be read (${reason(err)})`,
      );
    }
  });
}

function reason(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}
