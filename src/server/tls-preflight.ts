/**
 * Loads every certificate, key and CA a config names before anything of it is served, so a
 * reload whose files cannot be used fails as a whole (the running config stays) instead of
 * half-way through swapping listeners. Config validation tried the same files (config/tls-files.ts),
 * but they may have changed since (a certificate renewed between `sluice check` and the reload).
 * Runs at start and on reload only. A worker started in place of a dead one may use the node's copies
 * of files that cannot be used at that moment (core/tls-file-copies.ts); the listener and the
 * upstream report it when they load them.
 */
import type { ResolvedConfig } from '../config/types.js';
import { currentUser } from '../core/current-user.js';
import { type FileReader, TlsFileCopies } from '../core/tls-file-copies.js';
import { SluiceError } from '../errors/sluice-error.js';
import { checkUpstreamTls } from '../proxy/upstream-tls.js';
import { loadServerTls, serverTlsKey } from './tls-settings.js';

/** Throws SLUICE_E_RUNTIME_LISTEN (servers) or SLUICE_E_CONFIG_FILE (upstreams) for the first TLS setting that cannot be loaded. */
export function preflightTls(config: ResolvedConfig): void {
  const seen = new Set<string>();
  for (const server of config.servers) {
    const tls = server.tls;
    if (tls === null || seen.has(serverTlsKey(tls))) continue;
    seen.add(serverTlsKey(tls));
    try {
      loadOrCopy((read) => loadServerTls(tls, read), tls.cert);
    } catch (err) {
      throw new SluiceError(
        'SLUICE_E_RUNTIME_LISTEN',
        `server ${JSON.stringify(server.name)}: cannot use its TLS certificate ${tls.cert} with key ${tls.key}${tls.clientCa === null ? '' : ` and client CA ${tls.clientCa}`}: ${reason(err)}`,
        { cause: err, hint: filesHint(err) },
      );
    }
  }
  for (const upstream of Object.values(config.upstreams)) {
    const tls = upstream.tls;
    if (tls === null || !upstream.targets.some((t) => t.origin.startsWith('https:'))) continue;
    try {
      loadOrCopy((read) => checkUpstreamTls(tls, read), tls.cert ?? tls.ca);
    } catch (err) {
      const files = [tls.ca, tls.cert, tls.key].filter((f) => f !== null).join(', ');
      throw new SluiceError(
        'SLUICE_E_CONFIG_FILE',
        `upstream ${JSON.stringify(upstream.name)}: cannot use its TLS files (${files}): ${reason(err)}`,
        { cause: err, hint: filesHint(err) },
      );
    }
  }
}

/** Loads from disk, else from the copies a starting worker holds; throws the disk's error. */
function loadOrCopy(load: (read?: FileReader) => unknown, cert: string | null): void {
  try {
    load();
  } catch (err) {
    TlsFileCopies.fallBack(err, load, cert);
  }
}

const FILES_HINT =
  'a TLS file may have changed since the config was loaded: sluice check -c FILE reads and tries every certificate and key';

/**
 * The hint for a file that could not be used. One this process may not read (EACCES, EPERM: a key
 * readable by root only, sluice started as User= by systemd) has not changed since the load: it was
 * never readable by this user, and `sluice check` as root passes it.
 */
function filesHint(err: unknown): string {
  const e = err as NodeJS.ErrnoException | null;
  if (e?.code !== 'EACCES' && e?.code !== 'EPERM') return FILES_HINT;
  const file = typeof e.path === 'string' ? e.path : 'the file';
  return (
    `sluice runs as ${currentUser()}, which may not read ${file}: make it readable by that user ` +
    '(a group the user is in, chmod g+r, and g+x on the directories on its path), or under systemd ' +
    'pass a copy with LoadCredential= (sluice init systemd warns of such files)'
  );
}

function reason(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}
