/**
 * `proxy_pass` and the directives around it → a route's `proxy:`.
 *
 * The target: `proxy_pass http://NAME` naming an upstream (no port) → `upstream: NAME`; any other
 * `http(s)://host:port` → `url:`. A URI part replaces the matched location prefix in nginx
 * (`location /api/ { proxy_pass http://b/v1/; }` sends /api/x as /v1/x); sluice writes that as
 * `strip_prefix: /api` plus the base path `/v1` of `url:`. Where the two cannot agree (an
 * upstream has no base path; `/api/` with `/v1` gives nginx's /v1x) the difference is a warning.
 */
import { parseUpstreamUrl } from '../../config/upstream-url.js';
import type { NginxDirective } from './ast.js';
import type { ServerContext } from './convert-context.js';
import { convertProxyHeaders } from './convert-proxy-headers.js';
import { convertProxySsl } from './convert-proxy-ssl.js';
import { encodePath } from './encoded-path.js';
import { foldedHeaderValue } from './folded-header-value.js';
import type { LocationMatch } from './location-match.js';
import { nearest, nearestList, type Scope } from './scope.js';
import type { SluiceProxy, SluiceRetry } from './sluice-config.js';
import { toSluiceDuration } from './units.js';
import { hasVariables, toSluiceTemplate, variablesOf } from './variables.js';

/** A converted proxy, with comments for the YAML. */
export interface ProxyPlan {
  readonly proxy: SluiceProxy;
  readonly notes: string[];
}

const WEBSOCKET_NOTE =
  'WebSocket upgrades are tunnelled by sluice itself: nginx\'s "proxy_http_version 1.1", "Upgrade" and "Connection" lines need no equivalent';

/** Converts the `proxy_pass` of a location; `null` (with a warning) when it cannot be carried over. */
export function convertProxy(
  pass: NginxDirective,
  match: LocationMatch,
  scope: Scope,
  server: ServerContext,
): ProxyPlan | null {
  const { ctx } = server;
  const target = pass.args[0];
  if (target === undefined || pass.args.length !== 1) {
    ctx.warnings.add(pass, 'proxy_pass takes one URL; not carried over');
    return null;
  }
  if (hasVariables(target)) {
    ctx.warnings.add(
      pass,
      `proxy_pass ${target}: a target chosen by variables (${variablesOf(target)
        .map((v) => `$${v}`)
        .join(', ')}) is not carried over; sluice needs a fixed target, so the route answers 502`,
    );
    return null;
  }
  const query = /^https?:\/\/[^?#]*([?#].*)$/i.exec(target);
  if (query) {
    ctx.warnings.add(
      pass,
      `proxy_pass ${target}: sluice forwards the request's own query string; a query (or fragment) in proxy_pass, ${query[1]}, has no sluice equivalent; the route answers 502`,
    );
    return null;
  }
  const m = /^(https?):\/\/([^/?#]+)(\/[^?#]*)?$/i.exec(target);
  if (!m) {
    ctx.warnings.add(
      pass,
      `proxy_pass ${target}: sluice proxies to http:// and https:// addresses only; the route answers 502`,
    );
    return null;
  }
  const scheme = m[1]!.toLowerCase();
  const hostPort = m[2]!;
  if (hostPort.startsWith('unix:')) {
    ctx.warnings.add(
      pass,
      `proxy_pass ${target}: sluice proxies to TCP addresses only, not to unix sockets; the route answers 502`,
    );
    return null;
  }
  const uri = m[3];
  const proxy: SluiceProxy = {};
  let base = '';
  const upstream = ctx.upstreams.get(hostPort.toLowerCase());
  if (upstream !== undefined) {
    if (upstream.targets.length === 0) {
      ctx.warnings.add(
        pass,
        `proxy_pass ${target}: upstream ${upstream.name} has no server sluice can connect to; the route answers 502`,
      );
      return null;
    }
    proxy.upstream = upstream.name;
    const retry = convertRetry(scope, server);
    const tls = scheme === 'https' ? convertProxySsl(pass, scope, server, upstream.name) : undefined;
    ctx.usage.use(upstream.name, scheme, pass, retry.retry, retry.at ?? pass, ctx.warnings, tls);
  } else {
    const parsed = parseUpstreamUrl(`${scheme}://${hostPort}`);
    if ('error' in parsed) {
      ctx.warnings.add(pass, `proxy_pass ${target}: ${parsed.error}; the route answers 502`);
      return null;
    }
    proxy.url = parsed.origin;
    if (scheme === 'https') convertProxySsl(pass, scope, server, null);
    const retry = nearest(scope, 'proxy_next_upstream');
    if (retry !== undefined) {
      ctx.warnings.add(
        retry,
        `proxy_next_upstream: ${hostPort} is a single address, not an upstream, so there is no next target to try; not carried over`,
      );
    }
  }

  if (uri !== undefined) {
    const plan = uriPlan(match, uri, proxy.upstream !== undefined);
    if (plan.warning !== undefined) ctx.warnings.add(pass, `proxy_pass ${target}: ${plan.warning}`);
    if (plan.strip !== '') proxy.strip_prefix = plan.strip;
    base = plan.base;
  }
  if (base !== '' && proxy.url !== undefined) proxy.url += base;

  const notes: string[] = [];
  const headers = convertProxyHeaders(nearestList(scope, 'proxy_set_header')?.directives ?? [], server);
  const setHeaders = { ...headers.setHeaders };
  if (!headers.preserveHost) {
    // nginx's $proxy_host is the name written in proxy_pass: for an upstream block that is the
    // block's name (`backend`), which sluice's preserve_host: false would replace with the
    // target's address; a single address (`10.0.0.5:8080`) is what sluice sends too.
    if (proxy.upstream !== undefined) setHeaders.Host = hostPort;
    else proxy.preserve_host = false;
  }
  if (Object.keys(setHeaders).length > 0) proxy.set_headers = setHeaders;
  if (headers.removeHeaders.length > 0) proxy.remove_headers = headers.removeHeaders;
  if (headers.websocket) notes.push(WEBSOCKET_NOTE);

  const response = convertResponseHeaders(scope, server);
  if (response !== undefined) proxy.response_headers = response;

  const timeouts: NonNullable<SluiceProxy['timeouts']> = {};
  for (const [key, name] of [
    ['connect', 'proxy_connect_timeout'],
    ['read', 'proxy_read_timeout'],
    ['send', 'proxy_send_timeout'],
  ] as const) {
    const d = nearest(scope, name);
    if (d === undefined) continue;
    const value = toSluiceDuration(d.args[0] ?? '', { at: d, warnings: ctx.warnings });
    if (value === null) ctx.warnings.add(d, `${name} ${d.args[0] ?? ''}: not a time; not carried over`);
    else timeouts[key] = value;
  }
  if (Object.keys(timeouts).length > 0) proxy.timeouts = timeouts;

  const version = nearest(scope, 'proxy_http_version');
  if (version !== undefined && version.args[0] !== '1.1') {
    ctx.warnings.add(
      version,
      `proxy_http_version ${version.args[0] ?? ''}: sluice speaks HTTP/1.1 to upstreams`,
    );
  }
  const redirect = nearest(scope, 'proxy_redirect');
  if (redirect === undefined) {
    const first = ctx.defaultRedirects.get(pass.file);
    if (first === undefined || pass.line < first.line) ctx.defaultRedirects.set(pass.file, pass);
  } else if (redirect.args[0] !== 'off') {
    ctx.warnings.add(
      redirect,
      'proxy_redirect is not carried over: sluice passes Location headers on unchanged',
    );
  }
  return { proxy, notes };
}

/** How a URI part of proxy_pass maps to strip_prefix and a base path. */
function uriPlan(
  match: LocationMatch,
  uri: string,
  isUpstream: boolean,
): { strip: string; base: string; warning?: string } {
  if (match.kind === 'regex' || match.kind === 'named') {
    return {
      strip: '',
      base: '',
      warning: `a URI part in a ${match.kind === 'regex' ? 'regex' : 'named'} location is refused by nginx too; ${uri} is ignored`,
    };
  }
  // sluice strips the prefix from the normalised path, so it is written as sluice spells it.
  const path = encodePath(match.path).path;
  // nginx swaps the location's prefix for the URI part: for the same text, the path goes as it came.
  if (uri === match.path || uri === path) return { strip: '', base: '' };
  const base = uri.endsWith('/') ? uri.slice(0, -1) : uri;
  const lost = isUpstream && base !== '';
  const baseNote = lost
    ? `sluice adds a base path to proxy.url targets only, not to an upstream: ${uri} is not added to forwarded paths`
    : undefined;
  if (match.kind === 'exact') {
    const exact = !uri.endsWith('/') && uri !== '' && !lost;
    return {
      strip: path,
      base: lost ? '' : base,
      ...(baseNote !== undefined
        ? { warning: baseNote }
        : exact
          ? { warning: `sluice forwards ${path} as ${uri}/, nginx as ${uri}` }
          : {}),
    };
  }
  const prefixSlash = path.endsWith('/');
  const uriSlash = uri.endsWith('/');
  const strip = prefixSlash ? path.slice(0, -1) : path;
  let warning = baseNote;
  if (warning === undefined && prefixSlash !== uriSlash) {
    // A path where the two differ: nginx swaps the prefix for the URI, sluice strips and prepends.
    const example = prefixSlash ? `${path}x` : `${path}/x`;
    const nginxPath = uri + example.slice(path.length);
    const rest = example.slice(strip.length);
    const sluicePath = base + (rest.startsWith('/') ? rest : `/${rest}`);
    warning = `nginx forwards ${example} as ${nginxPath}, sluice as ${sluicePath}`;
  } else if (warning === undefined && !prefixSlash) {
    // Neither ends with a slash: nginx carries on the name (`/ordersX` → `/v2/ordersX`), sluice
    // strips it and starts the rest with a slash (`/v2/orders/X`).
    warning = `nginx forwards ${path}x as ${uri}x, sluice as ${base}/x`;
  }
  return { strip, base: lost ? '' : base, ...(warning !== undefined ? { warning } : {}) };
}

/** `proxy_next_upstream`, `_tries` and `_timeout` → an upstream's `retry:`, and where they were written. */
function convertRetry(
  scope: Scope,
  server: ServerContext,
): { retry: SluiceRetry | undefined; at: NginxDirective | undefined } {
  const on = nearest(scope, 'proxy_next_upstream');
  const tries = nearest(scope, 'proxy_next_upstream_tries');
  const timeout = nearest(scope, 'proxy_next_upstream_timeout');
  if (on === undefined && tries === undefined && timeout === undefined)
    return { retry: undefined, at: undefined };
  const retry: SluiceRetry = {};
  if (on !== undefined) {
    const conditions: NonNullable<SluiceRetry['on']> = [];
    for (const a of on.args) {
      if (a === 'non_idempotent') retry.non_idempotent = true;
      else if (isRetryCondition(a)) conditions.push(a);
      else
        server.ctx.warnings.add(
          on,
          `proxy_next_upstream ${a}: sluice has no such condition; not carried over`,
        );
    }
    if (conditions.length > 0) retry.on = conditions;
  }
  if (tries !== undefined) {
    const n = Number(tries.args[0]);
    if (Number.isInteger(n) && n >= 0) retry.tries = n;
    else
      server.ctx.warnings.add(
        tries,
        `proxy_next_upstream_tries ${tries.args[0] ?? ''}: not a number; not carried over`,
      );
  }
  if (timeout !== undefined) {
    const value = toSluiceDuration(timeout.args[0] ?? '', { at: timeout, warnings: server.ctx.warnings });
    if (value !== null) retry.timeout = value;
    else
      server.ctx.warnings.add(
        timeout,
        `proxy_next_upstream_timeout ${timeout.args[0] ?? ''}: not a time; not carried over`,
      );
  }
  return { retry, at: on ?? tries ?? timeout };
}

const RETRY_CONDITIONS = new Set([
  'error',
  'timeout',
  'invalid_header',
  'http_500',
  'http_502',
  'http_503',
  'http_504',
  'http_429',
  'http_403',
  'http_404',
  'off',
]);

function isRetryCondition(a: string): a is NonNullable<SluiceRetry['on']>[number] {
  return RETRY_CONDITIONS.has(a);
}

/**
 * Response headers nginx never passes to the client unless `proxy_pass_header` names them: its
 * instructions to itself (X-Accel-Redirect, which it follows, and the rest), and X-Pad. sluice
 * passes every header on, so the route removes them.
 */
const NGINX_HIDES = [
  'X-Accel-Redirect',
  'X-Accel-Buffering',
  'X-Accel-Charset',
  'X-Accel-Expires',
  'X-Accel-Limit-Rate',
  'X-Pad',
];

/**
 * `proxy_hide_header` and nginx's own hidden headers (but those `proxy_pass_header` names) →
 * `response_headers.remove`; `add_header` → `response_headers.add` (the
 * statuses nginx adds to) or, with `always`, `add_always`: added beside the target's own header
 * of the same name, as nginx does.
 */
function convertResponseHeaders(
  scope: Scope,
  server: ServerContext,
): SluiceProxy['response_headers'] | undefined {
  const out: NonNullable<SluiceProxy['response_headers']> = {};
  const hide = (nearestList(scope, 'proxy_hide_header')?.directives ?? []).flatMap((d) => d.args.slice(0, 1));
  const passed = new Set(
    (nearestList(scope, 'proxy_pass_header')?.directives ?? []).map((d) => d.args[0]?.toLowerCase()),
  );
  const remove = [...hide];
  for (const name of NGINX_HIDES) {
    const lower = name.toLowerCase();
    if (!passed.has(lower) && !remove.some((r) => r.toLowerCase() === lower)) remove.push(name);
  }
  if (remove.length > 0) out.remove = remove;
  const add: Record<string, string> = {};
  const always: Record<string, string> = {};
  for (const d of nearestList(scope, 'add_header')?.directives ?? []) {
    const [name, written, flag] = d.args;
    if (
      name === undefined ||
      written === undefined ||
      (flag !== undefined && flag !== 'always') ||
      d.args.length > 3
    ) {
      server.ctx.warnings.add(d, 'add_header takes a name, a value and "always"; not carried over');
      continue;
    }
    const value = foldedHeaderValue(written, `add_header ${name}`, d, server.ctx.warnings);
    const t = toSluiceTemplate(value, { serverName: server.serverName, serverPort: server.serverPort });
    if ('error' in t) {
      server.ctx.warnings.add(d, `add_header ${name} ${value}: ${t.error}; not carried over`);
      continue;
    }
    const taken = [...Object.keys(add), ...Object.keys(always)];
    if (taken.some((k) => k.toLowerCase() === name.toLowerCase())) {
      server.ctx.warnings.add(d, `add_header ${name} is added twice; sluice adds the first value only`);
      continue;
    }
    if (flag === 'always') always[name] = t.text;
    else add[name] = t.text;
  }
  if (Object.keys(add).length > 0) out.add = add;
  if (Object.keys(always).length > 0) out.add_always = always;
  return Object.keys(out).length > 0 ? out : undefined;
}
