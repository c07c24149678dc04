/**
 * The catalogue of error codes: permanent names, each with the HTTP status it maps to (0 when it
 * never reaches a client), a title and a hint that says what to do. `docs/errors.md` lists the
 * same codes; a test keeps the two in step.
 */

/** One entry of the catalogue. */
export interface ErrorSpec {
  /** HTTP status sent to a client, or 0 for errors that are not answers (config, CLI, runtime). */
  readonly status: number;
  /** A short title: what went wrong. */
  readonly title: string;
  /** What to do about it. */
  readonly hint: string;
}

export const ERROR_CATALOGUE = {
  SLUICE_E_CONFIG_FILE: {
    status: 0,
    title: 'cannot read the config file',
    hint: 'check the path (given with -c, or named in the config: relative to its directory) and that the file is readable by this user',
  },
  SLUICE_E_CONFIG_SYNTAX: {
    status: 0,
    title: 'the config file is not valid YAML',
    hint: 'fix the YAML syntax at the position shown; indentation must use spaces',
  },
  SLUICE_E_CONFIG_DUPLICATE_KEY: {
    status: 0,
    title: 'a key is given twice in one mapping',
    hint: 'keep one of the two; YAML does not allow a key twice, and the last one would silently win',
  },
  SLUICE_E_CONFIG_UNKNOWN_KEY: {
    status: 0,
    title: 'unknown key',
    hint: 'remove the key or correct its spelling; docs/config.md lists every key',
  },
  SLUICE_E_CONFIG_MISSING_KEY: {
    status: 0,
    title: 'a required key is missing',
    hint: 'add the key; docs/config.md shows an example',
  },
  SLUICE_E_CONFIG_TYPE: {
    status: 0,
    title: 'a value has the wrong type',
    hint: 'write the value in the type shown; quote strings that YAML would read as numbers or booleans',
  },
  SLUICE_E_CONFIG_VALUE: {
    status: 0,
    title: 'a value is out of range or not one of the allowed choices',
    hint: 'correct the value as the message says; docs/config.md describes every key',
  },
  SLUICE_E_CONFIG_DURATION: {
    status: 0,
    title: 'not a duration, or longer than allowed (24d; a ban 365d)',
    hint: 'write a number with a unit: 500ms, 10s, 5m, 1h or 1d',
  },
  SLUICE_E_CONFIG_SIZE: {
    status: 0,
    title: 'not a size, or larger than the key takes (1024gb; max_header 1mb)',
    hint: 'write a number with a unit: 512b, 16kb, 10mb or 1gb (1kb = 1024 bytes)',
  },
  SLUICE_E_CONFIG_ENV: {
    status: 0,
    title: 'an environment variable used in the config is not set',
    // biome-ignore lint/suspicious/noTemplateCurlyInString: the text shows the literal ${NAME} syntax.
    hint: 'export the variable before starting sluice, or remove the ${NAME} reference',
  },
  SLUICE_E_CONFIG_LISTEN: {
    status: 0,
    title: 'not a listen address',
    hint: 'write PORT, :PORT, HOST:PORT or [IPV6]:PORT, e.g. ":8080" or "127.0.0.1:8080"',
  },
  SLUICE_E_CONFIG_DUPLICATE_LISTEN: {
    status: 0,
    title: 'a listen address is given twice or overlaps another',
    hint: 'servers may share an address, but list it in the same form everywhere and only once per server',
  },
  SLUICE_E_CONFIG_DUPLICATE_NAME: {
    status: 0,
    title: 'a name is used twice',
    hint: 'names of servers, of routes within a server and of server_name entries on one address must be unique',
  },
  SLUICE_E_CONFIG_DEFAULT_SERVER: {
    status: 0,
    title: 'more than one default server for a listen address',
    hint: 'mark at most one server per listen address with default: true',
  },
  SLUICE_E_CONFIG_UNKNOWN_UPSTREAM: {
    status: 0,
    title: 'a route names an upstream that is not defined',
    hint: 'define it under upstreams:, correct the name, or use proxy.url for a single target',
  },
  SLUICE_E_CONFIG_ROUTE_ACTION: {
    status: 0,
    title: 'a route needs exactly one action',
    hint: 'give each route one of proxy, respond, redirect or handler',
  },
  SLUICE_E_CONFIG_REGEX: {
    status: 0,
    title: 'not a valid regular expression',
    hint: 'regular expressions use JavaScript syntax; escape backslashes inside double-quoted YAML strings',
  },
  SLUICE_E_CONFIG_URL: {
    status: 0,
    title: 'not a valid URL for its key (an upstream target, state.redis or tracing.otlp_endpoint)',
    hint: 'write http://HOST:PORT or https://HOST:PORT, optionally with a base path',
  },
  SLUICE_E_CONFIG_CIDR: {
    status: 0,
    title: 'not an IP address or CIDR block',
    hint: 'write an address (10.0.0.1, ::1) or a block (10.0.0.0/8, fd00::/8)',
  },
  SLUICE_E_CONFIG_VARIABLE: {
    status: 0,
    title: 'unknown variable',
    hint: 'use $remote_addr, $remote_net, $host, $scheme, $request_id, $request_uri, $args, $is_args, $http_<name>, $client_spiffe_id or $proxy_add_x_forwarded_for',
  },
  SLUICE_E_CONFIG_HANDLER: {
    status: 0,
    title: 'a handler module cannot be used',
    hint: 'give the path of a .ts or .js file, relative to the config file, whose default export is a (req, res) listener or an object with fetch()',
  },
  SLUICE_E_CONFIG_VERSION: {
    status: 0,
    title: 'unsupported config version',
    hint: 'set version: 1',
  },
  SLUICE_E_CLIENT_BAD_REQUEST: {
    status: 400,
    title: 'Bad Request',
    hint: 'the request was malformed or ambiguous (framing, headers or request target) and was not forwarded; for a fetch-style handler, its Host is one no URL can have (1.2.3.256, a.1, xn--zz)',
  },
  SLUICE_E_CLIENT_TIMEOUT: {
    status: 408,
    title: 'Request Timeout',
    hint: 'the client did not send a complete request head within limits.header_timeout, or the whole request within limits.request_timeout',
  },
  SLUICE_E_CLIENT_BODY_TOO_LARGE: {
    status: 413,
    title: 'Payload Too Large',
    hint: 'the request body exceeds limits.max_body',
  },
  SLUICE_E_CLIENT_URI_TOO_LONG: {
    status: 414,
    title: 'URI Too Long',
    hint: 'the request target exceeds limits.max_uri',
  },
  SLUICE_E_CLIENT_HEADERS_TOO_LARGE: {
    status: 431,
    title: 'Request Header Fields Too Large',
    hint: 'the request head exceeds limits.max_header',
  },
  SLUICE_E_CLIENT_SEND_TIMEOUT: {
    status: 0,
    title: 'client send timeout',
    hint: 'the client took no byte of the response (or of its WebSocket) for limits.send_timeout and the connection was closed, or its HTTP/2 stream reset (a client that stopped reading, or a link that stalled); over HTTP/2, also an answer to an upload sluice stopped that the client took none of for 1 s',
  },
  SLUICE_E_CLIENT_MISDIRECTED: {
    status: 421,
    title: 'Misdirected Request',
    hint: 'the request names a server whose client-certificate settings differ from those of the server this TLS connection was made for (its SNI name), or whose min_version the TLS version of this connection is below; connect with the name you request',
  },
  SLUICE_E_CLIENT_METHOD_NOT_ALLOWED: {
    status: 405,
    title: 'Method Not Allowed',
    hint: 'TRACE is never served nor forwarded, as in nginx: an upstream echoing the request would reflect its cookies and credentials to a script (cross-site tracing); nor is a method the fetch standard forbids (CONNECT, TRACE, TRACK, in any case) given to a fetch-style handler',
  },
  SLUICE_E_ROUTE_NOT_FOUND: {
    status: 404,
    title: 'Not Found',
    hint: 'no server and route match this host, path, method and headers',
  },
  SLUICE_E_UPSTREAM_CONNECT: {
    status: 502,
    title: 'Bad Gateway',
    hint: 'the upstream target refused or failed the connection; check that it is running',
  },
  SLUICE_E_UPSTREAM_RESET: {
    status: 502,
    title: 'Bad Gateway',
    hint: 'the upstream closed or reset the connection before a complete response head',
  },
  SLUICE_E_UPSTREAM_INVALID_RESPONSE: {
    status: 502,
    title: 'Bad Gateway',
    hint: 'the upstream sent a malformed response head or framing; it was not passed on',
  },
  SLUICE_E_UPSTREAM_TIMEOUT: {
    status: 504,
    title: 'Gateway Timeout',
    hint: "the upstream did not connect, accept the body (or a WebSocket's bytes) or answer within proxy.timeouts",
  },
  SLUICE_E_UPSTREAM_NO_LIVE: {
    status: 502,
    title: 'Bad Gateway',
    hint: 'no live upstreams: every target is down or failed',
  },
  SLUICE_E_RUNTIME_LISTEN: {
    status: 0,
    title: 'cannot listen on an address',
    hint: 'another process holds the port, or ports below 1024 need root or CAP_NET_BIND_SERVICE',
  },
  SLUICE_E_RUNTIME_PID_FILE: {
    status: 0,
    title: 'cannot write the pid file',
    hint: "the pid_file's directory must exist, be writable by the user sluice starts as and have free space; under systemd with User=, put it below /run in a RuntimeDirectory=, e.g. /run/sluice/sluice.pid",
  },
  SLUICE_E_RUNTIME_OVERLOADED: {
    status: 503,
    title: 'Service Unavailable',
    hint: 'the listener is at limits.max_connections; retry shortly, or raise the limit (see sluice doctor)',
  },
  SLUICE_E_RUNTIME_FD_LIMIT: {
    status: 503,
    title: 'Service Unavailable',
    hint: "sluice is out of file descriptors (its nofile limit, or the host's fs.file-max): new connections are closed, and a request that needs a new upstream connection is answered 503 with no target counted as failed, until some of its connections close; raise the nofile limit (LimitNOFILE=, ulimit -n; sluice doctor gives the figure) or lower limits.max_connections",
  },
  SLUICE_E_RUNTIME_DRAINING: {
    status: 503,
    title: 'Service Unavailable',
    hint: 'this process is shutting down; the request was refused before it was read, so it is safe to retry',
  },
  SLUICE_E_RUNTIME_SHUTDOWN_TIMEOUT: {
    status: 0,
    title: 'cut at shutdown_timeout',
    hint: 'the request was still being answered when shutdown_timeout ran out (sluice stopping, old workers retiring after a rolling reload, or a listener a reload removed) and its connection was closed; no target is blamed for it. Raise shutdown_timeout if requests need longer',
  },
  SLUICE_E_RUNTIME_PRIVILEGES: {
    status: 0,
    title: 'cannot drop privileges',
    hint: 'user: and group: must be in /etc/passwd and /etc/group (sluice reads those files, not NSS or LDAP), and sluice must start as root',
  },
  SLUICE_E_RUNTIME_WORKER: {
    status: 0,
    title: 'a worker process failed',
    hint: 'the log lines before this one say why; a worker that keeps dying as it starts is not restarted (crash loop)',
  },
  SLUICE_E_RUNTIME_REDIS_DB: {
    status: 0,
    title: 'Redis refuses the database number of state.redis',
    hint: "the /DB of state.redis must be below the Redis server's `databases` setting (16 by default: 0 to 15), and its user allowed to SELECT; until it is fixed sluice shares nothing and serves on local state, rather than write to database 0",
  },
  SLUICE_E_RUNTIME_REDIS_PERMISSION: {
    status: 0,
    title: 'the Redis user of state.redis may not do what sluice needs',
    hint: 'grant the user the keys ~sluice:*, the pub/sub channels &sluice:* (Redis 7 gives a new user none) and the commands sluice sends: +@all, or at least +info +select +set +get +del +scan +evalsha +eval +publish +subscribe and, for its scripts, +time +hmget +hset +pexpire +zadd +zremrangebyscore +zcard; until then sluice shares nothing and serves on local state',
  },
  SLUICE_E_RUNTIME_INTERNAL: {
    status: 500,
    title: 'Internal Server Error',
    hint: 'an unexpected error; the log line with this error id has the details',
  },
  SLUICE_E_HANDLER_LOAD: {
    status: 0,
    title: 'a handler module cannot be loaded',
    hint: 'the module must load without errors and default-export a (req, res) function or an object with fetch(request)',
  },
  SLUICE_E_HANDLER_ERROR: {
    status: 500,
    title: 'Internal Server Error',
    hint: 'the handler threw or rejected; the log line with this error id has the stack',
  },
  SLUICE_E_HANDLER_TIMEOUT: {
    status: 504,
    title: 'Gateway Timeout',
    hint: "the handler did not start its answer within the route's handler_timeout (default 60s): look for a code path that never answers (a callback that threw, a missing res.end()), or raise handler_timeout",
  },
  SLUICE_E_HANDLER_ROOT: {
    status: 0,
    title: 'refusing to run handlers as root',
    hint: 'set user: (and group:) to an unprivileged account, or allow_root_handlers: true if you really mean it',
  },
  SLUICE_E_ADMIN_EXPOSED: {
    status: 0,
    title: 'the admin listener would be open to the network without tokens',
    hint: 'listen on 127.0.0.1 (or ::1), or configure admin.tokens',
  },
  SLUICE_E_ADMIN_DUPLICATE_TOKEN: {
    status: 0,
    title: 'two admin tokens are the same token',
    hint: "give each entry of admin.tokens its own token (openssl rand -hex 32): a call with a shared one is always taken as the first entry's, and the role of the others is never granted",
  },
  SLUICE_E_ADMIN_BAD_ADDRESS: {
    status: 400,
    title: 'not an address that can be banned',
    hint: 'give an IPv4 or IPv6 address (e.g. DELETE /api/bans/203.0.113.7), or an IPv6 /64 as listed by GET /api/bans (2001:db8:1:2::/64); percent-encode the / and :',
  },
  SLUICE_E_ADMIN_CROSS_SITE: {
    status: 403,
    title: 'a page of another origin called the admin API',
    hint: 'without admin.tokens the admin API answers its own dashboard and clients that are no browser (curl, Prometheus), never a page of another site or port (Sec-Fetch-Site cross-site or same-site, or another Origin): open the dashboard at the admin address itself, or configure admin.tokens',
  },
  SLUICE_E_ADMIN_WORKER_GONE: {
    status: 503,
    title: 'the worker stopped before it answered',
    hint: 'the worker exited (killed or crashed) before it answered, with the profile it was taking; ask again: the same worker index names its replacement once that one runs (GET /api/status)',
  },
  SLUICE_E_AUTH_DENIED: {
    status: 403,
    title: 'Forbidden',
    hint: "the client's address is denied by an access rule (access: allow/deny)",
  },
  SLUICE_E_AUTH_BANNED: {
    status: 403,
    title: 'Forbidden',
    hint: 'the client is banned for a while after too many failed requests (ban:)',
  },
  SLUICE_E_AUTH_RATE_LIMITED: {
    status: 429,
    title: 'Too Many Requests',
    hint: 'the client exceeds a rate limit; retry after the Retry-After seconds',
  },
  SLUICE_E_AUTH_CLIENT_CERT_CHANGED: {
    status: 0,
    title: 'cut: the client-certificate policy changed',
    hint: "a reload or a replaced client_ca bundle changed what this TLS server asks of client certificates, and this connection's certificate was checked under the old policy: its answers in progress had shutdown_timeout to finish, and this one had not, so its connection was closed; the client reconnects and is checked under the new policy",
  },
  SLUICE_E_AUTH_EGRESS_DENIED: {
    status: 403,
    title: 'Forbidden',
    hint: 'no egress policy lets this client address reach this host and port; list the host in a policy whose sources include the client (egress.policies)',
  },
  SLUICE_E_CLIENT_EGRESS_LOOP: {
    status: 403,
    title: 'Forbidden',
    hint: 'the target is this egress proxy itself; a request through the proxy to the proxy would loop',
  },
  SLUICE_E_CLIENT_EGRESS_NOT_PROXY: {
    status: 400,
    title: 'Bad Request',
    hint: 'this listener is a forward proxy: send absolute-form requests (GET http://host/path) or CONNECT host:port, e.g. by setting HTTP_PROXY and HTTPS_PROXY',
  },
  SLUICE_E_CLIENT_EGRESS_TARGET: {
    status: 400,
    title: 'Bad Request',
    hint: 'the proxy target must be http://HOST[:PORT]/PATH, or HOST:PORT for CONNECT; https:// URLs go through CONNECT',
  },
  SLUICE_E_CLI_USAGE: {
    status: 0,
    title: 'wrong command-line usage',
    hint: 'run sluice --help or sluice COMMAND --help',
  },
} as const satisfies Record<string, ErrorSpec>;

/** Every permanent error code. */
export type ErrorCode = keyof typeof ERROR_CATALOGUE;

/** Whether a string (from IPC, say) is a catalogue code. */
export function isErrorCode(code: unknown): code is ErrorCode {
  return typeof code === 'string' && Object.hasOwn(ERROR_CATALOGUE, code);
}
