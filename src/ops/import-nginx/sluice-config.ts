/** The parts of `sluice.yaml` the import writes, typed by the config schema itself. */
import type { SluiceConfigInput } from '../../config/schema.js';

/** One `servers:` entry. */
export type SluiceServer = SluiceConfigInput['servers'][number];
/** One `routes:` entry. */
export type SluiceRoute = SluiceServer['routes'][number];
/** A route's `proxy:`. */
export type SluiceProxy = NonNullable<SluiceRoute['proxy']>;
/** A route's `respond:`. */
export type SluiceRespond = NonNullable<SluiceRoute['respond']>;
/** A route's `redirect:`. */
export type SluiceRedirect = NonNullable<SluiceRoute['redirect']>;
/** `access:` of a server or route. */
export type SluiceAccess = NonNullable<SluiceRoute['access']>;
/** `rate_limit:` of a server or route. */
export type SluiceRateLimit = NonNullable<SluiceRoute['rate_limit']>;
/** A server's `tls:`. */
export type SluiceTls = NonNullable<SluiceServer['tls']>;
/** A server's `limits:`. */
export type SluiceLimits = NonNullable<SluiceServer['limits']>;
/** One `upstreams:` entry. */
export type SluiceUpstream = NonNullable<SluiceConfigInput['upstreams']>[string];
/** An upstream's `retry:`. */
export type SluiceRetry = NonNullable<SluiceUpstream['retry']>;

/** A comment for the YAML output, placed before the node at `path`. */
export interface YamlNote {
  readonly path: readonly (string | number)[];
  readonly text: string;
}
