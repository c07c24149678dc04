/**
 * `proxy_ssl_*` of a location that proxies to `https://` → its upstream's `tls:`.
 *
 * - `proxy_ssl_trusted_certificate` → `ca`, `proxy_ssl_certificate` and `_key` → `cert`, `key`
 *   (a client certificate), `proxy_ssl_name` → `server_name`.
 * - nginx does not check an upstream's certificate unless `proxy_ssl_verify on`; sluice always
 *   does (against `ca`, or the system's public CAs). A target with a self-signed or private-CA
 *   certificate that nginx reached unchecked answers 502 in sluice until `ca` names its CA, so
 *   every https proxy_pass without `proxy_ssl_verify on` is a warning.
 * - nginx sets these per location, sluice per upstream: the first location's are kept and any
 *   location that differs is a warning (convert-upstream.ts, `UpstreamUsage`). A single address
 *   (`proxy_pass https://host:port`) has no `tls:` in sluice, so its settings are a warning too.
 */
import type { NginxDirective } from './ast.js';
import type { ServerContext } from './convert-context.js';
import { namedFile } from './output-path.js';
import { nearest, type Scope } from './scope.js';
import type { SluiceUpstream } from './sluice-config.js';
import { hasVariables } from './variables.js';

/** An upstream's `tls:`. */
export type SluiceUpstreamTls = NonNullable<SluiceUpstream['tls']>;

/**
 * Reads the proxy_ssl_* in effect for `pass` (an https proxy_pass to `upstream`, or to a single
 * address when null): the upstream's `tls:`, undefined when there is nothing to carry over.
 */
export function convertProxySsl(
  pass: NginxDirective,
  scope: Scope,
  server: ServerContext,
  upstream: string | null,
): SluiceUpstreamTls | undefined {
  const { warnings } = server.ctx;
  const tls: SluiceUpstreamTls = {};
  const file = (name: string): string | undefined => {
    const d = nearest(scope, name);
    if (d === undefined) return undefined;
    const path = namedFile(d.args[0], server.paths);
    if (path === null) {
      warnings.add(
        d,
        `${name} ${d.args[0] ?? ''}: sluice reads TLS files from paths named as written; not carried over`,
      );
      return undefined;
    }
    return path;
  };
  const ca = file('proxy_ssl_trusted_certificate');
  if (ca !== undefined) tls.ca = ca;
  const cert = file('proxy_ssl_certificate');
  const key = file('proxy_ssl_certificate_key');
  if (cert !== undefined && key !== undefined) {
    tls.cert = cert;
    tls.key = key;
  } else if (cert !== undefined || key !== undefined) {
    const d = nearest(scope, cert !== undefined ? 'proxy_ssl_certificate' : 'proxy_ssl_certificate_key')!;
    warnings.add(
      d,
      `${d.name}: a client certificate needs both proxy_ssl_certificate and proxy_ssl_certificate_key; not carried over`,
    );
  }
  const name = nearest(scope, 'proxy_ssl_name');
  if (name !== undefined) {
    const value = name.args[0] ?? '';
    if (value === '$proxy_host') {
      // nginx's default: the host of proxy_pass, as sluice names targets too.
    } else if (hasVariables(value) || value === '') {
      warnings.add(name, `proxy_ssl_name ${value}: sluice needs a fixed name; not carried over`);
    } else {
      tls.server_name = value;
    }
  }

  const verify = nearest(scope, 'proxy_ssl_verify');
  if (verify?.args[0] !== 'on') {
    const against =
      upstream === null
        ? 'against the public CAs (a single address takes no tls.ca; an upstream block can give one)'
        : `against upstreams.${upstream}.tls.ca (proxy_ssl_trusted_certificate) or, without it, the public CAs`;
    warnings.add(
      verify ?? pass,
      `proxy_pass ${pass.args[0] ?? ''}: nginx does not check the target's certificate here (proxy_ssl_verify ${verify?.args[0] ?? 'off, its default'}); sluice always checks it, ${against}: a self-signed or private-CA target answers 502 until its CA is given`,
    );
  }

  if ([ca, cert, key, tls.server_name].every((v) => v === undefined)) return undefined;
  if (upstream === null) {
    warnings.add(
      pass,
      `proxy_pass ${pass.args[0] ?? ''}: proxy_ssl_* settings need an upstream in sluice (upstreams.NAME.tls), and a single address has none; write an upstream block for it to carry them over`,
    );
    return undefined;
  }
  return tls;
}
