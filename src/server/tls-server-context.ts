/**
 * One server's TLS certificate as a listener serves it: the secure context built from its
 * `tls:` files, rebuilt when the files change on disk (certificate rotation, no restart). The
 * next handshake uses the new context; open connections keep the one they began with, unless the
 * client CA bundle's content changed (`clientCerts`: the terminator ends those). A broken
 * replacement (unreadable, a key that does not match) keeps the previous context and is reported
 * once. A worker started in place of a dead one while the files cannot be used starts on the node's
 * copies of them (tls-file-copies.ts), reports it, and loads the files once they change.
 */
import type tls from 'node:tls';
import type { ResolvedServerTls } from '../config/types.js';
import { TlsFileCopies } from '../core/tls-file-copies.js';
import { WatchedFiles } from '../core/watched-files.js';
import { loadServerTls, type ServerSecureContext, serverTlsFiles, serverTlsKey } from './tls-settings.js';

/** What a server context reports. */
export interface ServerTlsContextHooks {
  /** The files changed and a new context is in use. */
  readonly onReload: (ctx: ServerTlsContext) => void;
  /** The changed files do not make a context; the previous one stays. */
  readonly onError: (ctx: ServerTlsContext, err: unknown) => void;
  /** The files cannot be used now, and the context was built from the node's copies of them (`report` says which). */
  readonly onCopy?: (ctx: ServerTlsContext, err: unknown, report: Record<string, unknown>) => void;
}

/** A server's watched secure context. */
export class ServerTlsContext {
  readonly config: ResolvedServerTls;
  /** Equal keys: the same files and settings (see `serverTlsKey`). */
  readonly key: string;
  readonly #watch: WatchedFiles<ServerSecureContext>;

  /** Reads the files now (else the copies a starting worker holds); throws when they do not make a context. */
  constructor(config: ResolvedServerTls, hooks: ServerTlsContextHooks, intervalMs?: number) {
    this.config = config;
    this.key = serverTlsKey(config);
    const copied: { err: unknown; report: Record<string, unknown> }[] = [];
    this.#watch = new WatchedFiles(
      serverTlsFiles(config),
      () => loadServerTls(config),
      { onReload: () => hooks.onReload(this), onError: (err) => hooks.onError(this, err) },
      intervalMs,
      (err) => {
        const { value, report } = TlsFileCopies.fallBack(
          err,
          (read) => loadServerTls(config, read),
          config.cert,
        );
        copied.push({ err, report });
        return value;
      },
    );
    // Reported once the context is whole (the hook may read it).
    for (const { err, report } of copied) hooks.onCopy?.(this, err, report);
  }

  /** The context for the next handshake. */
  get context(): tls.SecureContext {
    return this.#watch.value.context;
  }

  /** What the current context asks of client certificates, the client CA bundle's content included. */
  get clientCerts(): string {
    return this.#watch.value.clientCerts;
  }

  /** The options the current context was built from. */
  get options(): tls.SecureContextOptions {
    return this.#watch.value.options;
  }

  /** Looks at the files now rather than at the next poll. */
  poll(): Promise<void> {
    return this.#watch.poll();
  }

  /** Stops watching the files. */
  close(): void {
    this.#watch.close();
  }
}
