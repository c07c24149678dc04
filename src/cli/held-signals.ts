/**
 * Signals that arrive while `sluice start` or `sluice serve` is still starting: loading its
 * modules and its config (until 350–410 ms after exec measured on Node 20, longer with a config on
 * a slow disk or a `.ts` config compiled at start), then starting the workers (handlers loading
 * may take seconds). Node's default action for SIGHUP and SIGTERM ends the process, so a
 * `systemctl reload` right after a start killed sluice. bin.ts holds them from the command's first
 * turn, before it loads anything else (this module imports nothing): taken 110–140 ms after exec,
 * Node's own start and the command-line parser. `runPrimary` acts on a stop at once from when it
 * starts the workers (`onHeldStop`), and takes over once sluice serves, carrying out a reload
 * asked for meanwhile. SIGUSR1 (reopen logs) meanwhile is moot, and a second stop signal exits at
 * once with 1, as it does later. SIGQUIT stops as SIGTERM does (nginx's graceful stop); SIGUSR2,
 * which means nothing to sluice, is held so that Node's default does not end the process.
 */
const SIGNALS = ['SIGTERM', 'SIGINT', 'SIGQUIT', 'SIGHUP', 'SIGUSR1', 'SIGUSR2'] as const;

let held: NodeJS.Signals[] | null = null;
const listeners: [NodeJS.Signals, () => void][] = [];
/** Acts on the first stop signal while it is held (see onHeldStop). */
let stopHook: ((signal: NodeJS.Signals) => void) | null = null;

/** The signals that stop sluice gracefully (drain, then exit 0). */
export const STOP_SIGNALS: readonly NodeJS.Signals[] = ['SIGTERM', 'SIGINT', 'SIGQUIT'];

const isStop = (s: NodeJS.Signals) => STOP_SIGNALS.includes(s);

/** Starts holding the stop signals, SIGHUP, SIGUSR1 and SIGUSR2 (once; again after `takeHeldSignals`). */
export function holdSignals(): void {
  if (held !== null) return;
  const seen: NodeJS.Signals[] = [];
  held = seen;
  for (const signal of SIGNALS) {
    const listener = () => {
      if (isStop(signal) && seen.some(isStop)) {
        process.stderr.write(`sluice: second ${signal} while starting, exiting now\n`);
        process.exit(1);
      }
      seen.push(signal);
      if (isStop(signal) && stopHook !== null) stopHook(signal);
    };
    listeners.push([signal, listener]);
    process.on(signal, listener);
  }
}

/**
 * Acts on a stop signal at once rather than once serving: from now on while signals are held,
 * and now if one was held already. Starting the workers may take up to their ready timeout
 * (handlers loading); holding a stop that long kept `systemctl stop` waiting. A second stop
 * signal still exits at once with 1.
 */
export function onHeldStop(hook: (signal: NodeJS.Signals) => void): void {
  stopHook = hook;
  const first = held?.find(isStop);
  if (first !== undefined) hook(first);
}

/** What the held signals asked for: the first stop signal, whether a reload, and whether a SIGUSR2 came (ignored). */
export interface HeldSignals {
  readonly stop: NodeJS.Signals | null;
  readonly reload: boolean;
  readonly ignored: boolean;
}

/**
 * Stops holding and says what the signals received meanwhile asked for (nothing when nothing held
 * them). Call it after adding the handlers that will act on later signals, in the same turn: a
 * signal is then either among those taken or seen by the new handlers, never both and never
 * neither. Called first, it removed the signal's last listener, which closes Node's watcher for it:
 * a signal caught by the process but not yet delivered to JavaScript was dropped with it (a
 * SIGTERM sent while the config was parsed was lost, and the stop waited for systemd's SIGKILL).
 */
export function takeHeldSignals(): HeldSignals {
  for (const [signal, listener] of listeners.splice(0)) process.off(signal, listener);
  stopHook = null;
  const seen = held ?? [];
  held = null;
  return {
    stop: seen.find(isStop) ?? null,
    reload: seen.includes('SIGHUP'),
    ignored: seen.includes('SIGUSR2'),
  };
}
