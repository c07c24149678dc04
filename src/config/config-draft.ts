/**
 * The schema's output as the meaning checks see it: every key optional and every list entry
 * possibly missing, because after a failed schema check they run on the salvaged parts only
 * (see `salvage` in schema-walk.ts). After a successful check nothing is actually missing.
 */
import type { SluiceConfigParsed } from './schema.js';

/** `T` with every key optional and every list entry possibly `undefined`, all the way down. */
export type Loose<T> = T extends readonly (infer E)[]
  ? readonly (Loose<E> | undefined)[]
  : T extends object
    ? { readonly [K in keyof T]?: Loose<T[K]> }
    : T;

type Item<T> = T extends readonly (infer E)[] ? NonNullable<E> : never;

/** The whole config, as far as it is well-formed. */
export type ConfigDraft = Loose<SluiceConfigParsed>;
/** One `servers:` entry. */
export type ServerDraft = Item<NonNullable<ConfigDraft['servers']>>;
/** One `routes:` entry. */
export type RouteDraft = Item<NonNullable<ServerDraft['routes']>>;
/** A route's `match:`. */
export type MatchDraft = NonNullable<RouteDraft['match']>;
/** A route's `proxy:`. */
export type ProxyDraft = NonNullable<RouteDraft['proxy']>;
/** A route's `respond:`. */
export type RespondDraft = NonNullable<RouteDraft['respond']>;
/** A route's `redirect:`. */
export type RedirectDraft = NonNullable<RouteDraft['redirect']>;
/** A server's `limits:`. */
export type LimitsDraft = NonNullable<ServerDraft['limits']>;
/** One `upstreams:` entry. */
export type UpstreamDraft = NonNullable<NonNullable<ConfigDraft['upstreams']>[string]>;
