/**
 * `proxy_set_header` → `set_headers`, `remove_headers` and `preserve_host`.
 *
 * The usual reverse-proxy headers are what sluice sends anyway (docs/config.md, Forwarding
 * headers), so they are dropped without a word: `X-Real-IP $remote_addr`, `X-Forwarded-Proto
 * $scheme`, `X-Forwarded-Host $http_host`. (`$host` is the name without the port, lower-case,
 * which sluice's `$host` is too: `Host $host` and `X-Forwarded-Host $host` are set as written,
 * sluice's own would carry the client's port.) `X-Forwarded-For $proxy_add_x_forwarded_for` is dropped with
 * a warning: sluice's chain differs for a client that sends one and is no trusted proxy. So are the
 * WebSocket ones (`Upgrade $http_upgrade`, `Connection "upgrade"`): sluice tunnels upgrades
 * itself. `Host` decides `preserve_host`: nginx sends the target's name (`$proxy_host`) unless
 * told otherwise, sluice the client's unless `preserve_host: false`.
 */
import { isHttpToken } from '../../config/http-token.js';
import type { NginxDirective } from './ast.js';
import type { ConvertContext, ServerContext } from './convert-context.js';
import { foldedHeaderValue } from './folded-header-value.js';
import { toSluiceTemplate } from './variables.js';

/** What the headers of one location become. */
export interface ProxyHeaders {
  readonly setHeaders: Record<string, string>;
  readonly removeHeaders: string[];
  readonly preserveHost: boolean;
  /** The location sets the WebSocket upgrade headers. */
  readonly websocket: boolean;
}

/** sluice's own forwarding headers, and the nginx values that equal them. */
const SLUICE_DEFAULTS: Readonly<Record<string, readonly string[]>> = {
  'x-real-ip': ['$remote_addr'],
  'x-forwarded-for': ['$proxy_add_x_forwarded_for'],
  'x-forwarded-proto': ['$scheme'],
  'x-forwarded-host': ['$http_host'],
};

const XFF_DIFFERS =
  "proxy_set_header X-Forwarded-For $proxy_add_x_forwarded_for: sluice sends X-Forwarded-For itself, but keeps the client's chain only when the peer is one of trusted_proxies (else the peer address alone); nginx appends the peer to any chain the client sent";

/** Host values that mean "the client's Host, as it sent it", which sluice sends by default. */
// biome-ignore lint/suspicious/noTemplateCurlyInString: "${http_host}" is nginx's braced variable syntax, not a template.
const CLIENT_HOST = new Set(['$http_host', '${http_host}']);

/** Converts the effective `proxy_set_header` list of a location. */
export function convertProxyHeaders(list: readonly NginxDirective[], server: ServerContext): ProxyHeaders {
  const { ctx } = server;
  const setHeaders: Record<string, string> = {};
  const removeHeaders: string[] = [];
  const seen = new Set<string>();
  // Without a Host line nginx sends $proxy_host: the target's (or the upstream's) name.
  let preserveHost = false;
  let websocket = false;
  for (const d of list) {
    const [name, written] = d.args;
    if (name === undefined || written === undefined || d.args.length !== 2) {
      ctx.warnings.add(d, 'proxy_set_header takes a name and a value; not carried over');
      continue;
    }
    const lower = name.toLowerCase();
    if (!isHttpToken(name)) {
      ctx.warnings.add(d, `proxy_set_header ${name}: not a valid header name; not carried over`);
      continue;
    }
    const value = foldedHeaderValue(written, `proxy_set_header ${name}`, d, ctx.warnings);
    if (seen.has(lower)) {
      ctx.warnings.add(d, `proxy_set_header ${name} is set twice; sluice sends the first value only`);
      continue;
    }
    seen.add(lower);
    if (lower === 'host') {
      // A Host of its own is sent by set_headers whatever preserve_host says; keep the default then.
      preserveHost = value !== '$proxy_host';
      if (!CLIENT_HOST.has(value) && value !== '$proxy_host') hostHeader(d, value, setHeaders, server);
      continue;
    }
    if (SLUICE_DEFAULTS[lower]?.includes(value)) {
      // The same header, built differently: nginx passes on whatever chain the client sent.
      if (lower === 'x-forwarded-for') ctx.warnings.add(d, XFF_DIFFERS);
      continue;
    }
    if (lower === 'upgrade' && value === '$http_upgrade') {
      websocket = true;
      continue;
    }
    if (lower === 'connection') {
      if (isUpgradeConnection(value, ctx)) websocket = true;
      else if (value !== '') {
        ctx.warnings.add(
          d,
          `proxy_set_header Connection ${JSON.stringify(value)}: sluice manages upstream connections itself (keepalive: 0 closes each one); not carried over`,
        );
      }
      continue;
    }
    if (value === '') {
      removeHeaders.push(name);
      continue;
    }
    const t = toSluiceTemplate(value, { serverName: server.serverName, serverPort: server.serverPort });
    if ('error' in t) {
      // nginx always sets the header (an empty value sends none), so whatever the client sent under
      // this name never reaches the upstream: an upstream that trusts X-Client-Verify must not get
      // the client's own. Removed, it reaches the upstream as nginx's empty value would.
      ctx.warnings.add(
        d,
        `proxy_set_header ${name} ${value}: ${t.error}; not carried over: sluice removes the client's ${name} instead (remove_headers), so the upstream gets no ${name} at all`,
      );
      removeHeaders.push(name);
      continue;
    }
    setHeaders[name] = t.text;
  }
  return { setHeaders, removeHeaders, preserveHost, websocket };
}

function hostHeader(
  d: NginxDirective,
  value: string,
  setHeaders: Record<string, string>,
  server: ServerContext,
): void {
  const t = toSluiceTemplate(value, { serverName: server.serverName, serverPort: server.serverPort });
  if ('error' in t) {
    server.ctx.warnings.add(
      d,
      `proxy_set_header Host ${value}: ${t.error}; the client's Host is sent instead`,
    );
    return;
  }
  setHeaders.Host = t.text;
}

function isUpgradeConnection(value: string, ctx: ConvertContext): boolean {
  if (value.toLowerCase() === 'upgrade') return true;
  const m = /^\$\{?([A-Za-z0-9_]+)\}?$/.exec(value);
  return m !== null && ctx.upgradeVariables.has(m[1]!);
}
