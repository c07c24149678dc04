/**
 * The catalogue of nginx directives: for each one, in each context, whether the import converts
 * it, needs no line because sluice already behaves that way, or drops it with a warning and
 * why. Every directive of the file gets exactly one of the three, so nothing is lost without a
 * line on stderr.
 */
import type { NginxDirective } from './ast.js';
import { hostTest } from './convert-host-if.js';
import { isPlainSchemeTest } from './convert-scheme-if.js';
import type { WarningList } from './warnings.js';

/** Where a directive is written. */
export type NginxContext = 'main' | 'http' | 'server' | 'location' | 'upstream';

/** What happens to a directive: converted, carried over as sluice's own behaviour, or dropped with this reason. */
export type Disposition =
  | { readonly kind: 'converted' }
  | { readonly kind: 'silent' }
  | { readonly kind: 'dropped'; readonly reason: string };

const PROXY = [
  'proxy_set_header',
  'proxy_hide_header',
  'proxy_pass_header',
  'add_header',
  'proxy_connect_timeout',
  'proxy_read_timeout',
  'proxy_send_timeout',
  'proxy_next_upstream',
  'proxy_next_upstream_tries',
  'proxy_next_upstream_timeout',
  'proxy_http_version',
  'proxy_redirect',
  'allow',
  'deny',
  'limit_req',
  'limit_req_status',
  'proxy_ssl_trusted_certificate',
  'proxy_ssl_certificate',
  'proxy_ssl_certificate_key',
  'proxy_ssl_name',
  'proxy_ssl_verify',
];
const SERVER_WIDE = [
  'client_max_body_size',
  'client_header_timeout',
  'send_timeout',
  'keepalive_timeout',
  'keepalive_requests',
  'ssl_certificate',
  'ssl_certificate_key',
  'ssl_protocols',
  'ssl_client_certificate',
  'ssl_verify_client',
  'ssl',
  'http2',
  'set_real_ip_from',
  'real_ip_header',
  'real_ip_recursive',
  'merge_slashes',
];

/** Converted directives per context. */
const CONVERTED: Readonly<Record<NginxContext, ReadonlySet<string>>> = {
  main: new Set(['http', 'worker_processes', 'user', 'worker_shutdown_timeout']),
  http: new Set([...PROXY, ...SERVER_WIDE, 'server', 'upstream', 'map', 'limit_req_zone', 'access_log']),
  server: new Set([
    ...PROXY,
    ...SERVER_WIDE,
    'listen',
    'server_name',
    'location',
    'return',
    'rewrite',
    'default_type',
    'access_log',
  ]),
  location: new Set([
    ...PROXY,
    'location',
    'limit_except',
    'client_max_body_size',
    'proxy_pass',
    'return',
    'rewrite',
    'try_files',
    'default_type',
    'access_log',
  ]),
  upstream: new Set(['server', 'least_conn', 'ip_hash', 'hash', 'random', 'keepalive', 'keepalive_timeout']),
};

/**
 * Directives that ask, with this value, for what sluice does anyway: they are carried over as
 * sluice's behaviour and need no line in the YAML. Any other value is dropped with a warning.
 */
const SAME_AS_SLUICE: Readonly<Record<string, { readonly value: string; readonly otherwise: string }>> = {
  tcp_nodelay: { value: 'on', otherwise: 'sluice always sets TCP_NODELAY on client connections' },
  server_tokens: { value: 'off', otherwise: 'sluice sends no Server header of its own' },
  // Any other value is warned (and refused, 403) where a route applies it: convert-location.ts.
  auth_basic: { value: 'off', otherwise: '' },
  auth_request: { value: 'off', otherwise: '' },
  proxy_ssl_server_name: {
    value: 'on',
    otherwise: 'sluice always sends SNI to a target named by a host name',
  },
};

const FILES = 'sluice serves no files from disk';
const BUFFERS = 'sluice streams bodies both ways with back-pressure; there are no proxy buffers to size';
const TLS_PROFILE = "sluice uses Mozilla's intermediate TLS profile (docs/tls.md)";
const TLS_SESSIONS = 'sluice manages TLS sessions itself (session tickets)';
const OTHER_PROTOCOL = 'sluice proxies HTTP only';
const HTTP3 = 'sluice serves HTTP/1.1 and HTTP/2 over TCP; HTTP/3 (QUIC, over UDP) is not carried over';
const PROCESS = "a process setting of nginx's with no sluice equivalent";
const AUTH = 'sluice has no per-route HTTP authentication; put it in the app or in a handler route';
const AUTH_FILE = 'part of auth_basic or auth_request, which sluice cannot check (see their warning)';
const MIME = 'sluice sets no Content-Type from file extensions';

/** Why an `if` is not carried over. */
export const IF_REASON = 'sluice routes match paths, methods and headers only, never conditions on variables';

/** Why a directive is dropped, by name. */
const REASONS: Readonly<Record<string, string>> = {
  sendfile: FILES,
  tcp_nopush: FILES,
  aio: FILES,
  directio: FILES,
  output_buffers: FILES,
  root: FILES,
  alias: FILES,
  index: FILES,
  autoindex: FILES,
  try_files: FILES,
  expires:
    'sluice sets no Expires or Cache-Control; set them with add_header equivalents (response_headers.set)',
  etag: FILES,
  open_file_cache: FILES,
  open_file_cache_valid: FILES,
  open_file_cache_min_uses: FILES,
  open_file_cache_errors: FILES,
  types: MIME,
  default_type: MIME,
  charset: MIME,
  gzip: 'sluice does not compress responses; let the upstream compress them',
  gzip_static: FILES,
  error_page:
    'sluice answers its own errors as application/problem+json; custom error pages are not carried over',
  log_format: 'sluice writes JSON access lines with fixed fields (docs/config.md, Logs)',
  error_log: 'sluice writes its own log to stdout (log.level sets the level)',
  access_log: 'sluice has one access log for every server (log.access)',
  events: "connection processing is Node's event loop; `sluice doctor` checks the host's limits",
  worker_connections: PROCESS,
  worker_rlimit_nofile: 'use `sluice init limits` for the open-file limit',
  ssl_ciphers: TLS_PROFILE,
  ssl_ecdh_curve: TLS_PROFILE,
  ssl_dhparam: TLS_PROFILE,
  ssl_conf_command: TLS_PROFILE,
  ssl_session_cache: TLS_SESSIONS,
  ssl_session_timeout: TLS_SESSIONS,
  ssl_session_tickets: TLS_SESSIONS,
  ssl_session_ticket_key: TLS_SESSIONS,
  ssl_buffer_size: TLS_SESSIONS,
  ssl_early_data: 'sluice does not accept TLS 1.3 early data',
  ssl_stapling: 'sluice does no OCSP stapling',
  ssl_stapling_verify: 'sluice does no OCSP stapling',
  ssl_trusted_certificate: 'sluice does no OCSP stapling',
  resolver: "sluice resolves names with the system's resolver (upstream targets: resolve: true)",
  resolver_timeout: "sluice resolves names with the system's resolver",
  proxy_buffering: BUFFERS,
  proxy_buffers: BUFFERS,
  proxy_buffer_size: BUFFERS,
  proxy_busy_buffers_size: BUFFERS,
  proxy_max_temp_file_size: BUFFERS,
  proxy_temp_file_write_size: BUFFERS,
  proxy_temp_path: BUFFERS,
  proxy_request_buffering: BUFFERS,
  client_body_buffer_size: BUFFERS,
  client_body_temp_path: BUFFERS,
  proxy_intercept_errors: "upstream answers are passed on as they are (sluice's own errors are problem+json)",
  client_body_timeout:
    'sluice bounds the whole request instead of the gap between two reads (limits.request_timeout, default 60s)',
  large_client_header_buffers:
    'sluice limits the whole request head instead (limits.max_header, default 16kb)',
  client_header_buffer_size: 'sluice limits the whole request head instead (limits.max_header, default 16kb)',
  fastcgi_pass: OTHER_PROTOCOL,
  uwsgi_pass: OTHER_PROTOCOL,
  scgi_pass: OTHER_PROTOCOL,
  grpc_pass: OTHER_PROTOCOL,
  memcached_pass: OTHER_PROTOCOL,
  stream: OTHER_PROTOCOL,
  mail: OTHER_PROTOCOL,
  auth_basic_user_file: AUTH_FILE,
  auth_request_set: AUTH_FILE,
  satisfy: AUTH,
  limit_conn: 'sluice limits request rates (rate_limit), not connections per client',
  limit_conn_zone: 'sluice limits request rates (rate_limit), not connections per client',
  limit_rate: 'sluice does not limit bandwidth',
  limit_rate_after: 'sluice does not limit bandwidth',
  if: IF_REASON,
  map: 'map variables have no sluice equivalent',
  geo: 'geo variables have no sluice equivalent',
  split_clients: 'split_clients variables have no sluice equivalent',
  zone: 'sluice needs no shared-memory zone: the primary process shares upstream state with every worker',
  keepalive_requests: 'sluice reuses an upstream connection until it has been idle for keepalive_timeout',
  keepalive_time: 'sluice reuses an upstream connection until it has been idle for keepalive_timeout',
  ntlm: 'an NGINX Plus directive with no sluice equivalent',
  sticky: 'an NGINX Plus directive with no sluice equivalent',
  least_time: 'an NGINX Plus directive with no sluice equivalent',
  queue: 'an NGINX Plus directive with no sluice equivalent',
  internal:
    'sluice has no internal redirects: the route answers 404 to every request, as nginx does to a request from outside',
  pid: "sluice's pid_file is left unset, so sluice and nginx can run side by side; set pid_file: for `sluice reload`",
  daemon: PROCESS,
  master_process: PROCESS,
  worker_cpu_affinity: PROCESS,
  worker_priority: PROCESS,
  worker_rlimit_core: PROCESS,
  working_directory: PROCESS,
  load_module: PROCESS,
  thread_pool: PROCESS,
  timer_resolution: PROCESS,
  lock_file: PROCESS,
  pcre_jit: PROCESS,
  env: PROCESS,
  underscores_in_headers: "sluice's request head rules are fixed (docs/http.md)",
  ignore_invalid_headers: "sluice's request head rules are fixed (docs/http.md)",
  log_not_found: FILES,
  server_name_in_redirect: 'sluice writes no redirects of its own',
  port_in_redirect: 'sluice writes no redirects of its own',
  absolute_redirect: 'sluice writes no redirects of its own',
  http2_max_concurrent_streams: "sluice uses Node's HTTP/2 settings",
  http2_push: 'sluice does not push',
  http2_push_preload: 'sluice does not push',
  http3: HTTP3,
  http3_hq: HTTP3,
  http3_max_concurrent_streams: HTTP3,
  http3_stream_buffer_size: HTTP3,
  quic_retry: HTTP3,
  quic_gso: HTTP3,
  quic_host_key: HTTP3,
  quic_active_connection_id_limit: HTTP3,
  quic_bpf: HTTP3,
  stub_status: "sluice's status is on the admin listener (GET /api/status, GET /metrics)",
  empty_gif: 'sluice serves no files (a respond: route can answer with a fixed body)',
  sub_filter: 'sluice does not rewrite response bodies',
  sub_filter_once: 'sluice does not rewrite response bodies',
  ssi: 'sluice does not rewrite response bodies',
};

const PROXY_SSL =
  "sluice's TLS to upstreams takes ca, cert, key and server_name (upstreams.NAME.tls), with TLS 1.2 or later, its own ciphers and session reuse, and always sends SNI to a host name";
const CACHE = 'sluice does not cache responses';

/** What happens to directive `d`, written in `context`. */
export function dispositionOf(d: Pick<NginxDirective, 'name' | 'args'>, context: NginxContext): Disposition {
  const { name } = d;
  if (CONVERTED[context].has(name)) return { kind: 'converted' };
  // The HTTPS redirect idiom, settled per sluice server (convert-scheme-if.ts).
  if (name === 'if' && context === 'server' && isPlainSchemeTest(d.args)) return { kind: 'converted' };
  // certbot's `if ($host = NAME)` redirects, settled per server name (convert-host-if.ts, which
  // warns as below when it cannot carry them over).
  if (name === 'if' && context === 'server' && hostTest(d.args) !== null) return { kind: 'converted' };
  const same = SAME_AS_SLUICE[name];
  if (same?.otherwise === '') return { kind: 'silent' };
  if (same !== undefined) {
    return d.args.length === 1 && d.args[0] === same.value
      ? { kind: 'silent' }
      : { kind: 'dropped', reason: same.otherwise };
  }
  const reason =
    (context === 'location' && SERVER_WIDE.includes(name)
      ? 'sluice sets this per server, not per route'
      : undefined) ??
    REASONS[name] ??
    (name.startsWith('proxy_ssl_') ? PROXY_SSL : undefined) ??
    (name.startsWith('proxy_cache') || name.startsWith('proxy_no_cache') ? CACHE : undefined) ??
    (name.startsWith('gzip_') ? REASONS.gzip : undefined) ??
    (name.startsWith('ssl_') ? TLS_PROFILE : undefined) ??
    (/^(fastcgi|uwsgi|scgi|grpc|memcached)_/.test(name) ? OTHER_PROTOCOL : undefined) ??
    (/_hash_(max|bucket)_size$/.test(name) ? "nginx's hash table sizes do not apply to sluice" : undefined) ??
    'sluice has no equivalent';
  return { kind: 'dropped', reason };
}

/** The context the directives of block `name`, written in `context`, are in; `null` when the import does not read them. */
function childContext(name: string, context: NginxContext): NginxContext | null {
  if (context === 'main' && name === 'http') return 'http';
  if (context === 'http' && name === 'server') return 'server';
  if (context === 'http' && name === 'upstream') return 'upstream';
  if ((context === 'server' || context === 'location') && name === 'location') return 'location';
  return null;
}

/**
 * The catalogue walk: one warning for every directive of `list` (and of the blocks the import
 * reads) that is dropped. A dropped block (`if`, `events`, `types`) is one warning, its contents
 * none. Converted directives that cannot be carried over after all are reported by their converter.
 */
export function reportDropped(
  list: readonly NginxDirective[],
  context: NginxContext,
  warnings: WarningList,
): void {
  for (const d of list) {
    const disposition = dispositionOf(d, context);
    // `events {}` with nothing in it (a required block of nginx.conf) sets nothing to lose.
    if (d.name === 'events' && d.block?.length === 0) continue;
    if (disposition.kind === 'dropped') {
      warnings.add(d, `${d.name}${d.block === null ? '' : ' { }'}: not carried over: ${disposition.reason}`);
      continue;
    }
    if (d.block === null) continue;
    const inner = childContext(d.name, context);
    if (inner !== null) reportDropped(d.block, inner, warnings);
  }
}

/** Names that are also common arguments (`listen 443 ssl`), never taken for a forgotten `;`. */
const ARGUMENT_WORDS = new Set(['ssl', 'http2', 'http3', 'quic', 'default', 'backup', 'down', 'on', 'off']);

/** Whether `name` is an nginx directive the catalogue knows (used to spot a forgotten `;`). */
export function isKnownDirective(name: string): boolean {
  if (ARGUMENT_WORDS.has(name)) return false;
  return (
    Object.values(CONVERTED).some((set) => set.has(name)) ||
    name in REASONS ||
    name in SAME_AS_SLUICE ||
    name === 'include' ||
    /^(proxy|ssl|gzip|fastcgi|uwsgi|grpc|client|limit|keepalive|open_file|server|worker)_/.test(name)
  );
}

/** nginx directives that take a `{ }` block (`server` is one in http, a simple one in upstream). */
const BLOCK_DIRECTIVES = new Set([
  'http',
  'events',
  'server',
  'location',
  'upstream',
  'if',
  'limit_except',
  'map',
  'geo',
  'split_clients',
  'types',
  'charset_map',
  'match',
  'stream',
  'mail',
]);

/**
 * Whether `name` is a directive nginx knows to take no block: a `{` after it is nginx's "not
 * terminated by ;" (an unquoted `{` inside an argument, such as a regex's `\p{Lu}`, opens a block).
 */
export function takesNoBlock(name: string): boolean {
  return isKnownDirective(name) && !BLOCK_DIRECTIVES.has(name);
}

/** Content handlers that answer from nginx itself: a location using one answers 404 in sluice. */
export const OWN_CONTENT = ['stub_status', 'empty_gif', 'mp4', 'flv', 'image_filter', 'perl'] as const;

/** Content handlers sluice cannot run: a location using one answers 502 in sluice. */
export const FOREIGN_CONTENT = [
  'fastcgi_pass',
  'uwsgi_pass',
  'scgi_pass',
  'grpc_pass',
  'memcached_pass',
] as const;
