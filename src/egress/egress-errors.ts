/**
 * The egress proxy's own error answers, in the catalogue's form (status, title, hint), and the
 * `application/problem+json` responses for them and for the upstream errors of the main
 * catalogue (502 connect failure, 504 timeout). Each answer carries an error id, also logged,
 * that ties the client's response to its log line.
 *
 * The codes are in the main catalogue (`src/errors/catalogue.ts`, `docs/errors.md`).
 */
import { STATUS_CODES } from 'node:http';
import { ERROR_CATALOGUE, type ErrorCode, type ErrorSpec } from '../errors/catalogue.js';

/** The codes only the egress proxy answers with (specs in the main catalogue). */
export const EGRESS_CODES = [
  'SLUICE_E_AUTH_EGRESS_DENIED',
  'SLUICE_E_CLIENT_EGRESS_LOOP',
  'SLUICE_E_CLIENT_EGRESS_NOT_PROXY',
  'SLUICE_E_CLIENT_EGRESS_TARGET',
] as const satisfies readonly ErrorCode[];

/** An error code of the egress proxy. */
export type EgressErrorCode = (typeof EGRESS_CODES)[number];

/** Any code an egress answer can carry. */
export type EgressAnswerCode = ErrorCode;

function spec(code: EgressAnswerCode): ErrorSpec {
  return ERROR_CATALOGUE[code];
}

/** The HTTP status of an answer code. */
export function egressStatus(code: EgressAnswerCode): number {
  return spec(code).status;
}

/**
 * Details for codes whose catalogue hint speaks of the gateway's settings (`proxy.timeouts`,
 * `limits.*`) or upstreams, which the egress proxy does not have: its timeouts and limits are fixed.
 */
const EGRESS_DETAILS: Partial<Record<EgressAnswerCode, string>> = {
  SLUICE_E_CLIENT_TIMEOUT: 'the request head did not arrive within 30 s (the egress limit)',
  SLUICE_E_CLIENT_URI_TOO_LONG: 'the request target is over 16 KiB (the egress limit)',
  SLUICE_E_CLIENT_HEADERS_TOO_LARGE: 'the request head is over 16 KiB (the egress limit)',
  SLUICE_E_UPSTREAM_TIMEOUT:
    'the origin did not connect within 10 s or answer within 60 s (the egress timeouts)',
  SLUICE_E_UPSTREAM_RESET: 'the origin closed or reset the connection before a complete answer',
  SLUICE_E_RUNTIME_FD_LIMIT:
    'sluice is out of file descriptors and could not open a connection to the origin; retry shortly',
};

/** The problem document (RFC 9457) for an answer code. */
export function egressProblemBody(code: EgressAnswerCode, errorId: string): string {
  const s = spec(code);
  return `${JSON.stringify({
    type: 'about:blank',
    title: STATUS_CODES[s.status] ?? s.title,
    status: s.status,
    code,
    detail: EGRESS_DETAILS[code] ?? s.hint,
    request_id: errorId,
  })}\n`;
}

/**
 * A complete HTTP/1.1 answer that closes the connection, written straight to a socket (CONNECT
 * has no response object).
 */
export function rawEgressResponse(code: EgressAnswerCode, errorId: string): string {
  const status = spec(code).status;
  const body = egressProblemBody(code, errorId);
  return (
    `HTTP/1.1 ${status} ${STATUS_CODES[status] ?? ''}\r\n` +
    'content-type: application/problem+json\r\n' +
    `content-length: ${Buffer.byteLength(body)}\r\n` +
    `x-sluice-error-id: ${errorId}\r\n` +
    'connection: close\r\n\r\n' +
    body
  );
}
