/**
 * The primary's copies of the TLS files its config names, for the workers it starts in place of
 * dead ones (core/tls-file-copies.ts): what they serve with when the files cannot be used at that
 * moment, as nginx's respawned workers serve with what their master read.
 *
 * Each distinct set of files that makes one context (a server's certificate, key and client CA;
 * an https upstream's CA, client certificate and key) is loaded and watched as a worker watches
 * it (core/watched-files.ts: one `stat` per file a second), and kept only when its files make a
 * context together: a copy follows the files within a second of a rotation, and is never half of
 * one. A set that cannot be loaded has no copy until its files change and load (the primary may
 * not read what its workers may, and the reverse). Sets are kept as long as a config in use
 * names them.
 *
 * Cost: one context per distinct set when it is first named and at each change (about 1 ms for
 * RSA-2048; 300 servers sharing a certificate share one set), each file's bytes once, and the
 * copies of the config's files, each once, in the start message of a worker that replaces one.
 */
import { readFileSync } from 'node:fs';
import tls from 'node:tls';
import type { ResolvedConfig } from '../config/types.js';
import { TlsFileCopies, type TlsFileCopy } from '../core/tls-file-copies.js';
import { WatchedFiles } from '../core/watched-files.js';

/** The files of one context. */
interface TlsFileSet {
  readonly cert: string | null;
  readonly key: string | null;
  readonly ca: string | null;
}

/** A set's files as last loaded, with their bytes. */
type LoadedSet = ReadonlyMap<string, TlsFileCopy>;

/** The distinct file sets a config loads, by identity (the file names). */
export function tlsFileSets(config: ResolvedConfig): Map<string, TlsFileSet> {
  const sets = new Map<string, TlsFileSet>();
  const add = (set: TlsFileSet) => sets.set(JSON.stringify([set.cert, set.key, set.ca]), set);
  for (const server of config.servers) {
    const t = server.tls;
    if (t !== null) add({ cert: t.cert, key: t.key, ca: t.clientCa });
  }
  for (const upstream of Object.values(config.upstreams)) {
    const t = upstream.tls;
    // As tls-preflight.ts: only an upstream with an https target loads its files.
    if (t !== null && upstream.targets.some((target) => target.origin.startsWith('https:')))
      add({ cert: t.cert, key: t.key, ca: t.ca });
  }
  return sets;
}

/** The primary's watched copies. */
export class TlsFileKeeper {
  readonly #sets = new Map<string, WatchedFiles<LoadedSet | null>>();
  readonly #intervalMs: number | undefined;

  constructor(intervalMs?: number) {
    this.#intervalMs = intervalMs;
  }

  /** Loads and watches the sets of `config` not watched yet. */
  follow(config: ResolvedConfig): void {
    for (const [id, set] of tlsFileSets(config)) {
      if (this.#sets.has(id)) continue;
      const files = [set.cert, set.key, set.ca].filter((f): f is string => f !== null);
      this.#sets.set(
        id,
        new WatchedFiles(
          files,
          () => loadSet(set, files),
          {},
          this.#intervalMs,
          () => null,
        ),
      );
    }
  }

  /** Stops watching the sets none of `configs` names. */
  retain(configs: readonly ResolvedConfig[]): void {
    const named = new Set(configs.flatMap((c) => [...tlsFileSets(c).keys()]));
    for (const [id, watch] of this.#sets) {
      if (named.has(id)) continue;
      watch.close();
      this.#sets.delete(id);
    }
  }

  /** The copies of the files `config` names, each file once (the newest, when two sets share one). */
  copies(config: ResolvedConfig): TlsFileCopies {
    const files = new Map<string, TlsFileCopy>();
    for (const id of tlsFileSets(config).keys()) {
      for (const [file, copy] of this.#sets.get(id)?.value ?? []) {
        const kept = files.get(file);
        if (kept === undefined || kept.loadedAt < copy.loadedAt) files.set(file, copy);
      }
    }
    return new TlsFileCopies(files);
  }

  /** Looks at every set's files now rather than at the next poll. */
  async poll(): Promise<void> {
    await Promise.all([...this.#sets.values()].map((watch) => watch.poll()));
  }

  /** Stops every watch. */
  close(): void {
    for (const watch of this.#sets.values()) watch.close();
    this.#sets.clear();
  }
}

/** Reads a set's files and builds their context (as the workers do); throws when they make none. */
function loadSet(set: TlsFileSet, files: readonly string[]): LoadedSet {
  const loadedAt = Date.now();
  const bytes = new Map(files.map((f) => [f, readFileSync(f)]));
  const of = (file: string | null) => (file === null ? undefined : bytes.get(file));
  tls.createSecureContext({ cert: of(set.cert), key: of(set.key), ca: of(set.ca) });
  return new Map([...bytes].map(([file, b]) => [file, { bytes: b, loadedAt }]));
}
