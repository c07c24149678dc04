/**
 * The resolved config: what `normalise.ts` produces from a schema-checked input. Every default
 * applied, durations in milliseconds, sizes in bytes, addresses parsed, cross references
 * resolved, deep-frozen. Plain JSON data (regular expressions as source strings), so it can be
 * printed by `sluice check --print` and sent to worker processes as it is.
 */

/** One address to bind. */
export interface ListenAddress {
  /** IP address or host name to bind; `0.0.0.0` for ":PORT". */
  readonly host: string;
  readonly port: number;
  /** Canonical text, `host:port` or `[v6]:port`; the key used to group servers sharing a socket. */
  readonly key: string;
}

/** A server's limits, sizes in bytes and durations in milliseconds. */
export interface ResolvedLimits {
  readonly maxBody: number;
  readonly maxHeader: number;
  /** Longest request target (path and query), in bytes; 414 beyond it. */
  readonly maxUri: number;
  readonly headerTimeoutMs: number;
  readonly keepaliveTimeoutMs: number;
  /** 0 disables. */
  readonly requestTimeoutMs: number;
  /** A client that takes nothing of a response for this long is closed (nginx send_timeout); 0 disables. */
  readonly sendTimeoutMs: number;
  readonly maxConnections: number;
  /** Listen queue length. */
  readonly backlog: number;
  /** Requests per keep-alive connection before it is closed; 0 for no limit. */
  readonly maxRequestsPerConnection: number;
}

/** How a route matches the path (nginx `location` kinds). */
export type PathMatch =
  | { readonly kind: 'exact'; readonly path: string }
  | { readonly kind: 'prefix'; readonly prefix: string }
  | { readonly kind: 'regex'; readonly source: string };

/** A header condition: exact value, or a regular expression source when `regex` is true. */
export interface HeaderMatch {
  /** Lower-case header name. */
  readonly name: string;
  readonly value: string;
  readonly regex: boolean;
}

/** Forward to an upstream (`proxy:`). */
export interface ProxyAction {
  readonly kind: 'proxy';
  /** Name of the upstream in `ResolvedConfig.upstreams` (an implicit one for `proxy.url`). */
  readonly upstream: string;
  /** Base path from `proxy.url` prepended to the forwarded path ('' for none). */
  readonly basePath: string;
  readonly stripPrefix: string;
  readonly preserveHost: boolean;
  /** [name, value template] pairs; the names keep the case written. */
  readonly setHeaders: readonly (readonly [string, string])[];
  /** Lower-case names. */
  readonly removeHeaders: readonly string[];
  readonly responseSetHeaders: readonly (readonly [string, string])[];
  readonly responseRemoveHeaders: readonly string[];
  /** Added beside the target's headers on the statuses of `ADD_HEADER_STATUSES` (nginx add_header). */
  readonly responseAddHeaders: readonly (readonly [string, string])[];
  /** Added beside the target's headers whatever the status (add_header ... always). */
  readonly responseAddAlwaysHeaders: readonly (readonly [string, string])[];
  readonly connectTimeoutMs: number;
  readonly readTimeoutMs: number;
  readonly sendTimeoutMs: number;
}

/** Answer with a fixed response (`respond:`). */
export interface RespondAction {
  readonly kind: 'respond';
  readonly status: number;
  readonly body: string;
  readonly headers: readonly (readonly [string, string])[];
}

/** Answer with a redirect (`redirect:`). */
export interface RedirectAction {
  readonly kind: 'redirect';
  readonly status: 301 | 302 | 303 | 307 | 308;
  /** URL template; may hold variables. */
  readonly to: string;
}

/** What a route does, by `kind`. */
/** A route served by a user module (Node listener or `{ fetch }`). */
export interface HandlerAction {
  readonly kind: 'handler';
  /** Absolute path of the module. */
  readonly module: string;
  /** `handler_timeout`: how long the handler may take to send its answer's head (0: no limit). */
  readonly timeoutMs: number;
}

export type RouteAction = ProxyAction | RespondAction | RedirectAction | HandlerAction;

/** One route of a server, named and checked. */
export interface ResolvedRoute {
  readonly name: string;
  /** `null` matches every path (a route without path keys). */
  readonly path: PathMatch | null;
  /** Upper-case methods, or `null` for any. */
  readonly methods: readonly string[] | null;
  readonly headers: readonly HeaderMatch[];
  readonly action: RouteAction;
  readonly guards: ResolvedGuards;
  /** The route's `max_body` in bytes, or `null` for the server's `limits.max_body`. */
  readonly maxBody: number | null;
}

/** One server (virtual host) with its listen addresses and routes. */
/** One allow/deny rule; `cidr` covers IPv4 or IPv6 (`all` becomes both 0.0.0.0/0 and ::/0). */
export interface AccessRule {
  readonly allow: boolean;
  readonly cidr: string;
}

/** Client-address rules, checked in order; the first match decides, else `otherwise`. */
export interface ResolvedAccess {
  readonly rules: readonly AccessRule[];
  /** Whether an address no rule matches is allowed. */
  readonly otherwise: boolean;
}

/** A token bucket per key. */
export interface ResolvedRateLimit {
  readonly perSecond: number;
  readonly burst: number;
  /** Template evaluated per request ($remote_addr by default). */
  readonly key: string;
  /** Where it was set: buckets are shared by every route using the server's. */
  readonly level: 'server' | 'route';
  /** The zone whose buckets every rule naming it shares, wherever it is set; `null` without one. */
  readonly zone: string | null;
}

/** Ban clients that collect `max` of these statuses within `windowMs`, for `durationMs`. */
export interface ResolvedBan {
  readonly statuses: readonly number[];
  readonly max: number;
  readonly windowMs: number;
  readonly durationMs: number;
  /** What is counted and banned: the client address, or its network (an IPv6 address's /64). */
  readonly per: 'address' | 'network';
  /** Where it was set: a ban from the server's rule applies to every route using it. */
  readonly level: 'server' | 'route';
}

/** TLS termination of a server (file paths absolute). */
export interface ResolvedServerTls {
  readonly cert: string;
  readonly key: string;
  readonly minVersion: 'TLSv1.2' | 'TLSv1.3';
  readonly clientCa: string | null;
  readonly requireClientCert: boolean;
}

/** The security settings that apply to a request (a route's own, else its server's). */
export interface ResolvedGuards {
  readonly access: ResolvedAccess | null;
  readonly rateLimit: ResolvedRateLimit | null;
  readonly ban: ResolvedBan | null;
}

export interface ResolvedServer {
  readonly name: string;
  readonly listen: readonly ListenAddress[];
  /** As written: exact names (lower-cased), `*.x` / `x.*` wildcards, `~regex`. */
  readonly serverNames: readonly string[];
  readonly default: boolean;
  /** CIDR blocks (`10.0.0.0/8`, `::1/128`). */
  readonly trustedProxies: readonly string[];
  readonly limits: ResolvedLimits;
  /** Runs of `/` in the path become one before routing and forwarding (nginx's merge_slashes). */
  readonly mergeSlashes: boolean;
  readonly http2: boolean;
  readonly tls: ResolvedServerTls | null;
  /** For requests no route takes; routes carry their own (inherited unless they set them). */
  readonly guards: ResolvedGuards;
  readonly routes: readonly ResolvedRoute[];
}

/** One target of an upstream. */
export interface ResolvedTarget {
  /** Origin, e.g. `http://127.0.0.1:9001`; the `target` label in metrics and logs. */
  readonly origin: string;
  readonly weight: number;
  readonly backup: boolean;
  readonly down: boolean;
  /** Requests in flight per worker; 0 for no limit. */
  readonly maxConns: number;
  /** Every A/AAAA record of the host is a target (re-resolved on its TTL). */
  readonly resolve: boolean;
}

/** How an upstream picks a target. */
export type BalanceKind = 'round_robin' | 'least_conn' | 'ip_hash' | 'hash' | 'random';

/** When a request goes to the next target (nginx `proxy_next_upstream`); `http_5xx` is expanded. */
export type RetryCondition =
  | 'error'
  | 'timeout'
  | 'invalid_header'
  | 'http_500'
  | 'http_502'
  | 'http_503'
  | 'http_504'
  | 'http_429'
  | 'http_403'
  | 'http_404';

export interface ResolvedRetry {
  readonly on: readonly RetryCondition[];
  /** Attempts per request, the first included; 0 for one per target. */
  readonly tries: number;
  /** No new attempt after this long since the first; 0 for no limit. */
  readonly timeoutMs: number;
  readonly nonIdempotent: boolean;
}

export interface ResolvedHealthCheck {
  readonly path: string;
  readonly intervalMs: number;
  readonly timeoutMs: number;
  readonly rise: number;
  readonly fall: number;
  /** Inclusive status ranges that pass. */
  readonly expectStatus: readonly (readonly [number, number])[];
  /** Host header of probes; null for the target's host:port. */
  readonly host: string | null;
}

/** A named group of targets sharing a balancer and connection settings. */
export interface ResolvedUpstream {
  readonly name: string;
  readonly balance: BalanceKind;
  /** Template (with $variables) hashed by `balance: hash`; null otherwise. */
  readonly hashKey: string | null;
  readonly targets: readonly ResolvedTarget[];
  readonly keepalive: number;
  readonly keepaliveTimeoutMs: number;
  /** 0: failures are never counted. */
  readonly maxFails: number;
  readonly failTimeoutMs: number;
  readonly healthCheck: ResolvedHealthCheck | null;
  readonly retry: ResolvedRetry;
  readonly dnsMinTtlMs: number;
  readonly dnsMaxTtlMs: number;
  /** TLS settings for https:// targets, or null for the defaults. */
  readonly tls: ResolvedUpstreamTls | null;
}

/** TLS to upstream targets (file paths absolute). */
export interface ResolvedUpstreamTls {
  readonly ca: string | null;
  readonly cert: string | null;
  readonly key: string | null;
  readonly serverName: string | null;
  readonly spiffeId: string | null;
}

export type AdminRole = 'viewer' | 'developer' | 'operator';

/** An admin token: its name, role, and the SHA-256 (hex) of the secret — never the secret itself. */
export interface ResolvedToken {
  readonly name: string;
  readonly role: AdminRole;
  readonly sha256: string;
  /** The absolute path of its `token_file` (read when the config is loaded), or null. */
  readonly file: string | null;
}

export interface ResolvedAdmin {
  readonly listen: ListenAddress;
  readonly metricsAuth: boolean;
  readonly tokens: readonly ResolvedToken[];
}

export interface ResolvedEgressPolicy {
  readonly name: string;
  readonly sources: readonly string[];
  /** Lower-case; `*.example.com` wildcards; an optional `:port`. */
  readonly hosts: readonly string[];
}

export interface ResolvedEgress {
  readonly listen: ListenAddress;
  readonly policies: readonly ResolvedEgressPolicy[];
}

/** Logging settings; a relative access-log path is already resolved. */
export interface ResolvedLog {
  readonly level: 'trace' | 'debug' | 'info' | 'warn' | 'error';
  /** `'stdout'`, `'off'` or an absolute file path. */
  readonly access: string;
  readonly format: 'json' | 'pretty';
}

/** The whole resolved config, deep-frozen. */
/** Trace export settings. */
export interface ResolvedTracing {
  /** OTLP/HTTP endpoint, or null: ids are propagated, no spans exported. */
  readonly otlpEndpoint: string | null;
  readonly sampleRatio: number;
  readonly serviceName: string;
}

export interface ResolvedConfig {
  readonly version: 1;
  /** Absolute path of the file it came from, or `null` for a config object. */
  readonly file: string | null;
  /** sha256 (hex, first 16) of the resolved config, for `/api/status` and reload logs. */
  readonly hash: string;
  /** Worker processes; `auto` resolved at start to the CPU count. */
  readonly workers: number | 'auto';
  readonly shutdownTimeoutMs: number;
  /** Unprivileged user (and group) the workers run as, or null to stay as started. */
  readonly user: string | null;
  readonly group: string | null;
  /** Where the primary writes its pid, or null. */
  readonly pidFile: string | null;
  readonly allowRootHandlers: boolean;
  readonly log: ResolvedLog;
  readonly tracing: ResolvedTracing;
  readonly admin: ResolvedAdmin | null;
  readonly egress: ResolvedEgress | null;
  /** Shared state across nodes: a Redis URL, or null for this node only. */
  readonly state: { readonly redis: string | null };
  readonly servers: readonly ResolvedServer[];
  readonly upstreams: Readonly<Record<string, ResolvedUpstream>>;
  /**
   * The paths above (pid_file, log.access, TLS and token files, handler modules) that the file
   * wrote relative to its directory, resolved: deployed elsewhere (`sluice init docker`, `k8s`),
   * they move with the file, and absolute ones stay.
   */
  readonly relativePaths: readonly string[];
}
