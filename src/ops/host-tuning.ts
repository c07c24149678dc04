/**
 * The host settings a high-concurrency server wants (CONTRACT section 8), in one place: `sluice
 * doctor` checks them, `sluice init sysctl` and `sluice init limits` write them. Each with why, so
 * the generated files and the doctor's messages explain themselves.
 */

/** A kernel setting, as `sysctl` names it and as `/proc/sys` stores it. */
export interface SysctlSetting {
  /** The doctor's check id. */
  readonly id: string;
  /** `net.core.somaxconn`. */
  readonly key: string;
  /** Recommended value, as written by `sysctl -w` (space-separated for ranges). */
  readonly value: string;
  /** Why, in one line. */
  readonly why: string;
}

/** The kernel settings, in the order `sluice init sysctl` writes them. */
export const SYSCTL_SETTINGS: readonly SysctlSetting[] = [
  {
    id: 'file_max',
    key: 'fs.file-max',
    value: '1000000',
    why: 'system-wide open files: every client and upstream connection is one',
  },
  {
    id: 'somaxconn',
    key: 'net.core.somaxconn',
    value: '65535',
    why: 'accept queue cap: bursts of new connections wait instead of being refused',
  },
  {
    id: 'tcp_max_syn_backlog',
    key: 'net.ipv4.tcp_max_syn_backlog',
    value: '65535',
    why: 'half-open connections kept during a burst (or a SYN flood, with syncookies)',
  },
  {
    id: 'ip_local_port_range',
    key: 'net.ipv4.ip_local_port_range',
    value: '1024 65535',
    why: 'ephemeral ports for upstream connections: 64k instead of 28k',
  },
  {
    id: 'tcp_tw_reuse',
    key: 'net.ipv4.tcp_tw_reuse',
    value: '1',
    why: 'reuse TIME_WAIT sockets for new outgoing (upstream) connections',
  },
  {
    id: 'tcp_fin_timeout',
    key: 'net.ipv4.tcp_fin_timeout',
    value: '30',
    why: 'free orphaned FIN_WAIT_2 sockets after 30 s instead of 60 s',
  },
  {
    id: 'rmem_default',
    key: 'net.core.rmem_default',
    value: '262144',
    // TCP sockets start from net.ipv4.tcp_rmem's middle value instead (tcp_init_sock): this sizes
    // the others, UDP above all (DNS answers for resolve: true targets, syslog shipping).
    why: 'default receive buffer of non-TCP sockets (UDP: DNS answers); TCP sockets use net.ipv4.tcp_rmem',
  },
  {
    id: 'wmem_default',
    key: 'net.core.wmem_default',
    value: '262144',
    why: 'default send buffer of non-TCP sockets (UDP); TCP sockets use net.ipv4.tcp_wmem',
  },
];

/** Open files per process (`ulimit -n`, `LimitNOFILE=`, limits.conf `nofile`). */
export const RECOMMENDED_NOFILE = 65536;

/**
 * Open files a config may need in one process: every client connection the node accepts
 * (workers × max_connections — one worker can end up holding most of them, as accept is not
 * perfectly even) and as many upstream connections again (a proxied request holds one of each),
 * plus 1024 for logs, listeners and DNS.
 */
export function nofileNeeded(workers: number, maxConnections: number): number {
  return workers * maxConnections * 2 + 1024;
}

/** `/proc/sys/net/core/somaxconn` for `net.core.somaxconn`. */
export function procSysPath(key: string): string {
  return `proc/sys/${key.replaceAll('.', '/')}`;
}
