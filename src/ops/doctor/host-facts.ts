/**
 * What `sluice doctor` knows about a host: a plain object the probe fills in from files (and,
 * for the live host only, a command or two) and the pure checks read. Anything that could not be
 * read is `null` or an `unknown` state — never an exception — so a check can say "cannot tell".
 */

/**
 * Kernel settings read besides SYSCTL_SETTINGS, for the messages: `fs.nr_open` caps any nofile
 * limit; `net.ipv4.tcp_migrate_req` decides whether Node 22.12+ workers can use SO_REUSEPORT.
 */
export const AUX_SYSCTL_KEYS = ['fs.nr_open', 'net.ipv4.tcp_migrate_req'] as const;

/** An open-files limit from `/proc/self/limits`; `Infinity` for `unlimited`. */
export interface NofileLimit {
  readonly soft: number;
  readonly hard: number;
}

/** One `nofile` line of `/etc/security/limits.conf` or `limits.d/*.conf`. */
export interface LimitsConfEntry {
  /** Path under the root, e.g. `/etc/security/limits.conf`. */
  readonly file: string;
  /** `*`, a user, `@group`, ... */
  readonly domain: string;
  /** `soft`, `hard` or `-` (both). */
  readonly type: string;
  /** The value as written (`65536`, `unlimited`). */
  readonly value: string;
}

/** Whether the clock is kept in step, and how the probe found out. */
export type TimeSyncFact =
  | { readonly state: 'synchronised'; readonly source: string }
  | { readonly state: 'unsynchronised'; readonly source: string }
  /** `tried` says what was looked at and what came of it, for the message. */
  | { readonly state: 'unknown'; readonly tried: readonly string[] };

/** The CA bundle found, if any. */
export type CaBundleFact =
  | { readonly state: 'found'; readonly path: string; readonly certificates: number }
  | { readonly state: 'missing'; readonly tried: readonly string[] };

/** sshd's global settings, as sshd itself would read them. */
export type SshdFact =
  /** No `/etc/ssh/sshd_config` under the root. */
  | { readonly state: 'absent'; readonly path: string }
  | { readonly state: 'unreadable'; readonly path: string; readonly reason: string }
  | {
      readonly state: 'read';
      /** Lower-cased keyword → the first value given outside a `Match` block (sshd: first wins). */
      readonly settings: Readonly<Record<string, string>>;
      /** Lower-cased keyword → the file that set it (a drop-in can override the main file). */
      readonly origins: Readonly<Record<string, string>>;
      /** Every file read, the main one first, then `Include`d ones in order. */
      readonly files: readonly string[];
    };

/** Everything the checks look at. */
export interface HostFacts {
  /** The directory host files were read under (`/` for this host). */
  readonly root: string;
  /** `/proc/sys` values by sysctl key (`net.core.somaxconn`), whitespace collapsed; null when unreadable. */
  readonly sysctl: Readonly<Record<string, string | null>>;
  /** This process's open-files limit (`/proc/self/limits`), or null. */
  readonly nofile: NofileLimit | null;
  /** `nofile` lines of limits.conf and limits.d, or null when limits.conf does not exist. */
  readonly limitsConf: readonly LimitsConfEntry[] | null;
  readonly timeSync: TimeSyncFact;
  readonly caBundle: CaBundleFact;
  readonly sshd: SshdFact;
  /** `process.getuid()`, or null where there is none. */
  readonly uid: number | null;
  /** `process.versions.node`, e.g. `20.18.0`. */
  readonly nodeVersion: string;
  /** `os.availableParallelism()`: what `workers: auto` starts. */
  readonly cores: number;
}
