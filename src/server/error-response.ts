/**
 * Error answers to clients: `application/problem+json` (RFC 9457) with the catalogue's code, and
 * the request id that ties the answer to its log line (also sent as `x-sluice-error-id`).
 */
import { STATUS_CODES } from 'node:http';
import { ERROR_CATALOGUE, type ErrorCode } from '../errors/catalogue.js';

/** The problem document for an error code. */
export function problemBody(code: ErrorCode, requestId: string | null): string {
  const spec = ERROR_CATALOGUE[code];
  const doc: Record<string, unknown> = {
    type: 'about:blank',
    title: STATUS_CODES[spec.status] ?? spec.title,
    status: spec.status,
    code,
    detail: spec.hint,
  };
  if (requestId !== null) doc.request_id = requestId;
  return `${JSON.stringify(doc)}\n`;
}

const rawCache = new Map<ErrorCode, Buffer>();

/**
 * A complete HTTP/1.1 response that closes the connection, for errors found before a request
 * object exists (parse errors, timeouts): written straight to the socket. Cached per code.
 */
export function rawErrorResponse(code: ErrorCode): Buffer {
  let buf = rawCache.get(code);
  if (buf === undefined) {
    const status = ERROR_CATALOGUE[code].status;
    const body = problemBody(code, null);
    buf = Buffer.from(
      `HTTP/1.1 ${status} ${STATUS_CODES[status] ?? ''}\r\n` +
        'content-type: application/problem+json\r\n' +
        `content-length: ${Buffer.byteLength(body)}\r\n` +
        'connection: close\r\n\r\n' +
        body,
      'latin1',
    );
    rawCache.set(code, buf);
  }
  return buf;
}

/** llhttp and Node errors on a connection that mean "too large" or "too slow" rather than "malformed". */
const CLIENT_ERROR_CODES: Readonly<Record<string, ErrorCode>> = {
  HPE_HEADER_OVERFLOW: 'SLUICE_E_CLIENT_HEADERS_TOO_LARGE',
  HPE_CHUNK_EXTENSIONS_OVERFLOW: 'SLUICE_E_CLIENT_BODY_TOO_LARGE',
  ERR_HTTP_REQUEST_TIMEOUT: 'SLUICE_E_CLIENT_TIMEOUT',
};

/** The answer to a `clientError` of Node's HTTP server: 431, 413, 408, else 400. */
export function clientErrorCode(err: { code?: string }): ErrorCode {
  return CLIENT_ERROR_CODES[err.code ?? ''] ?? 'SLUICE_E_CLIENT_BAD_REQUEST';
}
