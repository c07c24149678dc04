/**
 * Who the client is by its TLS certificate: the SPIFFE id of a verified client certificate
 * (`$client_spiffe_id`, rate-limit keys). Computed on first use and kept on the connection, so
 * requests that never ask cost nothing and a keep-alive connection parses its certificate once.
 *
 * Only a certificate that verified against the `client_ca` of the server the client named in SNI
 * counts: an unverified one (allowed when `require_client_cert` is off) is no identity at all.
 */
import type { Socket } from 'node:net';
import type { TLSSocket } from 'node:tls';
import { spiffeIdOf } from '../core/spiffe-id.js';

const kSpiffeId = Symbol('sluice.clientSpiffeId');

type IdentifiedSocket = Partial<TLSSocket> & { [kSpiffeId]?: string };

/**
 * The SPIFFE id (`spiffe://…`) of the client's verified certificate on this connection, or ''
 * when the connection is not TLS, has no verified certificate, or the certificate has no SPIFFE id.
 * Accepts the `req.socket` of HTTP/1.1 and HTTP/2 requests alike.
 */
export function clientSpiffeId(socket: Socket): string {
  const s = socket as unknown as IdentifiedSocket;
  try {
    const known = s[kSpiffeId];
    if (known !== undefined) return known;
    if (s.encrypted !== true) return '';
    const id = s.authorized === true ? spiffeIdOf(s.getPeerCertificate?.()?.subjectaltname) : '';
    s[kSpiffeId] = id;
    return id;
  } catch {
    // An HTTP/2 request's socket is a proxy that throws once its connection is gone.
    return '';
  }
}

/**
 * Marks a connection whose certificate, if any, was not checked against a `client_ca` of the
 * server it reached (another server on the address asked for certificates): no identity.
 */
export function withoutClientIdentity(socket: Socket): void {
  (socket as unknown as IdentifiedSocket)[kSpiffeId] = '';
}
