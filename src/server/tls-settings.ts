/**
 * The TLS parameters sluice terminates with, and a server's secure context built from its files.
 *
 * Ciphers follow Mozilla's "intermediate" profile (TLS 1.2 AEAD suites with forward secrecy, and
 * the three TLS 1.3 suites); the server's order is preferred; no OCSP stapling; TLS 1.2 at least.
 */
import { createHash } from 'node:crypto';
import { readFileSync } from 'node:fs';
import tls from 'node:tls';
import type { ResolvedServerTls } from '../config/types.js';
import type { FileReader } from '../core/tls-file-copies.js';

/** Mozilla intermediate (v5.7): TLS 1.3 suites, then TLS 1.2 ECDHE and DHE AEAD suites. */
export const TLS_CIPHERS = [
  'TLS_AES_128_GCM_SHA256',
  'TLS_AES_256_GCM_SHA384',
  'TLS_CHACHA20_POLY1305_SHA256',
  'ECDHE-ECDSA-AES128-GCM-SHA256',
  'ECDHE-RSA-AES128-GCM-SHA256',
  'ECDHE-ECDSA-AES256-GCM-SHA384',
  'ECDHE-RSA-AES256-GCM-SHA384',
  'ECDHE-ECDSA-CHACHA20-POLY1305',
  'ECDHE-RSA-CHACHA20-POLY1305',
  'DHE-RSA-AES128-GCM-SHA256',
  'DHE-RSA-AES256-GCM-SHA384',
  'DHE-RSA-CHACHA20-POLY1305',
].join(':');

/** Mozilla intermediate key-exchange groups. */
export const TLS_ECDH_CURVES = 'X25519:prime256v1:secp384r1';

/** The files of a server's `tls:` as read from disk. */
export interface ServerTlsFiles {
  readonly cert: Buffer;
  readonly key: Buffer;
  readonly clientCa: Buffer | null;
}

/** A server's secure context and the options it was built from (for `Server.setSecureContext`). */
export interface ServerSecureContext {
  readonly options: tls.SecureContextOptions;
  readonly context: tls.SecureContext;
  /** What it asks of client certificates, the client CA bundle's content included (see `clientCertPolicy`). */
  readonly clientCerts: string;
}

/** The files a server's `tls:` names, in a fixed order (for watching). */
export function serverTlsFiles(config: ResolvedServerTls): string[] {
  return config.clientCa === null ? [config.cert, config.key] : [config.cert, config.key, config.clientCa];
}

/**
 * Reads a server's certificate, key and client CA (from disk, or with `read` from the node's
 * copies: tls-file-copies.ts), and builds its secure context; throws when they do not make one.
 */
export function loadServerTls(
  config: ResolvedServerTls,
  read: FileReader = readFileSync,
): ServerSecureContext {
  const files: ServerTlsFiles = {
    cert: read(config.cert),
    key: read(config.key),
    clientCa: config.clientCa === null ? null : read(config.clientCa),
  };
  const options = secureContextOptions(config, files);
  return { options, context: tls.createSecureContext(options), clientCerts: clientCertPolicy(config, files) };
}

/** The secure-context options of a server's `tls:` with its files read. */
export function secureContextOptions(
  config: ResolvedServerTls,
  files: ServerTlsFiles,
): tls.SecureContextOptions {
  return {
    cert: files.cert,
    key: files.key,
    ...(files.clientCa === null ? {} : { ca: files.clientCa }),
    minVersion: config.minVersion,
    ciphers: TLS_CIPHERS,
    ecdhCurve: TLS_ECDH_CURVES,
    // Without DH parameters OpenSSL silently drops the DHE-RSA suites above, and a client that
    // offers only those gets handshake_failure. 'auto' lets OpenSSL pick a well-known group
    // matched to the certificate key's strength (2048-bit for RSA 2048).
    dhparam: 'auto',
    honorCipherOrder: true,
    // Set on every context: OpenSSL refuses to resume a session whose context has none while
    // client certificates are requested ("session id context uninitialized").
    sessionIdContext: sessionIdContext(config, files),
  };
}

/** The identity of a server's `tls:` settings: equal keys build equal contexts from the same files. */
export function serverTlsKey(config: ResolvedServerTls): string {
  return JSON.stringify([
    config.cert,
    config.key,
    config.clientCa,
    config.minVersion,
    config.requireClientCert,
  ]);
}

/**
 * OpenSSL resumes a session (TLS 1.2 id or ticket, TLS 1.3 ticket) only under the session id
 * context it was made in, and a resumed session keeps the client certificate verified then. The
 * client CA bundle's content is folded in (as nginx folds its client CA list) so that a rotated
 * bundle no longer honours sessions verified by the old one; a rotated certificate or key leaves
 * the context, and resumption, as they were. 32 hex characters: OpenSSL's limit is 32 bytes.
 */
function sessionIdContext(config: ResolvedServerTls, files: ServerTlsFiles): string {
  const hash = createHash('sha256').update(serverTlsKey(config));
  if (files.clientCa !== null) hash.update('\0').update(files.clientCa);
  return hash.digest('hex').slice(0, 32);
}

/**
 * What a server asks of client certificates ('' when nothing): servers with equal keys verify
 * alike, so a TLS connection made for one is as good for the other.
 */
export function clientCertKey(config: ResolvedServerTls | null): string {
  if (config === null || config.clientCa === null) return '';
  return `${config.clientCa}\n${config.requireClientCert}`;
}

/**
 * `clientCertKey` with the digest of the client CA bundle as read ('' when no certificate is
 * asked for): a connection whose handshake was made under another value was not verified as its
 * server now verifies (tls-terminator.ts ends it). The server's own certificate is not part of it.
 */
function clientCertPolicy(config: ResolvedServerTls, files: ServerTlsFiles): string {
  const key = clientCertKey(config);
  if (files.clientCa === null) return key;
  return `${key}\n${createHash('sha256').update(files.clientCa).digest('hex')}`;
}
