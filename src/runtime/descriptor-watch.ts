/**
 * Notices this process out of file descriptors where nothing else would say so: the primary.
 *
 * In round-robin mode the primary accepts every connection of every server and passes it to a
 * worker. At its nofile limit libuv accepts each new connection with a spare descriptor it keeps
 * for this and closes it at once (its EMFILE trick), reporting nothing; Node's cluster would drop
 * the error anyway. Measured with nofile 256 and 300 idle connections to the admin port: every
 * client of the data plane was reset, `/api/status` did not answer, and nothing was logged. (A
 * worker short of descriptors is told by the connections it cannot receive: lost-handoffs.ts.)
 *
 * Every `intervalMs` (a second) this opens /dev/null and closes it: EMFILE (or ENFILE, the host's
 * fs.file-max) starts a shortage, reported once; the first open that works ends it. Two system
 * calls a second; a shortage shorter than the interval can go unseen.
 */
import { closeSync, openSync } from 'node:fs';

/** What the watch reports. */
export interface DescriptorEvents {
  /** A shortage began; `err` is the failed open's. */
  readonly onShort: (err: NodeJS.ErrnoException) => void;
  /** The shortage that began `shortMs` ago is over. */
  readonly onRecovered: (shortMs: number) => void;
}

/** Opens and closes a descriptor; throws as `openSync` does. */
export type DescriptorProbe = () => void;

const openOne: DescriptorProbe = () => closeSync(openSync('/dev/null', 'r'));

/** Whether an open failed for want of a descriptor (the process's or the host's). */
export function isDescriptorShortage(err: unknown): err is NodeJS.ErrnoException {
  const code = (err as { code?: unknown } | null)?.code;
  return code === 'EMFILE' || code === 'ENFILE';
}

/** Probes for a free descriptor every `intervalMs`, reporting when there is none and when there is again. */
export class DescriptorWatch {
  readonly #events: DescriptorEvents;
  readonly #intervalMs: number;
  readonly #probe: DescriptorProbe;
  #timer: NodeJS.Timeout | null = null;
  /** When the shortage being reported began (`Date.now()`), or null. */
  #shortSince: number | null = null;

  constructor(events: DescriptorEvents, intervalMs = 1_000, probe: DescriptorProbe = openOne) {
    this.#events = events;
    this.#intervalMs = intervalMs;
    this.#probe = probe;
  }

  start(): void {
    if (this.#timer !== null) return;
    this.#timer = setInterval(() => this.check(), this.#intervalMs);
    this.#timer.unref();
  }

  stop(): void {
    if (this.#timer !== null) clearInterval(this.#timer);
    this.#timer = null;
  }

  /** One probe (the timer's; tests call it directly). */
  check(): void {
    try {
      this.#probe();
    } catch (err) {
      // Anything else (/dev/null missing in a bare container) says nothing of descriptors.
      if (!isDescriptorShortage(err) || this.#shortSince !== null) return;
      this.#shortSince = Date.now();
      this.#events.onShort(err);
      return;
    }
    if (this.#shortSince === null) return;
    const shortMs = Date.now() - this.#shortSince;
    this.#shortSince = null;
    this.#events.onRecovered(shortMs);
  }
}
