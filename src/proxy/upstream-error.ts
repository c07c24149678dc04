/**
 * Upstream failures mapped to the catalogue (CONTRACT section 3): connect failures and resets
 * are 502, timeouts 504, malformed responses 502 and never passed on; a connection this host
 * could not open for want of a descriptor 503, blamed on no target.
 */
import type { ErrorCode } from '../errors/catalogue.js';

const CONNECT_CODES = new Set([
  'ECONNREFUSED',
  'ENOTFOUND',
  'EAI_AGAIN',
  'EHOSTUNREACH',
  'ENETUNREACH',
  'EADDRNOTAVAIL',
  'ERR_TLS_CERT_ALTNAME_INVALID',
  'UNABLE_TO_VERIFY_LEAF_SIGNATURE',
  'DEPTH_ZERO_SELF_SIGNED_CERT',
  'SELF_SIGNED_CERT_IN_CHAIN',
  'CERT_HAS_EXPIRED',
  // sluice's own client: any other failure before the connection was ready (h1-client.ts)
  'SLUICE_CONNECT_FAILED',
]);

const TIMEOUT_CODES = new Set([
  'UND_ERR_CONNECT_TIMEOUT',
  'UND_ERR_HEADERS_TIMEOUT',
  'UND_ERR_BODY_TIMEOUT',
  'ETIMEDOUT',
  'SLUICE_SEND_TIMEOUT',
  // sluice's own client (h1-client.ts)
  'SLUICE_CONNECT_TIMEOUT',
  'SLUICE_READ_TIMEOUT',
]);

const INVALID_CODES = new Set([
  'UND_ERR_RES_CONTENT_LENGTH_MISMATCH',
  'UND_ERR_HEADERS_OVERFLOW',
  'UND_ERR_RES_EXCEEDED_MAX_SIZE',
  'ERR_INVALID_CHAR',
  'ERR_HTTP_INVALID_HEADER_VALUE',
  'ERR_INVALID_HTTP_TOKEN',
  'ERR_HTTP_INVALID_STATUS_CODE',
  'SLUICE_INVALID_RESPONSE',
]);

/**
 * undici refuses some requests before sending anything (a header it will not send, an argument
 * out of range). Nothing reached the target, so this is sluice's fault, not the target's: a 500
 * that neither counts against the target nor moves on to another.
 */
export const REFUSED_BY_UNDICI: ReadonlySet<string> = new Set([
  'UND_ERR_INVALID_ARG',
  'UND_ERR_NOT_SUPPORTED',
]);

/**
 * Failures of this host, not of the target, which never saw the attempt: out of file descriptors
 * (EMFILE: the process's nofile limit; ENFILE: the host's fs.file-max). Counted against the target,
 * one process short of descriptors took every target out for fail_timeout, and its clients got
 * 502 "no live upstreams" long after it had descriptors again. nginx likewise answers a failed
 * `socket()` 500 and blames no peer. (EADDRNOTAVAIL stays a connect failure of the target, as in
 * nginx: no free port toward it, or an address of a family this host has none of, an IPv6 target
 * on a host without IPv6, which fails every time and must rest like any unreachable target.)
 */
const FD_CODES: ReadonlySet<string> = new Set(['EMFILE', 'ENFILE']);

/** The catalogue code of an attempt that failed on this host's side (FD_CODES). */
export type LocalFailureCode = 'SLUICE_E_RUNTIME_FD_LIMIT';

/** Whether `code` says the attempt failed on this host's side, the target blameless. */
export function isLocalFailure(code: ErrorCode): code is LocalFailureCode {
  return code === 'SLUICE_E_RUNTIME_FD_LIMIT';
}

/** The catalogue code for an error raised while talking to a target. */
export function upstreamErrorCode(err: unknown): ErrorCode {
  const e =
    typeof err === 'object' && err !== null
      ? (err as { code?: unknown; name?: unknown; syscall?: unknown })
      : {};
  const code = String(e.code ?? '');
  // undici's HTTPParserError (a malformed response) often carries no code at all.
  if (e.name === 'HTTPParserError') return 'SLUICE_E_UPSTREAM_INVALID_RESPONSE';
  // sluice's own client refuses the same way (a request target or header value it cannot write).
  if (REFUSED_BY_UNDICI.has(code) || code === 'SLUICE_INVALID_REQUEST') return 'SLUICE_E_RUNTIME_INTERNAL';
  if (TIMEOUT_CODES.has(code)) return 'SLUICE_E_UPSTREAM_TIMEOUT';
  // Before the lookup below: a lookup can fail for want of a descriptor too (EMFILE, getaddrinfo).
  if (FD_CODES.has(code)) return 'SLUICE_E_RUNTIME_FD_LIMIT';
  // A failed name lookup, whatever its code (EINVAL for a name over 253 octets, ENODATA, EAI_FAIL):
  // nothing was connected to.
  if (CONNECT_CODES.has(code) || e.syscall === 'getaddrinfo') return 'SLUICE_E_UPSTREAM_CONNECT';
  if (INVALID_CODES.has(code) || code.startsWith('HPE_')) return 'SLUICE_E_UPSTREAM_INVALID_RESPONSE';
  return 'SLUICE_E_UPSTREAM_RESET';
}

/**
 * undici checks a response's Content-Length against its body even for 204 and 304, which have no
 * body whatever their Content-Length says (RFC 9110 8.6, as llhttp parses them): such an answer is
 * complete, not the broken one undici's error would make of it.
 */
export function isBodylessLengthMismatch(status: number, err: unknown): boolean {
  return (
    (status === 204 || status === 304) &&
    (err as { code?: unknown } | null)?.code === 'UND_ERR_RES_CONTENT_LENGTH_MISMATCH'
  );
}
