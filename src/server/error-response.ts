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

/** The status line and content-type of a code's raw answer, up to its content-length. */
function rawHead(code: ErrorCode): string {
  const status = ERROR_CATALOGUE[code].status;
  return `HTTP/1.1 ${status} ${STATUS_CODES[status] ?? ''}\r\ncontent-type: application/problem+json\r\n`;
}

/**
 * A complete HTTP/1.1 response that closes the connection, for errors found before a request
 * object exists and logged nowhere (the egress proxy's parse errors): written straight to the
 * socket, without an id. Cached per code.
 */
export function rawErrorResponse(code: ErrorCode): Buffer {
  let buf = rawCache.get(code);
  if (buf === undefined) {
    const body = problemBody(code, null);
    buf = Buffer.from(
      `${rawHead(code)}content-length: ${Buffer.byteLength(body)}\r\n` + 'connection: close\r\n\r\n' + body,
      'latin1',
    );
    rawCache.set(code, buf);
  }
  return buf;
}

/** What a code's raw refusal is without its request id: built once per code. */
interface RefusalParts {
  /** The status line and the fields before content-length. */
  readonly head: string;
  /** The problem document up to where `request_id` goes (problemBody writes it last). */
  readonly bodyOpen: string;
  readonly bodyOpenBytes: number;
}

const refusalCache = new Map<ErrorCode, RefusalParts>();

/** A raw refusal (see refusal) and the bytes of its body, for `bytes_out`. */
export interface RawRefusal {
  readonly text: string;
  readonly bodyBytes: number;
}

/**
 * A complete HTTP/1.1 response that closes the connection, for a refusal written before a request
 * object exists (a head the parser refused, 431, 408, 503 over max_connections) and logged with
 * `requestId`: the id goes out as `x-sluice-error-id` and the body's `request_id`, as on every
 * other error answer. The parts without the id are cached per code, so a flood of refusals costs
 * one string concat each (the id is 24 hex digits: nothing to escape).
 */
export function rawRefusal(code: ErrorCode, requestId: string): RawRefusal {
  let parts = refusalCache.get(code);
  if (parts === undefined) {
    const doc = problemBody(code, null);
    // `{...}\n` without its closing brace and newline.
    const bodyOpen = doc.slice(0, doc.lastIndexOf('}'));
    parts = {
      head: rawHead(code),
      bodyOpen,
      bodyOpenBytes: Buffer.byteLength(bodyOpen),
    };
    refusalCache.set(code, parts);
  }
  const tail = `,"request_id":"${requestId}"}\n`;
  const bodyBytes = parts.bodyOpenBytes + tail.length;
  return {
    text:
      `${parts.head}content-length: ${bodyBytes}\r\nx-sluice-error-id: ${requestId}\r\n` +
      `connection: close\r\n\r\n${parts.bodyOpen}${tail}`,
    bodyBytes,
  };
}

/** llhttp and Node errors on a connection that mean "too large" or "too slow" rather than "malformed". */
const CLIENT_ERROR_CODES: Readonly<Record<string, ErrorCode>> = {
  HPE_HEADER_OVERFLOW: 'SLUICE_E_CLIENT_HEADERS_TOO_LARGE',
  HPE_CHUNK_EXTENSIONS_OVERFLOW: 'SLUICE_E_CLIENT_BODY_TOO_LARGE',
  ERR_HTTP_REQUEST_TIMEOUT: 'SLUICE_E_CLIENT_TIMEOUT',
};

/** What Node's HTTP server hands a `clientError` listener besides the code. */
interface ParseError {
  readonly code?: string;
  /** The chunk being parsed when the error came. */
  readonly rawPacket?: Buffer;
  /** How far into `rawPacket` the parser got. */
  readonly bytesParsed?: number;
}

/** The answer to a `clientError` of Node's HTTP server: 414, 431, 413, 408, else 400. */
export function clientErrorCode(err: ParseError): ErrorCode {
  if (err.code === 'HPE_HEADER_OVERFLOW' && overflowInTarget(err)) return 'SLUICE_E_CLIENT_URI_TOO_LONG';
  return CLIENT_ERROR_CODES[err.code ?? ''] ?? 'SLUICE_E_CLIENT_BAD_REQUEST';
}

/**
 * Node counts the request target into its header limit (`max_header`), so a target longer than
 * that overflows the head before sluice sees `max_uri`: nginx answers such a request line 414, not
 * a header error. The parser stops at the end of the span that crossed the limit: for the target,
 * on the space before the version (`GET /aaa…a HTTP/1.1`); or at the end of a chunk that starts
 * the request line and has not ended it. (A chunk from the middle of a long target that crosses
 * the limit at its own end looks like one from the middle of a long header value: Node keeps the
 * head so far out of reach, so that one stays a 431.) A header name's span also ends on a space,
 * the one after its colon (`X-H2184: v`): a head of 2,000 short fields crossed the limit there and
 * was answered 414.
 */
function overflowInTarget(err: ParseError): boolean {
  const packet = err.rawPacket;
  const at = err.bytesParsed;
  if (packet === undefined || at === undefined) return false;
  if (packet[at] === 0x20) return at === 0 || packet[at - 1] !== 0x3a;
  return (
    at === packet.length &&
    packet.indexOf(0x0a) === -1 &&
    /^[A-Z]{3,10} \//.test(packet.toString('latin1', 0, 12))
  );
}
