/**
 * The pid file across reloads, as nginx keeps its `pid` file: a reload that names another path
 * writes the new file before anything else changes (one that cannot be written refuses the whole
 * reload, as an admin address that cannot be bound does), and removes the old one once the reload
 * is done; a stop removes the one in use. Without this, the new file was never written (`sluice
 * reload` could not find the running sluice) and the old one outlived the stop.
 */
import { renameSync, rmSync, writeFileSync } from 'node:fs';
import { sameFile } from '../core/same-file.js';
import { SluiceError } from '../errors/sluice-error.js';

/** A prepared change of pid file: applied by `commit`, undone by `abort`. */
export interface PidFileChange {
  commit(): void;
  abort(): void;
}

/** What a pid file that cannot be removed is reported to. */
export type PidFileWarn = (file: string, reason: string) => void;

/**
 * Writes this process's pid; a path it cannot write is a SLUICE_E_RUNTIME_PID_FILE. The pid goes to
 * a file beside it, renamed over it: written in place, a full disk left the file empty (truncated,
 * then nothing written), so `sluice reload` found a pid file "holding no pid" and a file that held
 * the pid before lost it. A directory only the file itself may be written in (a pid file made
 * beforehand for sluice's user) is written in place, as before.
 */
function writePidFile(file: string): void {
  const temp = `${file}.${process.pid}.tmp`;
  try {
    try {
      writeFileSync(temp, `${process.pid}\n`);
    } catch (err) {
      const code = (err as NodeJS.ErrnoException).code;
      if (code !== 'EACCES' && code !== 'EPERM') throw err;
      writeFileSync(file, `${process.pid}\n`);
      return;
    }
    renameSync(temp, file);
  } catch (err) {
    try {
      rmSync(temp, { force: true });
    } catch {
      // Cannot be removed either: the error below says why the write failed.
    }
    const reason = (err as NodeJS.ErrnoException).code ?? (err as Error).message;
    throw new SluiceError('SLUICE_E_RUNTIME_PID_FILE', `cannot write pid_file ${file}: ${reason}`, {
      cause: err,
    });
  }
}

/** The primary's pid file, from the start to the stop, through reloads that move it. */
export class PidFile {
  readonly #warn: PidFileWarn;
  /** The file in use (the served config's `pid_file`). */
  #current: string | null = null;
  /** The file a reload wrote and has not committed yet: an exit that comes first removes it too. */
  #next: string | null = null;

  constructor(warn: PidFileWarn) {
    this.#warn = warn;
  }

  /** Writes the first config's pid file; throws SLUICE_E_RUNTIME_PID_FILE when it cannot. */
  start(file: string | null): void {
    if (file !== null) writePidFile(file);
    this.#current = file;
  }

  /**
   * Readies the move to `next` (a path, or null for none): writes it now. Throws when it cannot,
   * having changed nothing.
   */
  prepare(next: string | null): PidFileChange {
    const current = this.#current;
    if (next === current) {
      return { commit: () => undefined, abort: () => undefined };
    }
    // Written even when it names the current file by another path (`/var/run` for `/run`): the
    // same pid, and the file is there again if someone had deleted it. Compared after the write.
    if (next !== null) {
      writePidFile(next);
      this.#next = next;
    }
    return {
      commit: () => {
        this.#current = next;
        this.#next = null;
        if (current !== null && (next === null || !sameFile(current, next))) this.#remove(current);
      },
      abort: () => {
        if (next !== null && this.#next === next) this.abandonPending();
      },
    };
  }

  /** Removes the file a reload wrote and did not commit (a reload that failed unexpectedly). */
  abandonPending(): void {
    const next = this.#next;
    if (next === null) return;
    this.#next = null;
    if (this.#current === null || !sameFile(next, this.#current)) this.#remove(next);
  }

  /**
   * Removes the pid file (and one a reload under way wrote). One that cannot be removed is reported
   * and left: a file in a directory only root may change (systemd creates /run/sluice.pid for the
   * service and removes it after stop) must not fail the stop.
   */
  remove(): void {
    for (const file of [this.#current, this.#next]) if (file !== null) this.#remove(file);
  }

  #remove(file: string): void {
    try {
      rmSync(file, { force: true });
    } catch (err) {
      this.#warn(file, (err as NodeJS.ErrnoException).code ?? (err as Error).message);
    }
  }
}
