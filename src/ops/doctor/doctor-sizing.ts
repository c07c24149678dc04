/**
 * What a config asks of the host, reduced to the numbers the checks size their expectations by.
 * Without `-c` the checks expect the recommended values alone.
 */
import type { ResolvedConfig } from '../../config/types.js';
import { lookupIds } from '../../runtime/privileges.js';
import { nofileNeeded } from '../host-tuning.js';
import { connectionsPerWorker } from '../init/init-input.js';

/** The config's demands on the host. */
export interface DoctorSizing {
  /** The config file as the user named it, for messages; null without `-c`. */
  readonly file: string | null;
  /** `workers:` as configured; `auto` is one per core. */
  readonly workers: number | 'auto';
  /**
   * Client connections one worker may hold: for each listen address, the default server's
   * `limits.max_connections` (the one enforced there), summed over addresses, as `sluice init
   * limits` and `init systemd` size LimitNOFILE. Null without a config.
   */
  readonly connectionsPerWorker: number | null;
  /** The largest `limits.backlog` of any server; the kernel caps it at `net.core.somaxconn`. */
  readonly backlog: number | null;
  /** `user:` of the config: the workers drop to it when started as root. */
  readonly user: string | null;
  /**
   * The uid `user:` has in the host's /etc/passwd (`root` and `0` are 0: the workers keep root);
   * null without `user:` or when it is not there (the workers cannot switch to it).
   */
  readonly userUid: number | null;
}

/** No config: recommendations only, `workers: auto` as `sluice start` defaults to. */
export const NO_CONFIG_SIZING: DoctorSizing = {
  file: null,
  workers: 'auto',
  connectionsPerWorker: null,
  backlog: null,
  user: null,
  userUid: null,
};

/**
 * The sizing of a resolved config; `file` is its name as the user gave it, `root` the host tree
 * whose /etc/passwd names the users.
 */
export function sizingFromConfig(config: ResolvedConfig, file: string, root = '/'): DoctorSizing {
  let backlog = 0;
  for (const server of config.servers) backlog = Math.max(backlog, server.limits.backlog);
  return {
    file,
    workers: config.workers,
    connectionsPerWorker: connectionsPerWorker(config),
    backlog: config.servers.length === 0 ? null : backlog,
    user: config.user,
    userUid: config.user === null ? null : uidOf(config.user, root),
  };
}

function uidOf(user: string, root: string): number | null {
  try {
    return lookupIds(user, null, root).uid;
  } catch {
    return null;
  }
}

/** Worker processes `sluice start` runs: `auto` is one per core, as `workerCount` in runtime/primary.ts. */
export function resolvedWorkers(sizing: DoctorSizing, cores: number): number {
  return sizing.workers === 'auto' ? cores : sizing.workers;
}

/** Open files the config may need in one process, and the sum that gives it. */
export interface OpenFilesNeed {
  readonly files: number;
  /** `4 workers × 20000 connections × 2 + 1024`. */
  readonly sum: string;
}

/** What `nofileNeeded` makes of the config on a host with `cores` cores; null without a config. */
export function openFilesNeeded(sizing: DoctorSizing, cores: number): OpenFilesNeed | null {
  if (sizing.connectionsPerWorker === null) return null;
  const workers = resolvedWorkers(sizing, cores);
  return {
    files: nofileNeeded(workers, sizing.connectionsPerWorker),
    sum: `${workers} worker${workers === 1 ? '' : 's'} × ${sizing.connectionsPerWorker} connections × 2 + 1024`,
  };
}
