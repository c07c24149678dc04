/**
 * Copies of TLS files (certificates, keys, CA bundles) as the node last loaded them and found
 * usable, for a worker that starts while the files themselves cannot be used.
 *
 * nginx's master reads the certificates and its workers inherit them: a worker respawned while a
 * deploy has `cert.pem` moved away serves with what the master holds. A sluice worker reads its
 * files itself, and one started in place of a dead worker at such a moment failed, five times in
 * a row: a crash loop, and with one worker, an exit. So the primary keeps copies
 * (runtime/tls-file-keeper.ts) and hands them to a worker it starts in place of a dead one, which
 * holds them while it starts. Its files are still loaded from disk first; only a set that cannot
 * be read, or does not make a context, is loaded from the copies instead, and stays watched so
 * that the files are loaded as soon as they change. After the start the copies are let go: a
 * reload reads the files or fails, as always.
 *
 * Copies are by file path: servers that share a certificate share one copy.
 */
import { X509Certificate } from 'node:crypto';

/** Reads a file's bytes (readFileSync, or a copy of it). */
export type FileReader = (file: string) => Buffer;

/** One file's copy as it crosses the IPC channel (JSON): its bytes in base64. */
export interface TlsFileCopyWire {
  readonly base64: string;
  /** When the node loaded these bytes, ms since the epoch. */
  readonly loadedAt: number;
}

/** Copies by file path, as they cross the IPC channel. */
export type TlsFileCopiesWire = Readonly<Record<string, TlsFileCopyWire>>;

/** One file's copy. */
export interface TlsFileCopy {
  readonly bytes: Buffer;
  readonly loadedAt: number;
}

/** The node's copies of its TLS files, by path. */
export class TlsFileCopies {
  static #held: TlsFileCopies | null = null;
  readonly #copies: ReadonlyMap<string, TlsFileCopy>;

  constructor(copies: ReadonlyMap<string, TlsFileCopy>) {
    this.#copies = copies;
  }

  /** The copies sent over the IPC channel. */
  static fromWire(wire: TlsFileCopiesWire): TlsFileCopies {
    return new TlsFileCopies(
      new Map(
        Object.entries(wire).map(([file, c]) => [
          file,
          { bytes: Buffer.from(c.base64, 'base64'), loadedAt: c.loadedAt },
        ]),
      ),
    );
  }

  /** The copies, to send over the IPC channel. */
  toWire(): TlsFileCopiesWire {
    const wire: Record<string, TlsFileCopyWire> = {};
    for (const [file, c] of this.#copies)
      wire[file] = { base64: c.bytes.toString('base64'), loadedAt: c.loadedAt };
    return wire;
  }

  /** The copy of `file`'s bytes; throws when there is none (the load it stands in for fails). */
  readonly read: FileReader = (file) => {
    const copy = this.#copies.get(file);
    if (copy === undefined) throw new Error(`no copy of ${file}`);
    return copy.bytes;
  };

  /**
   * The copies a worker starts with, while it starts (null otherwise). Held for the whole process:
   * the loads that may use them run deep in the start (listeners, upstream targets), and nothing
   * else loads TLS files in a worker until it is ready.
   */
  static get held(): TlsFileCopies | null {
    return TlsFileCopies.#held;
  }

  /** Holds `copies` until the returned function is called. */
  static hold(copies: TlsFileCopies | null): () => void {
    TlsFileCopies.#held = copies;
    return () => {
      if (TlsFileCopies.#held === copies) TlsFileCopies.#held = null;
    };
  }

  /**
   * `load` again, from the held copies, for a load from disk that failed with `err`: the value,
   * and what it was loaded from (for the warning). Throws `err`, the disk's reason, when no copies
   * are held or they do not load either, or when the files are there and refused to this worker
   * (EACCES, EPERM): the primary read them as root, and a key kept from the workers' user on
   * purpose must not reach them through the copy.
   */
  static fallBack<T>(
    err: unknown,
    load: (read: FileReader) => T,
    cert: string | null,
  ): { value: T; report: Record<string, unknown> } {
    const copies = TlsFileCopies.#held;
    const code = (err as NodeJS.ErrnoException | null)?.code;
    if (copies === null || code === 'EACCES' || code === 'EPERM') throw err;
    let value: T;
    try {
      value = load(copies.read);
    } catch {
      throw err;
    }
    return { value, report: copies.#describe(err, cert) };
  }

  /**
   * The fields of the warning: the file that failed (when the error names one), when the copy was
   * loaded, and the certificate it holds (the first of the file), so it can be told from the next.
   */
  #describe(err: unknown, cert: string | null): Record<string, unknown> {
    const path = (err as NodeJS.ErrnoException | null)?.path;
    const copy = cert === null ? undefined : this.#copies.get(cert);
    const out: Record<string, unknown> = typeof path === 'string' ? { file: path } : {};
    if (copy === undefined) return out;
    out.copy_loaded_at = new Date(copy.loadedAt).toISOString();
    try {
      const x509 = new X509Certificate(copy.bytes);
      out.copy_sha256 = x509.fingerprint256;
      out.copy_not_after = new Date(x509.validTo).toISOString();
    } catch {
      // A CA bundle read as a certificate: its time is still said.
    }
    return out;
  }
}
