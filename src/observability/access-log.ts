/**
 * The access log: one line per finished request with the fields of CONTRACT section 7. The
 * path is logged without its query string (queries carry tokens and personal data); headers are
 * never logged.
 */
import { STATUS_CODES } from 'node:http';
import type { Logger } from 'pino';
import type { Exchange } from '../server/exchange.js';

const STATUS_TEXT: Record<number, string> = { ...STATUS_CODES, 499: 'Client Closed Request' } as Record<
  number,
  string
>;

/** Writes the access line of a finished exchange. */
export function writeAccessLine(logger: Logger, x: Exchange): void {
  const line: Record<string, unknown> = {
    method: x.method,
    path: x.path === '' ? stripQuery(x.requestUri) : x.path,
    status: x.status,
    status_text: STATUS_TEXT[x.status] ?? '',
    duration_ms: Math.round(x.durationMs * 1000) / 1000,
    bytes_out: x.bytesOut,
    remote_addr: x.remoteAddr,
    server: x.server?.name ?? null,
    route: x.route?.name ?? null,
    request_id: x.requestId,
  };
  if (x.upstream !== null) {
    line.upstream = x.upstream;
    line.target = x.target;
    line.attempts = x.attempts;
  }
  if (x.errorCode !== null) {
    line.error = x.errorCode;
    if (x.errorMessage !== null) line.error_message = x.errorMessage;
  }
  logger.info(line, 'request');
}

function stripQuery(uri: string): string {
  const q = uri.indexOf('?');
  return q === -1 ? uri : uri.slice(0, q);
}
