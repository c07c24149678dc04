/** What every part of the conversion shares: the warnings, the upstreams and the rate-limit zones. */
import type { NginxDirective, SourcePlace } from './ast.js';
import type { UpstreamPlan, UpstreamUsage } from './convert-upstream.js';
import type { PathContext } from './output-path.js';
import type { RefusedLocation } from './refused-location-error.js';
import type { WarningList } from './warnings.js';

/** A `limit_req_zone`: the key and rate a `limit_req zone=NAME` refers to. */
export interface ZonePlan {
  /** The key as nginx wrote it (`$binary_remote_addr`). */
  readonly key: string;
  /** The sluice rate: `10/s`, `30/m`. */
  readonly rate: string;
  readonly directive: NginxDirective;
}

/** Shared state of one conversion. */
export interface ConvertContext {
  readonly warnings: WarningList;
  /** The `upstream` blocks by lower-case name: nginx compares upstream names case-insensitively. */
  readonly upstreams: ReadonlyMap<string, UpstreamPlan>;
  readonly usage: UpstreamUsage;
  readonly zones: ReadonlyMap<string, ZonePlan>;
  /** Variables set by `map $http_upgrade $NAME { ... }`: the WebSocket `Connection` idiom. */
  readonly upgradeVariables: ReadonlySet<string>;
  /** `FILE:LINE` for a comment in the YAML, the file relative to nginx's prefix. */
  readonly where: (at: SourcePlace) => string;
  /**
   * Per file, the first `proxy_pass` carried over under nginx's implicit `proxy_redirect default`,
   * which sluice does not apply: one warning per file says so.
   */
  readonly defaultRedirects: Map<string, NginxDirective>;
  /** Locations that restrict requests and cannot be matched: the import stops with them all. */
  readonly refused: RefusedLocation[];
}

/** What a location's conversion knows about its server. */
export interface ServerContext {
  readonly ctx: ConvertContext;
  /** What `$server_name` stands for: the server's first plain name. */
  readonly serverName: string | undefined;
  /** What `$server_port` stands for: the port of all the server's listens, if they have one. */
  readonly serverPort: number | undefined;
  /** Named locations (`location @name`) of the server, by name with the `@`. */
  readonly named: ReadonlyMap<string, NginxDirective>;
  /** Named locations a `try_files` sent requests to. */
  readonly usedNamed: Set<string>;
  /** How file paths (certificates, keys) are written. */
  readonly paths: PathContext;
}
