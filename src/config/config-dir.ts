/**
 * The directory a config's relative paths resolve against (its own, or the working directory for
 * an object without a file), and which paths were written relative to it: where the file is
 * deployed elsewhere (`/etc/sluice` in an image or a pod), those move with it and absolute ones
 * do not, which the resolved absolute path alone cannot tell.
 */
import { isAbsolute, resolve } from 'node:path';

/** Resolves the paths a config names and remembers the relative ones. */
export class ConfigDir {
  readonly #dir: string;
  readonly #relative = new Set<string>();

  constructor(dir: string) {
    this.#dir = dir;
  }

  /** `written` resolved against the directory (an absolute one as it is). */
  resolve(written: string): string {
    const path = resolve(this.#dir, written);
    if (!isAbsolute(written)) this.#relative.add(path);
    return path;
  }

  /** The resolved paths that were written relative, in the order they were met. */
  relativePaths(): string[] {
    return [...this.#relative];
  }
}
