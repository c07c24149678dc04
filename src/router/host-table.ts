/**
 * Virtual-host selection for one listen address, in nginx's `server_name` order:
 *
 *   1. the exact name;
 *   2. the longest wildcard starting with an asterisk (`*.example.com`);
 *   3. the longest wildcard ending with an asterisk (`mail.*`);
 *   4. the first regular expression (`~...`), in the order the servers are written;
 *   5. otherwise the default server: the one marked `default`, else the first.
 *
 * Built once per config; a lookup costs one Map probe for exact names and at most one probe per
 * dot in the host for wildcards, so it does not grow with the number of servers.
 */

/** One server's names, as written in the config (`~` prefix for a regex). */
export interface HostEntry<T> {
  readonly names: readonly string[];
  readonly isDefault: boolean;
  readonly value: T;
}

/** The compiled host lookup for one listen address. */
export class HostTable<T> {
  readonly #exact = new Map<string, T>();
  /** `*.example.com` stored as `.example.com`. */
  readonly #leading = new Map<string, T>();
  /** `mail.*` stored as `mail.`. */
  readonly #trailing = new Map<string, T>();
  readonly #regexes: { readonly re: RegExp; readonly value: T }[] = [];
  readonly #default: T;
  readonly #hasWildcards: boolean;

  constructor(entries: readonly HostEntry<T>[]) {
    const first = entries[0];
    if (!first) throw new Error('HostTable needs at least one server');
    let fallback = first.value;
    for (const entry of entries) {
      if (entry.isDefault) fallback = entry.value;
      for (const name of entry.names) this.#add(name, entry.value);
    }
    this.#default = fallback;
    this.#hasWildcards = this.#leading.size > 0 || this.#trailing.size > 0 || this.#regexes.length > 0;
  }

  #add(name: string, value: T): void {
    // First definition wins, as in nginx (duplicates are rejected by config validation anyway).
    if (name.startsWith('~')) {
      this.#regexes.push({ re: new RegExp(name.slice(1)), value });
    } else if (name.startsWith('*.')) {
      if (!this.#leading.has(name.slice(1))) this.#leading.set(name.slice(1), value);
    } else if (name.startsWith('.')) {
      // nginx: ".example.com" is "example.com" plus "*.example.com".
      if (!this.#exact.has(name.slice(1))) this.#exact.set(name.slice(1), value);
      if (!this.#leading.has(name)) this.#leading.set(name, value);
    } else if (name.endsWith('.*')) {
      if (!this.#trailing.has(name.slice(0, -1))) this.#trailing.set(name.slice(0, -1), value);
    } else if (!this.#exact.has(name)) {
      this.#exact.set(name, value);
    }
  }

  /** The default server of this address. */
  get defaultValue(): T {
    return this.#default;
  }

  /** Picks the server for a Host header value (port and trailing dot ignored, case-insensitive). */
  match(hostHeader: string | undefined): T {
    return hostHeader ? this.matchName(normaliseHost(hostHeader)) : this.#default;
  }

  /** Picks the server for a host name already normalised (`normaliseHost`); '' is the default. */
  matchName(host: string): T {
    if (host === '') return this.#default;
    const exact = this.#exact.get(host);
    if (exact !== undefined) return exact;
    if (!this.#hasWildcards) return this.#default;
    // Longest leading wildcard: try suffixes from the longest (first dot) to the shortest.
    if (this.#leading.size > 0) {
      for (let i = host.indexOf('.'); i !== -1; i = host.indexOf('.', i + 1)) {
        const hit = this.#leading.get(host.slice(i));
        if (hit !== undefined) return hit;
      }
    }
    // Longest trailing wildcard: try prefixes from the longest (last dot) to the shortest.
    if (this.#trailing.size > 0) {
      for (let i = host.lastIndexOf('.'); i > 0; i = host.lastIndexOf('.', i - 1)) {
        const hit = this.#trailing.get(host.slice(0, i + 1));
        if (hit !== undefined) return hit;
      }
    }
    for (const { re, value } of this.#regexes) if (re.test(host)) return value;
    return this.#default;
  }
}

/** Lower-cases a Host value and drops its port and trailing dot; `[::1]:80` becomes `[::1]`. */
export function normaliseHost(hostHeader: string): string {
  let host = hostHeader;
  if (host.charCodeAt(0) === 0x5b /* [ */) {
    const end = host.indexOf(']');
    host = end === -1 ? host : host.slice(0, end + 1);
  } else {
    const colon = host.indexOf(':');
    if (colon !== -1) host = host.slice(0, colon);
  }
  if (host.charCodeAt(host.length - 1) === 0x2e /* . */) host = host.slice(0, -1);
  // Host values are almost always lower-case already; skip the allocation then.
  return hasUpperCase(host) ? host.toLowerCase() : host;
}

function hasUpperCase(s: string): boolean {
  for (let i = 0; i < s.length; i++) {
    const c = s.charCodeAt(i);
    if (c >= 0x41 && c <= 0x5a) return true;
  }
  return false;
}
