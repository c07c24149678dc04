/**
 * TLS termination for one listen address: the certificate of each server chosen by SNI, with
 * nginx's `server_name` order (exact, `*.x`, `x.*`, regex, default server), client certificates,
 * and certificate rotation without a restart.
 *
 *   ClientHello ─▶ SNICallback: server by SNI name ─▶ its current secure context (cert, key, client CA)
 *   handshake done ─▶ per-server checks, when the servers of the address differ:
 *                     require_client_cert, min_version TLSv1.3, client_ca (else no client identity)
 *   handshake failed, or a client certificate refused ─▶ `refused` hook (counted, logged)
 *
 * Some settings belong to the socket, not to the certificate: the lowest TLS version is settled
 * before SNI is read, and whether a client certificate is asked for is set per connection. The
 * address asks for what its most demanding server needs (a certificate when one server has a
 * `client_ca`, refusal in the handshake when all of them require one; the lowest `min_version`),
 * and a server that wants more refuses the connection right after the handshake.
 *
 * Each server's context watches its files (tls-server-context.ts): the next handshake uses a new
 * certificate, open connections keep theirs, a broken replacement keeps the old one.
 *
 * A connection's client certificate is checked once, in its handshake. When what a server asks of
 * client certificates changes (a reload changes `client_ca` or `require_client_cert`, or the
 * bundle's content changes on disk), the connections made for that server under the old policy
 * are stale (`stale`): the listener ends them as nginx's retiring workers do (the
 * `clientCertsChanged` hook). A handshake under way across the change is refused when it ends.
 */
import { constants } from 'node:crypto';
import type { Socket } from 'node:net';
import type tls from 'node:tls';
import type { ResolvedServerTls } from '../config/types.js';
import { unmapIpv4 } from '../core/ip-set.js';
import { HostTable } from '../router/host-table.js';
import { withoutClientIdentity } from './client-identity.js';
import type { CompiledServer, ListenerTable } from './gateway-tables.js';
import { handshakeFailureReason, NO_CLIENT_CERT, type TlsFailureReason } from './tls-handshake-failure.js';
import { ServerTlsContext } from './tls-server-context.js';
import { clientCertKey, serverTlsKey } from './tls-settings.js';

/** A connection refused before it carried a request (a failed handshake, or a server's own check after it). */
export interface TlsRefusal {
  readonly reason: TlsFailureReason;
  /** The listen address. */
  readonly listener: string;
  /** The client's address ('' when the connection was gone before it was read). */
  readonly remoteAddr: string;
  /** The server the SNI name chose (the address's default server without one). */
  readonly server: string;
  /** The SNI name as sent, null without one (or when the handshake failed before it was read). */
  readonly sni: string | null;
  /** The X.509 verification code (CERT_HAS_EXPIRED, UNABLE_TO_VERIFY_LEAF_SIGNATURE...) or Node's error code. */
  readonly code: string;
}

/** What a terminator reports. */
export interface TlsTerminatorHooks {
  /** A server's certificate files changed and the new certificate is in use. */
  readonly reloaded?: (info: Record<string, unknown>) => void;
  /** A server's changed files do not make a certificate; the previous one stays (reported once). */
  readonly failed: (err: unknown, info: Record<string, unknown>) => void;
  /**
   * A server's files cannot be used as this worker starts, and its certificate is the node's copy
   * of them (tls-file-copies.ts) until they change.
   */
  readonly copyInUse?: (err: unknown, info: Record<string, unknown>) => void;
  /** A connection was refused before it carried a request. */
  readonly refused?: (refusal: TlsRefusal) => void;
  /**
   * What a server of the address asks of client certificates changed: the open connections for
   * which `stale` holds were verified under the old policy.
   */
  readonly clientCertsChanged?: () => void;
}

/** A server's names (and whether it is the default), as JSON, and its context. */
interface ServedContext {
  readonly names: string;
  readonly ctx: ServerTlsContext;
}

/** The policy epoch a TCP connection was accepted in (see #onConnection). */
const kEpoch = Symbol('sluice.tlsEpoch');
/** The `clientCerts` of the context a TLS connection's handshake was made with (unset: ''). */
const kClientCerts = Symbol('sluice.clientCerts');

/** A TLS connection, with its TCP connection (Node's `_parent`) and the marks kept on them. */
type MarkedSocket = tls.TLSSocket & {
  [kClientCerts]?: string;
  _parent?: { [kEpoch]?: number } | null;
};

/** What one server asks of a connection beyond what the address enforces. */
interface ServerPolicy {
  readonly clientCa: boolean;
  readonly requireClientCert: boolean;
  readonly tls13: boolean;
}

/** The TLS side of a listener. */
export class TlsTerminator {
  readonly #hooks: TlsTerminatorHooks;
  readonly #address: string;
  readonly #watchIntervalMs: number | undefined;
  /** Contexts by `serverTlsKey`: servers with the same files share one. */
  #contexts = new Map<string, ServerTlsContext>();
  #sni!: HostTable<ServerTlsContext>;
  #default!: ServerTlsContext;
  /** Server names by SNI, for the reports of refused connections. */
  #names!: HostTable<string>;
  /** Per-server checks after the handshake; null when the address-wide settings say it all. */
  #policies: HostTable<ServerPolicy> | null = null;
  #requestCert = false;
  #rejectUnauthorized = false;
  #minVersion: tls.SecureVersion = 'TLSv1.2';
  #handshakeTimeoutMs = 10_000;
  /** Sessions are not resumed: the servers here differ in client certificates (see #build). */
  #noTickets = false;
  #server: tls.Server | null = null;
  /** The servers' names and contexts, for `#clientCertPolicy`. */
  #served: readonly ServedContext[] = [];
  /** What the address asks of client certificates, by server (see #clientCertPolicy). */
  #clientCerts = '';
  /** Counts the changes of `#clientCerts`: a handshake accepted in an earlier epoch may be stale. */
  #epoch = 0;

  /** Reads every server's certificate now; throws when one cannot be loaded. */
  constructor(table: ListenerTable, hooks: TlsTerminatorHooks, watchIntervalMs?: number) {
    this.#hooks = hooks;
    this.#address = table.address.key;
    this.#watchIntervalMs = watchIntervalMs;
    this.#build(table);
    this.#clientCerts = this.#clientCertPolicy();
  }

  /** Options for `https.createServer` / `http2.createSecureServer`. */
  serverOptions(): tls.TlsOptions {
    return {
      ...this.#default.options,
      minVersion: this.#minVersion,
      SNICallback: this.#sniCallback,
      requestCert: this.#requestCert,
      rejectUnauthorized: this.#rejectUnauthorized,
      handshakeTimeout: this.#handshakeTimeoutMs,
      secureOptions: this.#secureOptions(),
    };
  }

  /** Starts serving `server` (created with `serverOptions()`). */
  attach(server: tls.Server): void {
    this.#server = server;
    server.on('connection', this.#onConnection);
    server.on('secureConnection', this.#onSecureConnection);
    server.on('tlsClientError', this.#onHandshakeError);
  }

  /** Serves the servers of a new config generation on the same address. */
  update(table: ListenerTable): void {
    this.#build(table);
    const server = this.#server;
    if (server === null) return;
    // Read from the server object for every new connection.
    const s = server as tls.Server & { requestCert: boolean; rejectUnauthorized: boolean };
    s.requestCert = this.#requestCert;
    s.rejectUnauthorized = this.#rejectUnauthorized;
    // The default server, or the lowest version, may have changed.
    this.#setDefaultContext();
    this.#settleClientCerts();
  }

  /**
   * Whether `socket`'s handshake was made under a client-certificate policy that its server (by
   * SNI) no longer has. Cost: one SNI look-up; called when the policy changes, not per request.
   */
  stale(socket: tls.TLSSocket): boolean {
    const s = socket as MarkedSocket;
    return (s[kClientCerts] ?? '') !== this.#sni.match(s.servername || undefined).clientCerts;
  }

  /** Stops watching certificate files. */
  close(): void {
    for (const ctx of this.#contexts.values()) ctx.close();
    this.#contexts.clear();
  }

  #build(table: ListenerTable): void {
    const servers = table.servers.filter(
      (s): s is CompiledServer & { config: { tls: ResolvedServerTls } } => s.config.tls !== null,
    );
    const old = this.#contexts;
    const contexts = new Map<string, ServerTlsContext>();
    const contextOf = (config: ResolvedServerTls): ServerTlsContext => {
      const key = serverTlsKey(config);
      let ctx = contexts.get(key) ?? old.get(key);
      if (ctx === undefined) {
        ctx = new ServerTlsContext(
          config,
          {
            onReload: (c) => this.#reloaded(c),
            onError: (c, err) => this.#failed(c, err),
            onCopy: (c, err, report) => this.#copyInUse(c, err, report),
          },
          this.#watchIntervalMs,
        );
      }
      contexts.set(key, ctx);
      return ctx;
    };
    let sni: HostTable<ServerTlsContext>;
    let served: ServedContext[];
    try {
      served = servers.map((s) => ({
        names: JSON.stringify([s.config.serverNames, s.config.default]),
        ctx: contextOf(s.config.tls),
      }));
      sni = new HostTable(
        servers.map((s, i) => ({
          names: s.config.serverNames,
          isDefault: s.config.default,
          value: served[i]!.ctx,
        })),
      );
    } catch (err) {
      // A certificate that cannot be loaded: drop the contexts this attempt opened.
      for (const [key, ctx] of contexts) if (!old.has(key)) ctx.close();
      throw err;
    }
    for (const [key, ctx] of old) if (!contexts.has(key)) ctx.close();
    this.#contexts = contexts;
    this.#sni = sni;
    this.#default = sni.defaultValue;
    this.#served = served;

    const policies = servers.map((s) => ({
      names: s.config.serverNames,
      isDefault: s.config.default,
      value: {
        clientCa: s.config.tls.clientCa !== null,
        requireClientCert: s.config.tls.requireClientCert,
        tls13: s.config.tls.minVersion === 'TLSv1.3',
      },
    }));
    this.#requestCert = policies.some((p) => p.value.clientCa);
    this.#rejectUnauthorized = policies.every((p) => p.value.requireClientCert);
    this.#minVersion = policies.every((p) => p.value.tls13) ? 'TLSv1.3' : 'TLSv1.2';
    const uniform =
      policies.every((p) => p.value.clientCa === this.#requestCert) &&
      policies.every((p) => p.value.requireClientCert === this.#rejectUnauthorized) &&
      policies.every((p) => p.value.tls13 === (this.#minVersion === 'TLSv1.3'));
    this.#policies = uniform ? null : new HostTable(policies);
    this.#names = new HostTable(
      servers.map((s) => ({ names: s.config.serverNames, isDefault: s.config.default, value: s.name })),
    );
    this.#handshakeTimeoutMs = Math.max(1000, table.limits.headerTimeoutMs);
    // A resumed session keeps the client-certificate verdict of the handshake that made it, under
    // whichever server's SNI that was: a certificate from one server's client_ca would then count
    // on a server that trusts another CA, or none be needed where one is required. Where the
    // servers differ in client certificates, sessions are not resumed (a full handshake each time).
    const certKeys = new Set(servers.map((s) => clientCertKey(s.config.tls)));
    this.#noTickets = certKeys.size > 1;
  }

  /**
   * The OpenSSL options of the listener's connections. A client's renegotiation (TLS 1.2) is
   * refused, as nginx refuses it: the connection keeps the client-certificate verdict and identity
   * of its first handshake, while the certificate of a second one was not checked, so a client
   * verified once could present a self-signed certificate naming any SPIFFE id, and that id went
   * upstream as `$client_spiffe_id`.
   */
  #secureOptions(): number {
    return constants.SSL_OP_NO_RENEGOTIATION | (this.#noTickets ? constants.SSL_OP_NO_TICKET : 0);
  }

  /**
   * What the address asks of client certificates: the one policy of its servers, or each server's
   * with the names that reach it (which server a name reaches decides what its client was asked).
   */
  #clientCertPolicy(): string {
    const policies = this.#served.map((s) => s.ctx.clientCerts);
    if (policies.every((p) => p === policies[0])) return policies[0] ?? '';
    return JSON.stringify(this.#served.map((s, i) => [s.names, policies[i]]));
  }

  /** After a reload or a re-read bundle: tells the listener when the client-certificate policy changed. */
  #settleClientCerts(): void {
    const policy = this.#clientCertPolicy();
    if (policy === this.#clientCerts) return;
    this.#clientCerts = policy;
    this.#epoch++;
    this.#hooks.clientCertsChanged?.();
  }

  /**
   * A TCP connection: the policy epoch it starts in. Its TLS socket's `requestCert` and
   * `rejectUnauthorized` are the server's of this moment, and its client certificate is checked
   * against the bundle of the context SNI picks during the handshake.
   */
  readonly #onConnection = (socket: Socket): void => {
    (socket as Socket & { [kEpoch]?: number })[kEpoch] = this.#epoch;
  };

  readonly #sniCallback = (
    servername: string,
    cb: (err: Error | null, ctx?: tls.SecureContext) => void,
  ): void => {
    cb(null, this.#sni.match(servername).context);
  };

  /** The per-server checks the address-wide settings cannot make. */
  readonly #onSecureConnection = (socket: tls.TLSSocket): void => {
    const marked = socket as MarkedSocket;
    // The policy changed during the handshake, whose settings and bundle may be the old ones: it
    // is closed before it carries a request, as the connections stale at the change were.
    const epoch = marked._parent?.[kEpoch];
    if (epoch !== undefined && epoch !== this.#epoch) {
      socket.destroy();
      return;
    }
    // Only where a certificate is asked for: elsewhere every connection's policy is ''.
    if (this.#requestCert) marked[kClientCerts] = this.#sni.match(socket.servername || undefined).clientCerts;
    const policies = this.#policies;
    if (policies === null) return;
    const p = policies.match(socket.servername || undefined);
    if (p.requireClientCert && !socket.authorized) {
      // Node gives a missing certificate a verification code too (UNABLE_TO_GET_ISSUER_CERT):
      // reported as OpenSSL reports it where every server requires one.
      const missing = Object.keys(socket.getPeerCertificate()).length === 0;
      this.#refused(
        socket,
        missing ? 'client_cert_missing' : 'client_cert_rejected',
        missing ? NO_CLIENT_CERT : (verifyCode(socket) ?? 'UNVERIFIED'),
      );
      socket.destroy();
      return;
    }
    if (p.tls13 && socket.getProtocol() !== 'TLSv1.3') {
      this.#refused(socket, 'version', String(socket.getProtocol()));
      socket.destroy();
      return;
    }
    if (!p.clientCa) withoutClientIdentity(socket);
  };

  /**
   * A handshake that failed, or a connection Node closed right after it for a client certificate
   * that does not verify (`rejectUnauthorized`, where every server requires one): Node closes it
   * without a word, and reports only ECONNRESET here (see tls-handshake-failure.ts).
   */
  readonly #onHandshakeError = (err: NodeJS.ErrnoException, socket: tls.TLSSocket): void => {
    const verify = verifyCode(socket);
    const reason = handshakeFailureReason(err.code, verify);
    this.#refused(socket, reason, verify ?? err.code ?? 'ERR_TLS');
  };

  #refused(socket: tls.TLSSocket, reason: TlsFailureReason, code: string): void {
    const report = this.#hooks.refused;
    if (report === undefined) return;
    const sni = (socket as { servername?: string | false | null }).servername;
    // Node has closed the TLS socket by now, and its address goes with its handle: the TCP
    // connection under it had its address read on accept (http-listener.ts).
    const parent = (socket as tls.TLSSocket & { _parent?: { remoteAddress?: string } | null })._parent;
    report({
      reason,
      listener: this.#address,
      remoteAddr: unmapIpv4(socket.remoteAddress ?? parent?.remoteAddress ?? ''),
      server: this.#names.match(typeof sni === 'string' && sni !== '' ? sni : undefined),
      sni: typeof sni === 'string' && sni !== '' ? sni : null,
      code,
    });
  }

  #setDefaultContext(): void {
    const server = this.#server;
    if (server === null) return;
    // Keep the session-ticket keys: clients resume across a certificate change. A changed client
    // CA bundle changes the session id context instead, which refuses the old sessions.
    const keys = server.getTicketKeys();
    server.setSecureContext({
      ...this.#default.options,
      minVersion: this.#minVersion,
      secureOptions: this.#secureOptions(),
    });
    server.setTicketKeys(keys);
  }

  #reloaded(ctx: ServerTlsContext): void {
    this.#settleClientCerts();
    if (ctx === this.#default) this.#setDefaultContext();
    // A resumed session is checked against the default context's session id context (the
    // session is looked up before SNI picks a context), which holds the client CA bundle's
    // content. Where sessions are resumed, every server here names the same client_ca: look at
    // the default's copy now, so that a session verified by the old bundle is not resumed
    // during the up to one second until its own poll.
    else if (ctx.config.clientCa !== null && !this.#noTickets) void this.#default.poll();
    this.#hooks.reloaded?.({ listener: this.#address, cert: ctx.config.cert, key: ctx.config.key });
  }

  #copyInUse(ctx: ServerTlsContext, err: unknown, report: Record<string, unknown>): void {
    this.#hooks.copyInUse?.(err, {
      listener: this.#address,
      event: 'tls_copy_in_use',
      cert: ctx.config.cert,
      key: ctx.config.key,
      ...(ctx.config.clientCa === null ? {} : { client_ca: ctx.config.clientCa }),
      ...report,
      detail:
        'the certificate files cannot be used as this worker starts; it serves the copy the node loaded last, and loads the files as soon as they change',
    });
  }

  #failed(ctx: ServerTlsContext, err: unknown): void {
    this.#hooks.failed(err, {
      listener: this.#address,
      event: 'tls_reload_failed',
      cert: ctx.config.cert,
      key: ctx.config.key,
      detail: 'the changed certificate files cannot be used; the previous certificate stays in use',
    });
  }
}

/**
 * The X.509 verification code of a client certificate that did not verify (CERT_HAS_EXPIRED...),
 * null when none: Node sets `authorizationError` to the code, a string, where its typings say Error.
 */
function verifyCode(socket: tls.TLSSocket): string | null {
  const e: unknown = socket.authorizationError;
  if (typeof e === 'string') return e === '' ? null : e;
  if (e instanceof Error) return (e as NodeJS.ErrnoException).code ?? e.message;
  return null;
}
