/**
 * Keeps the addresses of a `resolve: true` target current: every A and AAAA record is a target,
 * re-resolved when the shortest record TTL runs out (bounded by `dns.min_ttl` and `dns.max_ttl`).
 * A failed resolution keeps the previous addresses and is retried after `min_ttl`. A failure streak
 * is reported when it starts, when its error changes, and then once a minute, and its end is
 * reported too: with the default `min_ttl` of 1 s, a name that stopped resolving logged a warning
 * every second in every worker.
 *
 * Records come from the DNS servers (with TTLs); names only the system resolver knows (from
 * /etc/hosts, such as `localhost`) fall back to `getaddrinfo`, refreshed every `max_ttl`.
 */
import { promises as dns } from 'node:dns';

/** A resolver that gives up within about 4 s when no DNS server answers. */
const resolver = new dns.Resolver({ timeout: 2000, tries: 2 });

/** Addresses of a host and how long they may be kept (ms; NaN when the source has no TTL). */
export interface HostAddresses {
  readonly addresses: readonly string[];
  readonly ttlMs: number;
}

/** Resolves a host name to its addresses. */
export type ResolveHost = (host: string) => Promise<HostAddresses>;

/** DNS A and AAAA records, else the system resolver. */
export const systemResolve: ResolveHost = async (host) => {
  const [v4, v6] = await Promise.allSettled([
    resolver.resolve4(host, { ttl: true }),
    resolver.resolve6(host, { ttl: true }),
  ]);
  const records = [
    ...(v4.status === 'fulfilled' ? v4.value : []),
    ...(v6.status === 'fulfilled' ? v6.value : []),
  ];
  if (records.length > 0) {
    return { addresses: records.map((r) => r.address), ttlMs: Math.min(...records.map((r) => r.ttl)) * 1000 };
  }
  const found = await dns.lookup(host, { all: true });
  return { addresses: found.map((a) => a.address), ttlMs: Number.NaN };
};

export interface DnsRefresherOptions {
  readonly host: string;
  readonly protocol: string;
  readonly port: number;
  readonly minTtlMs: number;
  readonly maxTtlMs: number;
  readonly resolve?: ResolveHost;
  /** Receives the origins (`http://10.0.0.1:8080`, `http://[fd00::1]:8080`), sorted. */
  readonly apply: (origins: readonly string[]) => void;
  /** A failure worth reporting (see the top of this file); `failures` counts the streak so far. */
  readonly onError: (err: unknown, streak: FailureStreak) => void;
  /** Resolution works again after `failures` failed attempts over `failedForMs`. */
  readonly onRecovered?: (streak: FailureStreak) => void;
}

/** Consecutive failed resolutions. */
export interface FailureStreak {
  readonly failures: number;
  /** From the first failure of the streak to now. */
  readonly failedForMs: number;
}

/** While a resolution keeps failing with the same error, it is reported again at most this often. */
export const REPORT_AGAIN_MS = 60_000;

function errorText(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}

/** Re-resolves one host on its TTL. */
export class DnsRefresher {
  readonly #o: DnsRefresherOptions;
  #timer: NodeJS.Timeout | null = null;
  #stopped = false;
  #failures = 0;
  #failingSince = 0;
  #reportedAt = 0;
  #reportedText = '';

  constructor(options: DnsRefresherOptions) {
    this.#o = options;
  }

  /** Resolves once now (the returned promise settles then), and keeps refreshing. */
  start(): Promise<void> {
    return this.#refresh();
  }

  async #refresh(): Promise<void> {
    const o = this.#o;
    let delay = o.minTtlMs;
    try {
      const { addresses, ttlMs } = await (o.resolve ?? systemResolve)(o.host);
      if (this.#stopped) return;
      if (addresses.length === 0) throw new Error(`no A or AAAA records for ${o.host}`);
      const origins = [...new Set(addresses)]
        .sort()
        .map((a) => `${o.protocol}//${a.includes(':') ? `[${a}]` : a}:${o.port}`);
      o.apply(origins);
      if (this.#failures > 0) {
        const streak = { failures: this.#failures, failedForMs: Date.now() - this.#failingSince };
        this.#failures = 0;
        o.onRecovered?.(streak);
      }
      delay = Number.isNaN(ttlMs) ? o.maxTtlMs : Math.min(o.maxTtlMs, Math.max(o.minTtlMs, ttlMs));
    } catch (err) {
      if (this.#stopped) return;
      this.#failed(err);
    }
    this.#timer = setTimeout(() => void this.#refresh(), delay);
    this.#timer.unref();
  }

  #failed(err: unknown): void {
    const now = Date.now();
    const text = errorText(err);
    if (this.#failures++ === 0) this.#failingSince = now;
    else if (text === this.#reportedText && now - this.#reportedAt < REPORT_AGAIN_MS) return;
    this.#reportedAt = now;
    this.#reportedText = text;
    this.#o.onError(err, { failures: this.#failures, failedForMs: now - this.#failingSince });
  }

  /** Stops refreshing. */
  stop(): void {
    this.#stopped = true;
    if (this.#timer !== null) clearTimeout(this.#timer);
    this.#timer = null;
  }
}
