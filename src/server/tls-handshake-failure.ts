/**
 * Why a TLS connection was refused before it carried a request, as the `reason` label of
 * `sluice_tls_handshake_failures_total` and of the log line of a refused client certificate.
 *
 * Node accepts every client certificate inside the handshake (its OpenSSL verify callback returns
 * 1, and the verdict is read once the handshake is done), so a certificate that does not verify is
 * not refused with a TLS alert: `rejectUnauthorized` closes the connection after the handshake, as
 * sluice does itself where the servers of an address ask differently. Only a missing certificate
 * is refused by OpenSSL itself, with a `certificate_required` (TLS 1.3) or `handshake_failure`
 * (TLS 1.2) alert. The log line and the count are what tell the two apart from a silent close.
 */

/** The reasons, every one present (at 0) in the metric from the start. */
export const TLS_FAILURE_REASONS = [
  /** A server requires a client certificate and none was sent. */
  'client_cert_missing',
  /** The client certificate does not verify against `client_ca` (another CA, expired, wrong EKU). */
  'client_cert_rejected',
  /** A TLS version below the server's `min_version` (or below TLS 1.2). */
  'version',
  /** Any other TLS error: no shared cipher or group, an alert from the client, bytes that are not TLS. */
  'protocol',
  /** Plain HTTP sent to the TLS port (answered 400 in plain text). */
  'plain_http',
  /** The handshake outlasted `header_timeout`. */
  'timeout',
  /** The client closed or reset the connection before the handshake was done. */
  'closed',
] as const;

export type TlsFailureReason = (typeof TLS_FAILURE_REASONS)[number];

/** A client certificate refusal is logged; the other reasons are counted only (scanners, old clients). */
export function isClientCertFailure(reason: TlsFailureReason): boolean {
  return reason === 'client_cert_missing' || reason === 'client_cert_rejected';
}

/** OpenSSL's code for a required certificate the client did not send. */
export const NO_CLIENT_CERT = 'ERR_SSL_PEER_DID_NOT_RETURN_A_CERTIFICATE';

/**
 * The reason of a failed handshake, from Node's error code and the socket's `authorizationError`
 * (the X.509 verification code, set when `rejectUnauthorized` closed the connection; Node then
 * reports the close as ECONNRESET "socket hang up").
 */
export function handshakeFailureReason(
  code: string | undefined,
  authorizationError: string | null | undefined,
): TlsFailureReason {
  if (authorizationError) return 'client_cert_rejected';
  switch (code) {
    case NO_CLIENT_CERT:
      return 'client_cert_missing';
    case 'ERR_SSL_UNSUPPORTED_PROTOCOL':
    case 'ERR_SSL_TLSV1_ALERT_PROTOCOL_VERSION':
    case 'ERR_SSL_NO_PROTOCOLS_AVAILABLE':
      return 'version';
    case 'ERR_SSL_HTTP_REQUEST':
      return 'plain_http';
    case 'ERR_TLS_HANDSHAKE_TIMEOUT':
      return 'timeout';
    case 'ECONNRESET':
    case 'EPIPE':
      return 'closed';
    default:
      return 'protocol';
  }
}
