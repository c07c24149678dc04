/**
 * Forwarding-loop detection: whether a connection the proxy just opened landed on the proxy's
 * own listener. The check runs on the connected socket's peer address, after DNS, so it also
 * catches a name that resolves to this host (`localhost`, the machine's own name, a rebinding
 * record); a check of the name alone would not. It costs one comparison per new upstream
 * connection; the interface list is only read when the port is the listener's own.
 */
import { isIP } from 'node:net';
import { networkInterfaces } from 'node:os';
import { unmapIpv4 } from '../core/ip-set.js';

/** The addresses of this host's interfaces. */
export type LocalAddresses = () => ReadonlySet<string>;

/** Reads the interface addresses (unmapped, without zone ids). */
export const hostAddresses: LocalAddresses = () => {
  const out = new Set<string>();
  for (const list of Object.values(networkInterfaces())) {
    for (const a of list ?? []) out.add(unmapIpv4(a.address.split('%')[0]!));
  }
  return out;
};

/** Knows the listener's bound address and recognises connections to it. */
export class LoopGuard {
  #address = '';
  #port = -1;
  #wildcard = false;
  readonly #local: LocalAddresses;

  constructor(local: LocalAddresses = hostAddresses) {
    this.#local = local;
  }

  /** Records the listener's bound address (`server.address()`), once it listens. */
  bind(address: string, port: number): void {
    this.#address = unmapIpv4(address);
    this.#port = port;
    this.#wildcard = address === '0.0.0.0' || address === '::';
  }

  /** Whether a connection whose peer is `address:port` reached this proxy's listener. */
  pointsAtSelf(address: string | undefined, port: number | undefined): boolean {
    if (port !== this.#port || address === undefined) return false;
    const peer = unmapIpv4(address);
    if (!this.#wildcard) return peer === this.#address;
    return isLoopback(peer) || this.#local().has(peer);
  }
}

function isLoopback(address: string): boolean {
  return address === '::1' || (isIP(address) === 4 && address.startsWith('127.'));
}
