/**
 * The connection-specific fields of an HTTP/2 response head, dropped before Node sees them.
 *
 * RFC 9113 8.2.2 forbids them in HTTP/2, and Node refuses them by throwing from `respond()` when
 * the head goes out (ERR_HTTP2_INVALID_CONNECTION_HEADERS), inside a handler's `writeHead`, `write`
 * or `end`, or inside the fetch adapter's `writeHead`: the 500 that followed carried the same stored
 * fields and threw again, and the stream was never answered. Handlers written for HTTP/1.1 set them
 * (Express's `res.set('Transfer-Encoding')`, a fetch relay copying an upstream's `Keep-Alive`), so
 * they are dropped, as nginx and Envoy drop them; Node already drops `Connection` itself, silently.
 *
 * Node also refuses a field it sends once at most (Content-Type, Location, ETag…) given twice, which
 * HTTP/1.1 relays as given: an upstream's repeated field was a 502 over HTTP/2 only. Such a field
 * keeps its last value (sendableFields).
 */
import { CONNECTION_FIELDS, connectionTokens, headerName } from '../core/header-names.js';

/** The header store of an HTTP/2 compat response, as far as this needs it. */
export interface StoredFields {
  getHeaderNames(): string[];
  getHeader(name: string): unknown;
  setHeader(name: string, value: string): unknown;
  removeHeader(name: string): void;
}

/**
 * The fields Node's HTTP/2 sends once at most: `respond()` throws ERR_HTTP2_HEADER_SINGLE_VALUE for
 * one given twice (`kSingleValueHeaders` in Node's lib/internal/http2/util.js, Node 20 to 24,
 * pseudo-headers aside). HTTP/1.1 sends them as given.
 */
const SINGLE_VALUE_FIELDS: ReadonlySet<string> = new Set([
  'access-control-allow-credentials',
  'access-control-max-age',
  'access-control-request-method',
  'age',
  'authorization',
  'content-encoding',
  'content-language',
  'content-length',
  'content-location',
  'content-md5',
  'content-range',
  'content-type',
  'date',
  'dnt',
  'etag',
  'expires',
  'from',
  'host',
  'if-match',
  'if-modified-since',
  'if-none-match',
  'if-range',
  'if-unmodified-since',
  'last-modified',
  'location',
  'max-forwards',
  'proxy-authorization',
  'range',
  'referer',
  'retry-after',
  'tk',
  'upgrade-insecure-requests',
  'user-agent',
  'x-content-type-options',
]);

/** The codes of Node's refusals of a head that `sendableFields` removes the cause of. */
const REFUSED_HEAD: ReadonlySet<unknown> = new Set([
  'ERR_HTTP2_HEADER_SINGLE_VALUE',
  'ERR_HTTP2_INVALID_CONNECTION_HEADERS',
]);

/** Whether `err` is Node refusing a head for fields `sendableFields` can remove. */
export function refusedHead(err: unknown): boolean {
  return err instanceof Error && REFUSED_HEAD.has((err as { code?: unknown }).code);
}

/**
 * Makes the fields `res` stores sendable over HTTP/2 after Node refused them (`refusedHead`): a
 * single-value field given more than once keeps its last value, as nginx keeps an upstream's last
 * Content-Type, and connection-specific fields go. Only after a refusal, so an answer Node takes
 * (nearly all) pays nothing. Cost: a Set probe per stored field.
 */
export function sendableFields(res: StoredFields): void {
  for (const name of res.getHeaderNames()) {
    if (CONNECTION_FIELDS.has(name)) {
      res.removeHeader(name);
      continue;
    }
    if (!SINGLE_VALUE_FIELDS.has(name)) continue;
    const value = res.getHeader(name);
    if (Array.isArray(value) && value.length > 1) res.setHeader(name, String(value[value.length - 1]));
  }
}

/** The fields `writeHead` takes: an object, a flat `[name, value, …]` list, or a list of pairs. */
type HeadFields = Record<string, unknown> | unknown[] | undefined | null;

/**
 * `fields` without connection-specific ones and those a `Connection` names (the same object when
 * it has none, the usual case: no copy), after removing the same from what `res` stores.
 * `named` lists the names a `Connection` given to `setHeader` named (Node keeps no trace of it);
 * the names of a `Connection` in `fields` are added to it.
 * Cost: a Set probe per field given and per field stored.
 */
export function withoutConnectionFields(
  res: StoredFields,
  fields: HeadFields,
  named: string[] | null,
): HeadFields {
  let drop = named;
  let found = false;
  if (Array.isArray(fields)) {
    const pairs = fields.length > 0 && Array.isArray(fields[0]);
    const step = pairs ? 1 : 2;
    for (let i = 0; i < fields.length; i += step) {
      const name = pairs ? (fields[i] as unknown[])[0] : fields[i];
      const value = pairs ? (fields[i] as unknown[])[1] : fields[i + 1];
      if (typeof name !== 'string') continue;
      const lower = headerName(name);
      if (!CONNECTION_FIELDS.has(lower)) continue;
      found = true;
      if (lower === 'connection') drop = connectionTokens(String(value), drop);
    }
  } else if (fields !== null && typeof fields === 'object') {
    for (const name in fields) {
      const lower = headerName(name);
      if (!CONNECTION_FIELDS.has(lower)) continue;
      found = true;
      if (lower === 'connection') drop = connectionTokens(String(fields[name]), drop);
    }
  }
  for (const name of res.getHeaderNames())
    if (CONNECTION_FIELDS.has(name) || drop?.includes(name)) res.removeHeader(name);
  if (fields === null || fields === undefined || (!found && drop === null)) return fields;
  return keep(fields, (name) => {
    const lower = headerName(name);
    return !CONNECTION_FIELDS.has(lower) && !drop?.includes(lower);
  });
}

/** The fields whose name `keeps`, in the form they came in. */
function keep(fields: HeadFields, keeps: (name: string) => boolean): HeadFields {
  if (Array.isArray(fields)) {
    if (fields.length > 0 && Array.isArray(fields[0]))
      return fields.filter((pair) => keeps(String((pair as unknown[])[0])));
    const out: unknown[] = [];
    for (let i = 0; i < fields.length; i += 2)
      if (keeps(String(fields[i]))) out.push(fields[i], fields[i + 1]);
    return out;
  }
  const out: Record<string, unknown> = {};
  for (const name in fields) if (keeps(name)) out[name] = (fields as Record<string, unknown>)[name];
  return out;
}
