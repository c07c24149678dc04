/**
 * The admin listener (CONTRACT section 6): the dashboard at `/`, the status API, Prometheus
 * metrics, and pprof profiles. Without tokens it serves only these read-only endpoints and only on
 * a loopback address.
 */
import { readFileSync } from 'node:fs';
import http, { STATUS_CODES } from 'node:http';
import { createRequire } from 'node:module';
import { isLoopback } from '../config/normalise-security.js';
import type { ResolvedAdmin, ResolvedToken } from '../config/types.js';
import { canonicalIp, unmapIpv4 } from '../core/ip-set.js';
import { keptProblems } from '../core/kept-problems.js';
import type { ErrorCode } from '../errors/catalogue.js';
import { listenError } from '../errors/listen-error.js';
import { SluiceError } from '../errors/sluice-error.js';
import { LogRateLimit } from '../observability/log-rate-limit.js';
import { ProfilerBusyError } from '../observability/profiler.js';
import { banAddress } from '../security/ban-address.js';
import { isCrossSite } from './cross-site.js';
import { dashboardPage } from './dashboard-page.js';
import { dashboardStats, type MetricsJson } from './dashboard-stats.js';
import { authorize, type Endpoint, MATRIX } from './rbac.js';
import { identify } from './tokens.js';

export type { MetricsJson } from './dashboard-stats.js';

/** What the admin API reads from the running sluice (the primary, or a lone instance). */
export interface AdminControl {
  status(): Promise<Record<string, unknown>>;
  upstreams(): Promise<Record<string, unknown>>;
  /** The Prometheus text of every process, summed. */
  metrics(): Promise<{ contentType: string; body: string }>;
  /** The same metrics as prom-client JSON (for the dashboard). */
  metricsJson(): Promise<MetricsJson>;
  /**
   * pprof CPU profile of a worker (index; default the first) over `seconds`; `gone` aborts when the
   * caller left, and the profile ends early.
   */
  cpuProfile(seconds: number, worker?: number, gone?: AbortSignal): Promise<Buffer>;
  /** pprof heap profile of a worker. */
  heapProfile(worker?: number): Promise<Buffer>;
  /** Active handles and requests in flight, per worker. */
  handles(): Promise<Record<string, unknown>>;
  /** Active bans. */
  bans(): Promise<readonly { scope: string; address: string; until: number }[]>;
  /** Lifts every ban of an address; how many there were. */
  unban(address: string): Promise<number>;
  /** The resolved config with secrets redacted. */
  config(): Promise<Record<string, unknown>>;
  /** Reloads the config file; the outcome. */
  reload(): Promise<{ ok: boolean; how: string; problems: readonly string[]; config: string }>;
  /** Drains or enables a target; its origin, or null when there is no such target. */
  setTarget(action: 'drain' | 'enable', upstream: string, index: number): Promise<string | null>;
}

/** Where the admin API writes its audit lines. */
export interface AdminLog {
  info(obj: object, msg: string): void;
  warn(obj: object, msg: string): void;
}

const MAX_PROFILE_SECONDS = 60;

/**
 * Connections the admin listener holds at once; one more is closed as soon as it is accepted. The
 * listener runs in the primary, which in round-robin mode also accepts every connection of every
 * server: uncapped, 300 idle admin connections held all of a 256-descriptor primary, and every
 * client of the data plane was reset until they went. A dashboard tab takes a few connections and
 * a scraper one; 64 leaves nearly all of even a small nofile limit to the data plane.
 */
const ADMIN_MAX_CONNECTIONS = 64;

/**
 * How long a connection may take to send a request head, from its opening (or the end of its last
 * answer): admin clients (curl, scrapers, the dashboard) send theirs at once. Node checks it every
 * `connectionsCheckingInterval`, 30 s by default: idle connections were held 30 to 40 s, each a
 * descriptor of the primary's.
 */
const ADMIN_HEADERS_TIMEOUT_MS = 5_000;

/** Lines a second about admin connections closed at the cap (a flood would write one per connection). */
const ADMIN_REFUSED_LINES_PER_SECOND = 1;

const require = createRequire(import.meta.url);
/** uPlot, served as it ships (no build step): 50 KB of chart library. */
const ASSETS: Record<string, { type: string; file: string }> = {
  '/assets/uplot.js': {
    type: 'text/javascript; charset=utf-8',
    file: require.resolve('uplot/dist/uPlot.iife.min.js'),
  },
  '/assets/uplot.css': { type: 'text/css; charset=utf-8', file: require.resolve('uplot/dist/uPlot.min.css') },
};

/**
 * A request the admin API cannot serve, with its status: thrown by an `AdminControl` (no such
 * worker: 404; a CPU profile already being taken: 409) and answered as a problem.
 */
export class AdminRequestError extends Error {
  readonly status: number;
  /** The catalogue code the problem names, when there is one. */
  readonly code: ErrorCode | null;
  constructor(status: number, message: string, code: ErrorCode | null = null) {
    super(message);
    this.status = status;
    this.code = code;
  }
}

/** The admin HTTP listener. */
export class AdminServer {
  readonly #server: http.Server;
  /** Replaced in place by `update` when a reload keeps the address (token rotation). */
  #settings: ResolvedAdmin;
  readonly #control: AdminControl;
  readonly #log: AdminLog;
  /**
   * Set by `retire` to the tokens of the listener that replaced this one (which name the callers of
   * the changes refused here); null while this listener serves.
   */
  #retiredFor: readonly ResolvedToken[] | null = null;

  constructor(settings: ResolvedAdmin, control: AdminControl, log: AdminLog) {
    refuseExposed(settings);
    this.#settings = settings;
    this.#control = control;
    this.#log = log;
    this.#server = http.createServer(
      { maxHeaderSize: 16 * 1024, connectionsCheckingInterval: 1_000 },
      (req, res) => {
        this.#route(req, res).catch((err: unknown) => {
          if (res.headersSent) res.destroy();
          else if (err instanceof AdminRequestError)
            problem(
              res,
              err.status,
              STATUS_CODES[err.status] ?? 'Error',
              err.message,
              err.code === null ? {} : { code: err.code },
            );
          else if (err instanceof ProfilerBusyError) problem(res, 409, 'Conflict', err.message);
          else problem(res, 500, 'Internal Server Error', err instanceof Error ? err.message : String(err));
        });
      },
    );
    this.#server.maxConnections = ADMIN_MAX_CONNECTIONS;
    this.#server.headersTimeout = ADMIN_HEADERS_TIMEOUT_MS;
    // The whole request, a body included; no admin request has one to wait for. (An answer may take
    // longer: a CPU profile is written after its seconds have passed.)
    this.#server.requestTimeout = 2 * ADMIN_HEADERS_TIMEOUT_MS;
    this.#server.keepAliveTimeout = ADMIN_HEADERS_TIMEOUT_MS;
    this.#server.on('drop', (peer?: { remoteAddress?: string }) =>
      this.#refusedLine(
        {
          remote_addr: peer?.remoteAddress === undefined ? null : unmapIpv4(peer.remoteAddress),
          max_connections: ADMIN_MAX_CONNECTIONS,
        },
        `admin connection closed at once: the admin listener already holds ${ADMIN_MAX_CONNECTIONS}, its most`,
      ),
    );
  }

  readonly #refusedLines = new LogRateLimit(ADMIN_REFUSED_LINES_PER_SECOND);

  /** A warning about a connection not taken, at most ADMIN_REFUSED_LINES_PER_SECOND a second. */
  #refusedLine(fields: object, msg: string): void {
    const suppressed = this.#refusedLines.take();
    if (suppressed === null) return;
    this.#log.warn(suppressed > 0 ? { ...fields, suppressed } : fields, msg);
  }

  async #route(req: http.IncomingMessage, res: http.ServerResponse): Promise<void> {
    if (this.#retiredFor !== null) return this.#refuseRetired(req, res, this.#retiredFor);
    const url = requestUrl(req.url ?? '/');
    if (url === null) {
      return problem(
        res,
        400,
        'Bad Request',
        'the request target is not a valid URL path, such as /api/status',
      );
    }
    const method = req.method ?? 'GET';
    const found = endpointOf(method, url.pathname);
    if (found === null) return problem(res, 404, 'Not Found');
    if ('wrongMethod' in found) {
      // RFC 9110: a 405 carries Allow.
      res.setHeader('allow', found.allow ?? found.wrongMethod);
      return problem(res, 405, 'Method Not Allowed', `use ${found.wrongMethod}`);
    }
    // Who is asking comes before what is asked: a malformed parameter is the caller's to hear about
    // only once the caller may call the endpoint (it was 400 to anyone, where 401 or 403 was due),
    // and every refused attempt at a change is audited, whatever refused it.
    const { endpoint, params, badPath } = found;
    const changes = MATRIX[endpoint].changes;
    const action = actionOf(endpoint, params);
    const tokensConfigured = this.#settings.tokens.length > 0;
    const { caller, token } = identify(req.headers.authorization, this.#settings.tokens);
    // Without tokens anyone who reaches the port is served, so a web page whose name an attacker
    // points at 127.0.0.1 (DNS rebinding) could read it from a browser: only loopback names pass.
    if (!tokensConfigured && !isLoopbackHost(req.headers.host)) {
      if (changes) this.#audit(req, action, null, params, 'forbidden');
      return problem(
        res,
        403,
        'Forbidden',
        'without admin.tokens this API answers only requests addressed to a loopback host (127.0.0.1, [::1], localhost)',
      );
    }
    // A page of another site in a browser on this host reaches the listener too (cross-site.ts).
    // The dashboard page holds no data and starts nothing (CONTRACT section 6: anyone who reaches
    // the listener gets it): a link from a runbook or another local tool opens it.
    if (!tokensConfigured && endpoint !== 'dashboard' && isCrossSite(req.headers, req.headers.host ?? '')) {
      if (changes) this.#audit(req, action, null, params, 'forbidden');
      return problem(
        res,
        403,
        'Forbidden',
        'without admin.tokens this API answers no page of another origin: open the dashboard at this address, or call it with curl',
        { code: 'SLUICE_E_ADMIN_CROSS_SITE' satisfies ErrorCode },
      );
    }
    const decision = authorize(endpoint, caller, {
      tokensConfigured,
      metricsAuth: this.#settings.metricsAuth,
    });
    // Every refused attempt at a state change is audited, the outcome being the refusal.
    if (decision !== 'allow' && changes) this.#audit(req, action, token?.name ?? null, params, decision);
    if (decision === 'unauthenticated') {
      res.setHeader('www-authenticate', 'Bearer realm="sluice"');
      return problem(
        res,
        401,
        'Unauthorized',
        caller === 'no-token' ? 'send Authorization: Bearer <token>' : 'unknown token',
      );
    }
    if (decision === 'forbidden') {
      const detail =
        this.#settings.tokens.length === 0
          ? 'this admin API is read-only: configure admin.tokens to allow changes'
          : `the ${token?.role ?? ''} role may not call this endpoint`;
      return problem(res, 403, 'Forbidden', detail);
    }
    if (badPath !== undefined) {
      if (changes) this.#audit(req, action, token?.name ?? null, params, 'bad-request');
      return problem(res, 400, 'Bad Request', badPath);
    }
    const control = this.#control;
    const worker = url.searchParams.has('worker') ? Number(url.searchParams.get('worker')) : undefined;
    if (worker !== undefined && (!Number.isInteger(worker) || worker < 0)) {
      return problem(
        res,
        400,
        'Bad Request',
        'worker must be a worker index (0, 1, ...) as listed by /api/status',
      );
    }
    switch (endpoint) {
      case 'dashboard': {
        if (url.pathname === '/') return send(res, 200, 'text/html; charset=utf-8', dashboardPage());
        const asset = ASSETS[url.pathname]!;
        return send(res, 200, asset.type, readFileSync(asset.file), 'public, max-age=3600');
      }
      case 'status':
        return sendJson(res, await control.status());
      case 'upstreams':
        return sendJson(res, await control.upstreams());
      case 'bans':
        return sendJson(res, {
          bans: (await control.bans()).map((b) => ({
            address: b.address,
            scope: b.scope,
            until: new Date(b.until).toISOString(),
          })),
        });
      case 'stats': {
        const [metrics, status] = await Promise.all([control.metricsJson(), control.status()]);
        return sendJson(res, dashboardStats(metrics, status));
      }
      case 'metrics': {
        const m = await control.metrics();
        return send(res, 200, m.contentType, m.body);
      }
      case 'config':
        return sendJson(res, await control.config());
      case 'pprof': {
        if (url.pathname === '/debug/pprof/heap')
          return sendProfile(res, await control.heapProfile(worker), 'heap');
        // Absent or empty, 30 as in Go's net/http/pprof; else whole seconds in decimal, as Go reads
        // them: Number() also took `0x1`, `1e0` and `+1`.
        const given = url.searchParams.get('seconds') ?? '';
        const seconds = given === '' ? 30 : /^\d{1,9}$/.test(given) ? Number(given) : Number.NaN;
        if (!(seconds >= 1 && seconds <= MAX_PROFILE_SECONDS)) {
          return problem(
            res,
            400,
            'Bad Request',
            `seconds must be a whole number from 1 to ${MAX_PROFILE_SECONDS}`,
          );
        }
        // A caller that leaves ends the profile: it went on for its full time (up to 60 s) with
        // nobody waiting, and every other profile of that worker meanwhile was refused 409.
        const gone = new AbortController();
        res.once('close', () => {
          if (!res.writableFinished) gone.abort();
        });
        return sendProfile(res, await control.cpuProfile(seconds, worker, gone.signal), 'cpu');
      }
      case 'handles':
        return sendJson(res, await control.handles());
      case 'reload': {
        const outcome = await control.reload();
        // The answer has every problem; the log line keeps as many as /api/status does.
        const kept = keptProblems(outcome.problems);
        this.#audit(req, 'reload', token?.name ?? null, {}, outcome.ok ? 'success' : 'failure', {
          problems: kept.items,
          problems_omitted: kept.omitted,
        });
        if (outcome.ok) return sendJson(res, outcome);
        // A problem document (CONTRACT section 6), with the outcome's members beside its own.
        return problem(
          res,
          422,
          'Unprocessable Content',
          'the config was not reloaded; the running config stays',
          outcome,
        );
      }
      case 'target': {
        const index = Number(params.index);
        const action = params.action as 'drain' | 'enable';
        // Enabling it answered 200 and changed nothing: the config keeps it out of service.
        if (action === 'enable' && (await configuredDown(control, params.upstream ?? '', index))) {
          this.#audit(req, 'target.enable', token?.name ?? null, params, 'failure');
          return problem(
            res,
            409,
            'Conflict',
            `target ${params.index} of upstream ${params.upstream} is down: true in the config; remove that and reload to serve from it`,
          );
        }
        const origin = Number.isInteger(index)
          ? await control.setTarget(action, params.upstream ?? '', index)
          : null;
        this.#audit(
          req,
          `target.${action}`,
          token?.name ?? null,
          params,
          origin === null ? 'not-found' : 'success',
        );
        if (origin === null)
          return problem(res, 404, 'Not Found', `no target ${params.index} in upstream ${params.upstream}`);
        return sendJson(res, { upstream: params.upstream, index, target: origin, action });
      }
      case 'unban': {
        const address = banAddress(params.address ?? '');
        if (address === null) {
          this.#audit(req, 'unban', token?.name ?? null, params, 'bad-address');
          return problem(
            res,
            400,
            'Bad Request',
            `${JSON.stringify(params.address)} is not an IP address or an IPv6 /64`,
            { code: 'SLUICE_E_ADMIN_BAD_ADDRESS' satisfies ErrorCode },
          );
        }
        const n = await control.unban(address);
        this.#audit(req, 'unban', token?.name ?? null, { address }, n > 0 ? 'success' : 'not-found');
        return sendJson(res, { address, lifted: n });
      }
    }
  }

  /**
   * The answer of a retired listener: 503, and the connection closed after it (requests pipelined
   * behind it are dropped). A change asked for here is audited `unavailable`, its caller named by
   * the tokens now in force.
   */
  #refuseRetired(
    req: http.IncomingMessage,
    res: http.ServerResponse,
    tokens: readonly ResolvedToken[],
  ): void {
    res.shouldKeepAlive = false;
    const url = requestUrl(req.url ?? '/');
    const found = url === null ? null : endpointOf(req.method ?? 'GET', url.pathname);
    if (found !== null && 'endpoint' in found && MATRIX[found.endpoint].changes) {
      const { token } = identify(req.headers.authorization, tokens);
      this.#audit(
        req,
        actionOf(found.endpoint, found.params),
        token?.name ?? null,
        found.params,
        'unavailable',
      );
    }
    problem(
      res,
      503,
      'Service Unavailable',
      'a reload moved the admin listener: this address is closing; connect to the one in admin.listen',
    );
  }

  /** One audit line per state change, with who asked and how it went (never the token itself). */
  #audit(
    req: http.IncomingMessage,
    action: string,
    token: string | null,
    params: Record<string, string>,
    outcome: string,
    extra: object = {},
  ): void {
    // The path parameters, minus `action` (already folded into the action's name).
    const { action: _verb, ...where } = params;
    // The caller's address: who tried, for refused attempts above all. In the one form client
    // addresses are logged in: a `[::]` listener reports IPv4 callers as `::ffff:a.b.c.d`.
    const peer = req.socket.remoteAddress;
    const from = peer === undefined ? null : unmapIpv4(peer);
    this.#log.info(
      { audit: true, action, token_name: token, ...where, outcome, remote_addr: from, ...extra },
      'admin action',
    );
  }

  /** Binds the admin address. */
  async listen(): Promise<void> {
    const { host, port, key } = this.#settings.listen;
    await new Promise<void>((resolve, reject) => {
      const refused = (err: NodeJS.ErrnoException) => reject(listenError(key, err, ' (admin)'));
      this.#server.once('error', refused);
      this.#server.listen({ host, port }, () => {
        this.#server.off('error', refused);
        resolve();
      });
    });
    // Once listening, an error is a connection accept() could not take (EMFILE past libuv's spare
    // descriptor, ENOBUFS): said, rather than thrown as an 'error' event nobody hears, which would
    // end the primary.
    this.#server.on('error', (err: NodeJS.ErrnoException) =>
      this.#refusedLine({ err }, 'admin listener could not accept a connection'),
    );
  }

  /** The bound port. */
  get port(): number {
    const a = this.#server.address();
    return typeof a === 'object' && a !== null ? a.port : this.#settings.listen.port;
  }

  /** Takes new tokens and settings for the same address (checked by `refuseExposed`); connections stay open. */
  update(settings: ResolvedAdmin): void {
    this.#settings = settings;
  }

  /**
   * Refuses every request from now on (see #refuseRetired); requests already being answered finish.
   * A reload that moves the admin listener calls this as it commits, before `close`: the old
   * listener's open connections were served with the old tokens until the close grace ran out, so
   * a token the reload revoked kept working on them (up to 10 s), and a rotated-out operator token
   * could reload again.
   */
  retire(next: ResolvedAdmin | null): void {
    this.#retiredFor = next?.tokens ?? [];
  }

  /**
   * Stops the listener. Requests in flight get `graceMs` to finish (a reload that moves the admin
   * listener must not cut off the `POST /api/reload` that asked for it); 0 closes every connection now.
   */
  async close(graceMs = 0): Promise<void> {
    await new Promise<void>((resolve) => {
      this.#server.close(() => resolve());
      if (graceMs === 0) {
        this.#server.closeAllConnections();
        return;
      }
      this.#server.closeIdleConnections();
      setTimeout(() => this.#server.closeAllConnections(), graceMs).unref();
    });
  }
}

/** The config check reports this with its position; this guards configs built in code. */
export function refuseExposed(settings: ResolvedAdmin): void {
  if (settings.tokens.length === 0 && !isLoopback(settings.listen.host)) {
    throw new SluiceError(
      'SLUICE_E_ADMIN_EXPOSED',
      `the admin listener without tokens serves only loopback addresses, not ${settings.listen.key}`,
    );
  }
}

function send(
  res: http.ServerResponse,
  status: number,
  type: string,
  body: string | Buffer,
  cache = 'no-store',
  extra: Readonly<Record<string, string>> = {},
): void {
  res.writeHead(status, {
    ...extra,
    'content-type': type,
    'content-length': Buffer.byteLength(body),
    'cache-control': cache,
    // The dashboard is not to be framed by another page (clickjacking), nor any answer sniffed.
    'x-frame-options': 'DENY',
    'content-security-policy': "frame-ancestors 'none'",
    'x-content-type-options': 'nosniff',
  });
  res.end(body);
}

function sendJson(res: http.ServerResponse, value: unknown, status = 200): void {
  send(res, status, 'application/json', `${JSON.stringify(value, null, 2)}\n`);
}

/** The audit action of a call to an endpoint (`target` splits by its verb). */
function actionOf(endpoint: Endpoint, params: Readonly<Record<string, string>>): string {
  return endpoint === 'target' ? `target.${params.action}` : endpoint;
}

/** The endpoint of a method and path, with its path parameters; null when there is none. */
export function endpointOf(
  method: string,
  path: string,
):
  | { endpoint: Endpoint; params: Record<string, string>; badPath?: string }
  | { wrongMethod: string; allow?: string }
  | null {
  const read = (endpoint: Endpoint) =>
    method === 'GET' || method === 'HEAD'
      ? { endpoint, params: {} }
      : { wrongMethod: 'GET', allow: 'GET, HEAD' };
  switch (path) {
    case '/':
      return read('dashboard');
    case '/api/status':
      return read('status');
    case '/api/upstreams':
      return read('upstreams');
    case '/api/bans':
      return read('bans');
    case '/api/stats':
      return read('stats');
    case '/api/config':
      return read('config');
    case '/metrics':
      return read('metrics');
    case '/debug/pprof/profile':
    case '/debug/pprof/heap':
      // A HEAD would take a whole profile to answer nothing (and hold the profiler meanwhile).
      return method === 'GET' ? { endpoint: 'pprof', params: {} } : { wrongMethod: 'GET' };
    case '/debug/handles':
      return read('handles');
    case '/api/reload':
      return method === 'POST' ? { endpoint: 'reload', params: {} } : { wrongMethod: 'POST' };
  }
  if (ASSETS[path] !== undefined) return read('dashboard');
  const target = /^\/api\/upstreams\/([^/]+)\/targets\/(\d+)\/(drain|enable)$/.exec(path);
  if (target !== null) {
    if (method !== 'POST') return { wrongMethod: 'POST' };
    const upstream = decodeSegment(target[1]!);
    const params = { upstream: upstream ?? target[1]!, index: target[2]!, action: target[3]! };
    // Refused only once the caller is known to be allowed: see #route.
    if (upstream === null)
      return { endpoint: 'target', params, badPath: 'the upstream name is not valid percent-encoding' };
    return { endpoint: 'target', params };
  }
  const ban = /^\/api\/bans\/([^/]+)$/.exec(path);
  if (ban !== null) {
    if (method !== 'DELETE') return { wrongMethod: 'DELETE' };
    const address = decodeSegment(ban[1]!);
    if (address === null) {
      return {
        endpoint: 'unban',
        params: { address: ban[1]! },
        badPath: 'the address is not valid percent-encoding',
      };
    }
    // Bans are keyed by canonical addresses: `2001:0DB8::A` lifts the ban of `2001:db8::a`. What is
    // no address is refused once the caller is known to be allowed (see banAddress).
    return { endpoint: 'unban', params: { address: canonicalIp(address) ?? address } };
  }
  return null;
}

/**
 * The URL of a request target, or null when the URL parser cannot read it: `//[`, `//x:99999/`
 * and `http://[::1` are read as an authority, and a bad one made the parser throw, which was
 * answered 500 as if sluice had failed rather than the client.
 */
export function requestUrl(target: string): URL | null {
  try {
    return new URL(target, 'http://admin');
  } catch {
    return null;
  }
}

/** A percent-decoded path segment, or null when its escapes are malformed. */
function decodeSegment(segment: string): string | null {
  try {
    return decodeURIComponent(segment);
  } catch {
    return null;
  }
}

/** Whether a Host header names a loopback address or `localhost` (any port). */
function isLoopbackHost(host: string | undefined): boolean {
  if (host === undefined) return false;
  const name = host.startsWith('[') ? host.slice(1, host.indexOf(']')) : host.replace(/:\d*$/, '');
  const lower = name.toLowerCase();
  if (lower === 'localhost' || lower.endsWith('.localhost')) return true;
  // An address literal in any spelling (`[0::1]`, `[::ffff:127.0.0.1]`), as listen addresses are
  // read; anything else that is not an address stays refused.
  const ip = canonicalIp(lower);
  return ip !== null && isLoopback(ip);
}

function sendProfile(res: http.ServerResponse, profile: Buffer, kind: string): void {
  send(res, 200, 'application/octet-stream', profile, 'no-store', {
    'content-disposition': `attachment; filename="sluice-${kind}.pb.gz"`,
  });
}

/** Whether target `index` of `upstream` is configured `down: true`, as /api/upstreams shows it. */
async function configuredDown(control: AdminControl, upstream: string, index: number): Promise<boolean> {
  const doc = (await control.upstreams()) as {
    upstreams?: { name: string; targets: { index: number; down?: boolean }[] }[];
  };
  const u = doc.upstreams?.find((x) => x.name === upstream);
  return u?.targets.find((t) => t.index === index)?.down === true;
}

/** An RFC 9457 problem answer; `extra` members (an extension, RFC 9457 3.2) go beside the standard ones. */
export function problem(
  res: http.ServerResponse,
  status: number,
  title: string,
  detail?: string,
  extra: object = {},
): void {
  const doc = { type: 'about:blank', title, status, ...(detail === undefined ? {} : { detail }), ...extra };
  send(res, status, 'application/problem+json', `${JSON.stringify(doc)}\n`);
}
