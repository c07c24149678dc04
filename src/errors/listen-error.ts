/**
 * A listen address that cannot be bound, with a hint for what went wrong: the catalogue's hint
 * (another process holds the port) was given for every cause, a typo'd address included.
 */
import { SluiceError } from './sluice-error.js';

const HINTS: Readonly<Record<string, string>> = {
  EADDRINUSE: 'another process holds the port (ss -ltnp shows which), or sluice is already running',
  EACCES: 'ports below 1024 need root or CAP_NET_BIND_SERVICE',
  EADDRNOTAVAIL: "the address is not one of this host's (ip addr lists them); 0.0.0.0 or [::] listens on all",
  ENOTFOUND: 'the host name does not resolve; write an IP address',
  EAI_AGAIN: 'the host name could not be resolved now (DNS); write an IP address',
};

/** SLUICE_E_RUNTIME_LISTEN for `key` (and what listens there, e.g. ` (admin)`). */
export function listenError(key: string, err: NodeJS.ErrnoException, what = ''): SluiceError {
  const hint = err.code === undefined ? undefined : HINTS[err.code];
  return new SluiceError(
    'SLUICE_E_RUNTIME_LISTEN',
    `cannot listen on ${key}${what}: ${err.code ?? err.message}`,
    {
      cause: err,
      ...(hint === undefined ? {} : { hint }),
    },
  );
}
