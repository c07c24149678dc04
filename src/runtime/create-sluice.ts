/**
 * The programmatic API: `createSluice(config)` validates a config object exactly as `sluice
 * check` validates a file, and returns a handle to start, reload and close it.
 */
import { resolveConfigObject } from '../config/load.js';
import { formatProblem } from '../config/problem.js';
import type { SluiceConfigInput } from '../config/schema.js';
import type { ResolvedConfig } from '../config/types.js';
import { SluiceError } from '../errors/sluice-error.js';
import { type SluiceAddresses, SluiceInstance } from './instance.js';

/** A sluice created from a config object. */
export interface Sluice {
  /** Binds the listeners and starts serving. */
  start(): Promise<void>;
  /** Validates and applies a new config; on any problem throws and keeps serving the old one. */
  reload(config: SluiceConfigInput): Promise<void>;
  /** Stops accepting, finishes requests in flight (up to `shutdown_timeout`), closes. */
  close(): Promise<void>;
  /** The bound addresses (after `start`). */
  addresses(): SluiceAddresses;
  /** The `/api/upstreams` view: every target's state, health and requests in flight. */
  upstreams(): { upstreams: Record<string, unknown>[] };
  /** Stops new requests to target `index` of `upstream` (in-flight ones finish); its origin, or null. */
  drainTarget(upstream: string, index: number): string | null;
  /** Sends requests to that target again, its failures forgotten; its origin, or null. */
  enableTarget(upstream: string, index: number): string | null;
  /** The resolved config being served. */
  readonly config: ResolvedConfig;
}

/** Resolves a config object or throws a SluiceError listing every problem. */
export function resolveOrThrow(input: unknown, file: string | null = null): ResolvedConfig {
  const result = resolveConfigObject(input, file);
  if (result.ok) return result.config;
  const lines = result.problems.map((p) => formatProblem(p));
  const first = result.problems[0];
  throw new SluiceError(first?.code ?? 'SLUICE_E_CONFIG_VALUE', `invalid config:\n${lines.join('\n')}`, {
    details: lines,
  });
}

/** Creates a sluice from a config object (see `defineConfig`); call `start()` to serve. */
export function createSluice(config: SluiceConfigInput): Sluice {
  const instance = new SluiceInstance(resolveOrThrow(config));
  return {
    start: () => instance.start(),
    reload: (next) => instance.reload(resolveOrThrow(next)),
    close: () => instance.close(),
    addresses: () => instance.addresses(),
    upstreams: () => instance.upstreams(),
    drainTarget: (upstream, index) => instance.drainTarget(upstream, index),
    enableTarget: (upstream, index) => instance.enableTarget(upstream, index),
    get config() {
      return instance.config;
    },
  };
}
