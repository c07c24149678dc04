/**
 * A value loaded from files and loaded again when they change on disk: TLS certificates and keys
 * that SPIRE, cert-manager or an ACME client replace while sluice runs.
 *
 * Changes are noticed by polling `stat` (inode, size, mtime, ctime) rather than `fs.watch`, which
 * misses the rename-over and symlink swaps those tools (and Kubernetes secret volumes) use; one
 * poll costs one `stat` per file. A failed load keeps the previous value: files written one after
 * the other (a new certificate, then its key) often fail once in between, so a failure is reported
 * only when the files stay the same and still fail at the next poll, and once per such state.
 * The timer is unref'd: a watch never keeps a process alive.
 *
 * A watch may start on a fallback value when the files cannot be loaded at first (a worker started
 * in place of a dead one while a deploy has its certificate moved away: tls-file-copies.ts); the
 * files are then loaded as soon as they change, exactly as after a failed reload.
 *
 *   poll ─▶ signature same as loaded? ─yes─▶ nothing
 *              └─no─▶ failed before with this signature? ─yes─▶ report once
 *                        └─no─▶ load ─ok─▶ swap, onReload │ fail─▶ remember the signature
 */
import { statSync } from 'node:fs';
import { stat } from 'node:fs/promises';

/** How often watched files are looked at by default. */
export const WATCH_INTERVAL_MS = 1000;

/** What a watch reports. */
export interface WatchedFilesHooks<T> {
  /** A new value was loaded (the files changed). */
  readonly onReload?: (value: T) => void;
  /** The changed files cannot be loaded; the previous value stays. Called once per broken state. */
  readonly onError?: (err: unknown) => void;
}

/** A value loaded from `files` by `load`, reloaded when they change. */
export class WatchedFiles<T> {
  readonly #files: readonly string[];
  readonly #load: () => T;
  readonly #hooks: WatchedFilesHooks<T>;
  readonly #timer: NodeJS.Timeout;
  #value: T;
  #loaded: string;
  #failed: string | null = null;
  #failure: unknown = null;
  #reported: string | null = null;
  #polling = false;
  #closed = false;

  /**
   * Loads the value now and starts watching. A failed load throws, unless `fallback` gives a value
   * for it (it may throw too, and then the constructor does).
   */
  constructor(
    files: readonly string[],
    load: () => T,
    hooks: WatchedFilesHooks<T> = {},
    intervalMs = WATCH_INTERVAL_MS,
    fallback?: (err: unknown) => T,
  ) {
    this.#files = files;
    this.#load = load;
    this.#hooks = hooks;
    // Taken before the load: files that change while it reads them are loaded again at the poll.
    // On a fallback, the files stay as they failed until they change (as a failed reload waits).
    this.#loaded = signatureSync(files);
    this.#value = fallback === undefined ? load() : loadOr(load, fallback);
    this.#timer = setInterval(() => void this.poll(), intervalMs);
    this.#timer.unref();
  }

  /** The value loaded last. */
  get value(): T {
    return this.#value;
  }

  /** Looks at the files once (the timer calls this; tests may too). */
  async poll(): Promise<void> {
    if (this.#polling || this.#closed) return;
    this.#polling = true;
    try {
      const signature = await signatureOf(this.#files);
      if (this.#closed || signature === this.#loaded) return;
      if (signature === this.#failed) {
        if (this.#reported !== signature) {
          this.#reported = signature;
          this.#hooks.onError?.(this.#failure);
        }
        return;
      }
      let value: T;
      try {
        value = this.#load();
      } catch (err) {
        this.#failed = signature;
        this.#failure = err;
        return;
      }
      this.#value = value;
      this.#loaded = signature;
      this.#failed = null;
      this.#failure = null;
      this.#hooks.onReload?.(value);
    } finally {
      this.#polling = false;
    }
  }

  /** Stops watching; the value stays readable. */
  close(): void {
    this.#closed = true;
    clearInterval(this.#timer);
  }
}

function loadOr<T>(load: () => T, fallback: (err: unknown) => T): T {
  try {
    return load();
  } catch (err) {
    return fallback(err);
  }
}

/** One file as `stat` sees it; a missing file is `-`. */
function describe(s: { ino: number; size: number; mtimeMs: number; ctimeMs: number } | null): string {
  return s === null ? '-' : `${s.ino}:${s.size}:${s.mtimeMs}:${s.ctimeMs}`;
}

async function signatureOf(files: readonly string[]): Promise<string> {
  const parts = await Promise.all(files.map((f) => stat(f).then(describe, () => '-')));
  return parts.join('|');
}

function signatureSync(files: readonly string[]): string {
  return files.map((f) => describe(statSync(f, { throwIfNoEntry: false }) ?? null)).join('|');
}
