/**
 * The TCP addresses a process listens on, as Linux's /proc tells them: the sockets among its open
 * files (`/proc/PID/fd/N` → `socket:[INODE]`) matched by inode with the listening sockets of its
 * network namespace (`/proc/PID/net/tcp` and `tcp6`). `sluice reload` finds the admin address of
 * the running config this way when the file it reloads moves `admin.listen`.
 */
import { readdirSync, readFileSync, readlinkSync } from 'node:fs';
import { endianness } from 'node:os';

/** A listening address; an unspecified host (`0.0.0.0`, `::`) as the loopback that reaches it. */
export interface ListeningAddress {
  readonly host: string;
  readonly port: number;
}

/** TCP state 0A: LISTEN. */
const LISTEN = '0A';

/**
 * The listening sockets in the text of /proc/net/tcp or tcp6, by inode. The kernel prints each
 * 32-bit word of an address in host byte order (`little`: this machine's order).
 */
export function parseListeningSockets(
  text: string,
  little = endianness() === 'LE',
): Map<string, ListeningAddress> {
  const sockets = new Map<string, ListeningAddress>();
  for (const line of text.split('\n').slice(1)) {
    // sl local_address rem_address st tx_queue:rx_queue tr:tm->when retrnsmt uid timeout inode
    const fields = line.trim().split(/\s+/);
    const [local, state, inode] = [fields[1], fields[3], fields[9]];
    if (local === undefined || state !== LISTEN || inode === undefined) continue;
    const [hex = '', portHex = ''] = local.split(':');
    if (!/^([0-9A-F]{8}|[0-9A-F]{32})$/i.test(hex) || !/^[0-9A-F]{4}$/i.test(portHex)) continue;
    const bytes = Buffer.from(hex, 'hex');
    if (little) for (let i = 0; i < bytes.length; i += 4) bytes.subarray(i, i + 4).reverse();
    sockets.set(inode, { host: hostOf(bytes), port: Number.parseInt(portHex, 16) });
  }
  return sockets;
}

function hostOf(bytes: Buffer): string {
  const unspecified = bytes.every((b) => b === 0);
  if (bytes.length === 4) return unspecified ? '127.0.0.1' : [...bytes].join('.');
  if (unspecified) return '::1';
  const groups: string[] = [];
  for (let i = 0; i < 16; i += 2) groups.push(bytes.readUInt16BE(i).toString(16));
  return groups.join(':');
}

/**
 * The addresses process `pid` listens on; null where /proc cannot tell (another system, or another
 * user's process, whose open files only root may list).
 */
export function listeningAddresses(pid: number): ListeningAddress[] | null {
  let inodes: Set<string>;
  try {
    inodes = new Set(
      readdirSync(`/proc/${pid}/fd`).flatMap((fd) => {
        try {
          return /^socket:\[(\d+)\]$/.exec(readlinkSync(`/proc/${pid}/fd/${fd}`))?.[1] ?? [];
        } catch {
          // Closed since the listing.
          return [];
        }
      }),
    );
  } catch {
    return null;
  }
  const found: ListeningAddress[] = [];
  for (const table of ['tcp', 'tcp6']) {
    let text: string;
    try {
      text = readFileSync(`/proc/${pid}/net/${table}`, 'utf8');
    } catch {
      // No IPv6 in this kernel.
      continue;
    }
    for (const [inode, address] of parseListeningSockets(text)) if (inodes.has(inode)) found.push(address);
  }
  return found;
}
