/**
 * TLS to an upstream's targets (`upstreams.*.tls`): the CA that verifies them, a client
 * certificate for mTLS, the name sent in SNI and checked, and SPIFFE id pinning. Connections stay
 * HTTP/1.1 (ALPN `http/1.1`).
 *
 * - The SNI name is fixed per target: `server_name`, else the host of the target's URL (none for
 *   an IP address). undici would otherwise take it from each request's Host header, which with
 *   `preserve_host` is the client's host, and reconnect whenever it changes.
 * - `spiffe_id` replaces the host-name check: the certificate's URI SAN must be exactly that id
 *   (SPIFFE certificates carry no DNS name); the chain is still verified against `ca`. A mismatch
 *   fails the connection like any certificate error (502, SLUICE_E_UPSTREAM_CONNECT), with a
 *   message naming both ids.
 * - The files are watched (core/watched-files.ts): when the client certificate rotates, targets
 *   open new pools with it; connections already open finish on the old one. A worker started in
 *   place of a dead one while the files cannot be used starts on the node's copies of them
 *   (core/tls-file-copies.ts) and loads the files once they change.
 *
 * Settings with equal files share one instance across targets and config generations
 * (reference-counted), so a reload that keeps them keeps a single file watch.
 */
import { readFileSync } from 'node:fs';
import { isIP } from 'node:net';
import tls from 'node:tls';
import type { buildConnector } from 'undici';
import type { ResolvedUpstreamTls } from '../config/types.js';
import { spiffeIdOf } from '../core/spiffe-id.js';
import { type FileReader, TlsFileCopies } from '../core/tls-file-copies.js';
import { undici } from '../core/undici.js';
import { WatchedFiles } from '../core/watched-files.js';

/** The certificate material of an upstream's `tls:` as read from disk. */
interface UpstreamTlsFiles {
  readonly ca: Buffer | null;
  readonly cert: Buffer | null;
  readonly key: Buffer | null;
}

/** What becomes of an upstream's TLS files that cannot be used, for the runtime's logger. */
export interface UpstreamTlsLog {
  /** A client certificate or CA that could not be reloaded (the previous one stays). */
  readonly reloadFailed: (err: unknown, info: Record<string, unknown>) => void;
  /** Files that cannot be used as a worker starts: the node's copies of them are used (tls-file-copies.ts). */
  readonly copyInUse: (err: unknown, info: Record<string, unknown>) => void;
}

let log: UpstreamTlsLog = {
  reloadFailed: (err, info) =>
    process.emitWarning(
      `sluice: upstream TLS files ${JSON.stringify(info)} cannot be reloaded: ${String(err)}`,
    ),
  copyInUse: (err, info) =>
    process.emitWarning(
      `sluice: upstream TLS files ${JSON.stringify(info)} cannot be used (${String(err)}); using the node's copies`,
    ),
};

/** Where the failures of upstream TLS files are reported (the runtime's logger). */
export function setUpstreamTlsLog(to: UpstreamTlsLog): void {
  log = to;
}

/** The identity of an upstream's `tls:` settings (targets with different keys are different targets). */
export function upstreamTlsKey(config: ResolvedUpstreamTls | null): string {
  return config === null
    ? ''
    : JSON.stringify([config.ca, config.cert, config.key, config.serverName, config.spiffeId]);
}

/**
 * A `checkServerIdentity` that accepts exactly the certificate whose SPIFFE id (its URI SAN) is
 * `expected`, whatever host name it was reached by. The certificate must be a valid X.509-SVID
 * (spiffeIdOf): a second URI SAN, or an id with a query or fragment, is no id.
 */
export function spiffeIdentityCheck(
  expected: string,
): (host: string, cert: tls.PeerCertificate) => Error | undefined {
  return (_host, cert) => {
    const actual = spiffeIdOf(cert.subjectaltname);
    if (actual === expected) return undefined;
    const err = new Error(
      actual === ''
        ? `upstream certificate has no single valid SPIFFE id (one URI SAN, spiffe://, no query or fragment), expected ${expected}`
        : `upstream certificate SPIFFE id ${actual}, expected ${expected}`,
    ) as Error & { code: string };
    // The code of a host-name mismatch: the same failure, so the same answer (502, connect).
    err.code = 'ERR_TLS_CERT_ALTNAME_INVALID';
    return err;
  };
}

/** The name a target's TLS connections send in SNI and verify (undefined: none, e.g. an IP address). */
export function upstreamServerName(config: ResolvedUpstreamTls | null, hostname: string): string | undefined {
  if (config?.serverName != null) return config.serverName;
  const bare = hostname.startsWith('[') ? hostname.slice(1, -1) : hostname;
  return isIP(bare) === 0 ? hostname : undefined;
}

/** The host of a `host:port` (brackets of an IPv6 literal kept). */
export function hostOf(hostPort: string): string {
  const end = hostPort.startsWith('[') ? hostPort.indexOf(']') + 1 : hostPort.lastIndexOf(':');
  return end <= 0 || end >= hostPort.length ? hostPort : hostPort.slice(0, end);
}

/** The undici connector for an https target: fixed SNI name, the upstream's CA and client certificate. */
export function httpsConnector(
  tlsOptions: tls.ConnectionOptions,
  servername: string | undefined,
  timeoutMs: number,
): buildConnector.connector {
  const connector = undici().buildConnector({ ...tlsOptions, timeout: timeoutMs });
  // The request's own servername (derived from its Host header) is replaced by the target's.
  return (options, callback) => connector({ ...options, servername: servername ?? '' }, callback);
}

/** An upstream's TLS settings with their files loaded and watched. */
export class UpstreamTls {
  readonly config: ResolvedUpstreamTls;
  readonly key: string;
  readonly #watch: WatchedFiles<tls.ConnectionOptions> | null;
  readonly #static: tls.ConnectionOptions;
  readonly #subscribers = new Set<() => void>();
  #refs = 0;

  /** Reads the files now (else the copies a starting worker holds); throws when they cannot be used. */
  constructor(config: ResolvedUpstreamTls, intervalMs?: number) {
    this.config = config;
    this.key = upstreamTlsKey(config);
    const files = [config.ca, config.cert, config.key].filter((f): f is string => f !== null);
    const named = { ca: config.ca, cert: config.cert, key: config.key };
    this.#static = files.length === 0 ? connectionOptions(config, { ca: null, cert: null, key: null }) : {};
    this.#watch =
      files.length === 0
        ? null
        : new WatchedFiles(
            files,
            () => connectionOptions(config, readFiles(config)),
            {
              onReload: () => {
                for (const fn of this.#subscribers) fn();
              },
              onError: (err) => log.reloadFailed(err, named),
            },
            intervalMs,
            (err) => {
              const { value, report } = TlsFileCopies.fallBack(
                err,
                (read) => connectionOptions(config, readFiles(config, read)),
                config.cert ?? config.ca,
              );
              log.copyInUse(err, { ...named, ...report });
              return value;
            },
          );
  }

  /** The options for new connections (the files as last loaded). */
  get connectionOptions(): tls.ConnectionOptions {
    return this.#watch?.value ?? this.#static;
  }

  /** Calls `fn` whenever the files were reloaded; returns the unsubscribe. */
  subscribe(fn: () => void): () => void {
    this.#subscribers.add(fn);
    return () => this.#subscribers.delete(fn);
  }

  static readonly #shared = new Map<string, UpstreamTls>();

  /** The shared instance for these settings, created (files read) on first use. */
  static acquire(config: ResolvedUpstreamTls): UpstreamTls {
    const key = upstreamTlsKey(config);
    let instance = UpstreamTls.#shared.get(key);
    if (instance === undefined) {
      instance = new UpstreamTls(config);
      UpstreamTls.#shared.set(key, instance);
    }
    instance.#refs++;
    return instance;
  }

  /** Gives back an instance from `acquire`; the last release stops the file watch. */
  release(): void {
    if (--this.#refs > 0) return;
    this.#watch?.close();
    if (UpstreamTls.#shared.get(this.key) === this) UpstreamTls.#shared.delete(this.key);
  }
}

/**
 * Reads an upstream's TLS files (from disk, or with `read` from the node's copies) and builds their
 * context once; throws when they do not make one.
 */
export function checkUpstreamTls(config: ResolvedUpstreamTls, read: FileReader = readFileSync): void {
  connectionOptions(config, readFiles(config, read));
}

function readFiles(config: ResolvedUpstreamTls, read: FileReader = readFileSync): UpstreamTlsFiles {
  return {
    ca: config.ca === null ? null : read(config.ca),
    cert: config.cert === null ? null : read(config.cert),
    key: config.key === null ? null : read(config.key),
  };
}

/**
 * Node TLS options for an upstream. The secure context is built once here (a broken pair throws,
 * and the previous options stay), not by every `tls.connect`; without `ca` it trusts Node's roots.
 */
function connectionOptions(config: ResolvedUpstreamTls, files: UpstreamTlsFiles): tls.ConnectionOptions {
  const secureContext = tls.createSecureContext({
    ...(files.ca === null ? {} : { ca: files.ca }),
    ...(files.cert === null ? {} : { cert: files.cert }),
    ...(files.key === null ? {} : { key: files.key }),
  });
  return {
    secureContext,
    rejectUnauthorized: true,
    ...(config.spiffeId === null ? {} : { checkServerIdentity: spiffeIdentityCheck(config.spiffeId) }),
  };
}
